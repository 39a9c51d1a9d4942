#!/usr/bin/python3
"""load_client.py HOST:PORT COUNT CONCURRENCY LOG - the project's own SMTP load client for crash
tests and benchmarks: COUNT messages (each with a unique Message-ID <load-N@test.example>) over
CONCURRENCY sessions, pipelining MAIL/RCPT/DATA. Every outcome goes to LOG, one line per message:
"ACK <n> <queue id>" after a 250 to the data, "NAK <n> <reply>" for any other reply,
"LOST <n> <why>" when the connection broke before the reply. A broken connection is re-opened
(with back-off while the server is down) and the client goes on with the next message."""
import asyncio
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
count, conc, logpath = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
body = ("x" * 70 + "\r\n") * 50  # ~3.6 KB
log = open(logpath, "w", buffering=1)
next_n = [0]


async def reply(r):
    lines = []
    while True:
        l = await asyncio.wait_for(r.readline(), 30)
        if not l:
            raise ConnectionError("closed")
        lines.append(l.decode().rstrip("\r\n"))
        if len(l) < 4 or l[3:4] != b"-":
            return lines[-1]


async def worker():
    r = w = None
    while True:
        if next_n[0] >= count:
            break
        if w is None:
            try:
                r, w = await asyncio.open_connection(host, int(port))
                await reply(r)
                w.write(b"EHLO load.test.example\r\n")
                await reply(r)
            except (OSError, ConnectionError, asyncio.TimeoutError):
                w = None
                await asyncio.sleep(0.05)
                continue
        n = next_n[0]
        next_n[0] += 1
        msg = ("From: load@example.com\r\nTo: rcpt@dest.example\r\nMessage-ID: <load-%d@test.example>\r\n"
               "Subject: load %d\r\n\r\n%s" % (n, n, body))
        try:
            w.write(b"MAIL FROM:<load@example.com>\r\nRCPT TO:<rcpt@dest.example>\r\nDATA\r\n")
            a, b, c = await reply(r), await reply(r), await reply(r)
            if not c.startswith("354"):
                log.write("NAK %d %s|%s|%s\n" % (n, a, b, c))
                w.write(b"RSET\r\n")
                await reply(r)
                continue
            w.write(msg.encode() + b".\r\n")
            d = await reply(r)
            if d.startswith("250"):
                log.write("ACK %d %s\n" % (n, d.split()[-1]))
            else:
                log.write("NAK %d %s\n" % (n, d))
        except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            log.write("LOST %d %s\n" % (n, type(e).__name__))
            try:
                w.close()
            except Exception:
                pass
            w = None
    if w is not None:
        try:
            w.write(b"QUIT\r\n")
            await w.drain()
            w.close()
        except Exception:
            pass


async def main():
    t0 = time.time()
    await asyncio.gather(*(worker() for _ in range(conc)))
    print("sent %d messages in %.2f s" % (count, time.time() - t0))


asyncio.run(main())
