"""Optional Nacos integration: registration with heartbeats, remote config, and clean degradation."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

from core import nacos


class FakeNacosClient:
    def __init__(self, config: nacos.NacosConfig, remote: str = "", fail_beats: int = 0) -> None:
        self.config = config
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.remote = remote
        self.fail_beats = fail_beats

    def add_naming_instance(self, service: str, ip: str, port: int, **kw: Any) -> bool:
        self.calls.append(("add", (service, ip, port)))
        return True

    def send_heartbeat(self, service: str, ip: str, port: int, **kw: Any) -> dict[str, Any]:
        if self.fail_beats:
            self.fail_beats -= 1
            raise ConnectionError("nacos down")
        self.calls.append(("beat", (service, ip, port)))
        return {}

    def remove_naming_instance(self, service: str, ip: str, port: int, **kw: Any) -> bool:
        self.calls.append(("remove", (service, ip, port)))
        return True

    def get_config(self, data_id: str, group: str) -> str:
        self.calls.append(("config", (data_id, group)))
        if self.remote == "raise":
            raise ConnectionError("nacos down")
        return self.remote


def test_no_server_means_no_op() -> None:
    assert nacos.start_from_env("127.0.0.1", 8000, env={}) is None
    assert nacos.configure_from_env({}) == []


def test_missing_sdk_degrades_with_a_clear_log_line(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "nacos", None)  # import nacos -> ImportError
    with caplog.at_level(logging.WARNING, logger="core.nacos"):
        assert nacos.start_from_env("127.0.0.1", 8000, env={"NACOS_SERVER": "127.0.0.1:8848"}) is None
    assert "nacos-sdk-python is not installed" in caplog.text


@pytest.mark.fault
def test_registration_survives_nacos_outage() -> None:
    """Fault: heartbeats fail (Nacos restarted or unreachable). Must hold: the service keeps running, registers
    again once Nacos answers, and deregisters on stop."""
    clients: list[FakeNacosClient] = []

    def factory(config: nacos.NacosConfig) -> FakeNacosClient:
        clients.append(FakeNacosClient(config, fail_beats=2))
        return clients[-1]

    env = {"NACOS_SERVER": "127.0.0.1:8848", "NACOS_HEARTBEAT_S": "3600", "NACOS_SERVICE": "desk"}
    reg = nacos.start_from_env("10.1.2.3", 8000, env=env, factory=factory)
    assert reg is not None and reg.registered
    for _ in range(4):
        reg.beat_once()  # fail, (re)register, fail, (re)register
    assert reg.failures == 2 and reg.registered
    reg.beat_once()
    reg.stop()
    kinds = [c[0] for c in clients[0].calls]
    assert kinds == ["add", "add", "add", "beat", "remove"], kinds
    assert clients[0].calls[0][1] == ("desk", "10.1.2.3", 8000)


def test_remote_config_local_env_wins_and_outage_is_empty() -> None:
    remote = "# desk config\nSYMBOLS=BTC/USDT,SOL/USDT\nexport LOG_LEVEL='DEBUG'\nRATE_LIMIT_PER_MINUTE=120\n"
    env = {"NACOS_SERVER": "h:8848", "LOG_LEVEL": "INFO"}
    applied = nacos.configure_from_env(env, factory=lambda c: FakeNacosClient(c, remote))
    assert sorted(applied) == ["RATE_LIMIT_PER_MINUTE", "SYMBOLS"]
    assert env["SYMBOLS"] == "BTC/USDT,SOL/USDT" and env["LOG_LEVEL"] == "INFO"
    down = {"NACOS_SERVER": "h:8848"}
    assert nacos.configure_from_env(down, factory=lambda c: FakeNacosClient(c, "raise")) == []
