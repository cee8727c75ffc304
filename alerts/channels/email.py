"""E-mail through SMTP (smtplib).

Credentials: ``smtp_host`` and ``from_addr`` (required), ``smtp_port``,
``username`` and ``password`` (optional; with a username the password is
required and the channel logs in). Options: ``smtp_port`` (default 587, or
465 with ``ssl``), ``ssl`` (implicit TLS, default on for port 465),
``starttls`` (default on for port 587).

Each recipient gets its own message (``To:`` that recipient), multipart:
a text/plain part with the body and a text/html part with the body
HTML-escaped (line breaks as ``<br>``; the last line's http(s) URL as a
link, never any other scheme). ``Message-ID`` is derived from the delivery
key, so a receiver can drop a re-sent copy; ``X-Alerts-Identifier`` carries
the publication's identifier.

A long-form bulletin (``message.html`` set) is sent as that HTML instead of
the escaped body, with its images inline::

    multipart/alternative
        text/plain                  the body
        multipart/related           (only when there are images)
            text/html               message.html as given
            image/png               Content-ID <NAME>, inline, NAME.png  (one per image)

The HTML refers to each image as ``src="cid:NAME"``. An image referenced
but not given, one given but not referenced, a name that cannot be a
Content-ID, two images of one name, bytes that are not a PNG, or images
without HTML: the message was built wrong (our bug, not a delivery failure),
so :meth:`EmailChannel.compose` and :meth:`EmailChannel.send` raise
``ValueError`` naming the image, before any connection.

Outcomes: an address that is not one is fatal here, without a call. SMTP
4xx replies, refused or dropped connections and timeouts are retryable;
5xx replies are fatal with their code (e.g. ``"550"``). Recipients the
server refuses get their own codes while the others go through.

Not idempotent: SMTP has no dedup, so a message whose delivery was cut
after DATA may arrive twice on a retry (the Message-ID lets mail clients
hide the copy); the ledger leaves interrupted sends to an operator.
"""

from __future__ import annotations

import hashlib
import html
import re
import smtplib
import ssl
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr

import requests

from alerts.channels.base import Message, Recipient, SendResult
from alerts.config import ChannelSettings, ConfigError

__all__ = [
    "EmailChannel",
    "build",
    "check_inline_images",
    "cid_references",
    "is_address",
    "message_id",
    "render_html",
]

# 7-bit transfer encodings (base64 / quoted-printable): no reliance on 8BITMIME.
POLICY = SMTP.clone(cte_type="7bit")
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?\.[A-Za-z]{2,}"
)
_URL = re.compile(r"https?://[^\s<>\"']+")
# ``cid:NAME`` as an attribute value or a CSS url(): src="cid:chart", url(cid:chart)
_CID = re.compile(r"""(?<=["'(=])\s*cid:([^\s"'()<>]+)""", re.IGNORECASE)
_IMAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_address(address: str) -> bool:
    """A plain ``local@domain.tld`` address (no display name, no line breaks)."""
    return _ADDRESS.fullmatch(address) is not None


def message_id(key: str, domain: str) -> str:
    """A stable Message-ID for one delivery key."""
    return f"<{hashlib.sha1(key.encode()).hexdigest()[:32]}.alerts@{domain}>"


def render_html(body: str, language: str = "zh-CN") -> str:
    """The body as an HTML document: every line escaped; the last line's URL a link."""
    lines = body.strip().splitlines()
    out = []
    for i, line in enumerate(lines):
        m = _URL.search(line) if i == len(lines) - 1 else None
        if m is None:
            out.append(html.escape(line))
        else:
            url = html.escape(m.group(0), quote=True)
            out.append(
                f'{html.escape(line[: m.start()])}<a href="{url}">{url}</a>'
                f"{html.escape(line[m.end() :])}"
            )
    return (
        f'<!DOCTYPE html>\n<html lang="{html.escape(language, quote=True)}">'
        '<head><meta charset="utf-8"></head>\n<body><p>'
        + "<br>\n".join(out)
        + "</p></body></html>\n"
    )


def cid_references(document: str) -> list[str]:
    """The image names an HTML document refers to as ``cid:NAME``, in order, once each."""
    return list(dict.fromkeys(m.group(1) for m in _CID.finditer(document)))


