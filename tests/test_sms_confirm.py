"""Aliyun SMS: OutId = the claim token, ``confirm`` by QuerySendDetails, simulator faults."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.channels import Message, Recipient, build_channel
from alerts.channels.base import Confirming
from alerts.channels.sms import AliyunSmsChannel
from alerts.config import ChannelSettings
from tests.simulators.aliyun_sms import AliyunSmsSimulator
from tests.simulators.base import Answer

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)  # 16:00 in Beijing
CREDENTIALS = {
    "access_key_id": "LTAI-test",
    "access_key_secret": "secret-test",
    "sign_name": "预警中心",
    "template_code": "SMS_0001",
}


class Clock:
    """One settable clock for the simulator and the channel (timestamps must agree)."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def msg(batch_id: str | None = None) -> Message:
    return Message("us7000abcd", 2, "【地震预警】", "定日县6.8级地震", "zh-CN", batch_id=batch_id)


def token() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Iterator[AliyunSmsSimulator]:
    with AliyunSmsSimulator(clock=clock) as s:
        assert isinstance(s, AliyunSmsSimulator)
        yield s


def channel(
    sim: AliyunSmsSimulator, clock: Clock, *, timeout_s: float = 5, **credentials: str
) -> AliyunSmsChannel:
    settings = {
        "name": "sms",
        "type": "sms",
        "base_url": sim.url,
        "timeout_s": timeout_s,
        "credentials": {**CREDENTIALS, **credentials},
    }
    built = build_channel(ChannelSettings.model_validate(settings), store=None, clock=clock)  # type: ignore[arg-type]
    assert isinstance(built, AliyunSmsChannel)
    return built


def phones(n: int, start: int = 0) -> list[Recipient]:
    return [Recipient(f"139{start + i:08d}", f"CN-000000-1/sms/{start + i}") for i in range(n)]


def queries(sim: AliyunSmsSimulator) -> list[dict[str, str]]:
    return [r.query for r in sim.requests if r.query.get("Action") == "QuerySendDetails"]


# -- OutId and confirm -------------------------------------------------------------------------


def test_out_id_is_the_batch_id_else_a_hash_of_the_keys(
    sim: AliyunSmsSimulator, clock: Clock
) -> None:
    sms = channel(sim, clock)
    assert isinstance(sms, Confirming)
    batch = token()
    assert all(r.ok for r in sms.send(msg(batch), phones(2)))
    assert all(r.ok for r in sms.send(msg(), phones(2)))
    assert sim.accepted[0]["out_id"] == batch
    assert sim.accepted[1]["out_id"] != batch and len(sim.accepted[1]["out_id"]) == 32


def test_confirm_true_for_every_valid_number_from_one_query(
    sim: AliyunSmsSimulator, clock: Clock
) -> None:
    sms = channel(sim, clock)
    batch = token()
    recipients = [Recipient("not a phone", "k/bad"), *phones(3)]
    sms.send(msg(batch), recipients)
    clock.now = NOW + timedelta(minutes=5)
    answers = sms.confirm(msg(batch), recipients, since=NOW - timedelta(minutes=1))
    assert answers == {
        "k/bad": False,  # never reaches a call
        **{r.key: True for r in phones(3)},
    }
    [query] = queries(sim)
    assert query["PhoneNumber"] == "13900000000" and query["SendDate"] == "20260701"
    assert query["PageSize"] == "50" and query["CurrentPage"] == "1"
    assert "BizId" not in query


def test_confirm_finds_the_out_id_on_page_2(sim: AliyunSmsSimulator, clock: Clock) -> None:
    sms = channel(sim, clock)
    batch = token()
    [one] = phones(1)
    sms.send(msg(batch), [one])
    for _ in range(60):  # later sends to the same number come first (newest first)
        sms.send(msg(token()), [one])
    assert sms.confirm(msg(batch), [one], since=NOW) == {one.key: True}
    assert [q["CurrentPage"] for q in queries(sim)] == ["1", "2"]


