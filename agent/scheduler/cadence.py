"""Human cadences (`daily 08:00 UTC`, `weekdays 07:30 Europe/London`, `weekly mon 09:00`, `hourly :15`,
`cron 0 */4 * * *`) as cron fields, stored as plain data and turned into APScheduler `CronTrigger`s."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CADENCE_HELP = (
    "`daily HH:MM [TZ]`, `weekdays HH:MM [TZ]`, `weekly mon HH:MM [TZ]`, `hourly [:MM]` or "
    "`cron MIN HOUR DOM MON DOW [TZ]` (TZ defaults to UTC, e.g. `UTC`, `Europe/London`)"
)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class CadenceError(ValueError):
    pass


@dataclass(frozen=True)
class Cadence:
    minute: str
    hour: str = "*"
    day: str = "*"
    month: str = "*"
    day_of_week: str = "*"
    timezone: str = "UTC"
    text: str = ""

    def trigger(self) -> CronTrigger:
        return CronTrigger(
            minute=self.minute,
            hour=self.hour,
            day=self.day,
            month=self.month,
            day_of_week=self.day_of_week,
            timezone=ZoneInfo(self.timezone),
        )

    def fingerprint(self) -> str:
        return f"{self.minute} {self.hour} {self.day} {self.month} {self.day_of_week} {self.timezone}"

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Cadence:
        return cls(**{k: str(v) for k, v in doc.items() if k in cls.__dataclass_fields__})


def _tz(token: str) -> str | None:
    if token.upper() in ("UTC", "GMT", "Z"):
        return "UTC"
    if "/" not in token:
        return None
    try:
        ZoneInfo(token)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return token


def _time(token: str) -> tuple[int, int]:
    m = _TIME.match(token)
    if not m:
        raise CadenceError(f"`{token}` is not a time; use HH:MM (24h), e.g. 08:00")
    return int(m.group(1)), int(m.group(2))


def parse_cadence(tokens: list[str]) -> tuple[Cadence, list[str]]:
    """Parse a cadence from the front of `tokens`; returns it and the tokens left over."""
    if not tokens:
        raise CadenceError(f"say when: {CADENCE_HELP}")
    kind = tokens[0].lower()
    rest = tokens[1:]
    used: list[str] = [tokens[0]]
    fields: dict[str, str]
    if kind in ("daily", "weekdays"):
        if not rest:
            raise CadenceError(f"`{kind}` needs a time, e.g. `{kind} 08:00 UTC`")
        hour, minute = _time(rest[0])
        used.append(rest[0])
        rest = rest[1:]
        fields = {"minute": str(minute), "hour": str(hour)}
        if kind == "weekdays":
            fields["day_of_week"] = "mon-fri"
    elif kind == "weekly":
        if len(rest) < 2 or rest[0].lower()[:3] not in DAYS:
            raise CadenceError("`weekly` needs a day and a time, e.g. `weekly mon 09:00 UTC`")
        hour, minute = _time(rest[1])
        used += rest[:2]
        fields = {"minute": str(minute), "hour": str(hour), "day_of_week": rest[0].lower()[:3]}
        rest = rest[2:]
    elif kind == "hourly":
        minute = 0
        if rest and rest[0].startswith(":") and rest[0][1:].isdigit() and int(rest[0][1:]) < 60:
            minute = int(rest[0][1:])
            used.append(rest[0])
            rest = rest[1:]
        fields = {"minute": str(minute)}
    elif kind == "cron":
        if len(rest) < 5:
            raise CadenceError("`cron` needs five fields: MIN HOUR DOM MON DOW, e.g. `cron 0 */4 * * *`")
        cron = rest[:5]
        used += cron
        rest = rest[5:]
        fields = dict(zip(("minute", "hour", "day", "month", "day_of_week"), cron, strict=True))
    else:
        raise CadenceError(f"unknown cadence `{tokens[0]}`; use {CADENCE_HELP}")
    tz = "UTC"
    if rest and _tz(rest[0]) is not None:
        tz = _tz(rest[0]) or "UTC"
        used.append(rest[0])
        rest = rest[1:]
    cadence = Cadence(**fields, timezone=tz, text=" ".join(used))
    try:
        cadence.trigger()
    except ValueError as exc:
        raise CadenceError(f"invalid schedule `{cadence.text}`: {exc}") from exc
    return cadence, rest
