"""Static checks of the deployment files: docker-compose.yml, Dockerfile and the
configuration example they mount. No Docker engine is needed: the files are
parsed and cross-checked against the repository."""

from __future__ import annotations

import os
import re
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from alerts.config import load_settings
from tests.test_celery import COMPOSE_COMMANDS, shape_env

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
BASE_IMAGE = "apache/airflow:3.3.2-python3.11"

REQUIRED_SERVICES = {
    "postgres",
    "redis",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
}
# Settings every Airflow component must agree on.
SHARED_ENV = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "ALERTS_STORE_URL",
    "ALERTS_HOME",
    "ALERTS_CONFIG",
)

_VAR = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def _defaults(value: str) -> str:
    """Compose interpolation with nothing set: ``${X:-d}`` -> ``d``, ``${X}`` -> ``''``."""
    return _VAR.sub(lambda m: m.group("default") or "", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def airflow_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {name: svc for name, svc in services.items() if name.startswith("airflow-")}
    assert found, "no airflow-* services"
    return found


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _depends_on(service: dict[str, Any]) -> list[str]:
    deps = service.get("depends_on") or []
    return list(deps)  # list form, or the keys of the mapping form


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host, container) pairs of the bind mounts (host paths starting with ``.``)."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append((volume["source"], volume["target"]))
            continue
        host, _, rest = volume.partition(":")
        if host.startswith((".", "/", "~")) or "${" in host:
            mounts.append((host, rest.split(":", 1)[0]))
    return mounts


def _dockerfile(build: Any) -> Path:
    if isinstance(build, str):
        context, name = build, "Dockerfile"
    else:
        context, name = build.get("context", "."), build.get("dockerfile", "Dockerfile")
    return (ROOT / context / name).resolve()


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuations joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, args = line.partition(" ")
            result.append((word.upper(), args.strip()))
    return result


def _copy_sources(dockerfile: Path) -> list[str]:
    sources = []
    for word, args in _instructions(dockerfile):
        if word in {"COPY", "ADD"}:
            parts = [p for p in args.split() if not p.startswith("--")]
            sources.extend(parts[:-1])
    return sources


def _airflow_build(airflow_services: dict[str, dict[str, Any]]) -> Any:
    builds = {repr(svc.get("build")) for svc in airflow_services.values()}
    assert len(builds) == 1, builds
    return next(iter(airflow_services.values()))["build"]


def test_all_required_services_are_defined(services: dict[str, dict[str, Any]]) -> None:
    assert REQUIRED_SERVICES <= set(services), REQUIRED_SERVICES - set(services)


def test_yaml_merge_keys_resolve_into_every_airflow_service(
    compose: dict[str, Any], airflow_services: dict[str, dict[str, Any]]
) -> None:
    def no_merge_keys(node: Any) -> bool:
        if isinstance(node, dict):
            return "<<" not in node and all(no_merge_keys(v) for v in node.values())
        if isinstance(node, list):
            return all(no_merge_keys(v) for v in node)
        return True

    assert no_merge_keys(compose)
    for name, svc in airflow_services.items():
        assert "image" in svc and "build" in svc, name
        assert _env(svc), f"{name} has no environment"


def test_airflow_services_share_one_image_and_build(
    airflow_services: dict[str, dict[str, Any]],
) -> None:
    assert len({svc["image"] for svc in airflow_services.values()}) == 1
    assert _airflow_build(airflow_services) is not None


@pytest.mark.parametrize("key", SHARED_ENV)
def test_airflow_services_agree_on_shared_setting(
    airflow_services: dict[str, dict[str, Any]], key: str
) -> None:
    values = {name: _env(svc).get(key) for name, svc in airflow_services.items()}
    assert None not in values.values(), f"{key} missing in {values}"
    assert len(set(values.values())) == 1, values


