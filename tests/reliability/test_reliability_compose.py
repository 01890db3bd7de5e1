"""docker-compose.yml: `docker-compose config -q` passes (with and without the production profile) where the binary
exists, and the file's structure holds everywhere (parsed with PyYAML): the production profile has the Mongo replica
set, Redis, several API replicas behind a published load balancer, exactly one scheduler leader, a Chroma server the
replicas point at, health-gated depends_on, and the Slack settings passed through."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PASSED_THROUGH = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_APPROVERS", "SLACK_ADMINS",
                  "LLM_API_KEY", "EXCHANGE_API_KEY", "EXCHANGE_SECRET")


class ComposeError(AssertionError):
    pass


def _need(cond: bool, why: str) -> None:
    if not cond:
        raise ComposeError(why)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def check_structure(doc: dict[str, Any]) -> None:
    """Raise ComposeError naming the first thing the production deployment lacks."""
    services: dict[str, Any] = doc.get("services") or {}
    for name in ("app", "api", "lb", "mongo", "redis", "chroma"):
        _need(name in services, f"service {name} missing")

    def in_production(name: str) -> bool:  # no profile: always started; else it must name `production`
        profiles = services[name].get("profiles")
        return profiles is None or "production" in profiles

    for name in ("app", "api", "lb", "mongo", "redis", "chroma"):
        _need(in_production(name), f"{name} does not run with the production profile")
    _need("--replSet" in (services["mongo"].get("command") or []), "mongo is not started as a replica set")
    for name in ("mongo", "redis"):
        _need(bool((services[name].get("healthcheck") or {}).get("test")), f"{name} has no healthcheck")

    api = services["api"]
    replicas = int(((api.get("deploy") or {}).get("replicas")) or 1)
    _need(replicas >= 2, f"api has {replicas} replica(s); the production profile scales it out")
    _need(not api.get("ports"), "api replicas publish no port of their own (the load balancer does)")
    lb = services["lb"]
    _need(bool(lb.get("ports")), "the load balancer publishes no port")

    leaders = [n for n, s in services.items() if in_production(n) and _env(s).get("SCHEDULER_ENABLED") == "true"]
    _need(leaders == ["app"], f"exactly one scheduler leader expected (app), found {leaders}")
    _need(int(((services["app"].get("deploy") or {}).get("replicas")) or 1) == 1, "the leader is not replicated")
    _need(_env(api).get("SCHEDULER_ENABLED") == "false", "api replicas must not run the scheduler")
    _need(_env(api).get("CHROMA_HOST") == "chroma", "api replicas must share the Chroma server (CHROMA_HOST)")

    for name, service in services.items():
        deps = service.get("depends_on") or {}
        _need(isinstance(deps, dict), f"{name}: depends_on must name conditions")
        for dep, spec in deps.items():
            _need(dep in services, f"{name} depends on unknown {dep}")
            healthy = bool((services[dep].get("healthcheck") or {}).get("test"))
            want = "service_healthy" if healthy else "service_started"
            _need((spec or {}).get("condition") == want, f"{name} -> {dep}: condition should be {want}")
    _need("api" in (lb.get("depends_on") or {}), "the load balancer waits for the api replicas")

    for name in ("app", "api"):
        env = _env(services[name])
        for var in PASSED_THROUGH:
            _need(env.get(var, "").startswith("${" + var), f"{name} does not pass {var} through")


def _load(path: Path = COMPOSE) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), "docker-compose.yml is not a mapping"
    return doc


def test_compose_structure_holds() -> None:
    check_structure(_load())


@pytest.mark.parametrize("breakage", ["api-replicas", "second-leader", "no-health-gate", "slack-admins", "no-lb"])
def test_structure_check_catches_a_broken_file(breakage: str) -> None:
    doc = _load()
    services = doc["services"]
    if breakage == "api-replicas":
        services["api"]["deploy"]["replicas"] = 1
    elif breakage == "second-leader":
        services["api"]["environment"]["SCHEDULER_ENABLED"] = "true"
    elif breakage == "no-health-gate":
        services["app"]["depends_on"]["mongo"] = {"condition": "service_started"}
    elif breakage == "slack-admins":
        services["api"]["environment"].pop("SLACK_ADMINS")
    else:
        services.pop("lb")
    with pytest.raises(ComposeError):
        check_structure(doc)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed (structure is "
                    "still checked by test_compose_structure_holds)")
@pytest.mark.parametrize("profile", [None, "production"])
def test_docker_compose_config_validates(profile: str | None, tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    assert binary is not None
    args = [binary, "-f", str(COMPOSE)] + (["--profile", profile] if profile else []) + ["config", "-q"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("services:\n", "services:\n  bad: [\n", 1))
    bad = subprocess.run([binary, "-f", str(broken), "config", "-q"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode != 0, "docker-compose config accepted a broken file"