def check_inline_images(
    document: str | None, images: Sequence[tuple[str, bytes]]
) -> list[tuple[str, bytes]]:
    """The images of a bulletin, checked against the ``cid:`` references of its HTML.

    Raises ``ValueError`` (the message was built wrong) for an image referenced
    but missing, one given but never referenced, images without HTML, a name
    that is not ``[A-Za-z0-9][A-Za-z0-9._-]*`` (at most 64), a name given
    twice, or bytes that are not a PNG.
    """
    if document is None:
        if images:
            names = ", ".join(name for name, _ in images)
            raise ValueError(f"images without html: {names} (nothing can show them)")
        return []
    seen: set[str] = set()
    for name, data in images:
        if not isinstance(name, str) or _IMAGE_NAME.fullmatch(name) is None:
            raise ValueError(
                f"image name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
            )
        if name in seen:
            raise ValueError(f"image {name!r} is given twice")
        seen.add(name)
        if not isinstance(data, bytes) or not data.startswith(PNG_SIGNATURE):
            raise ValueError(f"image {name!r} is not a PNG")
    referenced = cid_references(document)
    missing = [name for name in referenced if name not in seen]
    if missing:
        raise ValueError(
            "html refers to images that are not given: " + ", ".join(f"cid:{n}" for n in missing)
        )
    unused = [name for name, _ in images if name not in referenced]
    if unused:
        raise ValueError(
            'images given but not referenced by the html (no src="cid:NAME"): ' + ", ".join(unused)
        )
    return list(images)


def _outcome(key: str, code: int, text: str | bytes) -> SendResult:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return SendResult(
        key,
        ok=False,
        retryable=not 500 <= code < 600,
        error_code=str(code),
        error_text=text[:300],
    )


def _retry(key: str, code: str, exc: BaseException) -> SendResult:
    return SendResult(
        key, ok=False, retryable=True, error_code=code, error_text=f"{type(exc).__name__}: {exc}"
    )


