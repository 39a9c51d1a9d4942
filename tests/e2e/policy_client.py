#!/usr/bin/python3
"""policy_client.py - a raw Postfix-policy-protocol client for the e2e tests (bad input on purpose).

usage: policy_client.py PORT COMMAND
  ask STATE USER SENDER RCPT INSTANCE  one well-formed request; prints the action
  garbage|oversize|nul|noblank|halfway one kind of bad input; prints "closed" if the server
                                        closed the connection without an answer, else what it said
  flood N                               opens and drops N connections (every other one mid-request),
                                        keeping at most 200 open at once; prints "done N"
  message USER SENDER RCPT INSTANCE     RCPT then, if admitted, END-OF-MESSAGE on one connection
                                        (as one smtpd does); prints "RCPT-ACTION / EOM-ACTION"
  idle N                                opens N idle connections, asks one request on a fresh one
                                        while they are open, prints its action, then closes them all
"""
import socket
import sys

HOST = "127.0.0.1"


def request(attrs):
    body = "request=smtpd_access_policy\n" + "".join(f"{k}={v}\n" for k, v in attrs.items()) + "\n"
    return body.encode()


def answer(sock, timeout=5.0):
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\n\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return "closed" if not data else data.decode(errors="replace")
            data += chunk
    except (ConnectionResetError, socket.timeout) as e:
        return "closed" if isinstance(e, ConnectionResetError) else "timeout"
    return data.decode(errors="replace").split("\n")[0].removeprefix("action=")


def connect(port):
    return socket.create_connection((HOST, port), timeout=5)


def ask(port, state, user, sender, rcpt, instance):
    with connect(port) as s:
        s.sendall(request({"protocol_state": state, "sasl_username": user, "sender": sender,
                           "recipient": rcpt, "instance": instance, "client_address": "127.0.0.1"}))
        return answer(s)


BAD = {
    "garbage": b"GET / HTTP/1.0\r\nHost: policyd\r\n\r\n",
    "oversize": b"request=smtpd_access_policy\nsender=" + b"x" * 200000 + b"\n\n",
    "nul": b"request=smtpd_access_policy\nsender=a\x00b@example.com\n\n",
    "noblank": b"request=smtpd_access_policy\nsender=a@example.com\n",
    "halfway": b"request=smtpd_access_policy\nsend",
}


def bad(port, kind):
    with connect(port) as s:
        try:
            s.sendall(BAD[kind])
        except (BrokenPipeError, ConnectionResetError):
            return "closed"
        if kind == "halfway":
            return "sent"  # the caller closes; the server must log it
        return answer(s, timeout=3.0 if kind == "noblank" else 5.0)


def flood(port, n):
    open_socks = []
    for i in range(n):
        s = connect(port)
        if i % 2:
            s.sendall(b"request=smtpd_access_policy\nsender=x")
        open_socks.append(s)
        if len(open_socks) >= 200:
            for o in open_socks:
                o.close()
            open_socks = []
    for o in open_socks:
        o.close()
    return f"done {n}"


def message(port, user, sender, rcpt, instance):
    common = {"sasl_username": user, "sender": sender, "instance": instance, "client_address": "127.0.0.1"}
    with connect(port) as s:
        s.sendall(request({"protocol_state": "RCPT", "recipient": rcpt, **common}))
        first = answer(s)
        if first.startswith(("DEFER", "REJECT", "4", "5")):
            return first
        s.sendall(request({"protocol_state": "END-OF-MESSAGE", "recipient_count": "1", **common}))
        return f"{first} / {answer(s)}"


def idle(port, n):
    socks = [connect(port) for _ in range(n)]
    try:
        return ask(port, "RCPT", "app1", "a@example.com", "idle@dest.example", "idle-check")
    finally:
        for s in socks:
            s.close()


def main():
    port, cmd, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if cmd == "ask":
        print(ask(port, *args))
    elif cmd in BAD:
        print(bad(port, cmd))
    elif cmd == "flood":
        print(flood(port, int(args[0])))
    elif cmd == "message":
        print(message(port, *args))
    elif cmd == "idle":
        print(idle(port, int(args[0])))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
