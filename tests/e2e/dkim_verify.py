#!/usr/bin/python3
# dkim_verify.py RECORDS MESSAGE [WANT] - verifies every DKIM-Signature of MESSAGE with dkimpy
# (Debian python3-dkim; run it with /usr/bin/python3), offline: RECORDS holds "selector TXT-value"
# lines and the DNS lookup of "<selector>._domainkey.<domain>" answers the selector's value.
# Prints one line per signature; exit 0 only if there are WANT signatures (default: at least
# one) and all of them pass. A message with bare-LF line ends is given to dkimpy with CRLF.
import sys

import dkim

records = {}
with open(sys.argv[1]) as f:
    for line in f:
        sel, _, value = line.strip().partition(" ")
        if sel:
            records[sel.encode()] = value.encode()
msg = open(sys.argv[2], "rb").read()
if b"\r\n" not in msg:
    msg = msg.replace(b"\n", b"\r\n")
want = int(sys.argv[3]) if len(sys.argv) > 3 else None


def dnsfunc(name, timeout=5):
    return records.get(name.split(b".")[0])


d = dkim.DKIM(msg)
sigs = [v for k, v in d.headers if k.lower() == b"dkim-signature"]
failed = 0
for i, sig in enumerate(sigs):
    tags = dkim.util.parse_tag_value(b"".join(sig.split()))
    try:
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
        why = "" if ok else " (signature did not verify)"
    except dkim.DKIMException as e:
        ok, why = False, f" ({e})"
    failed += 0 if ok else 1
    print(f"dkimpy: sig {i} d={tags.get(b'd', b'').decode()} s={tags.get(b's', b'').decode()} "
          f"a={tags.get(b'a', b'').decode()} c={tags.get(b'c', b'simple/simple').decode()}: "
          f"{'PASS' if ok else 'FAIL'}{why}")
count_ok = len(sigs) == want if want is not None else len(sigs) > 0
if not count_ok:
    print(f"dkimpy: {len(sigs)} signatures, want {want if want is not None else 'at least 1'}")
sys.exit(0 if failed == 0 and count_ok else 1)
