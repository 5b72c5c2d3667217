"""deploy/compose.yaml: valid against the Compose specification's JSON schema (the copy
check-jsonschema ships, so no network), and consistent in what the schema cannot see: the
services it depends on exist and are awaited the right way, the image's commands are parts
the entrypoint accepts, healthchecks hit /readyz where the part listens, workers get longer
than their drain period to stop, the settings it sets are read by someone."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from services.common.serve import APPS, ONE_SHOT, parse_args
from services.common.settings import REPO_ROOT, ServiceSettings
from tests.deploy.settings_names import setting_names

DEPLOY = REPO_ROOT / "deploy"
PLATFORM_PARTS = set(APPS) | set(ONE_SHOT)
WORKER_DRAIN_SECONDS = ServiceSettings.model_fields["worker_drain_seconds"].default


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Validator:
    schema = json.loads(
        resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def platform_services(compose: dict) -> dict[str, dict]:
    """The services that run the platform's image (not PostgreSQL or Redis)."""
    image = compose["x-image"]
    return {name: s for name, s in compose["services"].items() if s.get("image") == image}


def interpolated(value: str) -> str:
    """``value`` with each ``${VAR...}`` replaced, as Compose would from deploy/.env."""
    return re.sub(r"\$\{[^}]*\}", "value", value)


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return float(match[1])


def test_valid_against_the_compose_specification(compose, validator):
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_check_catches_a_wrong_condition(compose, validator):
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["depends_on"]["migrate"]["condition"] = "service_finished"
    assert not validator.is_valid(broken)


def test_dependencies_exist_and_are_awaited_as_their_kind(compose):
    services = compose["services"]
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            if services[target].get("restart") == "no":  # one-shot: awaited to its end
                assert rule["condition"] == "service_completed_successfully", (name, target)
            else:
                assert rule["condition"] == "service_healthy", (name, target)
                assert not services[target].get("healthcheck", {}).get("disable"), target


def test_the_migration_runs_before_every_long_running_part(compose):
    for name, service in platform_services(compose).items():
        if service.get("restart") != "no":
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_every_part_and_worker_runs_and_each_command_is_accepted(compose):
    ran: set[tuple[str, bool]] = set()
    for service in platform_services(compose).values():
        args = parse_args(service["command"])
        ran.add((args.part, args.worker))
    assert {(p, False) for p in PLATFORM_PARTS} <= ran
    assert {(p, True) for p in APPS} <= ran


def test_http_parts_listen_on_all_interfaces_and_report_readiness(compose):
    for name, service in platform_services(compose).items():
        args = parse_args(service["command"])
        if args.part not in APPS or args.worker:
            continue
        assert args.host == "0.0.0.0", name
        probe = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{args.port}/readyz" in probe, name


def test_workers_get_longer_than_their_drain_period_to_stop(compose):
    env = compose["x-env"]
    for name, service in platform_services(compose).items():
        args = parse_args(service["command"])
        if args.worker:
            drain = float(env.get(f"{args.part.upper()}_WORKER_DRAIN_SECONDS", WORKER_DRAIN_SECONDS))
            assert seconds(service["stop_grace_period"]) > drain, name
            assert service["healthcheck"]["disable"] is True


def test_volumes_are_declared_and_bind_mounts_exist(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)


def test_redis_keeps_its_data_and_never_evicts_jobs(compose):
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_postgres_init_creates_the_databases_the_parts_use(compose):
    env = compose["x-env"]
    named = {
        urlsplit(interpolated(v)).path.lstrip("/") for k, v in env.items() if k.endswith("_DATABASE_URL")
    }
    assert named == {f"cert_{p}" for p in APPS}
    created = set(
        re.findall(r"CREATE DATABASE (\w+);", (DEPLOY / "postgres" / "init-databases.sql").read_text())
    )
    assert created == named


def test_the_gateway_reaches_each_service_where_it_listens(compose):
    env = compose["x-env"]
    for part in set(APPS) - {"gateway"}:
        url = urlsplit(env[f"GATEWAY_{part.upper()}_URL"])
        assert url.hostname == part
        assert parse_args(compose["services"][part]["command"]).port == url.port


def test_every_variable_set_is_a_setting(compose):
    known = setting_names()
    for name, service in platform_services(compose).items():
        unknown = set(service["environment"]) - known
        assert not unknown, (name, unknown)


def test_no_secret_is_written_in_the_file(compose):
    env = compose["x-env"]
    for key, value in env.items():
        if "SECRET" in key or "PASSWORD" in key or "DATABASE_URL" in key:
            assert "${" in value, key
