#!/usr/bin/env python
"""Build the example outlook bulletin kept in the docs (a script, not a test).

Rerun it after changing the outlook templates, the chart or the fixture:

    .venv/bin/python scripts/example_bulletin.py

It runs ``alerts outlook --now 2026-07-19T23:00:00Z --region 51 --input
tests/data/openmeteo/forecast_72h.json`` (the hand-written 72-hour Open-Meteo
fixture for six Sichuan prefectures, see tests/data/openmeteo/README.md) in a
throw-away configuration (no ALERTS_* settings of yours apply), renders the
long form with the packaged templates (alerts.bulletin.render_outlook) and
writes

- docs/examples/outlook-bulletin.html: the HTML document, its chart inlined as a
  ``data:`` URI so the file opens in any browser (the e-mail and WeChat article
  carry it as ``cid:outlook-72h`` instead);
- docs/img/outlook-bulletin.png: a full-page screenshot 720 px wide, taken with
  Playwright driving Debian's chromium (``ALERTS_TEST_CHROMIUM``, default
  /usr/bin/chromium) headless with the browser tests' arguments. Chinese text
  needs a CJK font (``apt-get install chromium fonts-noto-cjk``, as
  scripts/test.sh does). ``--no-screenshot`` skips it.

The HTML is deterministic for the same fixture, templates and code; the
screenshot also depends on the installed fonts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.bulletin import render_outlook  # noqa: E402
from alerts.bulletins import inline_images  # noqa: E402
from alerts.render import Renderer  # noqa: E402

FIXTURE = ROOT / "tests" / "data" / "openmeteo" / "forecast_72h.json"
NOW = "2026-07-19T23:00:00Z"  # 2026-07-20 07:00 Beijing time: daily_outlook's default hour
HTML_OUT = ROOT / "docs" / "examples" / "outlook-bulletin.html"
PNG_OUT = ROOT / "docs" / "img" / "outlook-bulletin.png"
CHROMIUM = os.environ.get("ALERTS_TEST_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WIDTH = 720


def outlook_json(now: str, region: str, inputs: list[Path]) -> dict:
    """The outlook as `alerts outlook` prints it, computed offline in a clean configuration."""
    with tempfile.TemporaryDirectory(prefix="alerts-example-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
        env["ALERTS_HOME"] = home
        cmd = [sys.executable, "-m", "alerts.cli", "outlook", "--now", now, "--region", region]
        for path in inputs:
            cmd += ["--input", str(path)]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"alerts outlook failed ({done.returncode}):\n{done.stderr.strip()}")
    result: dict = json.loads(done.stdout)
    return result


def screenshot(html_path: Path, png_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if executable is None:
        raise SystemExit(
            f"chromium not found ({CHROMIUM}): apt-get install chromium fonts-noto-cjk, "
            "or rerun with --no-screenshot"
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(
                viewport={"width": WIDTH, "height": 800}, device_scale_factor=1, locale="zh-CN"
            )
            page.goto(html_path.resolve().as_uri(), wait_until="load")
            png_path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(png_path), full_page=True)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--now", default=NOW, help=f"the outlook's time (default {NOW})")
    parser.add_argument("--region", default="51", help="adcode prefix (default 51, Sichuan)")
    parser.add_argument(
        "--input", type=Path, action="append", default=None, help=f"default {FIXTURE}"
    )
    parser.add_argument("--language", default="zh-CN", help="zh-CN (default) or en")
    parser.add_argument("--html", type=Path, default=HTML_OUT)
    parser.add_argument("--png", type=Path, default=PNG_OUT)
    parser.add_argument("--no-screenshot", action="store_true", help="write the HTML only")
    args = parser.parse_args(argv)

    inputs = args.input or [FIXTURE]
    for path in inputs:
        if not path.is_file():
            raise SystemExit(f"no forecast file {path}")
    outlook = outlook_json(args.now, args.region, inputs)
    renderer = Renderer(
        timezone="Asia/Shanghai",
        issuer_zh="应急管理局预警发布中心",
        issuer_en="Emergency Warning Release Centre",
        details_url="https://alerts.example.gov.cn/",
    )
    msg = render_outlook(
        renderer, outlook, family="long", language=args.language, identifier="example-outlook"
    )
    assert msg.html is not None
    args.html.parent.mkdir(parents=True, exist_ok=True)
    args.html.write_text(inline_images(msg.html, msg.images), encoding="utf-8")
    print(f"wrote {args.html.relative_to(ROOT) if args.html.is_relative_to(ROOT) else args.html}")
    if not args.no_screenshot:
        screenshot(args.html, args.png)
        print(f"wrote {args.png.relative_to(ROOT) if args.png.is_relative_to(ROOT) else args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