def test_executor_is_celery_with_redis_broker_and_postgres_metadata(
    services: dict[str, dict[str, Any]], airflow_services: dict[str, dict[str, Any]]
) -> None:
    """The settings tests/test_celery.py runs end to end, with compose's hosts filled in:
    the same drivers (psycopg 3, which the image has, for the metadata, its async
    engine, the Celery results and the alert store), one database for metadata
    and results, a Redis broker and the api-server's execution API."""
    from sqlalchemy.engine import make_url

    env = {k: _defaults(v) for k, v in _env(airflow_services["airflow-scheduler"]).items()}
    metadata = make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    store = make_url(env["ALERTS_STORE_URL"])
    postgres = metadata.render_as_string(hide_password=False).split("://", 1)[1].rsplit("/", 1)[0]
    api_port = [str(p).rsplit(":", 1)[-1] for p in services["airflow-apiserver"]["ports"]]
    expected = shape_env(
        postgres=postgres,
        airflow_db=str(metadata.database),
        store_db=str(store.database),
        broker=env["AIRFLOW__CELERY__BROKER_URL"],
        api=f"airflow-apiserver:{api_port[0]}",
        jwt_secret=env["AIRFLOW__API_AUTH__JWT_SECRET"],
    )
    assert {k: env.get(k) for k in expected} == expected
    assert metadata.host == "postgres" and metadata.host in services
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert "@redis:" in env["AIRFLOW__CELERY__BROKER_URL"] and "redis" in services


def test_services_run_the_components_the_celery_test_runs(
    airflow_services: dict[str, dict[str, Any]],
) -> None:
    """Every process tests/test_celery.py starts is a compose service with that
    command; compose adds only the triggerer (event-driven schedules) and init."""
    for name, words in COMPOSE_COMMANDS.items():
        command = airflow_services[name]["command"]
        assert (command.split() if isinstance(command, str) else command) == words, name
    assert set(airflow_services) - set(COMPOSE_COMMANDS) == {"airflow-triggerer", "airflow-init"}
    assert airflow_services["airflow-triggerer"]["command"] == "triggerer"


