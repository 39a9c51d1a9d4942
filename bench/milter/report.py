#!/usr/bin/python3
# bench/milter/report.py RESULTS - the tables and targets of bench/milter/run.sh from its raw
# "key=value" lines (one per run, plus one "raw" line with the openssl speed figures).
import re
import sys

rows, raw = [], {}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r'(\S+?)=(\S+)', line))
    if line.startswith("raw "):
        raw = kv
    elif "part" in kv:
        rows.append(kv)

sign_ms = float(raw.get("rsa2048_sign_ms", "nan"))
sha_kbps = float(raw.get("sha256_kB/s", "nan"))


def sha_ms(body):  # SHA-256 of the body, from openssl speed's 16 KB-block rate
    return body / (sha_kbps * 1000) * 1000


def get(part, cfg, body=None):
    for r in rows:
        if r["part"] == part and r["config"] == cfg and (body is None or int(r["body"]) == body):
            return r
    return None


def cpu(r):
    return float(r["milter_cpu_ms/msg"])


def kb(body):
    return f"{body // 1024} KB"


results = []   # (target text, ok)


def compare(part, driver, rs, libmilter=False):
    """sluice against opendkim and the raw OpenSSL cost at each body size of one part; targets."""
    print(f"{'body':<8}{'sluice ms':>10}{'opendkim ms':>12}{'od/sluice':>10}{'raw ms':>8}{'sluice/raw':>11}  raw")
    for body in sorted({int(r["body"]) for r in rs}):
        s, o = get(part, "sluice-milter", body), get(part, "opendkim", body)
        if not s or not o or cpu(s) <= 0:
            continue
        rawc = sign_ms + (sha_ms(body) if body >= 100000 else 0)
        what = "sign + sha256(body)" if body >= 100000 else "sign"
        ratio = cpu(o) / cpu(s)
        print(f"{kb(body):<8}{cpu(s):>10.3f}{cpu(o):>12.3f}{ratio:>9.1f}x{rawc:>8.3f}{cpu(s) / rawc:>10.2f}x  {what}")
        lm = get(part, "sluice-libmilter", body) if libmilter else None
        if lm:
            print(f"{'':<8}sluice-milter on libmilter: {cpu(lm):.3f} ms ({cpu(lm) / cpu(s):.2f}x the built-in engine)")
        results.append((f"{kb(body)} ({driver}): CPU/msg >= 3x lower than opendkim: {ratio:.1f}x", ratio >= 3))
        if body < 10000:
            results.append((f"{kb(body)} ({driver}): CPU/msg <= 1.5x raw RSA-2048 sign: {cpu(s) / rawc:.2f}x",
                            cpu(s) <= 1.5 * rawc))
        if body >= 100000:
            results.append((f"{kb(body)} ({driver}): CPU/msg <= 1.5x (raw sign + SHA-256 of the body): "
                            f"{cpu(s) / rawc:.2f}x", cpu(s) <= 1.5 * rawc))


def cost_table(part_rows, milter_width, signed):
    """One line a (body size, milter) run: its rate and CPU per message (signed: and how many of
    its messages were signed)."""
    print(f"{'body':<8}{'milter':<{milter_width}}{'msgs':>6}{'msgs/s':>8}{'CPU ms/msg':>12}{'(user':>7}{'sys)':>7}"
          + (f"{'signed':>12}" if signed else ""))
    for r in part_rows:
        print(f"{kb(int(r['body'])):<8}{r['config']:<{milter_width}}{r['N']:>6}{float(r['end_to_end']):>8.0f}"
              f"{cpu(r):>12.3f}{float(r['user_ms/msg']):>7.3f}{float(r['sys_ms/msg']):>7.3f}"
              + (f"{r['signed'] + '/' + r['N']:>12}" if signed else ""))


cost = [r for r in rows if r["part"] == "cost"]
if cost:
    print(f"== per-message cost (20 sessions, unix sockets; raw OpenSSL: rsa2048 sign {sign_ms:.3f} ms,"
          f" sha256 {sha_kbps / 1000:.0f} MB/s)")
    cost_table(cost, 15, signed=True)
    compare("cost", "Postfix", cost, libmilter=True)

mt = [r for r in rows if r["part"] == "mt"]
if mt:
    print()
    print(f"== per-message cost with miltertest as the MTA (a connection per message, 64 KB body chunks, unix sockets)")
    cost_table(mt, 18, signed=False)
    compare("mt", "miltertest", mt)

e2e = [r for r in rows if r["part"] == "e2e"]
if e2e:
    base = get("e2e", "none")
    print()
    print(f"== end to end: smtp-source -s {e2e[0]['sess']} -> Postfix -> smtp-sink, {e2e[0]['N']} x 4 KB")
    print(f"{'config':<22}{'msgs/s':>8}{'ingest/s':>10}{'% of none':>11}{'milter CPU ms/msg':>19}{'signed':>14}")
    for r in e2e:
        pct = 100 * float(r["end_to_end"]) / float(base["end_to_end"]) if base else float("nan")
        none = r["config"] == "none"
        c = "-" if none else f"{cpu(r):.3f}"
        sg = "-" if none else r['signed'] + '/' + r['N']
        print(f"{r['config']:<22}{float(r['end_to_end']):>8.0f}{float(r['ingest']):>10.0f}{pct:>10.1f}%{c:>19}{sg:>14}")
    s, o = get("e2e", "sluice-unix"), get("e2e", "opendkim-unix")
    if s and o and cpu(s) > 0:
        print(f"4 KB CPU/msg: opendkim/sluice {cpu(o) / cpu(s):.1f}x; sluice/raw sign {cpu(s) / sign_ms:.2f}x")
        results.append((f"4 KB (e2e): CPU/msg <= 1.5x raw RSA-2048 sign: {cpu(s) / sign_ms:.2f}x", cpu(s) <= 1.5 * sign_ms))
        results.append((f"4 KB (e2e): CPU/msg >= 3x lower than opendkim: {cpu(o) / cpu(s):.1f}x", cpu(o) >= 3 * cpu(s)))
    if s and base:
        pct = 100 * float(s["end_to_end"]) / float(base["end_to_end"])
        results.append((f"Postfix + sluice-milter (unix) >= 90% of Postfix alone: {pct:.1f}%", pct >= 90))

stall = [r for r in rows if r["part"] == "stall"]
if stall:
    print()
    print(f"== inet delayed-ACK stall: one SMTP session at a time (smtp-source -s 1), {stall[0]['N']} x 4 KB")
    print(f"{'config':<24}{'msgs/s':>8}{'ms/msg wall':>13}{'milter CPU ms/msg':>19}{'signed':>10}")
    for r in stall:
        rate = float(r["end_to_end"])
        print(f"{r['config']:<24}{rate:>8.1f}{1000 / rate:>13.2f}{cpu(r):>19.3f}{r['signed'] + '/' + r['N']:>10}")

bad = [r for r in rows if r["config"] != "none" and r["signed"] != r["N"]]
for r in bad:
    results.append((f"{r['part']} {r['config']} {r['body']} B: every message signed ({r['signed']}/{r['N']})", False))
if results:
    print()
    for text, ok in results:
        print(f"target {text}: {'PASS' if ok else 'FAIL'}")
