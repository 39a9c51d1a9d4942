#!/usr/bin/python3
"""probe.py RELAY SINK COUNT WARM MAX_SECONDS GAP_MS RAW_FILE - probe latency of sluice-relayd.

Listens as the MX of probe.example on SINK (host:port, a minimal SMTP receiver), then sends probe
messages to RELAY (host:port) one at a time over one SMTP session: probe<i>@probe.example. For
each probe, latency = the time the sink read the MAIL FROM of the transaction carrying probe<i>
- the time the probe's DATA got its 250. On a new connection that is the connection's accept +
greeting + EHLO (well under a millisecond here); when relayd reuses a connection (the next probe
was queued before its agent quit) there is no new connection, and MAIL is the moment delivery
starts. `reused=` counts those.
WARM probes are sent first, each after the previous one arrived, and not counted; then COUNT
probes open loop, each uniform(0, GAP_MS) ms after the previous one's 250 (fewer if MAX_SECONDS
run out), so they sample relayd's timeline uniformly. Prints one line: n=.. lost=.. reused=.. min= p50= p90= p99= max= mean= (ms);
RAW_FILE gets one latency (ms) per line. Both clocks are this process's time.monotonic().
"""
import random
import re
import smtplib
import socket
import statistics
import sys
import threading
import time

relay, sink, count, warm, max_s, gap_ms, raw = sys.argv[1:8]
rhost, rport = relay.rsplit(":", 1)
shost, sport = sink.rsplit(":", 1)
count, warm, max_s, gap_ms = int(count), int(warm), float(max_s), float(gap_ms)

accepted = {}
events = {}
lock = threading.Lock()
PROBE = re.compile(rb"<probe(\d+)@probe\.example>", re.I)


def serve(conn, t_accept):
    t_mail, first = None, True
    with conn:
        f = conn.makefile("rb")
        conn.sendall(b"220 mx.probe.example ESMTP probe sink\r\n")
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line[:4].upper()
            if cmd == b"EHLO":
                conn.sendall(b"250-mx.probe.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n")
            elif cmd == b"RCPT":
                m = PROBE.search(line)
                if m:
                    i = int(m.group(1))
                    with lock:
                        if i not in accepted:
                            accepted[i] = (t_mail, not first)
                            ev = events.get(i)
                            if ev:
                                ev.set()
                conn.sendall(b"250 2.1.5 ok\r\n")
            elif cmd == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                while True:
                    l2 = f.readline()
                    if not l2 or l2 in (b".\r\n", b".\n"):
                        break
                conn.sendall(b"250 2.0.0 ok\r\n")
                first = False
            elif cmd == b"MAIL":
                t_mail = time.monotonic()
                conn.sendall(b"250 2.1.0 ok\r\n")
            elif cmd == b"QUIT":
                conn.sendall(b"221 2.0.0 bye\r\n")
                return
            else:  # HELO, RSET, NOOP
                conn.sendall(b"250 ok\r\n")


def listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((shost, int(sport)))
    s.listen(128)
    ready.set()
    while True:
        c, _ = s.accept()
        t = time.monotonic()
        threading.Thread(target=serve, args=(c, t), daemon=True).start()


ready = threading.Event()
threading.Thread(target=listener, daemon=True).start()
ready.wait()

client = smtplib.SMTP(rhost, int(rport), local_hostname="probe.client.example", timeout=120)


def send(i):
    events[i] = threading.Event()
    msg = f"From: probe@example.com\r\nTo: probe{i}@probe.example\r\nSubject: probe {i}\r\n\r\nprobe {i}\r\n"
    client.sendmail("probe@example.com", [f"probe{i}@probe.example"], msg)
    return time.monotonic()


# Warm-up, closed loop: relayd's start-up, the first MX lookup, the first connection.
for i in range(warm):
    send(i)
    events[i].wait(300)
# Then open loop: probe i+1 is sent uniform(0, GAP_MS) ms after probe i's 250, whether or not
# probe i has arrived, so probes sample relayd's timeline uniformly (a stall of the delivery
# thread delays every probe that becomes due during it, as it would real mail).
sent = {}
start = time.monotonic()
i = warm
while len(sent) < count and time.monotonic() - start < max_s:
    sent[i] = send(i)
    i += 1
    time.sleep(random.uniform(0, gap_ms) / 1000.0)
client.quit()
deadline = time.monotonic() + 300
lat, lost, reused = [], 0, 0
for i, t250 in sent.items():
    if not events[i].wait(max(0.0, deadline - time.monotonic())):
        lost += 1
        continue
    t, again = accepted[i]
    lat.append((t - t250) * 1000.0)
    reused += again
with open(raw, "w") as f:
    f.write("".join(f"{x:.3f}\n" for x in lat))
if not lat:
    print(f"n=0 lost={lost}")
    sys.exit(1)
q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [lat[0]] * 99
print(f"n={len(lat)} lost={lost} reused={reused} min={min(lat):.1f} p50={statistics.median(lat):.1f} p90={q[89]:.1f} "
      f"p99={q[98]:.1f} max={max(lat):.1f} mean={statistics.mean(lat):.1f}")