@pytest.mark.parametrize(("others", "pages"), [(0, ["1"]), (50, ["1"]), (55, ["1", "2"])])
def test_confirm_false_when_complete_answers_lack_the_out_id(
    sim: AliyunSmsSimulator, clock: Clock, others: int, pages: list[str]
) -> None:
    sms = channel(sim, clock)
    [one] = phones(1)
    for _ in range(others):
        sms.send(msg(token()), [one])
    assert sms.confirm(msg(token()), [one], since=NOW) == {one.key: False}
    assert [q["CurrentPage"] for q in queries(sim)] == pages


def test_confirm_queries_every_beijing_date_since(sim: AliyunSmsSimulator, clock: Clock) -> None:
    sms = channel(sim, clock)
    batch = token()
    [one] = phones(1)
    clock.now = datetime(2026, 6, 30, 15, 30, tzinfo=UTC)  # 23:30 on 30 June in Beijing
    sms.send(msg(batch), [one])
    clock.now = datetime(2026, 6, 30, 16, 30, tzinfo=UTC)  # 00:30 on 1 July in Beijing
    since = datetime(2026, 6, 30, 15, 0)  # naive: UTC
    assert sms.confirm(msg(batch), [one], since=since) == {one.key: True}
    assert [q["SendDate"] for q in queries(sim)] == ["20260701", "20260630"]
    sim.requests.clear()
    assert sms.confirm(msg(token()), [one], since=since) == {one.key: False}
    assert [q["SendDate"] for q in queries(sim)] == ["20260701", "20260630"]


@pytest.mark.parametrize(
    "answer",
    [
        Answer(500, {"Code": "isp.SYSTEM_ERROR", "Message": "x", "RequestId": "R"}),
        Answer(200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "x", "RequestId": "R"}),
        Answer(200, {"Code": "isv.SOMETHING_NEW", "Message": "x", "RequestId": "R"}),
        Answer(200, "not json"),
        Answer(200, {"Code": "OK", "SmsSendDetailDTOs": "garbled"}),
        Answer(502, "<html>Bad Gateway</html>"),
        Answer(200, {"Code": "OK"}, delay_s=1.0),  # beyond the timeout
    ],
)
def test_confirm_is_none_when_the_query_fails(
    sim: AliyunSmsSimulator, clock: Clock, answer: Answer
) -> None:
    sms = channel(sim, clock, timeout_s=0.3)
    batch = token()
    recipients = [*phones(2), Recipient("12345", "k/bad")]
    sms.send(msg(batch), recipients)
    sim.inject(answer)
    answers = sms.confirm(msg(batch), recipients, since=NOW)
    assert answers == {phones(2)[0].key: None, phones(2)[1].key: None, "k/bad": False}


def test_confirm_is_none_when_a_later_page_fails(sim: AliyunSmsSimulator, clock: Clock) -> None:
    [one] = phones(1)
    other = {"PhoneNum": "13900000000", "SendStatus": 3, "OutId": "x" * 32}
    page1 = {"Code": "OK", "Message": "OK", "RequestId": "R", "TotalCount": 60}  # a number
    page1["SmsSendDetailDTOs"] = {"SmsSendDetailDTO": [other] * 50}
    sim.inject(Answer(200, page1), Answer(500, {"Code": "isp.SYSTEM_ERROR", "Message": "x"}))
    assert channel(sim, clock).confirm(msg(token()), [one], since=NOW) == {one.key: None}
    assert len(sim.requests) == 2


def test_confirm_is_none_with_a_bad_key(sim: AliyunSmsSimulator, clock: Clock) -> None:
    [one] = phones(1)
    sms = channel(sim, clock, access_key_secret="wrong")
    assert sms.confirm(msg(token()), [one], since=NOW) == {one.key: None}
    fields = {"PhoneNumber": one.address, "SendDate": "20260701"}
    reply = sms._rpc("QuerySendDetails", {**fields, "PageSize": "50", "CurrentPage": "1"})
    assert reply.status == 400 and reply.body["Code"] == "SignatureDoesNotMatch"


