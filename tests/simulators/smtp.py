"""A minimal SMTP server on loopback (RFC 5321 subset), with fault injection.

Speaks EHLO/HELO, AUTH PLAIN and LOGIN (required when a username is set),
MAIL FROM, RCPT TO, DATA (with dot-unstuffing), RSET, NOOP and QUIT. Tests
can refuse given recipients (``refuse[address] = (550, "...")``), answer the
end of DATA with an error, or stall the greeting beyond the client's
timeout. The advertised ``SIZE`` (``max_size``, 10 MiB by default) is
enforced as servers do: a ``MAIL FROM`` declaring more, or message data
longer, is refused with 552. Every accepted message lands in ``received``
with its envelope and its parsed form (``email.message_from_bytes``).
"""

from __future__ import annotations

import base64
import email
import re
import socketserver
import threading
import time
from dataclasses import dataclass
from email.message import Message as ParsedMessage

__all__ = ["Received", "SmtpSimulator"]


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_to: list[str]
    data: bytes
    message: ParsedMessage


def _path(arg: str) -> str:
    """The address inside ``FROM:<a@b> SIZE=..`` / ``TO:<a@b>``."""
    arg = arg.split(":", 1)[1].strip() if ":" in arg else arg
    if arg.startswith("<"):
        return arg[1 : arg.find(">")]
    return arg.split()[0] if arg else ""


class SmtpSimulator:
    """Loopback SMTP: start(), stop(), host, port; see the module doc for the knobs."""

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN"),
        max_size: int = 10485760,
    ) -> None:
        self.username = username
        self.max_size = max_size
        self.password = password
        self.mechanisms = mechanisms
        self.received: list[Received] = []
        self.refuse: dict[str, tuple[int, str]] = {}
        self.data_reply: tuple[int, str] | None = None
        self.greeting_delay_s = 0.0
        self.auth_log: list[tuple[str, str]] = []  # (mechanism, username) of good logins
        self.lock = threading.Lock()
        sim = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 10

            def reply(self, line: str) -> None:
                self.wfile.write(line.encode("utf-8") + b"\r\n")

            def readline(self) -> str | None:
                raw = self.rfile.readline(65536)
                if not raw:
                    return None
                return raw.decode("utf-8", "replace").rstrip("\r\n")

            def handle(self) -> None:
                try:
                    self._session()
                except (ConnectionError, TimeoutError, OSError):
                    pass

            def _session(self) -> None:
                if sim.greeting_delay_s:
                    time.sleep(sim.greeting_delay_s)
                self.reply("220 sim.localhost ESMTP simulator")
                authed = sim.username is None
                mail_from: str | None = None
                rcpts: list[str] = []
                while True:
                    line = self.readline()
                    if line is None:
                        return
                    verb, _, arg = line.partition(" ")
                    verb = verb.upper()
                    if verb == "EHLO":
                        ext = ["sim.localhost", "8BITMIME", f"SIZE {sim.max_size}"]
                        if sim.username is not None:
                            ext.append("AUTH " + " ".join(sim.mechanisms))
                        for e in ext[:-1]:
                            self.reply(f"250-{e}")
                        self.reply(f"250 {ext[-1]}")
                    elif verb == "HELO":
                        self.reply("250 sim.localhost")
                    elif verb == "AUTH":
                        authed = self._auth(arg) or authed
                    elif verb == "MAIL":
                        if not authed:
                            self.reply("530 5.7.0 Authentication required")
                            continue
                        declared = re.search(r"\bSIZE=(\d+)", arg, re.IGNORECASE)
                        if declared and int(declared.group(1)) > sim.max_size:
                            self.reply("552 5.3.4 Message size exceeds fixed maximum message size")
                            continue
                        mail_from, rcpts = _path(arg), []
                        self.reply("250 2.1.0 Ok")
                    elif verb == "RCPT":
                        if mail_from is None:
                            self.reply("503 5.5.1 Error: need MAIL command")
                            continue
                        addr = _path(arg)
                        refusal = sim.refuse.get(addr)
                        if refusal:
                            self.reply(f"{refusal[0]} {refusal[1]}")
                        else:
                            rcpts.append(addr)
                            self.reply("250 2.1.5 Ok")
                    elif verb == "DATA":
                        if mail_from is None or not rcpts:
                            self.reply("554 5.5.1 Error: no valid recipients")
                            continue
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        data = self._data()
                        if data is None:
                            return
                        if sim.data_reply:
                            self.reply(f"{sim.data_reply[0]} {sim.data_reply[1]}")
                        elif len(data) > sim.max_size:
                            self.reply("552 5.3.4 Message size exceeds fixed maximum message size")
                        else:
                            with sim.lock:
                                sim.received.append(
                                    Received(
                                        mail_from, list(rcpts), data, email.message_from_bytes(data)
                                    )
                                )
                            self.reply("250 2.0.0 Ok: queued")
                        mail_from, rcpts = None, []
                    elif verb == "RSET":
                        mail_from, rcpts = None, []
                        self.reply("250 2.0.0 Ok")
                    elif verb == "NOOP":
                        self.reply("250 2.0.0 Ok")
                    elif verb == "QUIT":
                        self.reply("221 2.0.0 Bye")
                        return
                    else:
                        self.reply("502 5.5.2 Error: command not recognized")

            def _data(self) -> bytes | None:
                lines: list[bytes] = []
                while True:
                    raw = self.rfile.readline(1 << 20)
                    if not raw:
                        return None
                    if raw in (b".\r\n", b".\n"):
                        return b"".join(lines)
                    lines.append(raw[1:] if raw.startswith(b".") else raw)

            def _auth(self, arg: str) -> bool:
                mech, _, initial = arg.partition(" ")
                mech = mech.upper()
                if mech not in sim.mechanisms:
                    self.reply("504 5.5.4 Unrecognized authentication type")
                    return False
                try:
                    if mech == "PLAIN":
                        if not initial:
                            self.reply("334 ")
                            initial = self.readline() or ""
                        _, user, pw = base64.b64decode(initial).decode().split("\0")
                    else:
                        if not initial:  # smtplib sends the username as initial response
                            self.reply("334 " + base64.b64encode(b"Username:").decode())
                            initial = self.readline() or ""
                        user = base64.b64decode(initial).decode()
                        self.reply("334 " + base64.b64encode(b"Password:").decode())
                        pw = base64.b64decode(self.readline() or "").decode()
                except ValueError:
                    self.reply("501 5.5.2 Cannot decode response")
                    return False
                if user == sim.username and pw == sim.password:
                    with sim.lock:
                        sim.auth_log.append((mech, user))
                    self.reply("235 2.7.0 Authentication successful")
                    return True
                self.reply("535 5.7.8 Error: authentication failed")
                return False

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.host = "127.0.0.1"
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> SmtpSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SmtpSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
