"""Settings: defaults, environment and YAML sources, validation errors naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerts.cli import main
from alerts.config import USGS_DEFAULT_URL, ConfigError, load_settings


def write_yaml(tmp_path: Path, text: str, name: str = "alerts.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- defaults and overrides --------------------------------------------------------------


def test_default_store_is_a_sqlite_file_under_home(alerts_env: Path) -> None:
    settings = load_settings()
    assert settings.home == alerts_env
    assert settings.store_url == ""
    assert settings.resolved_store_url == f"sqlite:///{alerts_env.resolve() / 'alerts.db'}"


def test_home_defaults_to_dot_alerts_in_the_user_home(
    alerts_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALERTS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    settings = load_settings()
    assert settings.home == tmp_path / "user" / ".alerts"
    assert settings.resolved_store_url.endswith("/user/.alerts/alerts.db")


def test_defaults_of_feeds_and_channels(alerts_env: Path) -> None:
    settings = load_settings()
    assert settings.feeds.usgs_url == USGS_DEFAULT_URL
    assert settings.feeds.usgs_url.startswith("https://earthquake.usgs.gov/")
    assert (settings.feeds.timeout_s, settings.feeds.retries) == (20.0, 3)
    assert [(c.name, c.type, c.recipients) for c in settings.channels] == [
        ("outbox", "outbox", ["public"])
    ]
    assert (settings.language, settings.timezone) == ("zh-CN", "Asia/Shanghai")
    assert settings.config is None


def test_store_url_env_overrides_the_default(
    alerts_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql+psycopg://alerts@db.example:5432/alerts"
    monkeypatch.setenv("ALERTS_STORE_URL", url)
    settings = load_settings()
    assert settings.store_url == url
    assert settings.resolved_store_url == url


def test_nested_env_overrides_one_feed_key(
    alerts_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTS_FEEDS__USGS_URL", "http://127.0.0.1:9/feed.geojson")
    monkeypatch.setenv("ALERTS_FEEDS__RETRIES", "0")
    feeds = load_settings().feeds
    assert feeds.usgs_url == "http://127.0.0.1:9/feed.geojson"
    assert feeds.retries == 0
    assert feeds.timeout_s == 20.0  # untouched siblings keep their defaults


def test_keyword_arguments_beat_the_environment(
    alerts_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTS_STORE_URL", "sqlite:///from-env.db")
    assert load_settings(store_url="sqlite:///from-kwarg.db").store_url == "sqlite:///from-kwarg.db"


def test_yaml_file_merges_with_env_and_env_wins_per_key(
    alerts_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_yaml(
        tmp_path,
        "store_url: sqlite:///from-yaml.db\n"
        "timezone: Asia/Urumqi\n"
        "feeds:\n"
        "  usgs_url: http://yaml.example/feed.geojson\n"
        "  timeout_s: 5\n"
        "channels:\n"
        "  - {name: ops, type: outbox, recipients: [duty-officer]}\n",
    )
    monkeypatch.setenv("ALERTS_CONFIG", str(path))
    monkeypatch.setenv("ALERTS_FEEDS__TIMEOUT_S", "7.5")
    monkeypatch.setenv("ALERTS_STORE_URL", "sqlite:///from-env.db")
    settings = load_settings()
    assert settings.config == path
    assert settings.store_url == "sqlite:///from-env.db"  # env beats YAML
    assert settings.feeds.timeout_s == 7.5  # env beats YAML inside a section
    assert settings.feeds.usgs_url == "http://yaml.example/feed.geojson"  # YAML sibling kept
    assert settings.timezone == "Asia/Urumqi"  # YAML beats the default
    assert [(c.name, c.recipients) for c in settings.channels] == [("ops", ["duty-officer"])]


# -- bad values name the key -------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "value", "names"),
    [
        ("ALERTS_FEEDS__TIMEOUT_S", "abc", ["feeds.timeout_s", "ALERTS_FEEDS__TIMEOUT_S", "abc"]),
        ("ALERTS_FEEDS__TIMEOUT_S", "0", ["feeds.timeout_s"]),
        ("ALERTS_FEEDS__RETRIES", "11", ["feeds.retries"]),
        ("ALERTS_FEEDS__USGS_URL", "ftp://x/feed", ["feeds.usgs_url", "ALERTS_FEEDS__USGS_URL"]),
        ("ALERTS_FEEDS__BOGUS", "1", ["feeds.bogus"]),
        ("ALERTS_STORE_URL", "mysql://x", ["store_url", "ALERTS_STORE_URL", "mysql://x"]),
        (
            "ALERTS_CHANNELS",
            '[{"name": "a", "type": "outbox"}, {"name": "a", "type": "outbox"}]',
            ["channels", "ALERTS_CHANNELS", "unique"],
        ),
        ("ALERTS_CHANNELS", '[{"name": "x", "type": "pigeon"}]', ["channels.0.type"]),
        ("ALERTS_CHANNELS", '[{"name": "Bad Name", "type": "outbox"}]', ["channels.0.name"]),
    ],
    ids=[
        "timeout-abc",
        "timeout-zero",
        "retries-too-many",
        "usgs-url-ftp",
        "feeds-unknown-key",
        "store-mysql",
        "duplicate-channels",
        "channel-type",
        "channel-name",
    ],
)
def test_bad_env_value_raises_config_error_naming_the_key(
    alerts_env: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str, names: list[str]
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    for name in names:
        assert name in str(exc.value)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("bogus: 1\n", ["bogus", "Extra inputs"]),
        ("feeds:\n  timeout: 5\n", ["feeds.timeout"]),
        ("store_url: mysql://x\n", ["store_url"]),
        (
            "channels:\n  - {name: a, type: outbox}\n  - {name: a, type: outbox}\n",
            ["channels", "unique"],
        ),
    ],
    ids=["unknown-key", "unknown-nested-key", "bad-store-url", "duplicate-channels"],
)
def test_bad_yaml_value_raises_config_error_naming_key_and_file(
    alerts_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, names: list[str]
) -> None:
    path = write_yaml(tmp_path, text)
    monkeypatch.setenv("ALERTS_CONFIG", str(path))
    with pytest.raises(ConfigError) as exc:
        load_settings()
    for name in [*names, str(path)]:
        assert name in str(exc.value)


def test_yaml_syntax_error_raises_config_error_naming_the_file(
    alerts_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_yaml(tmp_path, "feeds: [\n  usgs_url: : x\n")
    monkeypatch.setenv("ALERTS_CONFIG", str(path))
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "ALERTS_CONFIG" in str(exc.value)
    assert str(path) in str(exc.value)
    assert "line 2" in str(exc.value)


def test_missing_config_file_raises_config_error_naming_the_key(
    alerts_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere.yaml"
    monkeypatch.setenv("ALERTS_CONFIG", str(missing))
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "ALERTS_CONFIG" in str(exc.value)
    assert str(missing) in str(exc.value)


def test_config_error_lists_every_bad_key(
    alerts_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTS_FEEDS__TIMEOUT_S", "abc")
    monkeypatch.setenv("ALERTS_STORE_URL", "mysql://x")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "ALERTS_FEEDS__TIMEOUT_S" in str(exc.value)
    assert "ALERTS_STORE_URL" in str(exc.value)


# -- the command line --------------------------------------------------------------------


def test_cli_config_prints_the_effective_settings_as_json(
    alerts_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALERTS_FEEDS__USGS_URL", "http://127.0.0.1:9/feed.geojson")
    assert main(["config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["home"] == str(alerts_env)
    assert shown["feeds"]["usgs_url"] == "http://127.0.0.1:9/feed.geojson"
    assert shown["resolved_store_url"] == f"sqlite:///{alerts_env.resolve() / 'alerts.db'}"
    assert shown["channels"][0]["name"] == "outbox"
    assert not alerts_env.exists()  # printing the configuration creates nothing


def test_cli_config_with_a_bad_value_exits_2(
    alerts_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALERTS_STORE_URL", "mysql://x")
    assert main(["config"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "ALERTS_STORE_URL" in err


def test_cli_pipeline_with_a_bad_env_value_exits_2_naming_the_key(
    alerts_env: Path,
    data: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ALERTS_FEEDS__TIMEOUT_S", "abc")
    feed = data / "usgs" / "china_dingri_4.5_day.geojson"
    code = main(["pipeline", "--now", "2025-01-07T01:20:00Z", "--input", f"usgs={feed}"])
    assert code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("alerts: error:")
    assert "ALERTS_FEEDS__TIMEOUT_S" in err
    assert not alerts_env.exists()  # failed before any store was created


def test_a_misspelt_top_level_variable_is_refused_by_name(
    alerts_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTS_STORE_ULR", "sqlite:////tmp/x.db")
    with pytest.raises(ConfigError, match="ALERTS_STORE_ULR") as exc:
        load_settings()
    assert "ALERTS_STORE_URL" in str(exc.value)  # the known names are listed


def test_a_bad_list_item_from_env_names_the_item_and_the_variable(
    alerts_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTS_CHANNELS", '[{"name": "a", "type": "pigeon"}]')
    with pytest.raises(ConfigError, match=r"channels\.0\.type \(in ALERTS_CHANNELS as JSON\)"):
        load_settings()
