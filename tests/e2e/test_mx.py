#!/usr/bin/python3
"""test_mx.py - a programmable SMTP receiver for delivery tests (the role KumoMTA's integration
tests give their sink): what it answers is chosen by the recipient's local part, so one server
plays every receiving MTA a test needs.

  test_mx.py --listen 127.0.0.2:2525 --dir DIR [--tls none|cert] [--cert C --key K]
             [--greeting 220|421|554] [--mail-reply CODE] [--no-ehlo] [--no-8bitmime]
             [--no-smtputf8] [--no-dsn] [--no-pipelining] [--size N] [--name HOST]
             [--data-delay SECONDS]

Recipient local parts (the part before the first '+' or '-' picks the behaviour, so tests can
make every address unique: rcpt550-17@x):
  ok / anything else   250 at RCPT and DATA
  (sender) mail4NN / mail5NN   the envelope sender's local part (MAIL FROM comes before any
                       recipient; a VERP return path keeps it before its '+'): that code at MAIL
  rcpt4NN / rcpt5NN    that code at RCPT (e.g. rcpt452, rcpt550; 550/551/553 say 5.1.1 user
                       unknown, other codes 4.3.0 or 5.7.1)
  data4NN / data5NN    250 at RCPT, that code after the message (for the whole transaction)
  grey                 450 4.7.1 greylisted on the first attempt per (sender domain, recipient),
                       250 from the second on (as postgrey does)
  slow                 the RCPT reply comes after --slow seconds (default 600: past any timeout)
  drop                 the connection is closed in the middle of DATA
--data-delay: seconds the MX waits before its 354 reply to DATA, so delivery runs at a known pace
(the wait comes before the message is sent: a sender killed in it leaves no copy behind).
Server-wide behaviour comes from the options (run several instances on 127.0.0.x addresses).

Every accepted message is written to DIR/NNNNNN.eml with an "X-Test-MX-Envelope:" first line
(JSON: mail from, rcpts, ESMTP parameters, TLS version); every SMTP event is appended to
DIR/events.jsonl. Loopback only; stops on SIGTERM.
"""
import argparse
import asyncio
import json
import os
import re
import signal
import ssl
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--listen", required=True)
ap.add_argument("--dir", required=True)
ap.add_argument("--tls", default="none", choices=["none", "cert"])
ap.add_argument("--cert")
ap.add_argument("--key")
ap.add_argument("--greeting", type=int, default=220)
ap.add_argument("--mail-reply", type=int, default=250)
ap.add_argument("--no-ehlo", action="store_true")
ap.add_argument("--no-8bitmime", action="store_true")
ap.add_argument("--no-smtputf8", action="store_true")
ap.add_argument("--no-dsn", action="store_true")
ap.add_argument("--no-pipelining", action="store_true")
ap.add_argument("--size", type=int, default=0)
ap.add_argument("--slow", type=float, default=600.0)
ap.add_argument("--data-delay", type=float, default=0.0)
ap.add_argument("--name", default="mx.test.example")
args = ap.parse_args()
host, port = args.listen.rsplit(":", 1)
host = host.strip("[]")
os.makedirs(args.dir, exist_ok=True)
greylist = set()
counter = [0]
EVENTS = open(os.path.join(args.dir, "events.jsonl"), "a", buffering=1)


def event(**kw):
    kw["t"] = round(time.time(), 3)
    EVENTS.write(json.dumps(kw) + "\n")


def behaviour(rcpt):
    local = rcpt.split("@", 1)[0].lower()
    return re.split(r"[+-]", local, 1)[0]


def code_of(b, prefix):
    m = re.fullmatch(prefix + r"([45]\d\d)", b)
    return int(m.group(1)) if m else None


def text_for(code, step=""):
    cls = str(code)[0]
    if step == "rcpt" and code in (550, 551, 553):  # what a real MX says of a mailbox it lacks
        return "%d 5.1.1 User unknown (test MX)" % code
    return {"4": "%d 4.3.0 Temporary failure (test MX)" % code,
            "5": "%d 5.7.1 Rejected (test MX)" % code}[cls]


