"""Aliyun SMS ``SendSms`` (RPC, 2017-05-25) as a loopback HTTP server.

Checks what the real endpoint checks, in its order: common parameters, the
AccessKey, the signature v1 (recomputed here with its own encoder, not the
client's), the timestamp (15 minutes), the nonce (once only), then the
business fields: SignName, TemplateCode, TemplateParam (a JSON object of
strings, carrying the template's variables), at most 1000 numbers, each a
mainland mobile number. Answers with Aliyun's error bodies; accepted sends
are recorded in ``accepted`` (with ``sent_at``, the simulator's clock).

``QuerySendDetails`` (same checks, then PhoneNumber, SendDate yyyyMMdd in
Beijing time, PageSize 1-50, CurrentPage, optional BizId) answers with the
recorded sends to that number on that date, newest first, paged, in Aliyun's
shape: ``TotalCount`` (a string) and ``SmsSendDetailDTOs.SmsSendDetailDTO``
records with PhoneNum, SendStatus (3: delivered), ErrCode, TemplateCode,
Content, SendDate, ReceiveDate and OutId.

Faults that act on the server side, so they hold whatever process the client
runs in: ``fail_rate`` (that share of valid SendSms calls, drawn from a
``random.Random(seed)``, is answered HTTP 500 ``isp.SYSTEM_ERROR`` before
anything is recorded), ``fatal_numbers`` (a call with one of them is refused
whole with ``isv.MOBILE_NUMBER_ILLEGAL``) and ``hold_after`` (the N-th
accepted SendSms call is recorded, then ``held`` is set and the answer waits
for ``release``, at most ``hold_s`` seconds: the vendor has the call, the
client not yet its answer). ``received_counts()`` counts messages per number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tests.simulators.base import Answer, Request, Simulator

__all__ = ["BEIJING", "AliyunSmsSimulator"]

BEIJING = timezone(timedelta(hours=8))
_MOBILE = re.compile(r"(?:\+86|0086|86)?(1[3-9][0-9]{9})")

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_COMMON = (
    "AccessKeyId",
    "Action",
    "Format",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Timestamp",
    "Version",
    "Signature",
)


def _encode(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8 bytes, upper-case hex (Aliyun's rule)."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in value.encode("utf-8"))


def _signature(method: str, params: dict[str, str], secret: str) -> str:
    pairs = sorted((_encode(k), _encode(v)) for k, v in params.items() if k != "Signature")
    canonical = "&".join(f"{k}={v}" for k, v in pairs)
    string_to_sign = method + "&" + _encode("/") + "&" + _encode(canonical)
    mac = hmac.new(f"{secret}&".encode(), string_to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


class AliyunSmsSimulator(Simulator):
    def __init__(
        self,
        *,
        access_key_id: str = "LTAI-test",
        access_key_secret: str = "secret-test",
        sign_names: Iterable[str] = ("预警中心",),
        templates: dict[str, Iterable[str]] | None = None,
        clock: Callable[[], datetime] | None = None,
        fail_rate: float = 0.0,
        seed: int = 0,
        fatal_numbers: Iterable[str] = (),
        hold_after: int | None = None,
        hold_s: float = 60.0,
    ) -> None:
        """``templates`` maps approved template codes to their variable names.

        Faults (see the module doc) may also be set as attributes before a call.
        """
        super().__init__()
        self.fail_rate = fail_rate
        self.random = random.Random(seed)
        self.fatal_numbers: set[str] = set(fatal_numbers)
        self.hold_after = hold_after
        self.hold_s = hold_s
        self.held = threading.Event()  # set while the hold_after-th accepted call waits
        self.release = threading.Event()  # set it to let the held answer go
        self.failed = 0  # SendSms calls answered by fail_rate
        self.keys = {access_key_id: access_key_secret}
        self.sign_names = set(sign_names)
        self.templates = {
            code: set(names) for code, names in (templates or {"SMS_0001": ["content"]}).items()
        }
        self.clock = clock or (lambda: datetime.now(UTC))
        self.nonces: set[str] = set()
        self._biz = itertools.count(900000000000000001)

    # -- answers --------------------------------------------------------------------------

    def _error(self, code: str, message: str, status: int = 200) -> Answer:
        body = {"RequestId": str(uuid.uuid4()).upper(), "Code": code, "Message": message}
        if status != 200:
            body["HostId"] = "dysmsapi.aliyuncs.com"
        return Answer(status, body)

    def stop(self) -> None:
        self.release.set()  # a held answer goes out (to nobody, if the client was killed)
        super().stop()

    def received_counts(self) -> Counter[str]:
        """Phone number (11 digits) -> how many messages the accepted calls sent it."""
        with self._lock:
            return Counter(_number(n) for a in self.accepted for n in a["numbers"])

    def handle(self, request: Request) -> Answer:
        q = request.query
        if request.method != "GET" or request.path != "/":
            return self._error("InvalidAction.NotFound", "Specified api is not found", 404)
        for name in _COMMON:
            if not q.get(name):
                return self._error(f"Missing{name}", f"{name} is mandatory for this action.", 400)
        if q["Action"] not in ("SendSms", "QuerySendDetails") or q["Version"] != "2017-05-25":
            return self._error("InvalidAction.NotFound", "Specified api is not found", 404)
        secret = self.keys.get(q["AccessKeyId"])
        if secret is None:
            return self._error(
                "InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404
            )
        if q["SignatureMethod"] != "HMAC-SHA1" or q["SignatureVersion"] != "1.0":
            return self._error("InvalidSignatureMethod", "Unsupported signature method", 400)
        expected = _signature(request.method, q, secret)
        if not hmac.compare_digest(expected, q["Signature"]):
            return self._error(
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
                400,
            )
        if not self._timely(q["Timestamp"]):
            return self._error("InvalidTimeStamp.Expired", "Specified time stamp is expired.", 400)
        with self._lock:
            if q["SignatureNonce"] in self.nonces:
                return self._error(
                    "SignatureNonceUsed", "Specified signature nonce was used already.", 400
                )
            self.nonces.add(q["SignatureNonce"])
        if q["Action"] == "QuerySendDetails":
            return self._query_send_details(q)
        with self._lock:
            fail = self.fail_rate > 0 and self.random.random() < self.fail_rate
            self.failed += int(fail)
        if fail:
            return self._error(
                "isp.SYSTEM_ERROR",
                "The request processing has failed due to some unknown error.",
                500,
            )
        return self._send_sms(q)

    def _timely(self, stamp: str) -> bool:
        try:
            when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return False
        return abs(when - self.clock()) <= timedelta(minutes=15)

    def _send_sms(self, q: dict[str, str]) -> Answer:
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not q.get(name):
                return self._error(f"Missing{name}", f"{name} is mandatory for this action.", 400)
        if q["SignName"] not in self.sign_names:
            return self._error("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        variables = self.templates.get(q["TemplateCode"])
        if variables is None:
            return self._error("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            params: Any = json.loads(q.get("TemplateParam") or "{}")
        except ValueError:
            params = None
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return self._error("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        missing = variables - set(params)
        if missing:
            return self._error(
                "isv.TEMPLATE_MISSING_PARAMETERS", f"模板变量缺少对应参数值 {sorted(missing)}"
            )
        numbers = q["PhoneNumbers"].split(",")
        if len(numbers) > 1000:
            return self._error(
                "isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制，最多支持1000条"
            )
        fatal = {_number(f) for f in self.fatal_numbers}
        for n in numbers:
            if not _MOBILE.fullmatch(n) or _number(n) in fatal:
                return self._error("isv.MOBILE_NUMBER_ILLEGAL", f"手机号码格式错误 {n}")
        biz_id = f"{next(self._biz)}^0"
        record = {
            "numbers": numbers,
            "sign_name": q["SignName"],
            "template_code": q["TemplateCode"],
            "params": params,
            "out_id": q.get("OutId"),
            "biz_id": biz_id,
            "timestamp": q["Timestamp"],
            "sent_at": self.clock(),
        }
        with self._lock:
            self.accepted.append(record)
            hold = self.hold_after is not None and len(self.accepted) == self.hold_after
        if hold:
            self.held.set()
            self.release.wait(self.hold_s)
        return Answer(
            200,
            {
                "Message": "OK",
                "RequestId": str(uuid.uuid4()).upper(),
                "Code": "OK",
                "BizId": biz_id,
            },
        )

    def _query_send_details(self, q: dict[str, str]) -> Answer:
        for name in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
            if not q.get(name):
                return self._error(f"Missing{name}", f"{name} is mandatory for this action.", 400)
        if not _MOBILE.fullmatch(q["PhoneNumber"]):
            return self._error("isv.MOBILE_NUMBER_ILLEGAL", f"手机号码格式错误 {q['PhoneNumber']}")
        try:
            day = datetime.strptime(q["SendDate"], "%Y%m%d").date()
            size, page = int(q["PageSize"]), int(q["CurrentPage"])
        except ValueError:
            return self._error("isv.INVALID_PARAMETERS", "参数格式不正确")
        if not 1 <= size <= 50 or page < 1 or len(q["SendDate"]) != 8:
            return self._error("isv.INVALID_PARAMETERS", "参数格式不正确")
        number = _number(q["PhoneNumber"])
        with self._lock:
            sends = [
                a
                for a in reversed(self.accepted)  # newest first
                if a["sent_at"].astimezone(BEIJING).date() == day
                and number in {_number(n) for n in a["numbers"]}
                and q.get("BizId") in (None, "", a["biz_id"])
            ]
        shown = sends[(page - 1) * size : page * size]
        return Answer(
            200,
            {
                "Code": "OK",
                "Message": "OK",
                "RequestId": str(uuid.uuid4()).upper(),
                "TotalCount": str(len(sends)),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": [self._detail(number, a) for a in shown]},
            },
        )

    def _detail(self, number: str, send: dict[str, Any]) -> dict[str, Any]:
        when = send["sent_at"].astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        detail = {
            "PhoneNum": number,
            "SendStatus": 3,  # 1 waiting for the receipt, 2 failed, 3 delivered
            "ErrCode": "DELIVERED",
            "TemplateCode": send["template_code"],
            "Content": f"【{send['sign_name']}】" + "".join(send["params"].values()),
            "SendDate": when,
            "ReceiveDate": when,
        }
        if send["out_id"] is not None:
            detail["OutId"] = send["out_id"]
        return detail


def _number(address: str) -> str:
    """The 11-digit number of an accepted ``+86``/``0086``/``86`` form (as is otherwise)."""
    m = _MOBILE.fullmatch(address)
    return m.group(1) if m else address
