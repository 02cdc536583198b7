"""A real SMTP server for tests/fraud_email.rs: aiosmtpd on 127.0.0.1 at an ephemeral port.

Usage: smtp_sink.py OUT_DIR USER PASSWORD_FILE

AUTH (PLAIN or LOGIN) is required before MAIL, for USER with the password in PASSWORD_FILE
(trailing whitespace dropped), over plain SMTP (aiosmtpd's TLS-only AUTH rule is lifted: the
server is on loopback). Each accepted message is written to OUT_DIR/mail-<n>.json (envelope,
who logged in, the parsed From/To/Subject/body and the raw text) through a temporary file and
a rename, before the 250 is sent, so a reader never sees half a file and a client told "250"
finds its file. Prints "listening <port>" once it accepts connections; runs until killed.
"""

import asyncio
import email
import email.policy
import json
import logging
import os
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main() -> None:
    # AUTH without TLS is the point here (loopback); aiosmtpd's warnings about it are noise.
    warnings.filterwarnings("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    out_dir, user, password_file = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
    with open(password_file, "rb") as f:
        password = f.read().rstrip()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user
            and auth_data.password == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    class Handler:
        count = 0

        async def handle_DATA(self, server, session, envelope):
            Handler.count += 1
            raw = envelope.original_content or envelope.content
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            body = msg.get_body(preferencelist=("plain",))
            login = getattr(session.auth_data, "login", None)
            record = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "authenticated": bool(session.authenticated),
                "login": login.decode() if login else None,
                "from": str(msg["From"]),
                "to": str(msg["To"]),
                "subject": str(msg["Subject"]),
                "content_type": msg.get_content_type(),
                "body": body.get_content() if body is not None else "",
                "raw": raw.decode("utf-8", "replace"),
            }
            path = os.path.join(out_dir, f"mail-{Handler.count}.json")
            with open(path + ".tmp", "w") as f:
                json.dump(record, f)
            os.rename(path + ".tmp", path)
            return "250 OK"

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(
                Handler(),
                hostname="smtp.test",
                authenticator=authenticator,
                auth_required=True,
                auth_require_tls=False,
                loop=loop,
            ),
            "127.0.0.1",
            0,
        )
        port = server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