def test_image_installs_the_drivers_compose_names() -> None:
    """psycopg (3) and the Celery provider (celery, redis) come with the alerts
    package, which the Dockerfile installs; the build imports them to be sure."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^\s*"psycopg\[binary\]', pyproject, flags=re.M)
    assert re.search(r'^\s*"apache-airflow-providers-celery', pyproject, flags=re.M)
    runs = [args for word, args in _instructions(ROOT / "Dockerfile") if word == "RUN"]
    checks = [args for args in runs if "import psycopg, redis, celery" in args]
    assert checks and "apache-airflow-providers-celery" in checks[0], runs


def test_jwt_secret_is_set_to_a_non_empty_value(
    airflow_services: dict[str, dict[str, Any]],
) -> None:
    secret = _env(airflow_services["airflow-worker"])["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert _defaults(secret).strip()


def test_alert_store_is_a_psycopg_url_on_the_postgres_service(
    services: dict[str, dict[str, Any]], airflow_services: dict[str, dict[str, Any]]
) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(_env(airflow_services["airflow-worker"])["ALERTS_STORE_URL"])
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "postgres" and url.host in services
    assert url.database and url.database != "airflow", "alert store needs its own database"


def test_alert_store_database_is_created(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    from sqlalchemy.engine import make_url

    database = make_url(_env(services["airflow-worker"])["ALERTS_STORE_URL"]).database
    init_sql = " ".join(
        str(compose.get("configs", {}).get(ref["source"], {}).get("content", ""))
        for ref in services["postgres"].get("configs", [])
    )
    assert f"CREATE DATABASE {database}" in init_sql


def test_init_migrates_airflow_and_alert_store(services: dict[str, dict[str, Any]]) -> None:
    command = services["airflow-init"]["command"]
    script = command if isinstance(command, str) else "\n".join(command)
    assert "airflow db migrate" in script
    assert "alerts db upgrade" in script
    assert script.index("airflow db migrate") < script.index("alerts db upgrade")


def test_bind_mounted_host_paths_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for host, _ in _bind_mounts(svc):
            assert host.startswith("./"), f"{name}: bind mount {host} is not repo-relative"
            assert (ROOT / host).exists(), f"{name}: {host} does not exist in the repository"


def test_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    for name, svc in services.items():
        for volume in svc.get("volumes") or []:
            if isinstance(volume, str) and not volume.startswith((".", "/", "~", "$")):
                assert volume.split(":", 1)[0] in declared, f"{name}: {volume}"


def test_depends_on_names_defined_services(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for dependency in _depends_on(svc):
            assert dependency in services, f"{name} depends on undefined {dependency}"
            assert dependency != name


def test_depends_on_waits_for_health_or_completion(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: use the mapping form with conditions"
        for dependency, spec in deps.items():
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} -> {dependency}"
            else:
                assert condition == "service_completed_successfully", f"{name} -> {dependency}"


def test_long_running_airflow_services_wait_for_init(
    airflow_services: dict[str, dict[str, Any]],
) -> None:
    for name, svc in airflow_services.items():
        if name != "airflow-init":
            condition = svc["depends_on"]["airflow-init"]["condition"]
            assert condition == "service_completed_successfully", name


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if name != "airflow-init":
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert (
        "http://localhost:8080/api/v2/version"
        in services["airflow-apiserver"]["healthcheck"]["test"]
    )
    assert "http://localhost:8974/health" in services["airflow-scheduler"]["healthcheck"]["test"]


def test_scheduler_health_server_is_enabled(services: dict[str, dict[str, Any]]) -> None:
    env = _env(services["airflow-scheduler"])
    assert env.get("AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK", "").lower() == "true"


def test_build_context_has_dockerfile_from_pinned_airflow_image(
    airflow_services: dict[str, dict[str, Any]],
) -> None:
    dockerfile = _dockerfile(_airflow_build(airflow_services))
    assert dockerfile.is_file(), dockerfile
    froms = [args for word, args in _instructions(dockerfile) if word == "FROM"]
    assert froms == [BASE_IMAGE]


def test_dockerfile_copy_sources_exist(airflow_services: dict[str, dict[str, Any]]) -> None:
    dockerfile = _dockerfile(_airflow_build(airflow_services))
    sources = _copy_sources(dockerfile)
    assert sources
    missing = [s for s in sources if not (dockerfile.parent / s).exists()]
    assert not missing, f"COPY sources missing from the build context: {missing}"


def test_dockerfile_copy_sources_are_not_dockerignored(
    airflow_services: dict[str, dict[str, Any]],
) -> None:
    dockerfile = _dockerfile(_airflow_build(airflow_services))
    ignore = dockerfile.parent / ".dockerignore"
    patterns = [
        line.strip().rstrip("/")
        for line in ignore.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    for source in _copy_sources(dockerfile):
        path = PurePosixPath(source.rstrip("/"))
        for candidate in [path, *path.parents]:
            if str(candidate) != ".":
                hits = [p for p in patterns if fnmatch(str(candidate), p)]
                assert not hits, f"COPY {source} is excluded by .dockerignore {hits}"


def test_dockerfile_pins_the_image_airflow_version_when_installing(
    airflow_services: dict[str, dict[str, Any]],
) -> None:
    dockerfile = _dockerfile(_airflow_build(airflow_services))
    installs = [
        args for word, args in _instructions(dockerfile) if word == "RUN" and "pip install" in args
    ]
    assert installs
    for args in installs:
        assert '"apache-airflow==${AIRFLOW_VERSION}"' in args, args


def test_image_airflow_version_matches_constraints_and_pyproject(
    airflow_services: dict[str, dict[str, Any]],
) -> None:
    dockerfile = _dockerfile(_airflow_build(airflow_services))
    froms = [args for word, args in _instructions(dockerfile) if word == "FROM"]
    match = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python\d+\.\d+", froms[0])
    assert match, froms
    constraints = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    pins = re.findall(r"^apache-airflow==(\S+)\s*$", constraints, flags=re.M)
    assert pins == [match.group(1)]
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"apache-airflow=={match.group(1)}"' in pyproject


def test_alerts_config_named_in_compose_loads(
    airflow_services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ALERTS_CONFIG, followed through its bind mount to the repository, validates
    together with the ALERTS_* variables compose sets."""
    svc = airflow_services["airflow-worker"]
    env = {k: _defaults(v) for k, v in _env(svc).items() if k.startswith("ALERTS_")}
    container_path = PurePosixPath(env["ALERTS_CONFIG"])
    host_path = None
    for host, target in _bind_mounts(svc):
        if container_path.is_relative_to(target):
            host_path = ROOT / host / container_path.relative_to(target)
    assert host_path is not None, f"{container_path} is not under a bind mount"
    assert host_path.is_file(), host_path

    for key in list(os.environ):
        if key.startswith("ALERTS_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ALERTS_CONFIG", str(host_path))

    settings = load_settings()
    assert settings.resolved_store_url == env["ALERTS_STORE_URL"]
    assert [c.name for c in settings.channels]


def test_config_example_loads_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("ALERTS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ALERTS_CONFIG", str(ROOT / "config" / "alerts.example.yaml"))
    load_settings()
