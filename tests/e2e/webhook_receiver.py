#!/usr/bin/python3
"""webhook_receiver.py --listen 127.0.0.1:PORT --dir DIR --secret S [--fail-first N]

A local HTTP receiver for sluice-relayd's webhooks (tests only, loopback): every POST is
appended to DIR/posts.jsonl as {"n", "status", "event_id", "signature_ok", "body"}; the signature
header X-Sluice-Signature "t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>" is checked. The
first N POSTs (default 1) are answered 500, the rest 200, so a test sees the retry."""
import argparse
import hashlib
import hmac
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--listen", required=True)
ap.add_argument("--dir", required=True)
ap.add_argument("--secret", required=True)
ap.add_argument("--fail-first", type=int, default=1)
args = ap.parse_args()
os.makedirs(args.dir, exist_ok=True)
LOG = open(os.path.join(args.dir, "posts.jsonl"), "a", buffering=1)
count = [0]


def signature_ok(header, body):
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        return False
    want = hmac.new(args.secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts["v1"])


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(min(n, 1 << 20))
        count[0] += 1
        status = 500 if count[0] <= args.fail_first else 200
        LOG.write(json.dumps({"n": count[0], "status": status,
                              "event_id": self.headers.get("X-Sluice-Event-Id", ""),
                              "signature_ok": signature_ok(self.headers.get("X-Sluice-Signature", ""), body),
                              "body": body.decode("utf-8", "replace")}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


host, port = args.listen.rsplit(":", 1)
ThreadingHTTPServer((host, int(port)), Handler).serve_forever()
