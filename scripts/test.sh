#!/usr/bin/env bash
# Command 2: install into .venv (with the test tools) and run the whole suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k store`).
set -euo pipefail
source "$(dirname "$0")/_venv.sh" "test"

echo "==> ruff"
ruff check alerts alerts_airflow dags plugins tests scripts
echo "==> mypy"
mypy alerts alerts_airflow
echo "==> pytest"
exec python -m pytest "$@"