class EmailChannel:
    idempotent = False

    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        from_addr: str,
        username: str | None,
        password: str | None,
        use_ssl: bool,
        starttls: bool,
        clock: Callable[[], datetime],
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self._host = host
        self._port = port
        self._from = from_addr
        self._envelope_from = parseaddr(from_addr)[1] or from_addr
        self._domain = self._envelope_from.rpartition("@")[2] or "localhost"
        self._username = username
        self._password = password
        self._ssl = use_ssl
        self._starttls = starttls
        self._clock = clock
        self._timeout = timeout_s

    def compose(self, message: Message, recipient: Recipient) -> EmailMessage:
        msg = EmailMessage(policy=POLICY)
        msg["From"] = self._from
        msg["To"] = recipient.address
        msg["Subject"] = " ".join(message.subject.split())
        now = self._clock()
        msg["Date"] = format_datetime(now if now.tzinfo else now.replace(tzinfo=UTC))
        msg["Message-ID"] = message_id(recipient.key, self._domain)
        if message.identifier:
            msg["X-Alerts-Identifier"] = message.identifier
        msg["X-Alerts-Alert"] = f"{message.alert_id}/{message.version}"
        images = check_inline_images(message.html, message.images)
        msg.set_content(message.body, charset="utf-8")
        if message.html is None:
            msg.add_alternative(render_html(message.body, message.language), subtype="html")
        else:
            self._add_bulletin(msg, message.html, images)
        # after the body: set_content clears every Content-* header set before it
        msg["Content-Language"] = message.language
        return msg

    @staticmethod
    def _add_bulletin(msg: EmailMessage, document: str, images: list[tuple[str, bytes]]) -> None:
        msg.add_alternative(document, subtype="html", charset="utf-8")
        if not images:
            return
        html_part = next(p for p in msg.iter_parts() if p.get_content_type() == "text/html")
        for name, data in images:
            # add_related turns the text/html part into multipart/related (the HTML first)
            html_part.add_related(
                data,
                maintype="image",
                subtype="png",
                cid=f"<{name}>",
                disposition="inline",
                filename=f"{name}.png",
            )

    def preview(self, message: Message) -> tuple[str, int, int | None]:
        """The text/plain part as sent; no size limit.

        Without ``html`` the HTML part is built from it; a bulletin's HTML part
        is ``message.html`` itself (with its images inline).
        """
        return message.body, len(message.body), None

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self._ssl:
            smtp = smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=context)
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        try:
            smtp.ehlo()
            if self._starttls:
                smtp.starttls(context=context)
                smtp.ehlo()
            if self._username:
                smtp.login(self._username, self._password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        check_inline_images(message.html, message.images)  # a wrong bulletin: before connecting
        by_key: dict[str, SendResult] = {}
        valid = []
        for r in recipients:
            if is_address(r.address):
                valid.append(r)
            else:
                by_key[r.key] = SendResult(
                    r.key,
                    ok=False,
                    error_code="invalid-address",
                    error_text=f"not an e-mail address: {r.address!r}",
                )
        if valid:
            by_key.update(self._send_all(message, valid))
        return [by_key[r.key] for r in recipients]

    def _send_all(self, message: Message, recipients: list[Recipient]) -> dict[str, SendResult]:
        out: dict[str, SendResult] = {}
        try:
            smtp = self._connect()
        except smtplib.SMTPResponseException as exc:  # greeting, EHLO, STARTTLS or AUTH refused
            return {r.key: _outcome(r.key, exc.smtp_code, exc.smtp_error) for r in recipients}
        except smtplib.SMTPNotSupportedError as exc:  # e.g. no STARTTLS / AUTH: configuration
            return {
                r.key: SendResult(r.key, ok=False, error_code="smtp", error_text=str(exc))
                for r in recipients
            }
        except (OSError, smtplib.SMTPException) as exc:  # refused, timeout, TLS, dropped
            return {r.key: _retry(r.key, "connect", exc) for r in recipients}
        try:
            for i, r in enumerate(recipients):
                try:
                    data = self.compose(message, r).as_bytes(policy=POLICY)
                    refused = smtp.sendmail(self._envelope_from, [r.address], data)
                except smtplib.SMTPRecipientsRefused as exc:
                    refused = exc.recipients
                except smtplib.SMTPResponseException as exc:  # sender refused, data error
                    out[r.key] = _outcome(r.key, exc.smtp_code, exc.smtp_error)
                    continue
                except (OSError, smtplib.SMTPException) as exc:  # dropped mid-send
                    for rest in recipients[i:]:
                        out[rest.key] = _retry(rest.key, "connection", exc)
                    break
                if r.address in refused:
                    code, text = refused[r.address]
                    out[r.key] = _outcome(r.key, code, text)
                else:
                    out[r.key] = SendResult(
                        r.key, ok=True, provider_message_id=message_id(r.key, self._domain)
                    )
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return out


def _flag(value: object, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def build(
    settings: ChannelSettings, *, session: requests.Session, clock: Callable[[], datetime]
) -> EmailChannel:
    """The SMTP channel (``session`` is unused: this channel speaks SMTP, not HTTP)."""
    del session
    host = settings.secret("smtp_host")
    from_addr = settings.secret("from_addr")
    if not is_address(parseaddr(from_addr)[1]):
        raise ConfigError(f"channels.{settings.name}.credentials.from_addr: not an e-mail address")
    opts = settings.options
    use_ssl = _flag(opts.get("ssl"), False)
    raw_port = opts.get("smtp_port")
    if raw_port is None and "smtp_port" in settings.credentials:
        raw_port = settings.secret("smtp_port")
    try:
        port = int(raw_port) if raw_port is not None else (465 if use_ssl else 587)
    except (TypeError, ValueError):
        raise ConfigError(
            f"channels.{settings.name}.options.smtp_port: not a port number"
        ) from None
    if not 0 < port < 65536:
        raise ConfigError(f"channels.{settings.name}.options.smtp_port: not a port number")
    use_ssl = _flag(opts.get("ssl"), port == 465)
    starttls = _flag(opts.get("starttls"), port == 587 and not use_ssl)
    if use_ssl and starttls:
        raise ConfigError(f"channels.{settings.name}.options: ssl and starttls exclude each other")
    username = None
    password = None
    if settings.credentials.get("username") and settings.credentials["username"].get_secret_value():
        username = settings.secret("username")
        password = settings.secret("password")
    return EmailChannel(
        name=settings.name,
        host=host,
        port=port,
        from_addr=from_addr,
        username=username,
        password=password,
        use_ssl=use_ssl,
        starttls=starttls,
        clock=clock,
        timeout_s=settings.timeout_s,
    )
