#!/usr/bin/env bash
# Command 2: install into .venv (with the test tools) and run the whole suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k store`).
set -euo pipefail
source "$(dirname "$0")/_venv.sh" "test"

# The browser tests drive Debian's chromium through Playwright (no browser
# download), with CJK fonts for the Chinese pages. Install them when missing
# and this machine can; otherwise those tests skip with the reason.
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing chromium and CJK fonts (Debian packages) for the browser tests"
        { apt-get install -y --no-install-recommends chromium fonts-noto-cjk ||
            { apt-get update &&
                apt-get install -y --no-install-recommends chromium fonts-noto-cjk; }; } \
            >/tmp/alerts-chromium-install.log 2>&1 ||
            echo "warning: chromium could not be installed (see /tmp/alerts-chromium-install.log)"
    else
        echo "note: chromium is not installed (apt-get install chromium): browser tests will skip"
    fi
fi

echo "==> ruff"
ruff check alerts alerts_airflow dags plugins tests scripts
echo "==> mypy"
mypy alerts alerts_airflow
echo "==> pytest"
exec python -m pytest "$@"
