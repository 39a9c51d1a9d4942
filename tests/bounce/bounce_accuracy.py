#!/usr/bin/env python3
"""bounce_accuracy.py - how well `sluicectl bounce classify --json` agrees with Sisimai.

Runs sluicectl over the corpus messages (one process), then scores each labelled recipient of
labels-sisimai425.jsonl (one line per file, message and recipient, as libsisimai-perl 4.25.15
parsed them): recipient found, reason, status code, hard/soft (softbounce 1 soft, 0 hard, -1 n/a).
Messages in no-result-sisimai425.tsv (Sisimai finds no bounce there) score "no result" when we
report no recipient either. The 5.x labels (newer reason names) are compared with our reason5.
A complaint that names no recipient (our empty address) counts as Sisimai's placeholder address.
Prints the figures and a confusion table of reasons; with --floor-* options exits 1 when a
figure is under its floor (the ctest test sets the floors, which only ever go up).
"""
import argparse, collections, json, os, subprocess, sys

def pct(a, b):
    return 100.0 * a / b if b else 100.0

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluicectl", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--rules")
    for f in ("reason", "status", "recipients", "hardsoft", "noresult", "reason5"):
        ap.add_argument("--floor-" + f, type=float, default=0.0)
    ap.add_argument("--show-mismatches", action="store_true")
    a = ap.parse_args()
    UNDISCLOSED = "undisclosed-recipient-in-headers@libsisimai.org.invalid"

    cmd = [a.sluicectl, "bounce", "classify", "--json", os.path.join(a.corpus, "messages")]
    if a.rules:
        cmd += ["--rules", a.rules]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    ours = collections.defaultdict(list)  # (file, msgindex) -> records with a recipient
    for line in out.splitlines():
        r = json.loads(line)
        if not r["recipient"] and r["kind"] == "complaint":
            # A complaint that names nobody: we leave the address empty, Sisimai writes a
            # placeholder; both say the report has no recipient.
            r["recipient"] = UNDISCLOSED
        if r["recipient"]:
            ours[(r["file"], r["msgindex"])].append(r)

    labels = [json.loads(l) for l in open(os.path.join(a.corpus, "labels-sisimai425.jsonl"))]
    n = len(labels)
    found = reason = status = hard = 0
    confusion = collections.Counter()
    mism = []
    for lb in labels:
        key = (lb["file"], lb["msgindex"])
        want = lb["recipient"].lower()
        got = next((r for r in ours.get(key, []) if r["recipient"].lower() == want), None)
        if got is None:
            confusion[(lb["reason"], "(missing)")] += 1
            mism.append((lb["file"], lb["msgindex"], want, lb["reason"], "(missing)", "", ""))
            continue
        found += 1
        if got["reason"] == lb["reason"]:
            reason += 1
        else:
            confusion[(lb["reason"], got["reason"])] += 1
            mism.append((lb["file"], lb["msgindex"], want, lb["reason"], got["reason"], got["rule"], got["diagnostic"][:160]))
        if got["status"] == (lb["deliverystatus"] or ""):
            status += 1
        elif "--show-mismatches" in sys.argv:
            print("STATUS %s want=%s got=%s" % (lb["file"], lb["deliverystatus"], got["status"]))
        if int(got["softbounce"]) == int(lb["softbounce"]):
            hard += 1

    # Who wrote each report ("mta", rules "lhost") against Sisimai's smtpagent, for the agents
    # the rules name at all.
    mta = {}
    for line in out.splitlines():
        r = json.loads(line)
        mta[(r["file"], r["msgindex"])] = r.get("mta", "")
    named = {v for v in mta.values() if v}
    agents = {(lb["file"], lb["msgindex"]): lb.get("smtpagent", "").lower() for lb in labels}
    mta_n = sum(1 for k, a in agents.items() if a in named or mta.get(k))
    mta_ok = sum(1 for k, a in agents.items() if (a in named or mta.get(k)) and mta.get(k) == a)

    labelled = {(lb["file"], lb["msgindex"]) for lb in labels}
    extra = sum(1 for k, v in ours.items() for r in v if k in labelled and
                r["recipient"].lower() not in {lb["recipient"].lower() for lb in labels
                                               if (lb["file"], lb["msgindex"]) == k})
    nores = [l.rstrip("\n").split("\t") for l in open(os.path.join(a.corpus, "no-result-sisimai425.tsv"))]
    nores = [(f, int(m)) for f, m, *_ in nores if m.isdigit()]
    noresult_ok = sum(1 for k in nores if not ours.get(k))

    l5 = [json.loads(l) for l in open(os.path.join(a.corpus, "labels-sisimai5.jsonl"))]
    r5 = 0
    for lb in l5:
        recs = ours.get((lb["file"], 1), [])
        idx = int(lb["rcptindex"]) - 1
        if 0 <= idx < len(recs) and recs[idx]["reason5"] == lb["reason"]:
            r5 += 1

    fig = {
        "recipients": pct(found, n), "reason": pct(reason, n), "status": pct(status, n),
        "hardsoft": pct(hard, n), "noresult": pct(noresult_ok, len(nores)), "reason5": pct(r5, len(l5)),
    }
    print("labelled recipients (sisimai 4.25): %d" % n)
    print("  recipients found : %6.2f%%  (%d)" % (fig["recipients"], found))
    print("  reason agrees    : %6.2f%%  (%d)" % (fig["reason"], reason))
    print("  status agrees    : %6.2f%%  (%d)" % (fig["status"], status))
    print("  hard/soft agrees : %6.2f%%  (%d)" % (fig["hardsoft"], hard))
    print("  extra recipients we report in labelled messages: %d" % extra)
    print("  mta (lhost) agrees with Sisimai's agent: %d of %d messages where either names one" % (mta_ok, mta_n))
    print("no-result messages (Sisimai 4.25 finds nothing): %d, we report nothing for %.2f%%" % (len(nores), fig["noresult"]))
    print("  (most are real bounces of formats 4.25 has no decoder for: DragonFly, Mimecast, X5 ...;")
    notdir = [k for k in nores if k[0].startswith("not__")]
    print("   the not/ folder, meant as non-bounces: %d messages, %d reported by us)" %
          (len(notdir), sum(1 for k in notdir if ours.get(k))))
    print("sisimai 5.x labels: %d, reason5 agrees %.2f%%" % (len(l5), fig["reason5"]))
    print("confusion (sisimai -> ours), mismatches only:")
    for (w, g), c in confusion.most_common(40):
        print("  %-16s -> %-16s %d" % (w, g, c))
    if a.show_mismatches:
        for m in mism:
            print("MISMATCH", *m)
    failed = [k for k in fig if fig[k] < getattr(a, "floor_" + k)]
    for k in failed:
        print("FAIL: %s %.2f%% is under the floor %.2f%%" % (k, fig[k], getattr(a, "floor_" + k)))
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