class Session:
    def __init__(self, reader, writer):
        self.r, self.w = reader, writer
        self.tls = None
        self.peer = writer.get_extra_info("peername")
        self.reset()

    def reset(self):
        self.mail = None
        self.mail_params = []
        self.rcpts = []
        self.rcpt_params = {}

    async def reply(self, line):
        self.w.write((line + "\r\n").encode())
        await self.w.drain()

    async def readline(self):
        line = await self.r.readline()
        if not line:
            raise ConnectionError("client closed")
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def ehlo_lines(self):
        ext = []
        if not args.no_pipelining:
            ext.append("PIPELINING")
        if args.size:
            ext.append("SIZE %d" % args.size)
        if not args.no_8bitmime:
            ext.append("8BITMIME")
        if not args.no_smtputf8:
            ext.append("SMTPUTF8")
        ext.append("ENHANCEDSTATUSCODES")
        if not args.no_dsn:
            ext.append("DSN")
        if args.tls == "cert" and self.tls is None:
            ext.append("STARTTLS")
        return ext

    async def run(self):
        event(ev="connect", peer=str(self.peer))
        if args.greeting != 220:
            await self.reply("%d %s not accepting mail (test MX)" % (args.greeting, args.name))
            return
        await self.reply("220 %s ESMTP test MX" % args.name)
        while True:
            line = await self.readline()
            verb = line.split(" ", 1)[0].upper()
            arg = line[len(verb):].strip()
            if verb == "EHLO":
                if args.no_ehlo:
                    await self.reply("502 5.5.2 Command not recognized")
                    continue
                ext = self.ehlo_lines()
                lines = [args.name] + ext
                for i, l in enumerate(lines):
                    await self.reply(("250-" if i < len(lines) - 1 else "250 ") + l)
            elif verb == "HELO":
                await self.reply("250 " + args.name)
            elif verb == "STARTTLS" and args.tls == "cert" and self.tls is None:
                await self.reply("220 2.0.0 Ready to start TLS")
                ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                ctx.load_cert_chain(args.cert, args.key)
                await self.w.start_tls(ctx)
                self.tls = self.w.get_extra_info("ssl_object").version()
                event(ev="starttls", version=self.tls)
                self.reset()
            elif verb == "MAIL":
                m = re.match(r"(?i)FROM:\s*<([^>]*)>\s*(.*)", arg)
                if not m:
                    await self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
                    continue
                code = args.mail_reply if args.mail_reply != 250 else code_of(behaviour(m.group(1)), "mail")
                if code:
                    event(ev="mail", sender=m.group(1), reply=code)
                    await self.reply(text_for(code).replace("test MX", "test MX, sender " + m.group(1)))
                    continue
                self.reset()
                self.mail, self.mail_params = m.group(1), m.group(2).split()
                event(ev="mail", sender=self.mail, params=self.mail_params)
                await self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                m = re.match(r"(?i)TO:\s*<([^>]*)>\s*(.*)", arg)
                if self.mail is None or not m:
                    await self.reply("503 5.5.1 Need MAIL first" if m else "501 5.5.4 Syntax")
                    continue
                rcpt, b = m.group(1), behaviour(m.group(1))
                code = code_of(b, "rcpt")
                if b == "slow":
                    await asyncio.sleep(args.slow)
                if code:
                    event(ev="rcpt", rcpt=rcpt, reply=code)
                    await self.reply(text_for(code, "rcpt").replace("test MX", "test MX, rcpt " + rcpt))
                    continue
                if b == "grey":
                    key = (self.mail.split("@")[-1].lower(), rcpt.lower())
                    if key not in greylist:
                        greylist.add(key)
                        event(ev="rcpt", rcpt=rcpt, reply=450, greylisted=True)
                        await self.reply("450 4.7.1 <%s>: Recipient address rejected: Greylisted, try again later" % rcpt)
                        continue
                self.rcpts.append(rcpt)
                self.rcpt_params[rcpt] = m.group(2).split()
                event(ev="rcpt", rcpt=rcpt, reply=250, params=self.rcpt_params[rcpt])
                await self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                if not self.rcpts:
                    await self.reply("503 5.5.1 No valid recipients")
                    continue
                if args.data_delay > 0:
                    await asyncio.sleep(args.data_delay)
                await self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = bytearray()
                drop = any(behaviour(r) == "drop" for r in self.rcpts)
                while True:
                    raw = await self.r.readline()
                    if not raw:
                        raise ConnectionError("closed in DATA")
                    if raw == b".\r\n":
                        break
                    if raw.startswith(b"."):
                        raw = raw[1:]
                    data += raw
                    if drop and len(data) > 100:
                        event(ev="drop", rcpts=self.rcpts)
                        self.w.close()
                        return
                codes = [code_of(behaviour(r), "data") for r in self.rcpts]
                code = next((c for c in codes if c), None)
                if code:
                    event(ev="data", rcpts=self.rcpts, reply=code)
                    await self.reply(text_for(code))
                    self.reset()
                    continue
                counter[0] += 1
                name = os.path.join(args.dir, "%06d-%d.eml" % (counter[0], os.getpid()))
                env = {"mail": self.mail, "mail_params": self.mail_params, "rcpts": self.rcpts,
                       "rcpt_params": self.rcpt_params, "tls": self.tls}
                with open(name + ".tmp", "wb") as f:
                    f.write(b"X-Test-MX-Envelope: " + json.dumps(env).encode() + b"\r\n")
                    f.write(bytes(data))
                os.rename(name + ".tmp", name)
                event(ev="data", rcpts=self.rcpts, reply=250, file=os.path.basename(name), size=len(data))
                await self.reply("250 2.0.0 Ok: queued as TEST%06d" % counter[0])
                self.reset()
            elif verb == "RSET":
                self.reset()
                await self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                await self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                await self.reply("221 2.0.0 Bye")
                return
            else:
                await self.reply("502 5.5.2 Command not recognized")


async def handle(reader, writer):
    try:
        await Session(reader, writer).run()
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as e:
        event(ev="error", error=str(e))
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    server = await asyncio.start_server(handle, host, int(port), limit=1 << 20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("listening on %s:%s" % (host, port), flush=True)
    async with server:
        await stop.wait()


asyncio.run(main())