def test_confirm_is_none_beyond_the_apis_30_days(sim: AliyunSmsSimulator, clock: Clock) -> None:
    [one] = phones(1)
    sms = channel(sim, clock)
    assert sms.confirm(msg(token()), [one], since=NOW - timedelta(days=31)) == {one.key: None}
    assert sim.requests == []
    assert sms.confirm(msg(token()), [one], since=NOW - timedelta(days=3)) == {one.key: False}
    dates = ["20260701", "20260630", "20260629", "20260628"]
    assert [q["SendDate"] for q in queries(sim)] == dates


def test_confirm_without_a_batch_id_matches_the_keys_hash(
    sim: AliyunSmsSimulator, clock: Clock
) -> None:
    sms = channel(sim, clock)
    sms.send(msg(), phones(2))
    assert sms.confirm(msg(), list(reversed(phones(2))), since=NOW) == {
        r.key: True for r in phones(2)
    }
    assert sms.confirm(msg(), phones(3), since=NOW) == {r.key: False for r in phones(3)}


def test_confirm_over_1000_numbers_asks_once_per_call(
    sim: AliyunSmsSimulator, clock: Clock
) -> None:
    sms = channel(sim, clock)
    batch = token()
    recipients = phones(1500)
    sms.send(msg(batch), recipients)
    assert [a["out_id"] for a in sim.accepted] == [batch, batch]
    assert set(sms.confirm(msg(batch), recipients, since=NOW).values()) == {True}
    assert [q["PhoneNumber"] for q in queries(sim)] == ["13900000000", "13900001000"]


def test_confirm_all_invalid_asks_nothing(sim: AliyunSmsSimulator, clock: Clock) -> None:
    bad = [Recipient("110", "k/1"), Recipient("", "k/2")]
    assert channel(sim, clock).confirm(msg(token()), bad, since=NOW) == {
        "k/1": False,
        "k/2": False,
    }
    assert sim.requests == []


def test_simulator_query_checks_its_parameters(sim: AliyunSmsSimulator, clock: Clock) -> None:
    sms = channel(sim, clock)
    sms.send(msg(token()), phones(1))
    for fields, code in [
        ({"PageSize": "51"}, "isv.INVALID_PARAMETERS"),
        ({"SendDate": "2026-07-01"}, "isv.INVALID_PARAMETERS"),
        ({"PhoneNumber": "12345"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"BizId": "1^0"}, "OK"),
    ]:
        base = {"PhoneNumber": "13900000000", "SendDate": "20260701"}
        reply = sms._rpc(
            "QuerySendDetails", {**base, "PageSize": "10", "CurrentPage": "1", **fields}
        )
        assert reply.body["Code"] == code
        if code == "OK":
            assert reply.body["TotalCount"] == "0"
    reply = sms._rpc(
        "QuerySendDetails",
        {"PhoneNumber": "+8613900000000", "SendDate": "20260701", "PageSize": "10"}
        | {"CurrentPage": "1", "BizId": sim.accepted[0]["biz_id"]},
    )
    [detail] = reply.body["SmsSendDetailDTOs"]["SmsSendDetailDTO"]
    assert detail["PhoneNum"] == "13900000000" and detail["SendStatus"] == 3
    assert detail["OutId"] == sim.accepted[0]["out_id"]
    assert detail["SendDate"] == "2026-07-01 16:00:00"  # Beijing time
    assert detail["Content"] == "【预警中心】定日县6.8级地震"


# -- simulator faults --------------------------------------------------------------------------


