"""A real SMTP server for the tests (aiosmtpd): accepts mail on 127.0.0.1
and writes each message, as received, to OUT_DIR/NNNN.eml.

    python smtp_sink.py OUT_DIR [--port N] [--reject N]

--port 0 (the default) takes a free port. --reject N answers the first N
messages with a temporary failure (451). Prints "listening on PORT" once
ready; runs until killed.
"""

import argparse
import asyncio
import itertools
import os

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, out_dir, reject):
        self.out_dir = out_dir
        self.reject = reject
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        if self.reject > 0:
            self.reject -= 1
            return "451 4.3.0 try again later"
        n = next(self.counter)
        path = os.path.join(self.out_dir, f"{n:04}.eml")
        partial = path + ".partial"
        with open(partial, "wb") as f:
            f.write(f"X-Envelope-From: {envelope.mail_from}\r\n".encode())
            f.write(f"X-Envelope-To: {','.join(envelope.rcpt_tos)}\r\n".encode())
            f.write(envelope.original_content)
        os.rename(partial, path)
        return "250 2.0.0 OK"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reject", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    handler = Sink(args.out_dir, args.reject)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test"), "127.0.0.1", args.port
    )
    port = server.sockets[0].getsockname()[1]
    print(f"listening on {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
