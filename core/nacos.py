"""Optional Nacos service registration and configuration (only when NACOS_SERVER is set).

- Registration: each API replica registers itself as an ephemeral instance of NACOS_SERVICE (default
  `crypto-quant-agent`) with its host and port, sends a heartbeat every NACOS_HEARTBEAT_S seconds from a daemon
  thread, and deregisters on shutdown. A replica that dies stops heartbeating and Nacos drops it (about 15 s).
- Configuration: `load_remote_config` reads one data id (NACOS_DATA_ID, default `crypto-agent.env`, group
  NACOS_GROUP) in dotenv format; `apply_remote_config` copies its keys into the environment only where the
  environment does not already set them (local environment wins), before settings are read. Secrets should stay in
  the environment or a secret store, not in Nacos.

`nacos-sdk-python` (extra `nacos`) is imported lazily: without it, or without NACOS_SERVER, everything here is a
no-op that says so in one log line. Nacos being down never stops the service: failures are logged and retried on
the next heartbeat.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_SERVICE = "crypto-quant-agent"
DEFAULT_GROUP = "DEFAULT_GROUP"
DEFAULT_DATA_ID = "crypto-agent.env"


@dataclass(frozen=True)
class NacosConfig:
    server: str  # host:port[,host:port]
    namespace: str = ""
    username: str | None = None
    password: str | None = None
    service: str = DEFAULT_SERVICE
    group: str = DEFAULT_GROUP
    data_id: str = DEFAULT_DATA_ID
    heartbeat_s: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NacosConfig | None:
        env = os.environ if env is None else env
        server = (env.get("NACOS_SERVER") or "").strip()
        if not server:
            return None
        return cls(
            server=server,
            namespace=env.get("NACOS_NAMESPACE", ""),
            username=env.get("NACOS_USERNAME") or None,
            password=env.get("NACOS_PASSWORD") or None,
            service=env.get("NACOS_SERVICE", DEFAULT_SERVICE),
            group=env.get("NACOS_GROUP", DEFAULT_GROUP),
            data_id=env.get("NACOS_DATA_ID", DEFAULT_DATA_ID),
            heartbeat_s=float(env.get("NACOS_HEARTBEAT_S", "5")),
        )


ClientFactory = Callable[[NacosConfig], Any]


def _sdk_client(config: NacosConfig) -> Any:
    import nacos  # nacos-sdk-python (1.x and 2.x ship the `nacos.NacosClient` API)

    return nacos.NacosClient(
        config.server, namespace=config.namespace, username=config.username, password=config.password
    )


def make_client(config: NacosConfig, factory: ClientFactory | None = None) -> Any | None:
    """A Nacos client, or None (with one log line saying why) when the SDK is not installed."""
    try:
        return (factory or _sdk_client)(config)
    except ImportError:
        log.warning(
            "NACOS_SERVER is set but nacos-sdk-python is not installed (pip install 'crypto-quant-agent[nacos]'); "
            "running without Nacos registration and remote config"
        )
        return None


def parse_dotenv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def load_remote_config(config: NacosConfig, client: Any) -> dict[str, str]:
    """The dotenv data id as a dict ({} when absent or Nacos is unreachable; logged)."""
    try:
        text = client.get_config(config.data_id, config.group)
    except Exception as exc:  # Nacos down must not stop the service
        log.warning("nacos: cannot read config %s/%s: %s", config.group, config.data_id, exc)
        return {}
    return parse_dotenv(text or "")


def apply_remote_config(values: Mapping[str, str], env: dict[str, str] | None = None) -> list[str]:
    """Copy remote keys into the environment where it does not set them; returns the keys applied."""
    target: Any = os.environ if env is None else env
    applied = []
    for key, value in values.items():
        if key not in target:
            target[key] = value
            applied.append(key)
    if applied:
        log.info("nacos: applied remote config keys %s", ", ".join(sorted(applied)))
    return applied


def advertised_host(bind_host: str) -> str:
    """The address other replicas and gateways should use: NACOS_ADVERTISE_HOST, else the bind address unless it
    is a wildcard, else this host's primary address."""
    explicit = os.environ.get("NACOS_ADVERTISE_HOST")
    if explicit:
        return explicit
    try:
        wildcard = not bind_host or ipaddress.ip_address(bind_host).is_unspecified
    except ValueError:  # a host name
        wildcard = False
    if not wildcard:
        return bind_host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


class NacosRegistration:
    """Registers this replica, keeps it alive with heartbeats, deregisters on stop."""

    def __init__(self, config: NacosConfig, client: Any, host: str, port: int) -> None:
        self.config = config
        self.client = client
        self.host = host
        self.port = port
        self.registered = False
        self.heartbeats = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _register(self) -> bool:
        try:
            self.client.add_naming_instance(
                self.config.service, self.host, self.port, group_name=self.config.group, ephemeral=True,
                metadata={"version": "0.1.0"},
            )
        except Exception as exc:
            self.failures += 1
            log.warning("nacos: registering %s %s:%s failed: %s", self.config.service, self.host, self.port, exc)
            return False
        log.info("nacos: registered %s at %s:%s", self.config.service, self.host, self.port)
        self.registered = True
        return True

    def beat_once(self) -> None:
        if not self.registered:
            self._register()
            return
        try:
            self.client.send_heartbeat(self.config.service, self.host, self.port, group_name=self.config.group)
            self.heartbeats += 1
        except Exception as exc:  # Nacos restarted or unreachable: register again on the next beat
            self.failures += 1
            self.registered = False
            log.warning("nacos: heartbeat failed (%s); will register again", exc)

    def start(self) -> None:
        self._register()
        self._thread = threading.Thread(target=self._run, name="nacos-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.config.heartbeat_s):
            self.beat_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.heartbeat_s + 1)
        if self.registered:
            try:
                self.client.remove_naming_instance(
                    self.config.service, self.host, self.port, group_name=self.config.group, ephemeral=True
                )
                log.info("nacos: deregistered %s at %s:%s", self.config.service, self.host, self.port)
            except Exception as exc:
                log.warning("nacos: deregistering failed: %s", exc)
            self.registered = False


def start_from_env(
    bind_host: str, port: int, *, env: Mapping[str, str] | None = None, factory: ClientFactory | None = None
) -> NacosRegistration | None:
    """Register this replica when NACOS_SERVER is set and the SDK is present; else None (logged once)."""
    config = NacosConfig.from_env(env)
    if config is None:
        log.debug("nacos: NACOS_SERVER not set; no service registration")
        return None
    client = make_client(config, factory)
    if client is None:
        return None
    registration = NacosRegistration(config, client, advertised_host(bind_host), port)
    registration.start()
    return registration


def configure_from_env(env: dict[str, str] | None = None, *, factory: ClientFactory | None = None) -> list[str]:
    """Before settings are read: pull the remote dotenv config into the environment (local values win)."""
    config = NacosConfig.from_env(env)
    if config is None:
        return []
    client = make_client(config, factory)
    if client is None:
        return []
    return apply_remote_config(load_remote_config(config, client), env)
