#!/usr/bin/env bash
# Command 1: install into .venv and start the whole system on this machine.
#
# Airflow standalone (scheduler, dag-processor, triggerer, api-server on
# http://localhost:8080) with this project's dags/ and plugins/, SQLite for
# Airflow and for the alert store under var/, and the local outbox channel.
# Environment variables already set (ALERTS_*, AIRFLOW__*) win over these.
set -euo pipefail
source "$(dirname "$0")/_venv.sh" ""

export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/var/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$ROOT/dags}"
export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$ROOT/plugins}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin,duty:op}"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
export ALERTS_HOME="${ALERTS_HOME:-$ROOT/var/alerts}"
mkdir -p "$AIRFLOW_HOME" "$ALERTS_HOME"

# Fixed logins (the simple auth manager reads this file instead of generating one).
PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
if [ ! -f "$PASSWORDS" ]; then
    echo '{"admin": "admin", "duty": "duty"}' > "$PASSWORDS"
fi

alerts db upgrade
cat <<MSG

  Early-warning alerts on Airflow
  UI:       http://localhost:${AIRFLOW__API__PORT}    login: admin / admin  (duty officer: duty / duty)
  DAGs:     $AIRFLOW__CORE__DAGS_FOLDER   (unpause seismic_alerts to start)
  Store:    $(alerts config | python -c 'import json,sys; print(json.load(sys.stdin)["resolved_store_url"])')
  Outbox:   ALERTS_HOME=$ALERTS_HOME .venv/bin/alerts outbox
  Stop:     Ctrl-C

MSG
exec airflow standalone
