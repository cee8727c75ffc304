"""Aliyun SMS (``SendSms``, RPC API version 2017-05-25).

Credentials: ``access_key_id``, ``access_key_secret``, ``sign_name`` and
``template_code`` (the signature and template are pre-approved in the
console). Options: ``template_params`` maps the template's variables to
message fields (default ``{"content": "text"}``), see :data:`FIELDS`.

Recipients are mainland mobile numbers (``1[3-9]`` + 9 digits, optionally
prefixed ``+86``/``0086``/``86``; spaces and dashes ignored). A number that
is not one fails fatally here with ``isv.MOBILE_NUMBER_ILLEGAL``, without a
call. Valid numbers go out in batches of at most 1000 per call; every
recipient of a batch shares the call's outcome.

Length: the phone shows ``【sign_name】`` + the text. At most 70 characters
is one SMS; longer texts are billed in 67-character segments, 500 characters
at most. A longer text is fitted (:func:`fit`): the first line (the headline)
and the last line (the link) are kept, the lines between are cut at a
sentence boundary. A successful result's ``provider_message_id`` is
``"<BizId>;segments=N"`` (N for the signature plus the fitted text; a custom
template's fixed wording adds to what the vendor bills).

Outcomes: ``Code == "OK"`` is delivered (to the gateway). ``isp.SYSTEM_ERROR``,
HTTP 5xx, timeouts and unknown codes are retryable.
``isv.BUSINESS_LIMIT_CONTROL`` is per-number throttling: retryable, but the
error text starts with ``wait:`` since only time (the ledger's backoff) helps.
Bad numbers, templates, JSON, balance, signature and key errors are fatal.

Not idempotent: the API dedups nothing, so the same call twice sends twice.
``OutId`` carries the ledger's claim token (``Message.batch_id``, 32 hex
digits), else a stable hash of the recipients' delivery keys. A send
interrupted mid-call is confirmed, not retried blindly (:meth:`confirm`, the
ledger's ``Confirming``): every number of one SendSms call shares its OutId
and its fate, so one valid number of the call is looked up with
``QuerySendDetails`` (one number and one Beijing date per query, 50 records a
page) for each date since the attempt could have started. A record with the
OutId means the vendor accepted the call (whatever the handset's receipt
says): True for every valid number. None found on complete answers: False,
send. A query that fails (transport, 5xx, any code but ``OK``), or a start
older than the 30 days the API keeps: None, the ledger holds the rows.
Invalid numbers are always False (they never reach a call).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import requests

from alerts.channels.base import Message, Recipient, SendResult
from alerts.channels.fit import fit_text
from alerts.channels.http import Reply, Verdict, judge, request, results
from alerts.config import ChannelSettings, ConfigError

__all__ = [
    "DEFAULT_URL",
    "FIELDS",
    "AliyunSmsChannel",
    "build",
    "fit",
    "normalize_number",
    "percent_encode",
    "segments",
    "sign",
]

DEFAULT_URL = "https://dysmsapi.aliyuncs.com"
VERSION = "2017-05-25"
REGION = "cn-hangzhou"
MAX_NUMBERS = 1000
MAX_CHARS = 500
SINGLE_SMS = 70
SEGMENT = 67
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # QuerySendDetails' SendDate
QUERY_PAGE = 50  # QuerySendDetails' largest PageSize
QUERY_DAYS = 30  # QuerySendDetails answers for the last 30 days only
QUERY_MAX_PAGES = 100  # per number and date; more is "cannot tell"

ILLEGAL_NUMBER = "isv.MOBILE_NUMBER_ILLEGAL"
RETRY_CODES = ("isp.SYSTEM_ERROR", "isv.BUSINESS_LIMIT_CONTROL")
FATAL_CODES = (
    ILLEGAL_NUMBER,
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.INVALID_JSON_PARAM",
    "isv.AMOUNT_NOT_ENOUGH",
    "isv.MOBILE_COUNT_OVER_LIMIT",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.PARAM_LENGTH_LIMIT",
    "isv.ACCOUNT_NOT_EXISTS",
    "isv.ACCOUNT_ABNORMAL",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId.NotFound",
    "InvalidAccessKeyId.Inactive",
)

# Message fields a template variable may take (options["template_params"] values).
FIELDS = ("text", "subject", "link", "alert_id", "version", "identifier")

_MOBILE = re.compile(r"(?:\+86|0086|86)?(1[3-9]\d{9})")
_URL = re.compile(r"https?://\S+")


def normalize_number(address: str) -> str | None:
    """The 11-digit mainland mobile number, or None when it is not one."""
    m = _MOBILE.fullmatch(re.sub(r"[\s\-]", "", address))
    return m.group(1) if m else None


def percent_encode(value: str) -> str:
    """Aliyun's RPC encoding: RFC 3986, UTF-8, only ``A-Za-z0-9-_.~`` unescaped."""
    return quote(value, safe="~").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def sign(params: dict[str, str], secret: str, method: str = "GET") -> str:
    """Signature v1 (HMAC-SHA1) of an RPC request's parameters (without Signature)."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
    )
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def segments(text: str) -> int:
    """SMS segments billed for the whole text (signature included)."""
    n = len(text)
    return 1 if n <= SINGLE_SMS else -(-n // SEGMENT)


def fit(body: str, sign_name: str, limit: int = MAX_CHARS) -> str:
    """The body, cut so that ``【sign_name】`` + body is at most ``limit`` characters.

    :func:`alerts.channels.fit.fit_text` by characters, with a hard cut as the
    last resort (an SMS is always sent): the first line (the headline) and the
    last line (the link) are kept whole where they fit, and the lines between
    are cut at a sentence end (。！？!? or a line end), else hard with "…";
    blank lines are dropped only when cutting is needed.
    """
    budget = limit - len(sign_name) - 2
    text = body.strip()
    if len(text) <= budget:
        return text
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return fit_text("\n".join(lines), budget, len, hard=True) or ""


class AliyunSmsChannel:
    idempotent = False
    max_batch = MAX_NUMBERS  # numbers per SendSms call

    def __init__(
        self,
        *,
        name: str,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        template_code: str,
        template_params: dict[str, str],
        session: requests.Session,
        clock: Callable[[], datetime],
        base_url: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self._key_id = access_key_id
        self._secret = access_key_secret
        self._sign_name = sign_name
        self._template_code = template_code
        self._template_params = template_params
        self._session = session
        self._clock = clock
        self._url = (base_url or DEFAULT_URL).rstrip("/") + "/"
        self._timeout = timeout_s

    def preview(self, message: Message) -> tuple[str, int, int | None]:
        """What the phone shows, ``【sign_name】`` + the fitted text; its characters; the limit.

        (A custom template's fixed wording, see ``template_params``, is not included.)
        """
        text = f"【{self._sign_name}】{fit(message.body, self._sign_name)}"
        return text, len(text), MAX_CHARS

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        by_key: dict[str, SendResult] = {}
        valid: list[tuple[Recipient, str]] = []
        for r in recipients:
            number = normalize_number(r.address)
            if number is None:
                by_key[r.key] = SendResult(
                    r.key,
                    ok=False,
                    error_code=ILLEGAL_NUMBER,
                    error_text=f"not a mainland mobile number: {r.address!r}",
                )
            else:
                valid.append((r, number))
        if valid:
            text = fit(message.body, self._sign_name)
            count = segments(f"【{self._sign_name}】{text}")
            param = self._template_param(message, text)
            for start in range(0, len(valid), MAX_NUMBERS):
                batch = valid[start : start + MAX_NUMBERS]
                for res in self._call(batch, param, count, message.batch_id):
                    by_key[res.key] = res
        return [by_key[r.key] for r in recipients]

    def confirm(
        self, message: Message, recipients: Sequence[Recipient], *, since: datetime
    ) -> dict[str, bool | None]:
        """Did the vendor accept the SendSms call(s) of this attempt? (See the module doc.)

        Per key: True (a record with the call's OutId exists), False (none on
        a complete answer; and always for an invalid number), None (a query
        failed, or ``since`` is older than the API's 30 days).
        """
        answers: dict[str, bool | None] = {}
        valid: list[tuple[Recipient, str]] = []
        for r in recipients:
            number = normalize_number(r.address)
            if number is None:
                answers[r.key] = False
            else:
                valid.append((r, number))
        if not valid:
            return answers
        today = self._now().astimezone(BEIJING).date()
        first = min(_utc(since).astimezone(BEIJING).date(), today)
        days = [today - timedelta(days=n) for n in range((today - first).days + 1)]
        too_old = (today - first).days >= QUERY_DAYS
        for start in range(0, len(valid), MAX_NUMBERS):  # the calls send() made
            batch = valid[start : start + MAX_NUMBERS]
            found: bool | None = None
            if not too_old:
                out_id = _out_id_of(message.batch_id, [r for r, _ in batch])
                found = self._find(batch[0][1], out_id, days)
            for r, _ in batch:
                answers[r.key] = found
        return answers

    def _find(self, number: str, out_id: str, days: list[date]) -> bool | None:
        """Whether ``number`` got a message with ``out_id`` on any of ``days`` (newest first).

        None when a query fails or the pages do not end.
        """
        for day in days:
            for page in range(1, QUERY_MAX_PAGES + 1):
                reply = self._rpc(
                    "QuerySendDetails",
                    {
                        "PhoneNumber": number,
                        "SendDate": day.strftime("%Y%m%d"),
                        "PageSize": str(QUERY_PAGE),
                        "CurrentPage": str(page),
                    },
                )
                details = _details(reply)
                if details is None:
                    return None
                items, total = details
                if any(d.get("OutId") == out_id for d in items):
                    return True
                if len(items) < QUERY_PAGE or (total is not None and page * QUERY_PAGE >= total):
                    break
            else:
                return None  # still more pages: cannot tell
        return False

    def _template_param(self, message: Message, text: str) -> str:
        link = _URL.search(text.splitlines()[-1] if text else "")
        values = {
            "text": text,
            "subject": message.subject,
            "link": link.group(0) if link else "",
            "alert_id": message.alert_id,
            "version": str(message.version),
            "identifier": message.identifier or "",
        }
        params = {var: values[field] for var, field in self._template_params.items()}
        return json.dumps(params, ensure_ascii=False, separators=(",", ":"))

    def _call(
        self, batch: list[tuple[Recipient, str]], param: str, count: int, batch_id: str | None
    ) -> list[SendResult]:
        recipients = [r for r, _ in batch]
        numbers = list(dict.fromkeys(number for _, number in batch))
        reply = self._rpc(
            "SendSms",
            {
                "PhoneNumbers": ",".join(numbers),
                "SignName": self._sign_name,
                "TemplateCode": self._template_code,
                "TemplateParam": param,
                "OutId": _out_id_of(batch_id, recipients),
            },
        )
        return self._results(recipients, reply, count)

    def _now(self) -> datetime:
        return _utc(self._clock())

    def _rpc(self, action: str, fields: dict[str, str]) -> Reply:
        """One signed RPC (signature v1, GET) of ``action`` with its own ``fields``."""
        params = {
            "AccessKeyId": self._key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": REGION,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": self._now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": VERSION,
            **fields,
        }
        params["Signature"] = sign(params, self._secret)
        query = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items())
        return request(self._session, "GET", f"{self._url}?{query}", timeout=self._timeout)

    @staticmethod
    def _results(recipients: list[Recipient], reply: Reply, count: int) -> list[SendResult]:
        outcome, code, text = _judge(reply)
        if outcome == "ok":
            biz_id = reply.body.get("BizId")
            return results(recipients, "ok", provider_id=f"{biz_id};segments={count}")
        return results(recipients, outcome, code=code, text=text)


def _judge(reply: Reply) -> Verdict:
    return judge(
        reply,
        code_of=lambda body: body.get("Code"),
        text_of=_text,
        ok=("OK",),
        retry=RETRY_CODES,
        fatal=FATAL_CODES,
        status_code="http {}",
        code_in_5xx=True,  # Aliyun answers isp.SYSTEM_ERROR with a 5xx
    )


def _details(reply: Reply) -> tuple[list[dict[str, Any]], int | None] | None:
    """A QuerySendDetails answer's records and TotalCount; None unless a readable ``OK``.

    ``{"Code": "OK", "TotalCount": "2", "SmsSendDetailDTOs": {"SmsSendDetailDTO":
    [{"PhoneNum", "SendStatus", "ErrCode", "TemplateCode", "Content", "SendDate",
    "ReceiveDate", "OutId"}, ...]}}`` (TotalCount a string in the current API,
    a number in older answers).
    """
    if _judge(reply).outcome != "ok":
        return None
    body = reply.body
    dtos = body.get("SmsSendDetailDTOs") or {}
    items = dtos.get("SmsSendDetailDTO", []) if isinstance(dtos, dict) else None
    if isinstance(items, dict):  # a lone record, the way XML-to-JSON renders one
        items = [items]
    total: int | None = None
    if body.get("TotalCount") not in (None, ""):
        try:
            total = int(body["TotalCount"])
        except (TypeError, ValueError):
            return None
    if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
        return None
    return items, total


def _out_id_of(batch_id: str | None, recipients: Sequence[Recipient]) -> str:
    """The call's OutId: the claim token, else a hash of its recipients' keys."""
    if batch_id:
        return batch_id
    return hashlib.sha1("\n".join(sorted(r.key for r in recipients)).encode()).hexdigest()[:32]


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _text(body: dict[str, Any]) -> str:
    text = f"{body.get('Message', '')} (RequestId {body.get('RequestId', '?')})"
    if body.get("Code") == "isv.BUSINESS_LIMIT_CONTROL":
        return "wait: per-number throttling; " + text
    return text


def build(
    settings: ChannelSettings, *, session: requests.Session, clock: Callable[[], datetime]
) -> AliyunSmsChannel:
    mapping = settings.options.get("template_params", {"content": "text"})
    if not isinstance(mapping, dict) or not mapping:
        raise ConfigError(
            f"channels.{settings.name}.options.template_params: a mapping of template "
            f"variables to message fields ({', '.join(FIELDS)})"
        )
    for var, field in mapping.items():
        if field not in FIELDS:
            raise ConfigError(
                f"channels.{settings.name}.options.template_params.{var}: unknown field "
                f"{field!r} (one of {', '.join(FIELDS)})"
            )
    return AliyunSmsChannel(
        name=settings.name,
        access_key_id=settings.secret("access_key_id"),
        access_key_secret=settings.secret("access_key_secret"),
        sign_name=settings.secret("sign_name"),
        template_code=settings.secret("template_code"),
        template_params={str(k): str(v) for k, v in mapping.items()},
        session=session,
        clock=clock,
        base_url=settings.base_url,
        timeout_s=settings.timeout_s,
    )
