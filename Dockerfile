# Production image for the alert pipeline: the official Airflow image plus the
# `alerts` package, the DAGs and the plugins. Build: `docker compose build`.
FROM apache/airflow:3.3.2-python3.11

# Install as the image's `airflow` user (pip --user, the pattern from the
# Airflow docker docs). Pinning apache-airflow to the image's own version
# (${AIRFLOW_VERSION} is set by the base image) on the same command line keeps
# pip from upgrading or downgrading Airflow while it resolves our dependencies.
# constraints.txt is shipped for reference but not applied: it freezes the dev
# virtualenv, not the image's providers (celery, postgres, redis, ...).
USER airflow
# Owned by airflow: pip builds the project in-tree and writes build metadata there.
COPY --chown=airflow:0 pyproject.toml constraints.txt README.md /opt/alerts/
COPY --chown=airflow:0 alerts/ /opt/alerts/alerts/
COPY --chown=airflow:0 alerts_airflow/ /opt/alerts/alerts_airflow/
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /opt/alerts
# docker-compose.yml connects with psycopg (3) to PostgreSQL (metadata, its async
# engine, Celery results, the alert store) and runs the CeleryExecutor on Redis:
# fail the build, not the deployment, if a driver is missing.
# (Metadata only for the provider: importing airflow at build time would set up a home.)
RUN python -c "import psycopg, redis, celery; from importlib.metadata import version; \
print('celery provider', version('apache-airflow-providers-celery'))"

# DAGs and plugins baked in; docker-compose.yml bind-mounts the working copies
# over them for development (drop those mounts to run exactly what was built).
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/

# ALERTS_HOME; created here so a fresh named volume mounted on it is writable by airflow.
RUN mkdir -p /opt/airflow/alerts-home
