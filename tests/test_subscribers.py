"""Subscribers: validation, CSV import/export (store on both backends), and matching."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alerts.cli import main
from alerts.model import Hazard, Level
from alerts.store import Store
from alerts.subscribers import export_csv, import_csv, match, parse_csv, validate

NOON = datetime(2025, 7, 1, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
NIGHT = datetime(2025, 7, 1, 15, 30, tzinfo=UTC)  # 23:30 local
EARLY = datetime(2025, 6, 30, 21, 0, tzinfo=UTC)  # 05:00 local
TYPES = {"outbox": "outbox", "sms-main": "sms", "mail": "email", "hook": "webhook"}

CSV = """name,channel,address,language,areas,hazards,min_level
Chengdu office,sms-main,13800000001,zh-CN,510100,rainstorm|gale,yellow
Sichuan desk,mail,desk@example.org,en,51,,blue
Bad phone,sms-main,not-a-phone,zh-CN,51,,blue
Bad area,outbox,ops,zh-CN,5x|51,,blue
Bad hazard,outbox,ops2,zh-CN,51,volcano,blue
Circle,hook,https://hooks.example.org/a,zh-CN,"circle:30.6,104.1,50",earthquake,orange
"""


@pytest.fixture
def env(alerts_env: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ALERTS_STORE_URL", store_url)
    channels = [{"name": n, "type": t} for n, t in TYPES.items()]
    config = alerts_env.parent / "config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    import yaml

    config.write_text(yaml.safe_dump({"channels": channels}), encoding="utf-8")
    monkeypatch.setenv("ALERTS_CONFIG", str(config))
    return store_url


# -- validation and CSV -----------------------------------------------------------


def test_validation_reasons() -> None:
    ok = validate(
        {"name": "a", "channel": "sms-main", "address": "+86 138-0000-0001", "areas": "51"}, TYPES
    )
    assert ok.address == "+8613800000001" and ok.hazards == [] and ok.min_level == 1
    bad = [
        ({"channel": "SMS main"}, "channel"),
        ({"channel": "mail", "address": "nobody"}, "e-mail"),
        ({"channel": "hook", "address": "ftp://x"}, "http(s)"),
        ({"areas": "5"}, "prefix"),
        ({"areas": "circle:95,104,10"}, "latitude"),
        ({"areas": "circle:30,104,0"}, "radius"),
        ({"hazards": "volcano"}, "volcano"),
        ({"min_level": "purple"}, "purple"),
        ({"quiet_start": "22:00"}, "both"),
        ({"quiet_start": "25:00", "quiet_end": "06:00"}, "HH:MM"),
        ({"language": "fr"}, "language"),
    ]
    for change, words in bad:
        data = {"name": "a", "channel": "outbox", "address": "x", "areas": "51", **change}
        with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
            validate(data, TYPES)
    # unknown channel names are checked by pattern only
    assert validate({"name": "a", "channel": "other", "address": "x y", "areas": "51"}, TYPES)


def test_parse_csv_reports_line_numbers() -> None:
    good, errors = parse_csv(CSV, TYPES)
    assert [s.name for s in good] == ["Chengdu office", "Sichuan desk", "Circle"]
    assert [line for line, _ in errors] == [4, 5, 6]
    assert "phone" in errors[0][1] and "5x" in errors[1][1] and "volcano" in errors[2][1]
    assert good[0].hazards == ["rainstorm", "gale"] and good[0].min_level == Level.YELLOW
    with pytest.raises(ValueError, match="missing columns"):
        parse_csv("name,channel\na,b\n", TYPES)


def test_import_upsert_and_export_round_trip(store_url: str) -> None:
    with Store(store_url) as store:
        result = import_csv(store, CSV, TYPES)
        assert (result.imported, result.updated, len(result.errors)) == (3, 0, 3)
        frame = store.subscribers_frame()
        assert set(frame["name"]) == {"Chengdu office", "Sichuan desk", "Circle"}
        assert "not-a-phone" not in set(frame["address"])  # nothing of a bad row

        again = CSV.replace("rainstorm|gale,yellow", "rainstorm,red") + (
            "Quiet,outbox,night,zh-CN,4403,,blue\n"
        )
        text = again.replace(
            "name,channel,address,language,areas,hazards,min_level",
            "name,channel,address,language,areas,hazards,min_level,quiet_start,quiet_end",
        )
        text = text.replace("4403,,blue\n", "4403,,blue,22:00,06:00\n")
        text = "\n".join(
            line if line.count(",") >= 8 or line.startswith("name") else line + ",,"
            for line in text.splitlines()
        )
        result = import_csv(store, text, TYPES)
        assert (result.imported, result.updated) == (1, 3), result.errors
        frame = store.subscribers_frame()
        assert len(frame) == 4
        chengdu = frame.set_index("name").loc["Chengdu office"]
        assert chengdu["hazards"] == ["rainstorm"] and chengdu["min_level"] == Level.RED
        quiet = frame.set_index("name").loc["Quiet"]
        assert (quiet["quiet_start"], quiet["quiet_end"]) == ("22:00", "06:00")

        exported = export_csv(frame)
        good, errors = parse_csv(exported, TYPES)
        assert errors == []
        assert len(good) == 4
        before = store.subscribers_frame().drop(columns=["updated_at"])
        result = import_csv(store, exported, TYPES)
        assert (result.imported, result.updated) == (0, 4)
        after = store.subscribers_frame().drop(columns=["updated_at"])
        cols = ["name", "channel", "address", "language", "areas", "hazards", "min_level"]
        pd.testing.assert_frame_equal(
            before[cols + ["quiet_start", "quiet_end"]], after[cols + ["quiet_start", "quiet_end"]]
        )

        assert store.deactivate_subscriber("outbox", "night", "asked to stop")
        frame = store.subscribers_frame()
        row = frame.set_index("address").loc["night"]
        assert not row["active"] and row["deactivated_reason"] == "asked to stop"
        assert len(store.subscribers_frame(active_only=True)) == 3
        assert store.remove_subscriber("outbox", "night")
        assert not store.remove_subscriber("outbox", "night")
        assert len(store.subscribers_frame()) == 3

        sub = validate({"name": "n", "channel": "outbox", "address": "new", "areas": "11"})
        assert store.add_subscriber(sub.model_dump()) > 0
        with pytest.raises(ValueError, match="already"):
            store.add_subscriber(sub.model_dump())


def test_cli(env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in (["add"], ["import"], ["list"], ["remove"], ["export"]):
        with pytest.raises(SystemExit) as exit_:
            main(["subscribers", *cmd, "--help"])
        assert exit_.value.code == 0
    capsys.readouterr()

    src = tmp_path / "subs.csv"
    src.write_text(CSV, encoding="utf-8")
    assert main(["subscribers", "import", str(src)]) == 2
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert summary["imported"] == 3 and summary["failed"] == 3
    assert [e["line"] for e in summary["errors"]] == [4, 5, 6]
    assert "line 4:" in out.err

    args = ["subscribers", "add", "--name", "Ops", "--channel", "outbox", "--address", "ops"]
    assert main([*args, "--areas", "11|circle:39.9,116.4,30", "--min-level", "orange"]) == 0
    assert main([*args, "--areas", "11"]) == 2  # already there
    assert main([*args[:-1], "ops-2", "--areas", "9"]) == 2
    capsys.readouterr()

    assert main(["subscribers", "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4
    assert {"name": "Ops", "min_level": "orange"}.items() <= rows[-1].items()

    assert main(["subscribers", "remove", "outbox", "ops", "--reason", "left"]) == 0
    assert main(["subscribers", "remove", "outbox", "nobody"]) == 2
    capsys.readouterr()
    assert main(["subscribers", "list"]) == 0
    assert "Ops" not in capsys.readouterr().out
    assert main(["subscribers", "list", "--all"]) == 0
    assert "inactive: left" in capsys.readouterr().out

    out_file = tmp_path / "out.csv"
    assert main(["subscribers", "export", str(out_file)]) == 0
    assert len(out_file.read_text(encoding="utf-8").splitlines()) == 4
    assert main(["subscribers", "export"]) == 0
    assert capsys.readouterr().out == out_file.read_text(encoding="utf-8")


# -- matching -----------------------------------------------------------------------


def _frame(*rows: dict[str, Any]) -> pd.DataFrame:
    base = {
        "channel": "outbox",
        "language": "zh-CN",
        "hazards": [],
        "min_level": 1,
        "quiet_start": None,
        "quiet_end": None,
        "active": True,
    }
    records = [{**base, "address": f"a{i}", **row} for i, row in enumerate(rows)]
    return pd.DataFrame(records)


def _names(frame: pd.DataFrame, **kwargs: Any) -> set[str]:
    args: dict[str, Any] = {
        "hazard": Hazard.RAINSTORM,
        "level": Level.YELLOW,
        "region_codes": ["510100"],
        "epicentre": None,
        "when": NOON,
        **kwargs,
    }
    return set(match(frame, **args)["name"])


def test_match_areas() -> None:
    subs = _frame(
        {"name": "sichuan", "areas": ["51"]},
        {"name": "chengdu", "areas": ["510100"]},
        {"name": "chengdu4", "areas": ["5101"]},
        {"name": "mianyang", "areas": ["510700"]},
        {"name": "beijing", "areas": ["11"]},
        {"name": "both", "areas": ["11", "5101"]},
    )
    assert _names(subs) == {"sichuan", "chengdu", "chengdu4", "both"}
    assert _names(subs, region_codes=["510700", "110100"]) == {
        "sichuan",
        "mianyang",
        "beijing",
        "both",
    }
    assert _names(subs, region_codes=["CN"]) == set(subs["name"])
    assert _names(subs, region_codes=[]) == set()


def test_match_circles_epicentre_and_region_points() -> None:
    subs = _frame(
        {"name": "near", "areas": ["circle:30.66,104.07,50"]},  # Chengdu centre
        {"name": "far", "areas": ["circle:39.9,116.4,50"]},  # Beijing
        {"name": "mixed", "areas": ["11", "circle:31.0,103.6,30"]},
    )
    # about 37 km from Chengdu's centre, 22 km from "mixed"; 57 km from "near" is outside
    quake = {"hazard": Hazard.EARTHQUAKE, "level": Level.ORANGE, "region_codes": ["510100"]}
    assert _names(subs, **quake, epicentre=(30.9, 103.8)) == {"mixed", "near"}
    assert _names(subs, **quake, epicentre=(31.0, 103.62)) == {"mixed"}
    assert _names(subs, **quake, epicentre=(39.95, 116.45)) == {"far"}
    # no epicentre: the regions' representative points (Chengdu's is inside "near")
    assert "near" in _names(subs, region_codes=["510100"])
    assert "far" in _names(subs, region_codes=["110100"])
    assert "near" not in _names(subs, region_codes=["110100"])


def test_match_hazards_levels_inactive_language() -> None:
    subs = _frame(
        {"name": "all", "areas": ["51"], "language": "en"},
        {"name": "rain", "areas": ["51"], "hazards": ["rainstorm", "gale"]},
        {"name": "quake", "areas": ["51"], "hazards": ["earthquake"]},
        {"name": "orange+", "areas": ["51"], "min_level": 3},
        {"name": "gone", "areas": ["51"], "active": False},
    )
    assert _names(subs) == {"all", "rain"}
    assert _names(subs, level=Level.ORANGE) == {"all", "rain", "orange+"}
    assert _names(subs, hazard=Hazard.EARTHQUAKE, level=Level.BLUE) == {"all", "quake"}
    out = match(
        subs, hazard="rainstorm", level=2, region_codes=["510100"], epicentre=None, when=NOON
    )
    assert dict(zip(out["name"], out["language"], strict=True)) == {"all": "en", "rain": "zh-CN"}
    with pytest.raises(ValueError, match="timezone"):
        match(subs, hazard="rainstorm", level=2, region_codes=[], when=datetime(2025, 1, 1))


def test_match_quiet_hours() -> None:
    subs = _frame(
        {"name": "night", "areas": ["51"], "quiet_start": "22:00", "quiet_end": "06:00"},
        {"name": "lunch", "areas": ["51"], "quiet_start": "11:30", "quiet_end": "13:00"},
        {"name": "never", "areas": ["51"]},
    )
    assert _names(subs, when=NOON) == {"night", "never"}
    assert _names(subs, when=NIGHT) == {"lunch", "never"}  # 23:30 local
    assert _names(subs, when=EARLY) == {"lunch", "never"}  # 05:00, window crosses midnight
    assert _names(subs, when=NIGHT, level=Level.RED) == {"night", "lunch", "never"}
    assert _names(subs, when=NIGHT, hazard=Hazard.EARTHQUAKE) == {"night", "lunch", "never"}


def test_match_100k_subscribers_set_wise() -> None:
    n = 100_000
    rng = np.random.default_rng(7)
    provinces = rng.choice(["11", "31", "44", "51", "5101", "510100", "440300"], size=n)
    circle = rng.random(n) < 0.2
    lat = rng.uniform(20, 45, n).round(2)
    lon = rng.uniform(100, 120, n).round(2)
    areas = [
        [f"circle:{la},{lo},100"] if c else [p]
        for p, c, la, lo in zip(provinces, circle, lat, lon, strict=True)
    ]
    hazards = np.where(rng.random(n) < 0.5, "", "rainstorm|earthquake")
    frame = pd.DataFrame(
        {
            "name": [f"s{i}" for i in range(n)],
            "channel": "outbox",
            "address": [f"a{i}" for i in range(n)],
            "language": "zh-CN",
            "areas": areas,
            "hazards": [h.split("|") if h else [] for h in hazards],
            "min_level": rng.integers(1, 5, n),
            "quiet_start": np.where(rng.random(n) < 0.3, "22:00", None),
            "quiet_end": np.where(rng.random(n) < 0.3, "06:00", None),
            "active": rng.random(n) < 0.95,
        }
    )
    frame["quiet_end"] = np.where(frame["quiet_start"].isna(), None, "06:00")
    out = match(
        frame, hazard="rainstorm", level=3, region_codes=["510100"], epicentre=None, when=NIGHT
    )
    assert 0 < len(out) < n
    assert out["active"].all() and (out["min_level"] <= 3).all()
    assert out["quiet_start"].isna().all()
    quake = match(
        frame,
        hazard="earthquake",
        level=4,
        region_codes=["CN"],
        epicentre=(30.6, 104.0),
        when=NIGHT,
    )
    assert len(quake) == int(frame["active"].sum())
