#!/usr/bin/python3
"""smtp_raw.py HOST:PORT SCRIPT_FILE - plays raw bytes at an SMTP server and prints every reply.

SCRIPT_FILE holds Python bytes literals, one per line (e.g. b'EHLO x\\r\\n'); each is sent as
is (so bare LF, bare CR and pipelining can be written exactly), then the replies that arrive
within --wait seconds are read. Lines starting with '#' are comments; a line 'WAIT n' pauses.
Output: one line per reply line, '<- ' prefixed; '== closed' when the server closed."""
import ast
import socket
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
s.settimeout(0.4)
out = []


def drain(wait):
    end = time.time() + wait
    buf = b""
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            if buf.endswith(b"\r\n"):
                break
            continue
        except ConnectionResetError:
            out.append("== closed")
            return False
        if not d:
            out.append("== closed")
            return False
        buf += d
    for line in buf.decode("utf-8", "replace").split("\r\n"):
        if line:
            out.append("<- " + line)
    return True


alive = drain(2)
for raw in open(sys.argv[2]):
    raw = raw.rstrip("\n")
    if not raw or raw.startswith("#"):
        continue
    if raw.startswith("WAIT "):
        time.sleep(float(raw[5:]))
        continue
    data = ast.literal_eval(raw)
    out.append("-> " + repr(data))
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        out.append("== closed")
        break
    if not drain(1.0):
        break
print("\n".join(out))
