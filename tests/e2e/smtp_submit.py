#!/usr/bin/python3
"""smtp_submit.py HOST:PORT USER PASS FROM TO MESSAGE_FILE

Submits the raw bytes of MESSAGE_FILE (line ends normalised to CRLF by smtplib, dots stuffed)
over STARTTLS + AUTH PLAIN, the way a mail client would; for messages swaks cannot build (NUL
bytes, 10,000 headers, a 1 MB header line). Prints one line: the final reply ("250 2.0.0 Ok:
queued as ...", "550 5.6.0 ...", or "ERROR <what>"); exit 0 on a 2xx reply, 1 otherwise."""
import smtplib
import ssl
import sys

hostport, user, password, sender, rcpt, path = sys.argv[1:7]
host, port = hostport.rsplit(":", 1)
data = open(path, "rb").read()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
try:
    s = smtplib.SMTP(host, int(port), local_hostname="client.test.example", timeout=60)
    s.starttls(context=ctx)
    s.login(user, password)
    code, msg = s.mail(sender)
    if code != 250:
        raise smtplib.SMTPResponseException(code, msg)
    code, msg = s.rcpt(rcpt)
    if code not in (250, 251):
        raise smtplib.SMTPResponseException(code, msg)
    code, msg = s.data(data)
    print(code, msg.decode("utf-8", "replace"))
    s.quit()
    sys.exit(0 if 200 <= code < 300 else 1)
except smtplib.SMTPResponseException as e:
    print(e.smtp_code, e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else e.smtp_error)
    sys.exit(1)
except Exception as e:  # connection dropped, timeout: the test reports it
    print("ERROR", type(e).__name__, e)
    sys.exit(1)
