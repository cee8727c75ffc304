"""The ``alerts`` command: operators' and scripts' entry to the domain core."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts.config import ChannelSettings, ConfigError, Settings, load_settings
from alerts.model import utc_iso

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `alerts outbox | head`
        sys.stderr.close()
        return 0
    except (ConfigError, ValueError, OSError) as exc:
        print(f"alerts: error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alerts",
        description="Graded early-warning alert pipeline. Configuration: ALERTS_* environment "
        "variables and the YAML file named by ALERTS_CONFIG (see docs/operations.md).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    parse = sub.add_parser(
        "parse",
        help="parse a feed file and print one JSON object per record",
        description="Parse a recorded feed payload and print one JSON object per line. "
        "Quarantined records are reported on standard error.",
    )
    parse.add_argument("--source", required=True, choices=_source_names(), help="feed format")
    parse.add_argument("file", type=Path, help="payload file ('-' for standard input)")
    parse.add_argument(
        "--locations",
        type=Path,
        help="open-meteo only: the request's locations in order (JSON list or CSV id,lat,lon)",
    )
    parse.set_defaults(func=_cmd_parse)

    grade = sub.add_parser(
        "grade",
        help="grade the JSON lines of `alerts parse` and print one JSON line per warning",
        description="Read the JSON lines of `alerts parse` (earthquakes, weather and official "
        "warnings, mixed) and print one JSON line per warning, the highest level per (hazard, "
        "location, source event), each saying why.",
    )
    grade.add_argument("file", type=Path, help="JSON lines ('-' for standard input)")
    grade.add_argument(
        "--now", type=_iso_time, default=None, help="the issue time, ISO 8601 (default: now)"
    )
    grade.add_argument(
        "--rules",
        type=Path,
        default=None,
        help="folder with weather.yaml / earthquake.yaml / official.yaml "
        "(default: ALERTS_RULES_DIR, else the packaged rules)",
    )
    grade.set_defaults(func=_cmd_grade)

    pipe = sub.add_parser(
        "pipeline",
        help="run one full cycle on local files, without a scheduler",
        description="Parse, grade, reconcile with stored alerts, render and deliver, exactly as "
        "the DAG tasks do, against the configured store and channels. Prints a JSON summary.",
    )
    pipe.add_argument(
        "--now",
        required=True,
        type=_iso_time,
        help="the cycle's time, ISO 8601 (e.g. 2025-01-07T01:20:00Z)",
    )
    pipe.add_argument(
        "--input",
        required=True,
        action="append",
        type=_input,
        metavar="SOURCE=FILE",
        help="a payload to ingest, e.g. usgs=feed.geojson (repeatable)",
    )
    pipe.set_defaults(func=_cmd_pipeline)

    outlook = sub.add_parser(
        "outlook",
        help="print the 72-hour risk outlook (levels, near-threshold risks, seasonal risks)",
        description="Grade the next 72 hours of forecasts and print the risk outlook as JSON: "
        "per prefecture and province the highest level forecast for each hazard, the "
        "near-threshold risks and the seasonal risks of the day (see docs/outlook.md). By "
        "default the stored Open-Meteo forecasts (fetched first when older than 6 h); with "
        "--input, local Open-Meteo answers, offline.",
    )
    outlook.add_argument(
        "--now",
        required=True,
        type=_iso_time,
        help="the time it is issued for, ISO 8601 with a zone (e.g. 2026-07-19T23:00:00Z)",
    )
    outlook.add_argument(
        "--region", default=None, help="only this adcode prefix (51, 5133, 513300)"
    )
    outlook.add_argument(
        "--input",
        action="append",
        type=Path,
        default=None,
        metavar="FILE",
        help="an Open-Meteo forecast or air-quality answer to grade instead (repeatable)",
    )
    outlook.add_argument(
        "--locations",
        type=Path,
        default=None,
        help="with --input: the request's locations in order (JSON list or CSV id,lat,lon; "
        "default: feeds.locations_file, else each answer's prefecture by its coordinates)",
    )
    outlook.set_defaults(func=_cmd_outlook)

    outbox = sub.add_parser(
        "outbox",
        help="list messages delivered to the outbox, newest first",
        description="List messages delivered to the local outbox channel, newest first.",
    )
    outbox.add_argument("--json", action="store_true", help="one JSON object per line")
    outbox.add_argument("--limit", type=int, default=None, help="at most this many")
    outbox.set_defaults(func=_cmd_outbox)

    lst = sub.add_parser(
        "list",
        help="list alerts: id, hazard, level, regions, state, version, issued, expires",
        description="List alerts, most recently changed first.",
    )
    lst.add_argument("--active", action="store_true", help="only active alerts")
    lst.add_argument("--json", action="store_true", help="one JSON object per line")
    lst.set_defaults(func=_cmd_list)

    show = sub.add_parser(
        "show",
        help="show one alert: its versions and audit trail",
        description="Show an alert's versions (with their publications) and its audit trail.",
    )
    show.add_argument("id", help="alert id (from `alerts list`)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_cmd_show)

    capx = sub.add_parser(
        "cap",
        help="print the CAP 1.2 document of an alert version or a publication",
        description="Print the CAP 1.2 XML of an alert's version (default: the current one), "
        "or of a publication given by its identifier.",
    )
    capx.add_argument("id", help="alert id, or a publication identifier")
    capx.add_argument("--version", type=int, default=None, help="the alert's version")
    capx.set_defaults(func=_cmd_cap)

    cancel = sub.add_parser(
        "cancel",
        help="cancel (解除) an active alert by hand; audited",
        description="Cancel an active alert now, as an operator: a Cancel version and message "
        "are published, and the audit trail records who and why.",
    )
    cancel.add_argument("id", help="alert id")
    cancel.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    cancel.add_argument("--by", default=None, help="operator name (default: $USER)")
    cancel.set_defaults(func=_cmd_cancel)

    appr = sub.add_parser(
        "approvals",
        help="list publications waiting for a duty officer (orange and red weather)",
        description="List publications that wait for approval, oldest first, with how long "
        "they have waited and what happens on timeout.",
    )
    appr.add_argument("--json", action="store_true", help="one JSON object per line")
    appr.set_defaults(func=_cmd_approvals)

    ap = sub.add_parser(
        "approve",
        help="approve (or --reject) a publication waiting for a duty officer; audited",
        description="Decide a pending publication: approve it (optionally with your own "
        "wording of the advice, which replaces the packaged 防御指南 in Chinese messages) and "
        "deliver it, or reject it (it is never sent). Recorded in the audit trail.",
    )
    ap.add_argument("identifier", help="the publication's CAP identifier (`alerts approvals`)")
    ap.add_argument("--reject", action="store_true", help="reject instead of approving")
    ap.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    ap.add_argument("--guidance", default=None, help="your wording of the advice (防御指南)")
    ap.add_argument("--by", default=None, help="operator name (default: $USER)")
    ap.set_defaults(func=_cmd_approve)

    disp = sub.add_parser(
        "dispatch",
        help="run a delivery worker: send due ledger rows (several may run at once)",
        description="Claim and send due rows of the delivery ledger, most severe alert first. "
        "Workers may run in parallel (on PostgreSQL they claim with SKIP LOCKED). Rows a dead "
        "worker left mid-send are confirmed with the vendor before any resend.",
    )
    disp.add_argument(
        "--until-idle",
        action="store_true",
        help="keep going (waiting for retries) until no row is pending, retrying or being sent",
    )
    disp.add_argument(
        "--forever", action="store_true", help="keep polling the ledger (a long-running worker)"
    )
    disp.add_argument(
        "--interval", type=float, default=2.0, help="seconds between polls when idle (default 2)"
    )
    disp.add_argument(
        "--worker", default=None, help="a name for this worker (recorded as NAME@host/pid)"
    )
    disp.set_defaults(func=_cmd_dispatch)

    dl = sub.add_parser(
        "deliveries",
        help="list ledger rows (e.g. the dead letters) or count them by channel and state",
        description="List delivery ledger rows, oldest first, or with --summary count them by "
        "channel and state. Dead rows are dead letters: read their error, then fix the cause "
        "and `alerts resend --failed`.",
    )
    dl.add_argument(
        "--status",
        action="append",
        choices=("pending", "sending", "sent", "retry", "dead", "unknown"),
        help="only rows in this state (repeatable)",
    )
    dl.add_argument("--identifier", default=None, help="only this publication (CAP identifier)")
    dl.add_argument("--summary", action="store_true", help="counts by channel and state")
    dl.add_argument("--json", action="store_true", help="one JSON object per line")
    dl.add_argument("--limit", type=int, default=None, help="at most this many rows")
    dl.set_defaults(func=_cmd_deliveries)

    rs = sub.add_parser(
        "resend",
        help="send a publication again (all, the failed, or one recipient); audited",
        description="Create new ledger rows for a publication (keys ending in #rN) and "
        "dispatch them. --failed takes recipients whose latest row is dead or unknown.",
    )
    rs.add_argument("identifier", help="the publication's CAP identifier (`alerts show`)")
    who = rs.add_mutually_exclusive_group(required=True)
    who.add_argument("--all", action="store_true", help="everyone it was addressed to")
    who.add_argument("--failed", action="store_true", help="only dead or unknown deliveries")
    who.add_argument("--to", metavar="CHANNEL:ADDRESS", help="one recipient")
    rs.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    rs.add_argument("--by", default=None, help="operator name (default: $USER)")
    rs.set_defaults(func=_cmd_resend)

    st = sub.add_parser(
        "send-test",
        help="send a test message through a configured channel and show the vendor's answer",
        description="Send a short test message (marked 【测试】) through one configured "
        "channel account, outside the delivery ledger, and print each recipient's result.",
    )
    st.add_argument("--channel", required=True, help="channel name from the configuration")
    st.add_argument(
        "--recipient",
        action="append",
        default=None,
        help="send to this address instead of the configured recipients",
    )
    st.set_defaults(func=_cmd_send_test)

    rend = sub.add_parser(
        "render",
        help="print a message exactly as a channel would send it; size/limit on stderr",
        description="Render a stored alert (or publication), or the render inputs in a JSON "
        "file, for one configured channel: in the channel's template family and language, cut "
        "to its limit as the channel would. The message goes to standard output, its size and "
        "the channel's limit (in the channel's unit) to standard error. Nothing is sent. "
        "See docs/messages.md for the JSON shape.",
    )
    rend.add_argument("--channel", required=True, help="channel name from the configuration")
    rend.add_argument(
        "--lang",
        choices=["zh-CN", "en"],
        default=None,
        help="message language (default: the channel's language)",
    )
    rend.add_argument(
        "target",
        metavar="ALERT_JSON|ALERT_ID",
        help="a JSON file of render inputs, or an alert id / publication identifier in the store",
    )
    rend.set_defaults(func=_cmd_render)

    feeds = sub.add_parser(
        "feeds",
        help="show each feed's last success, last failure and failures in a row",
        description="Show the state of every feed fetched so far, so a stale or failing feed "
        "is visible: last attempt, last success, last change, last failure and its error.",
    )
    feeds.add_argument("--json", action="store_true", help="one JSON object per line")
    feeds.set_defaults(func=_cmd_feeds)

    replay = sub.add_parser(
        "replay",
        help="serve recorded payloads on loopback as if live (timestamps shifted to now)",
        description="Serve every file in DIR at http://HOST:PORT/<file name>, with its "
        "timestamps shifted so that its newest event is now. Point the feed URLs at it, e.g. "
        "ALERTS_FEEDS__USGS_URL=http://127.0.0.1:8765/china_dingri_4.5_day.geojson.",
    )
    replay.add_argument("dir", type=Path, help="folder of recorded payloads")
    replay.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    replay.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    replay.set_defaults(func=_cmd_replay)

    camp = sub.add_parser(
        "campaigns",
        help="publicity campaigns: list, show one, preview its message",
        description="Publicity campaigns (alerts/data/campaigns.yaml; see docs/campaigns.md): "
        "list them (running at a time, for an audience or a region), show one, or preview its "
        "message in a family and language, with the forecast of an outlook file.",
    )
    camp.add_argument(
        "--file",
        type=Path,
        default=None,
        help="a campaigns file (default: campaigns_file of the configuration, else the packaged "
        "one)",
    )
    camp_sub = camp.add_subparsers(dest="campaigns_command", required=True, metavar="ACTION")
    c_list = camp_sub.add_parser(
        "list",
        help="list campaigns with their period, audiences, places and next send",
        description="List campaigns by id: all of them, or with --at those whose period "
        "contains that time's (Beijing) date; --audience and --region narrow the list (a "
        "national campaign matches every region).",
    )
    c_list.add_argument(
        "--at", type=_iso_time, default=None, help="only campaigns running then (ISO 8601)"
    )
    c_list.add_argument("--audience", default=None, help="a publicity audience (tourists, ...)")
    c_list.add_argument("--region", default=None, help="an adcode prefix (51, 5132, 513225)")
    c_list.add_argument("--json", action="store_true", help="one JSON object per line")
    c_list.set_defaults(func=_cmd_campaigns_list)
    c_show = camp_sub.add_parser(
        "show",
        help="show one campaign as JSON, with its places and next sends",
        description="Print one campaign as JSON: its fields, the adcode prefixes it "
        "addresses, its places and its next three send times.",
    )
    c_show.add_argument("id", help="campaign id (from `alerts campaigns list`)")
    c_show.set_defaults(func=_cmd_campaigns_show)
    c_prev = camp_sub.add_parser(
        "preview",
        help="print a campaign's message as a send would render it; nothing is sent",
        description="Render a campaign's message for one family and language, as the campaigns "
        "DAG would at --at (default: its next send). With --outlook (the JSON printed by "
        "`alerts outlook`) the forecast lines for its places and regions are added.",
    )
    c_prev.add_argument("id", help="campaign id (from `alerts campaigns list`)")
    c_prev.add_argument(
        "--at", type=_iso_time, default=None, help="the send time (default: the next send)"
    )
    c_prev.add_argument("--family", choices=["short", "text", "markdown", "long"], default="text")
    c_prev.add_argument("--language", choices=["zh-CN", "en"], default="zh-CN")
    c_prev.add_argument("--outlook", type=Path, default=None, help="an outlook JSON file")
    c_prev.add_argument(
        "--json", action="store_true", help="print subject, body and the context as JSON"
    )
    c_prev.set_defaults(func=_cmd_campaigns_preview)

    db = sub.add_parser(
        "db", help="manage the alert store", description="Manage the alert store's schema."
    )
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_sub.add_parser(
        "upgrade",
        help="create or upgrade the schema to the newest revision",
        description="Run the Alembic migrations up to the newest revision.",
    )
    up.set_defaults(func=_cmd_db_upgrade)

    subs = sub.add_parser(
        "subscribers",
        help="manage subscribers: add, import, list, remove, export",
        description="Manage the subscribers who receive alerts on the configured channels "
        "(see docs/operations.md, Subscribers).",
    )
    subs_sub = subs.add_subparsers(dest="subscribers_command", required=True, metavar="ACTION")
    s_add = subs_sub.add_parser(
        "add",
        help="add one subscriber",
        description="Add one subscriber (an operator's entry). Fails when the channel and "
        "address are already subscribed; use `import` to update.",
    )
    s_add.add_argument("--name", required=True, help="who (a person or a group)")
    s_add.add_argument("--channel", required=True, help="a configured channel's name")
    s_add.add_argument(
        "--address", required=True, help="phone, openid, user id, e-mail, webhook URL or group"
    )
    s_add.add_argument("--language", default="zh-CN", choices=["zh-CN", "en"])
    s_add.add_argument(
        "--areas",
        required=True,
        help="region code prefixes (51, 510100) or circle:lat,lon,km, separated by |",
    )
    s_add.add_argument("--hazards", default="", help="hazards separated by | (default: all)")
    s_add.add_argument(
        "--audiences",
        default="",
        help="publicity audiences separated by | (tourists, students, ...; default: the public)",
    )
    s_add.add_argument("--min-level", default="blue", help="blue/yellow/orange/red (default blue)")
    s_add.add_argument("--quiet-start", default=None, help="local HH:MM (Asia/Shanghai)")
    s_add.add_argument("--quiet-end", default=None, help="local HH:MM (Asia/Shanghai)")
    s_add.set_defaults(func=_cmd_subscribers_add)
    s_imp = subs_sub.add_parser(
        "import",
        help="import (upsert) subscribers from a CSV file",
        description="Import subscribers from CSV with header "
        "name,channel,address,language,areas,hazards,min_level (optional quiet_start,quiet_end; "
        "lists inside a cell separated by |). Good rows are upserted by channel and address; "
        "bad rows are reported with their line number and left out. Prints a JSON summary; "
        "exits 2 when any row failed.",
    )
    s_imp.add_argument("file", type=Path, help="CSV file ('-' for standard input)")
    s_imp.set_defaults(func=_cmd_subscribers_import)
    s_list = subs_sub.add_parser(
        "list", help="list subscribers", description="List subscribers, active ones by default."
    )
    s_list.add_argument("--all", action="store_true", help="include deactivated subscribers")
    s_list.add_argument("--json", action="store_true", help="one JSON object per line")
    s_list.set_defaults(func=_cmd_subscribers_list)
    s_rm = subs_sub.add_parser(
        "remove",
        help="deactivate (or purge) a subscriber",
        description="Deactivate a subscriber, keeping the row and the reason; --purge deletes "
        "the row instead (erasure on request).",
    )
    s_rm.add_argument("channel", help="the subscriber's channel name")
    s_rm.add_argument("address", help="the subscriber's address")
    s_rm.add_argument("--reason", default="removed by operator", help="why (kept with the row)")
    s_rm.add_argument("--purge", action="store_true", help="delete the row")
    s_rm.set_defaults(func=_cmd_subscribers_remove)
    s_exp = subs_sub.add_parser(
        "export",
        help="export active subscribers as CSV (the import format)",
        description="Write the active subscribers as CSV in the import format.",
    )
    s_exp.add_argument(
        "file", nargs="?", default="-", help="output file (default '-': standard output)"
    )
    s_exp.set_defaults(func=_cmd_subscribers_export)

    cfg = sub.add_parser(
        "config",
        help="print the effective configuration as JSON",
        description="Validate and print the effective configuration.",
    )
    cfg.set_defaults(func=_cmd_config)
    return p


def _iso_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone (Z or +08:00): {text!r}")
    return value.astimezone(UTC)


def _input(text: str) -> tuple[str, Path]:
    source, sep, file = text.partition("=")
    if not sep or not source or not file:
        raise argparse.ArgumentTypeError(f"expected SOURCE=FILE, got {text!r}")
    return source, Path(file)


def _source_names() -> list[str]:
    from alerts.feeds import SOURCES

    return sorted(SOURCES)


def _cmd_parse(args: argparse.Namespace) -> int:
    from alerts.feeds import parser_for
    from alerts.feeds.base import to_records
    from alerts.feeds.cap import looks_like_atom

    body = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
    if args.locations is not None:
        if args.source != "open-meteo":
            raise ValueError("--locations applies to --source open-meteo only")
        from alerts.feeds import openmeteo

        result = openmeteo.parse(body, openmeteo.load_locations(args.locations))
    elif args.source == "cap" and looks_like_atom(body):
        from alerts.feeds import cap

        for entry in cap.parse_atom(body):
            print(json.dumps(entry.as_dict(), ensure_ascii=False))
        return 0
    else:
        result = parser_for(args.source)(body)
    for record in to_records(result.frame):
        print(json.dumps(record, ensure_ascii=False))
    for q in result.quarantined:
        print(f"alerts: quarantined {q.record_key or '?'}: {q.reason}", file=sys.stderr)
    return 0


def _cmd_grade(args: argparse.Namespace) -> int:
    from alerts.criteria import load_rules
    from alerts.grading import grade_records, warning_record
    from alerts.regions import load_regions

    text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text(encoding="utf-8")
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {number}: not JSON: {exc}") from None
    settings = None if args.rules else load_settings()
    rules = load_rules(args.rules or (settings.rules_dir if settings else None))
    regions_file = settings.regions_file if settings else None
    regions = load_regions(str(regions_file) if regions_file else None)
    now = args.now or datetime.now(UTC)
    for w in grade_records(records, rules, regions, now):
        print(json.dumps(warning_record(w), ensure_ascii=False))
    return 0


def _cmd_pipeline(args: argparse.Namespace) -> int:
    from alerts.pipeline import Runtime, run_cycle

    rt = Runtime.from_settings(load_settings())
    try:
        summary = run_cycle(rt, args.input, now=args.now)
    finally:
        rt.close()
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def _cmd_outlook(args: argparse.Namespace) -> int:
    from alerts.outlook import compute, outlook_from_files

    settings = load_settings()
    if args.input:
        result = outlook_from_files(
            settings, args.input, args.now, region=args.region, locations=args.locations
        )
    else:
        if args.locations is not None:
            raise ValueError("--locations applies with --input only")
        from alerts.feeds.fetch import FetchError
        from alerts.pipeline import runtime

        with runtime(settings) as rt:
            try:
                result = compute(rt, args.now, region=args.region)
            except FetchError as exc:  # no forecast to grade: an error, not a traceback
                raise ValueError(str(exc)) from None
    print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    return 0


def _cmd_outbox(args: argparse.Namespace) -> int:
    from alerts.channels.outbox import outbox_records
    from alerts.store import Store

    settings = load_settings()
    with Store(settings.resolved_store_url) as store:
        messages = outbox_records(store, limit=args.limit)
    for m in messages:
        if args.json:
            print(json.dumps(m, ensure_ascii=False))
        else:
            print(
                f"── {m['delivered_at']}  {m['channel']} -> {m['recipient']}  "
                f"{m['alert_id']} v{m['version']}"
            )
            print(m["body"])
    if not messages and not args.json:
        print("(outbox is empty)")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from alerts.model import Hazard, Level
    from alerts.store import Store

    with Store(load_settings().resolved_store_url) as store:
        alerts = store.alerts(active_only=args.active)
        firsts = {v.alert_id: v.sent for v in store.alert_versions() if v.version == 1}
    for a in alerts:
        row = {
            "id": a.id,
            "hazard": a.hazard,
            "level": Level(a.level).colour,
            "regions": [a.region_code],
            "region_names": [a.region_name],
            "state": a.state,
            "status": a.status,
            "version": a.current_version,
            "issued": utc_iso(firsts.get(a.id)),
            "expires": utc_iso(a.expires_at),
        }
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(
                f"{a.id:<48} {Hazard(a.hazard).zh}{Level(a.level).zh:<4} {a.state:<9} "
                f"v{a.current_version:<3} {a.region_name}  expires {row['expires']}"
            )
    if not alerts and not args.json:
        print("(no alerts)")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from alerts.model import Level
    from alerts.store import Store

    with Store(load_settings().resolved_store_url) as store:
        alert = store.alert(args.id)
        if alert is None:
            raise ValueError(f"no alert {args.id!r} (see `alerts list`)")
        versions = store.alert_versions(args.id)
        pubs = store.publications_by_id(v.publication_id for v in versions if v.publication_id)
        audit = store.audit(args.id)
    doc: dict[str, Any] = {
        "id": alert.id,
        "hazard": alert.hazard,
        "region": {"code": alert.region_code, "name": alert.region_name},
        "state": alert.state,
        "level": Level(alert.level).colour,
        "versions": [
            {
                "version": v.version,
                "action": v.action,
                "msg_type": v.msg_type,
                "level": Level(v.level).colour,
                "sent": utc_iso(v.sent),
                "expires": utc_iso(v.expires),
                "rule": v.rule_id,
                "ruleset_version": v.rule_set_version,
                "reason": v.reason,
                "publication": pubs[v.publication_id].identifier if v.publication_id else None,
                "notified": v.notify,
            }
            for v in versions
        ],
        "audit": [
            {
                "at": utc_iso(e.at),
                "actor": e.actor,
                "action": e.action,
                "version": e.version,
                "reason": e.reason,
                "details": e.details,
            }
            for e in audit
        ],
    }
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0
    print(f"{alert.id}  {alert.region_name}  {alert.state}  {doc['level']}")
    for v in doc["versions"]:
        print(
            f"  v{v['version']} {v['sent']} {v['action']:<9} {v['level']:<6} "
            f"{v['publication'] or '-'}  {v['reason']}"
        )
    print("audit:")
    for e in doc["audit"]:
        print(f"  {e['at']} {e['actor']:<16} {e['action']:<9} {e['reason']}")
    return 0


def _cmd_cap(args: argparse.Namespace) -> int:
    from alerts.pipeline import runtime

    with runtime() as rt:
        sys.stdout.write(rt.cap_document(args.id, version=args.version).decode("utf-8"))
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    import getpass

    from alerts.pipeline import cancel_alert, publish, runtime

    actor = f"operator:{args.by or getpass.getuser()}"
    with runtime() as rt:
        version_id = cancel_alert(rt, args.id, reason=args.reason, actor=actor)
        sent = publish(rt)
    print(
        json.dumps(
            {
                "cancelled": args.id,
                "version_id": version_id,
                "actor": actor,
                "delivered": sent.delivered,
            },
            ensure_ascii=False,
        )
    )
    return 0


def _cmd_approvals(args: argparse.Namespace) -> int:
    from alerts.approval import plan
    from alerts.pipeline import runtime

    with runtime() as rt:
        pending = rt.store.pending_approvals()
        now = rt.clock()
        for pub in pending:
            p = plan(rt.settings.approval, pub.level, pub.kind)
            record = {
                "identifier": pub.identifier,
                "kind": pub.kind,
                "alert_id": pub.lead_alert_id,
                "hazard": pub.hazard,
                "level": pub.level,
                "action": pub.action,
                "subject": pub.subject,
                "waiting_min": round((now - pub.sent).total_seconds() / 60, 1),
                "timeout_min": p.timeout_min,
                "on_timeout": p.on_timeout,
            }
            if args.json:
                print(json.dumps(record, ensure_ascii=False))
            else:
                then = f"{p.on_timeout} after {p.timeout_min:g} min" if p.timeout_min else "waits"
                print(
                    f"{pub.identifier}  {pub.hazard} level {pub.level} {pub.action}  "
                    f"{pub.lead_alert_id}  waiting {record['waiting_min']} min ({then})"
                )
    if not pending and not args.json:
        print("(nothing waits for approval)")
    return 0


def _cmd_approve(args: argparse.Namespace) -> int:
    import getpass

    from alerts.pipeline import publish, runtime

    actor = f"operator:{args.by or getpass.getuser()}"
    with runtime() as rt:
        pub = rt.store.publication(args.identifier)
        if pub is None:
            raise ValueError(f"no publication {args.identifier!r} (see `alerts approvals`)")
        if pub.approval != "pending":
            raise ValueError(
                f"{args.identifier} does not wait for approval (it is {pub.approval!r})"
            )
        rt.store.decide_approval(
            pub.id,
            approve=not args.reject,
            actor=actor,
            reason=args.reason,
            now=rt.clock(),
            guidance=args.guidance,
        )
        sent = publish(rt)
    print(
        json.dumps(
            {
                "identifier": args.identifier,
                "decision": "rejected" if args.reject else "approved",
                "actor": actor,
                "delivered": sent.delivered,
            },
            ensure_ascii=False,
        )
    )
    return 0


def _cmd_dispatch(args: argparse.Namespace) -> int:
    import time

    from alerts.delivery import DispatchSummary, worker_id
    from alerts.pipeline import dispatch_due, runtime

    worker = worker_id(args.worker)
    total = DispatchSummary()
    with runtime() as rt:
        while True:
            done = dispatch_due(rt, worker=worker)
            total.add(done)
            if done.sent or done.dead or done.unknown or done.confirmed:
                print(json.dumps({"worker": worker, **done.counts()}), flush=True)
            if not (args.until_idle or args.forever):
                break
            busy, next_retry = rt.store.open_work()
            if args.until_idle and not busy and next_retry is None:
                break
            wait = args.interval
            if next_retry is not None:
                wait = min(wait, max((next_retry - rt.clock()).total_seconds(), 0.0))
            time.sleep(max(wait, 0.05))
    print(json.dumps({"worker": worker, "total": total.counts()}))
    return 0


def _cmd_deliveries(args: argparse.Namespace) -> int:
    from alerts.delivery import delivery_record
    from alerts.store import Store

    with Store(load_settings().resolved_store_url) as store:
        pub_id = None
        if args.identifier:
            pub = store.publication(args.identifier)
            if pub is None:
                raise ValueError(f"no publication {args.identifier!r}")
            pub_id = pub.id
        if args.summary:
            counts = store.delivery_counts(pub_id)
            table: dict[str, dict[str, int]] = {}
            for (channel, status), n in sorted(counts.items()):
                table.setdefault(channel, {})[status] = n
            print(json.dumps(table, ensure_ascii=False, indent=None if args.json else 2))
            return 0
        rows = store.deliveries(args.status, publication_id=pub_id, limit=args.limit)
    for d in rows:
        record = delivery_record(d)
        if args.json:
            print(json.dumps(record, ensure_ascii=False))
        else:
            error = f"  {d.error_code}: {d.error_text}" if d.error_code else ""
            print(
                f"{d.id:>6}  {d.status:<7} {d.channel} -> {d.recipient}  "
                f"attempts {d.attempts}  {d.key.split('/', 1)[0]}{error}"
            )
    if not rows and not args.json:
        print("(no deliveries)")
    return 0


def _cmd_resend(args: argparse.Namespace) -> int:
    import getpass

    from alerts.pipeline import publish, runtime

    channel = recipient = None
    if args.to:
        channel, sep, recipient = args.to.partition(":")
        if not sep or not channel or not recipient:
            raise ValueError("--to: CHANNEL:ADDRESS, e.g. sms:13800138000")
    mode = "all" if args.all else "failed" if args.failed else "one"
    actor = f"operator:{args.by or getpass.getuser()}"
    with runtime() as rt:
        pub = rt.store.publication(args.identifier)
        if pub is None:
            raise ValueError(f"no publication {args.identifier!r} (see `alerts show ALERT_ID`)")
        created = rt.store.resend(
            pub.id,
            mode=mode,
            channel=channel,
            recipient=recipient,
            actor=actor,
            reason=args.reason,
            now=rt.clock(),
        )
        sent = publish(rt)
    print(
        json.dumps(
            {
                "identifier": args.identifier,
                "mode": mode,
                "deliveries": created,
                "actor": actor,
                "delivered": sent.delivered,
            },
            ensure_ascii=False,
        )
    )
    return 0


def _configured_channel(settings: Settings, name: str) -> ChannelSettings:
    """The channel of that name, or an error listing the configured ones."""
    for channel in settings.channels:
        if channel.name == name:
            return channel
    names = ", ".join(c.name for c in settings.channels)
    raise ValueError(f"no channel {name!r} configured (configured: {names})")


def _cmd_send_test(args: argparse.Namespace) -> int:
    import uuid

    from alerts.channels import Message, Recipient, build_channel
    from alerts.pipeline import runtime

    with runtime() as rt:
        settings = _configured_channel(rt.settings, args.channel)
        channel = build_channel(settings, store=rt.store, clock=rt.clock)
        now = rt.clock()
        body = (
            "【测试】预警发布渠道测试\n"
            f"这是一条测试消息，用于检查渠道 {settings.name}（{settings.type}）是否可用。"
            f"发送时间：{now:%Y-%m-%d %H:%M:%S}Z。\n"
            f"详情：{rt.settings.details_url}"
        )
        tag = uuid.uuid4().hex[:12]
        message = Message(
            f"test:{tag}",
            1,
            "【测试】预警发布渠道测试",
            body,
            settings.language,
            identifier=f"test-{tag}",
        )
        recipients = [
            Recipient(r, f"test-{tag}/{settings.name}/{r}")
            for r in (args.recipient or settings.recipients)
        ]
        results = channel.send(message, recipients)
    for r in results:
        print(
            json.dumps(
                {
                    "recipient": r.key.rsplit("/", 1)[-1],
                    "ok": r.ok,
                    "retryable": r.retryable,
                    "provider_message_id": r.provider_message_id,
                    "error_code": r.error_code,
                    "error_text": r.error_text,
                },
                ensure_ascii=False,
            )
        )
    return 0 if results and all(r.ok for r in results) else 1


def _cmd_render(args: argparse.Namespace) -> int:
    from alerts.bulletins import bulletin_family
    from alerts.channels import Message, build_channel
    from alerts.delivery import render_for_channel
    from alerts.pipeline import runtime
    from alerts.render import family_for

    with runtime() as rt:
        settings = _configured_channel(rt.settings, args.channel)
        channel = build_channel(settings, store=rt.store, clock=rt.clock)
        family = family_for(settings)
        language = args.lang or settings.language
        path = Path(args.target)
        if path.is_file() or path.suffix.lower() == ".json":
            inputs = _render_inputs(path)
            rendered = rt.renderer.render(**inputs, family=family, language=language)
            ids = (inputs["alert_id"], inputs["version"], inputs["identifier"])
        else:
            pub = _publication_of(rt, args.target)
            members = rt.store.publication_members(pub.id)
            rendered = render_for_channel(rt.renderer, pub, members, settings, language=language)
            ids = (pub.lead_alert_id, pub.lead_version, pub.identifier)
            if pub.kind != "alert":
                family = bulletin_family(settings)
    message = Message(
        ids[0],
        ids[1],
        rendered.subject,
        rendered.body,
        language,
        identifier=ids[2],
        html=rendered.html,
        images=rendered.images,
    )
    preview = getattr(channel, "preview", None)
    if preview is None:
        raise ValueError(f"channel type {settings.type} cannot preview messages")
    text, size, limit = preview(message)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
    shown = "-" if limit is None else str(limit)
    print(
        f"{size}/{shown}  ({settings.name}: {settings.type}, {family} family, {language})",
        file=sys.stderr,
    )
    if limit is not None and size > limit:
        print(
            f"alerts: {settings.name}: the message cannot be cut to the limit; "
            "the channel would not send it (too-long)",
            file=sys.stderr,
        )
        return 1
    return 0


def _render_inputs(path: Path) -> dict[str, Any]:
    """The keyword arguments of Renderer.render from an ALERT_JSON file (docs/messages.md)."""
    from alerts.model import Level

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object")
    missing = [k for k in ("hazard", "level", "facts", "sent") if k not in doc]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)} (see docs/messages.md)")
    unknown = set(doc) - {
        "hazard", "level", "action", "facts", "regions", "sent", "expires",
        "alert_id", "version", "status", "identifier",
    }  # fmt: skip
    if unknown:
        raise ValueError(f"{path}: unknown keys {', '.join(sorted(unknown))}")
    facts = doc["facts"]
    if not isinstance(facts, dict):
        raise ValueError(f"{path}: facts must be an object")
    level = Level.parse(doc["level"])
    regions = None
    if doc.get("regions") is not None:
        if not isinstance(doc["regions"], list) or not all(
            isinstance(r, dict) for r in doc["regions"]
        ):
            raise ValueError(f"{path}: regions must be a list of objects")
        regions = [
            {
                "code": r.get("code"),
                "name": r.get("name"),
                "level": Level.parse(r.get("level", level)),
                "facts": r.get("facts", facts),
            }
            for r in doc["regions"]
        ]
    code = (regions[0]["code"] if regions else None) or facts.get("location_id") or "preview"

    def when(key: str) -> datetime | None:
        value = doc.get(key)
        if value is None:
            return None
        try:
            return _iso_time(str(value))
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"{path}: {key}: {exc}") from None

    sent = when("sent")
    if sent is None:
        raise ValueError(f"{path}: sent: required")
    return {
        "alert_id": str(doc.get("alert_id") or f"{doc['hazard']}:preview:{code}"),
        "version": int(doc.get("version", 1)),
        "action": str(doc.get("action", "issue")),
        "hazard": str(doc["hazard"]),
        "level": int(level),
        "facts": facts,
        "sent": sent,
        "expires": when("expires"),
        "regions": regions,
        "status": str(doc.get("status", "Actual")),
        "identifier": doc.get("identifier"),
    }


def _publication_of(rt: Any, ident: str) -> Any:
    """The publication with this identifier, or the latest one of this alert."""
    pub = rt.store.publication(ident)
    if pub is not None:
        return pub
    alert = rt.store.alert(ident)
    if alert is None:
        raise ValueError(
            f"no alert or publication {ident!r} in the store, and no such JSON file "
            "(see `alerts list`)"
        )
    published = [v for v in rt.store.alert_versions(ident) if v.publication_id is not None]
    if not published:
        raise ValueError(f"alert {ident} has no published version")
    latest = max(published, key=lambda v: v.version)
    assert latest.publication_id is not None
    return rt.store.publications_by_id([latest.publication_id])[latest.publication_id]


def _cmd_feeds(args: argparse.Namespace) -> int:
    from alerts.store import Store

    with Store(load_settings().resolved_store_url) as store:
        states = store.feed_states()
    for st in states:
        row = {
            "feed": st.feed,
            "source": st.source,
            "url": st.url,
            "last_attempt_at": utc_iso(st.last_attempt_at),
            "last_success_at": utc_iso(st.last_success_at),
            "last_change_at": utc_iso(st.last_change_at),
            "last_failure_at": utc_iso(st.last_failure_at),
            "consecutive_failures": st.consecutive_failures,
            "last_error": st.last_error,
        }
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            flag = f"FAILING x{st.consecutive_failures}" if st.consecutive_failures else "ok"
            print(
                f"{st.feed:<28} {flag:<12} success {row['last_success_at'] or '-':<28} "
                f"change {row['last_change_at'] or '-'}"
            )
            if st.consecutive_failures:
                print(f"    {row['last_failure_at']}: {st.last_error}")
    if not states and not args.json:
        print("(no feed fetched yet)")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from alerts.replay import ReplayServer

    if not args.dir.is_dir():
        raise ValueError(f"{args.dir} is not a folder")
    server = ReplayServer(args.dir, host=args.host, port=args.port)
    for item in server.files.values():
        shifted = f"shifted {item.shift}" if item.kind != "other" else "served as recorded"
        print(f"{server.url}/{item.name}  ({item.kind}, {shifted})")
    for name, why in server.skipped.items():
        print(f"  note: {name}: {why}", file=sys.stderr)
    print(f"replaying {len(server.files)} payloads on {server.url}; Ctrl-C to stop", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0


def _campaign_catalog(args: argparse.Namespace) -> Any:
    from alerts.campaigns import load_catalog

    return load_catalog(args.file or load_settings().campaigns_file)


def _cmd_campaigns_list(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from alerts.campaigns import filter_campaigns, next_send, region_prefixes, select_campaigns

    catalog = _campaign_catalog(args)
    if args.audience is not None and args.audience not in catalog.calendar.audiences:
        raise ValueError(
            f"unknown audience {args.audience!r} (known: {', '.join(catalog.calendar.audiences)})"
        )
    if args.at is not None:
        chosen = select_campaigns(catalog, when=args.at, audience=args.audience, region=args.region)
    else:
        chosen = filter_campaigns(catalog, audience=args.audience, region=args.region)
    now = args.at or datetime.now(UTC)
    tz = catalog.calendar.timezone
    for c in chosen:
        upcoming = next_send(catalog, c, now)
        prefixes = region_prefixes(catalog, c)
        row = {
            "id": c.id,
            "title_zh": c.title_zh,
            "title_en": c.title_en,
            "period": c.period,
            "audiences": list(c.audiences),
            "places": list(c.places),
            "regions": prefixes,
            "national": not prefixes,
            "hazards": [h.value for h in c.hazards],
            "channels": list(c.channels),
            "next_send": utc_iso(upcoming),
        }
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
            continue
        where = "national" if not prefixes else f"{len(c.places)} places, {len(prefixes)} prefixes"
        shown = upcoming.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") if upcoming else "-"
        print(
            f"{c.id:<26} {c.period or 'own dates':<22} {','.join(c.audiences):<22} "
            f"{where:<24} next {shown}  {c.title_zh}"
        )
    if not chosen and not args.json:
        print("(no campaign)")
    return 0


def _cmd_campaigns_show(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from alerts.campaigns import next_send, region_prefixes

    catalog = _campaign_catalog(args)
    c = catalog.campaign(args.id)
    doc = c.model_dump(mode="json")
    doc["recurring"] = [f"{r.start[0]:02d}-{r.start[1]:02d}..{r.end[0]:02d}-{r.end[1]:02d}"
                        for r in c.recurring]  # fmt: skip
    doc["dated"] = [f"{r.start}..{r.end}" for r in c.dated]
    doc["sends"] = {"days": list(c.sends.days), "at": c.sends.at.strftime("%H:%M")}
    doc["region_prefixes"] = region_prefixes(catalog, c)
    doc["places"] = [catalog.places[p].model_dump(mode="json") for p in c.places]
    sends: list[str | None] = []
    after = datetime.now(UTC)
    for _ in range(3):
        upcoming = next_send(catalog, c, after)
        if upcoming is None:
            break
        sends.append(utc_iso(upcoming))
        after = upcoming + timedelta(seconds=1)
    doc["next_sends"] = sends
    print(json.dumps(doc, ensure_ascii=False, indent=2))
    return 0


def _cmd_campaigns_preview(args: argparse.Namespace) -> int:
    from alerts.campaigns import campaign_context, next_send, render_campaign
    from alerts.pipeline import renderer_for

    catalog = _campaign_catalog(args)
    c = catalog.campaign(args.id)
    when = args.at or next_send(catalog, c, datetime.now(UTC))
    if when is None:
        raise ValueError(f"campaign {c.id} has no send to come: give --at")
    outlook = None
    if args.outlook is not None:
        try:
            outlook = json.loads(args.outlook.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{args.outlook}: not JSON: {exc}") from None
    renderer = renderer_for(load_settings())
    try:
        context = campaign_context(catalog, c, when=when, outlook=outlook)
    except ValueError as exc:
        raise ValueError(f"{args.outlook}: {exc}" if args.outlook else str(exc)) from None
    rendered = render_campaign(renderer, context, family=args.family, language=args.language)
    if args.json:
        doc = {
            "campaign": c.id,
            "at": utc_iso(when),
            "family": args.family,
            "language": args.language,
            "subject": rendered.subject,
            "body": rendered.body,
            "context": context,
        }
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(rendered.body)
    return 0


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from alerts.store import Store

    settings = load_settings()
    with Store(settings.resolved_store_url, migrate=True) as store:
        print(
            f"store {store.engine.url.render_as_string(hide_password=True)} "
            f"at revision {store.revision()}"
        )
    return 0


def _cmd_subscribers_add(args: argparse.Namespace) -> int:
    from alerts.store import Store
    from alerts.subscribers import validate

    settings = load_settings()
    sub = validate(
        {
            "name": args.name,
            "channel": args.channel,
            "address": args.address,
            "language": args.language,
            "areas": args.areas,
            "hazards": args.hazards,
            "audiences": args.audiences,
            "min_level": args.min_level,
            "quiet_start": args.quiet_start,
            "quiet_end": args.quiet_end,
            "source": "operator",
        },
        {c.name: c.type for c in settings.channels},
    )
    with Store(settings.resolved_store_url) as store:
        sid = store.add_subscriber(sub.model_dump())
    print(json.dumps({"added": sid, "channel": sub.channel, "address": sub.address}))
    return 0


def _cmd_subscribers_import(args: argparse.Namespace) -> int:
    from alerts.store import Store
    from alerts.subscribers import import_csv

    settings = load_settings()
    text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text(encoding="utf-8")
    with Store(settings.resolved_store_url) as store:
        result = import_csv(store, text, {c.name: c.type for c in settings.channels})
    for line, reason in result.errors:
        print(f"alerts: error: line {line}: {reason}", file=sys.stderr)
    print(json.dumps(result.summary(), ensure_ascii=False))
    return 2 if result.errors else 0


def _cmd_subscribers_list(args: argparse.Namespace) -> int:
    from alerts.model import Level
    from alerts.store import Store

    with Store(load_settings().resolved_store_url) as store:
        frame = store.subscribers_frame(active_only=not args.all)
    for row in frame.to_dict("records"):
        record = {
            "id": int(row["id"]),
            "name": row["name"],
            "channel": row["channel"],
            "address": row["address"],
            "language": row["language"],
            "areas": row["areas"],
            "hazards": row["hazards"],
            "min_level": Level(int(row["min_level"])).colour,
            "quiet_start": row["quiet_start"],
            "quiet_end": row["quiet_end"],
            "active": bool(row["active"]),
            "source": row["source"],
            "deactivated_reason": row["deactivated_reason"],
        }
        if args.json:
            print(json.dumps(record, ensure_ascii=False))
        else:
            quiet = f" quiet {row['quiet_start']}-{row['quiet_end']}" if row["quiet_start"] else ""
            state = "" if record["active"] else f"  (inactive: {row['deactivated_reason']})"
            print(
                f"{record['id']:>5}  {row['channel']} -> {row['address']}  {row['name']}  "
                f"{'|'.join(row['areas'])}  {'|'.join(row['hazards']) or 'all'}  "
                f">= {record['min_level']}  {row['language']}{quiet}{state}"
            )
    if frame.empty and not args.json:
        print("(no subscribers)")
    return 0


def _cmd_subscribers_remove(args: argparse.Namespace) -> int:
    from alerts.store import Store

    with Store(load_settings().resolved_store_url) as store:
        if args.purge:
            done = store.remove_subscriber(args.channel, args.address)
        else:
            done = store.deactivate_subscriber(args.channel, args.address, args.reason)
    if not done:
        raise ValueError(f"no subscriber {args.address!r} on channel {args.channel!r}")
    print(
        json.dumps({"removed" if args.purge else "deactivated": f"{args.channel} {args.address}"})
    )
    return 0


def _cmd_subscribers_export(args: argparse.Namespace) -> int:
    from alerts.store import Store
    from alerts.subscribers import export_csv

    with Store(load_settings().resolved_store_url) as store:
        text = export_csv(store.subscribers_frame(active_only=True))
    if args.file == "-":
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text, encoding="utf-8")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    settings = load_settings()
    data = settings.model_dump(mode="json")
    data["resolved_store_url"] = settings.resolved_store_url
    print(json.dumps(data, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