def test_fail_rate_fails_that_share_before_recording(clock: Clock) -> None:
    with AliyunSmsSimulator(clock=clock, fail_rate=0.25, seed=7) as sim:
        assert isinstance(sim, AliyunSmsSimulator)
        sms = channel(sim, clock)
        results = [sms.send(msg(token()), phones(1, i))[0] for i in range(400)]
    draws = random.Random(7)
    expected = sum(draws.random() < 0.25 for _ in range(400))
    failed = [r for r in results if not r.ok]
    assert sim.failed == len(failed) == expected
    assert 0.19 <= len(failed) / 400 <= 0.31
    assert all(r.retryable and r.error_code == "isp.SYSTEM_ERROR" for r in failed)
    assert len(sim.accepted) == 400 - len(failed)
    assert sum(sim.received_counts().values()) == len(sim.accepted)
    assert {f"139{int(r.key.rsplit('/', 1)[1]):08d}" for r in failed}.isdisjoint(
        sim.received_counts()
    )


def test_fatal_numbers_refuse_the_whole_call(sim: AliyunSmsSimulator, clock: Clock) -> None:
    sim.fatal_numbers = {"13900000001"}
    sms = channel(sim, clock)
    results = sms.send(msg(token()), phones(3))
    assert [(r.ok, r.retryable, r.error_code) for r in results] == [
        (False, False, "isv.MOBILE_NUMBER_ILLEGAL")
    ] * 3
    assert sim.accepted == [] and sim.received_counts() == {}
    assert all(r.ok for r in sms.send(msg(token()), [phones(3)[0], phones(3)[2]]))
    assert sim.received_counts() == {"13900000000": 1, "13900000002": 1}


def test_hold_after_holds_the_nth_accepted_call(sim: AliyunSmsSimulator, clock: Clock) -> None:
    sim.hold_after = 2
    sms = channel(sim, clock)
    batch = token()
    [one] = phones(1)
    results: list[Any] = []

    def send_twice() -> None:
        results.append(sms.send(msg(token()), [one]))
        results.append(sms.send(msg(batch), [one]))

    sender = threading.Thread(target=send_twice, daemon=True)
    sender.start()
    assert sim.held.wait(5)
    assert len(results) == 1 and sender.is_alive()  # the 2nd call: accepted, not answered
    assert sim.received_counts() == {one.address: 2}
    assert channel(sim, clock).confirm(msg(batch), [one], since=NOW) == {one.key: True}
    sim.release.set()
    sender.join(5)
    assert not sender.is_alive() and all(r[0].ok for r in results)


CLIENT = """
import sys
from datetime import UTC, datetime

import requests

from alerts.channels.base import Message, Recipient
from alerts.channels.sms import AliyunSmsChannel

url, batch, number = sys.argv[1:4]
sms = AliyunSmsChannel(
    name="sms", access_key_id="LTAI-test", access_key_secret="secret-test",
    sign_name="预警中心", template_code="SMS_0001", template_params={"content": "text"},
    session=requests.Session(), clock=lambda: datetime.now(UTC), base_url=url, timeout_s=60,
)
print(sms.send(Message("a", 1, "s", "地震", "zh-CN", batch_id=batch), [Recipient(number, "k/1")]))
"""


def test_a_client_killed_while_held_is_confirmed_afterwards() -> None:
    with AliyunSmsSimulator(hold_after=1) as sim:  # real time: the client is another process
        assert isinstance(sim, AliyunSmsSimulator)
        batch = token()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-c", CLIENT, sim.url, batch, "+86 139-0000-0007"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert sim.held.wait(30), f"the client never got held (exit {proc.poll()})"
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL and out == b""  # it never saw the answer
        assert sim.received_counts() == {"13900000007": 1}
        clock = Clock(datetime.now(UTC))
        sms = channel(sim, clock)
        [recipient] = [Recipient("+86 139-0000-0007", "k/1")]
        since = clock.now - timedelta(minutes=1)
        assert sms.confirm(msg(batch), [recipient], since=since) == {"k/1": True}
        assert sms.confirm(msg(token()), [recipient], since=since) == {"k/1": False}
