"""An SMTP server for tests (aiosmtpd): accepts every mail and keeps it on disk.

Run by scripts/infra/smtp.sh. Each received message is written to <dir>/mail/<n>.eml (n = 1, 2,
...; written to a temporary file and renamed, so a reader never sees half a mail), then one JSON
line is appended to <dir>/received.jsonl:
  {"n": 1, "file": ".../mail/1.eml", "mail_from": "a@b.c", "rcpt_tos": ["x@y.z"],
   "tls": true, "auth": "dither"}
Offers STARTTLS (--cert/--key) on --port, TLS from the first byte on --tls-port, AUTH PLAIN and
LOGIN for --user/--password (also without TLS), and refuses recipients at reject.invalid (550)
and tempfail.invalid (451), so clients can test their error handling.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

REJECT_DOMAIN = "@reject.invalid"
TEMPFAIL_DOMAIN = "@tempfail.invalid"


class Sink:
    def __init__(self, directory):
        self.mail_dir = os.path.join(directory, "mail")
        self.index = os.path.join(directory, "received.jsonl")
        os.makedirs(self.mail_dir, exist_ok=True)
        numbers = [int(f[:-4]) for f in os.listdir(self.mail_dir)
                   if f.endswith(".eml") and f[:-4].isdigit()]
        self.count = max(numbers, default=0)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        lowered = address.lower()
        if lowered.endswith(REJECT_DOMAIN):
            return "550 5.1.1 <%s>: recipient rejected" % address
        if lowered.endswith(TEMPFAIL_DOMAIN):
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        # One event loop thread: the counter needs no lock.
        self.count += 1
        path = os.path.join(self.mail_dir, "%d.eml" % self.count)
        temp = path + ".tmp"
        with open(temp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.replace(temp, path)
        auth = None
        if session.authenticated:
            data = session.auth_data
            if isinstance(data, LoginPassword):
                data = data.login
            auth = data.decode() if isinstance(data, bytes) else data
        record = {
            "n": self.count,
            "file": path,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "auth": auth,
        }
        with open(self.index, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK: queued as %d" % self.count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    user = args.user.encode()
    password = args.password.encode()

    def authenticator(server, session, envelope, mechanism, auth_data):
        if (isinstance(auth_data, LoginPassword) and auth_data.login == user
                and auth_data.password == password):
            return AuthResult(success=True, auth_data=args.user)
        return AuthResult(success=False, handled=False)

    sink = Sink(args.dir)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory(starttls):
        return lambda: SMTP(sink, hostname="dither-test-smtp", ident="dither test SMTP sink",
                            tls_context=tls if starttls else None, require_starttls=False,
                            authenticator=authenticator, auth_require_tls=False,
                            decode_data=False, loop=loop)

    plain = loop.run_until_complete(loop.create_server(factory(True), args.host, args.port))
    implicit = loop.run_until_complete(
        loop.create_server(factory(False), args.host, args.tls_port, ssl=tls))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    logging.info("listening on %s:%d (STARTTLS) and %s:%d (TLS), mail in %s",
                 args.host, args.port, args.host, args.tls_port, sink.mail_dir)
    try:
        loop.run_forever()
    finally:
        plain.close()
        implicit.close()
        loop.run_until_complete(plain.wait_closed())
        loop.run_until_complete(implicit.wait_closed())
        loop.close()


if __name__ == "__main__":
    main()
