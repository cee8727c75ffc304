"""The alert store on SQLite and PostgreSQL: schema, events, versions, the ledger."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from alerts.feeds import usgs
from alerts.lifecycle import Decision
from alerts.model import Action, Hazard, Level, Warning
from alerts.store import DeliveryOutcome, NewDelivery, NewMessage, Store, StoreError
from alerts.store.models import Base

T0 = datetime(2025, 1, 7, 1, 20, tzinfo=UTC)


@pytest.fixture
def store(store_url: str):  # type: ignore[no-untyped-def]
    with Store(store_url) as s:
        yield s


def _warning(level: Level = Level.RED, magnitude: float = 7.1) -> Warning:
    return Warning(
        hazard=Hazard.EARTHQUAKE,
        level=level,
        region_code="CN",
        region_name="全国",
        subject="usgs:us1",
        onset=T0,
        expires=T0 + timedelta(hours=24),
        rule_id="r",
        rule_set_version="v1",
        observed=magnitude,
        threshold=7.0,
        reason="test",
        facts={"magnitude": magnitude},
    )


def test_migrations_match_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_opening_twice_keeps_the_schema_at_head(store: Store, store_url: str) -> None:
    rev = store.revision()
    with Store(store_url) as again:
        assert again.revision() == rev is not None


def test_datetimes_come_back_utc_aware_and_naive_ones_are_refused(store: Store) -> None:
    store.apply([Decision(Action.ISSUE, "earthquake:usgs:us1:CN", _warning(), None, "x")], now=T0)
    (v,) = store.alert_versions()
    assert v.sent == T0 and v.sent.tzinfo is not None
    other = dataclasses.replace(_warning(), subject="usgs:us2")
    naive = Decision(Action.ISSUE, "earthquake:usgs:us2:CN", other, None, "x")
    with pytest.raises(Exception, match="naive datetime"):
        store.apply([naive], now=T0.replace(tzinfo=None))


def _feature(fid: str, ids: str, mag: float, updated: int) -> dict:
    return {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "Point", "coordinates": [87.36, 28.64, 10]},
        "properties": {
            "mag": mag,
            "time": 1736211916824,
            "updated": updated,
            "ids": ids,
            "status": "reviewed",
            "type": "earthquake",
            "magType": "mww",
        },
    }


def _frame(*features: dict):  # type: ignore[no-untyped-def]
    import json

    body = json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()
    return usgs.parse(body).frame


def test_alias_ids_merge_into_one_event(store: Store) -> None:
    first = store.merge_events(_frame(_feature("us1", ",us1,", 7.0, 1)), now=T0)
    later = store.merge_events(_frame(_feature("at9", ",at9,us1,", 7.1, 2)), now=T0)
    assert list(first["subject"]) == list(later["subject"]) == ["usgs:us1"]
    assert later.iloc[0]["magnitude"] == 7.1
    assert sorted(later.iloc[0]["aliases"]) == ["at9", "us1"]


def test_an_older_solution_never_replaces_a_newer_one(store: Store) -> None:
    store.merge_events(_frame(_feature("us1", ",us1,", 7.1, 200)), now=T0)
    current = store.merge_events(_frame(_feature("us1", ",us1,", 6.0, 100)), now=T0)
    assert current.iloc[0]["magnitude"] == 7.1


def test_versions_are_immutable_and_numbered(store: Store) -> None:
    aid = "earthquake:usgs:us1:CN"
    store.apply([Decision(Action.ISSUE, aid, _warning(), None, "new")], now=T0)
    (active,) = store.active_alerts(Hazard.EARTHQUAKE)
    store.apply(
        [Decision(Action.DOWNGRADE, aid, _warning(Level.ORANGE, 6.8), active, "rev")],
        now=T0 + timedelta(minutes=5),
    )
    (active2,) = store.active_alerts(Hazard.EARTHQUAKE)
    assert (active2.version, active2.level) == (2, Level.ORANGE)
    store.apply([Decision(Action.CANCEL, aid, None, active2, "withdrawn")], now=T0)
    assert store.active_alerts(Hazard.EARTHQUAKE) == []
    versions = store.alert_versions(aid)
    assert [(v.version, v.action, v.msg_type) for v in versions] == [
        (1, "issue", "Alert"),
        (2, "downgrade", "Update"),
        (3, "cancel", "Cancel"),
    ]
    assert len({v.identifier for v in versions}) == 3


def test_a_stale_decision_conflicts_instead_of_overwriting(store: Store) -> None:
    aid = "earthquake:usgs:us1:CN"
    store.apply([Decision(Action.ISSUE, aid, _warning(), None, "new")], now=T0)
    (active,) = store.active_alerts(Hazard.EARTHQUAKE)
    store.apply([Decision(Action.UPDATE, aid, _warning(), active, "a")], now=T0)
    with pytest.raises(StoreError, match="changed underneath"):
        store.apply([Decision(Action.UPDATE, aid, _warning(), active, "b")], now=T0)
    assert [v.version for v in store.alert_versions(aid)] == [1, 2]


def _issue_and_fan_out(store: Store, recipients: list[str]) -> None:
    store.apply([Decision(Action.ISSUE, "earthquake:usgs:us1:CN", _warning(), None, "x")], now=T0)
    (pub,) = store.publications_to_fan_out()
    messages = [NewMessage("outbox", "zh-CN", "s", "b")]
    rows = [NewDelivery(f"k/{r}", "outbox", r, "zh-CN") for r in recipients]
    assert store.fan_out(pub, messages, rows, now=T0) == len(recipients)
    assert store.fan_out(pub, messages, rows, now=T0) == 0
    assert store.publications_to_fan_out() == []


def test_fan_out_happens_once_per_publication(store: Store) -> None:
    _issue_and_fan_out(store, ["a", "b"])
    rows = store.deliveries()
    assert len(rows) == 2 and len({d.message_id for d in rows}) == 1  # one stored body
    assert store.delivery_message(rows[0].message_id).body == "b"  # type: ignore[union-attr]


def test_fan_out_refuses_a_row_without_its_message(store: Store) -> None:
    store.apply([Decision(Action.ISSUE, "earthquake:usgs:us1:CN", _warning(), None, "x")], now=T0)
    (pub,) = store.publications_to_fan_out()
    with pytest.raises(ValueError, match="no message"):
        store.fan_out(pub, [], [NewDelivery("k/a", "sms", "a", "en")], now=T0)
    assert store.deliveries() == [] and store.publications_to_fan_out() != []  # rolled back


def test_a_claimed_row_cannot_be_claimed_again(store: Store) -> None:
    _issue_and_fan_out(store, ["a", "b"])
    first = store.claim_deliveries(now=T0, worker="w1")
    second = store.claim_deliveries(now=T0, worker="w2")
    assert first is not None and len(first.rows) == 2 and second is None
    assert {d.attempts for d in first.rows} == {1}
    assert {d.claim_token for d in first.rows} == {first.token}
    assert {d.claimed_by for d in first.rows} == {"w1"}


def test_claims_take_at_most_the_limit_in_key_order(store: Store) -> None:
    _issue_and_fan_out(store, ["a", "b", "c"])
    one = store.claim_deliveries(now=T0, worker="w", limit=2)
    two = store.claim_deliveries(now=T0, worker="w", limit=2)
    assert one and two and [d.recipient for d in one.rows + two.rows] == ["a", "b", "c"]
    assert one.token != two.token


def test_rows_abandoned_mid_send_come_back_to_be_confirmed(store: Store) -> None:
    _issue_and_fan_out(store, ["a"])
    claim = store.claim_deliveries(now=T0, worker="host/1")
    assert claim is not None
    # the worker died: nothing recorded. Within the lease nobody touches the row...
    assert store.recover_abandoned(now=T0 + timedelta(seconds=60), lease_s=300) == 0
    # ...unless its process is known to be gone; after the lease, in any case.
    assert (
        store.recover_abandoned(
            now=T0 + timedelta(seconds=60), lease_s=300, dead_workers=["host/2"]
        )
        == 0
    )
    assert (
        store.recover_abandoned(
            now=T0 + timedelta(seconds=60), lease_s=300, dead_workers=["host/1"]
        )
        == 1
    )
    (row,) = store.deliveries()
    assert (row.status, row.confirm_token, row.error_code) == ("retry", claim.token, "abandoned")
    again = store.claim_deliveries(now=T0 + timedelta(seconds=61), worker="host/3")
    assert again is not None and again.rows[0].confirm_token == claim.token


def test_outcomes_are_recorded_in_bulk_and_only_by_the_current_claim(store: Store) -> None:
    _issue_and_fan_out(store, ["a", "b", "c"])
    claim = store.claim_deliveries(now=T0, worker="w")
    assert claim is not None
    ids = [d.id for d in claim.rows]
    outcomes = [
        DeliveryOutcome(ids[0], "sent", "biz-1"),
        DeliveryOutcome(ids[1], "sent", "biz-1"),
        DeliveryOutcome(ids[2], "dead", None, "bad", "bad number"),
    ]
    assert store.record_outcomes(outcomes, now=T0, claim="someone-else") == 0
    assert store.record_outcomes(outcomes, now=T0, claim=claim.token) == 3
    assert store.record_outcomes(outcomes, now=T0, claim=claim.token) == 0  # no longer sending
    rows = store.deliveries()
    assert [(d.status, d.provider_message_id) for d in rows] == [
        ("sent", "biz-1"),
        ("sent", "biz-1"),
        ("dead", None),
    ]
    assert store.delivery_counts() == {("outbox", "sent"): 2, ("outbox", "dead"): 1}


def test_resend_adds_audited_rows_with_their_own_keys(store: Store) -> None:
    _issue_and_fan_out(store, ["a", "b"])
    claim = store.claim_deliveries(now=T0, worker="w")
    assert claim is not None
    a, b = claim.rows
    store.record_outcomes(
        [DeliveryOutcome(a.id, "sent"), DeliveryOutcome(b.id, "dead", None, "x", "y")],
        now=T0,
    )
    pub_id = a.publication_id
    assert store.resend(pub_id, mode="failed", actor="duty", reason="phone fixed", now=T0) == 1
    assert store.resend(pub_id, mode="failed", actor="duty", reason="again", now=T0) == 0
    assert store.resend(pub_id, mode="all", actor="duty", reason="drill", now=T0) == 2
    one = store.resend(
        pub_id, mode="one", channel="outbox", recipient="a", actor="duty", reason="asked", now=T0
    )
    assert one == 1
    keys = [d.key for d in store.deliveries()]
    assert keys == ["k/a", "k/b", "k/b#r1", "k/a#r2", "k/b#r2", "k/a#r3"]
    with pytest.raises(ValueError, match="never addressed"):
        store.resend(
            pub_id, mode="one", channel="outbox", recipient="zz", actor="d", reason="r", now=T0
        )
    with pytest.raises(ValueError, match="reason"):
        store.resend(pub_id, mode="all", actor="duty", reason=" ", now=T0)
    audit = [e for e in store.audit("earthquake:usgs:us1:CN") if e.action == "resend"]
    assert [(e.actor, e.details["mode"], e.details["deliveries"]) for e in audit] == [
        ("duty", "failed", 1),
        ("duty", "failed", 0),
        ("duty", "all", 2),
        ("duty", "one", 1),
    ]


def test_inbound_events_are_recorded_once(store: Store) -> None:
    assert store.record_inbound("wechat", "o1:123:subscribe", now=T0) is True
    assert store.record_inbound("wechat", "o1:123:subscribe", now=T0) is False
    assert store.record_inbound("other", "o1:123:subscribe", now=T0) is True


def test_outbox_keeps_one_message_per_delivery_key(store: Store) -> None:
    msg = {
        "delivery_key": "k",
        "alert_id": "a",
        "version": 1,
        "channel": "outbox",
        "recipient": "r",
        "subject": "s",
        "body": "b",
        "delivered_at": T0,
    }
    assert store.outbox_put(msg) is True
    assert store.outbox_put({**msg, "body": "again"}) is False
    assert [m.body for m in store.outbox()] == ["b"]


def _cenc(event_id: str, lat: float, mag: float, oritime: str = "2025-01-07 09:05:16"):  # type: ignore[no-untyped-def]
    import json

    from alerts.feeds import cenc

    doc = {
        "code": 0,
        "data": [
            {
                "uniEventId": event_id,
                "oriTime": oritime,
                "locName": "定日",
                "epiLon": 87.45,
                "epiLat": lat,
                "focDepth": 10,
                "magnitude": mag,
            }
        ],
    }
    return cenc.parse(json.dumps(doc).encode()).frame


def test_a_formal_solution_under_a_new_id_joins_the_automatic_event(store: Store) -> None:
    from alerts.feeds.cenc import SAME_EVENT

    auto = store.merge_events(_cenc("AU1", 28.62, 6.9), now=T0, same_event=SAME_EVENT)
    formal = store.merge_events(_cenc("CC1", 28.50, 6.8), now=T0, same_event=SAME_EVENT)
    assert list(auto["subject"]) == list(formal["subject"]) == ["cenc:AU1"]
    row = formal.iloc[0]
    assert (row["status"], row["magnitude"], sorted(row["aliases"])) == (
        "reviewed",
        6.8,
        ["AU1", "CC1"],
    )
    # a late automatic solution never demotes the formal one
    late = store.merge_events(_cenc("AU2", 28.70, 7.0), now=T0, same_event=SAME_EVENT)
    assert list(late["subject"]) == ["cenc:AU1"] and late.iloc[0]["magnitude"] == 6.8


def test_two_formal_solutions_close_together_stay_two_events(store: Store) -> None:
    from alerts.feeds.cenc import SAME_EVENT

    a = store.merge_events(_cenc("CC1", 28.50, 6.8), now=T0, same_event=SAME_EVENT)
    b = store.merge_events(
        _cenc("CC2", 28.52, 5.1, "2025-01-07 09:05:40"), now=T0, same_event=SAME_EVENT
    )
    assert list(a["subject"]) != list(b["subject"])


def test_fetch_outcomes_are_recorded_per_feed(store: Store) -> None:
    store.record_fetch("usgs", source="usgs", url="u", now=T0, error="HTTP 503")
    state = store.record_fetch("usgs", source="usgs", url="u", now=T0, error="HTTP 503")
    assert (state.consecutive_failures, state.last_success_at) == (2, None)
    later = T0 + timedelta(minutes=1)
    state = store.record_fetch("usgs", source="usgs", url="u", now=later, etag='"e"')
    assert (state.consecutive_failures, state.last_success_at, state.etag) == (0, later, '"e"')
    assert state.last_failure_at == T0 and state.last_error == "HTTP 503"


def test_a_cycle_groups_versions_into_publications_with_gbt_identifiers(store: Store) -> None:
    from alerts.store import Publisher

    def regional(region: str, level: Level) -> Warning:
        return dataclasses.replace(_warning(level), region_code=region, rule_id="eq-int")

    publisher = Publisher(sender="s@x", adcode="510100", agency_code="123")
    decisions = [
        Decision(Action.ISSUE, f"earthquake:usgs:us1:{r}", regional(r, lv), None, "x")
        for r, lv in [("510100", Level.RED), ("510400", Level.BLUE), ("510300", Level.BLUE)]
    ]
    store.apply(decisions, now=T0, publisher=publisher)
    pubs = sorted(store.publications(), key=lambda p: p.level)
    assert [(p.level, p.lead_alert_id.rsplit(":", 1)[1]) for p in pubs] == [
        (1, "510300"),
        (4, "510100"),
    ]
    # 510100 + 123 + 00000 _ Beijing time _ serial
    assert {p.identifier for p in pubs} == {
        "51010012300000_20250107092000_0",
        "51010012300000_20250107092000_1",
    }
    members = store.publication_members(pubs[0].id)
    assert [a.region_code for _, a in members] == ["510300", "510400"]
    # the next version references the publication that carried the previous one
    (red,) = [a for a in store.active_alerts() if a.region_code == "510100"]
    later = T0 + timedelta(minutes=5)
    store.apply(
        [Decision(Action.CANCEL, red.alert_id, None, red, "withdrawn")],
        now=later,
        publisher=publisher,
    )
    cancel = store.publications()[0]
    assert cancel.msg_type == "Cancel"
    assert cancel.references == f"s@x,{pubs[1].identifier},2025-01-07T09:20:00+08:00"
    assert [e.action for e in store.audit(red.alert_id)] == ["issue", "cancel"]


def test_more_than_ten_publications_in_one_second_move_to_the_next(store: Store) -> None:
    from alerts.store import Publisher

    decisions = [
        Decision(
            Action.ISSUE,
            f"earthquake:usgs:q{i}:CN",
            dataclasses.replace(_warning(), subject=f"usgs:q{i}"),
            None,
            "x",
        )
        for i in range(12)
    ]
    store.apply(decisions, now=T0, publisher=Publisher())
    ids = sorted(p.identifier for p in store.publications())
    assert len(set(ids)) == 12
    assert ids[-1] == "00000000000000_20250107092001_1"


def test_upgrading_a_backbone_store_keeps_its_versions_and_deliveries(store_url: str) -> None:
    """0002 -> head: each old version becomes its own publication; deliveries follow."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from alerts.store.store import _alembic_config

    engine = create_engine(store_url)
    with engine.begin() as conn:
        cfg = _alembic_config(store_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(
            text(
                "INSERT INTO alerts (id, hazard, subject, region_code, region_name, state, level, "
                "current_version, created_at, updated_at) VALUES ('earthquake:usgs:x:CN', "
                "'earthquake', 'usgs:x', 'CN', '全国', 'active', 4, 1, :t, :t)"
            ),
            {"t": T0},
        )
        conn.execute(
            text(
                "INSERT INTO alert_versions (alert_id, version, identifier, action, msg_type, "
                "hazard, level, sent, reason, facts, notify, fanned_out_at) VALUES "
                "('earthquake:usgs:x:CN', 1, 'earthquake:usgs:x:CN#1', 'issue', 'Alert', "
                "'earthquake', 4, :t, 'r', '{}', :y, :t)"
            ),
            {"t": T0, "y": True},
        )
        vid = conn.execute(text("SELECT id FROM alert_versions")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO deliveries (key, version_id, alert_id, version, channel, recipient, "
                "language, subject, body, status, attempts, created_at, updated_at) VALUES "
                "('k', :v, 'earthquake:usgs:x:CN', 1, 'outbox', 'public', 'zh-CN', 's', 'b', "
                "'sent', 1, :t, :t)"
            ),
            {"v": vid, "t": T0},
        )
    engine.dispose()
    with Store(store_url) as upgraded:
        (pub,) = upgraded.publications()
        assert (pub.identifier, pub.lead_alert_id, pub.fanned_out_at) == (
            f"legacy-{vid}",
            "earthquake:usgs:x:CN",
            T0,
        )
        (delivery,) = upgraded.deliveries()
        assert delivery.publication_id == pub.id
        assert [a.status for a in upgraded.alerts()] == ["Actual"]
        assert upgraded.publications_to_fan_out() == []
