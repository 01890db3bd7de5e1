"""Model status names that say what the walk-forward evaluation found, not a blanket "good".

Two findings make the name: does the point forecast beat the random walk at the model's horizon (a Diebold-Mariano
test, models.lstm.evaluate), and did the interval cover close to its nominal rate (within CALIBRATION_TOLERANCE) at
step 1 and at the horizon. Every evaluated name is served; the reply and the verdict say what it means.
"""

from __future__ import annotations

import math
from typing import Any

CALIBRATION_TOLERANCE = 0.02  # |coverage - nominal| that counts as calibrated

BEATS_RW_CALIBRATED = "beats_rw_calibrated"
NO_SKILL_CALIBRATED = "no_skill_calibrated"  # the usual case: the interval is the useful part
BEATS_RW_MISCALIBRATED = "beats_rw_miscalibrated"
NO_SKILL_MISCALIBRATED = "no_skill_miscalibrated"
UNEVALUATED = "unevaluated"  # registered without a walk-forward evaluation
REJECTED = "rejected"  # training or evaluation produced non-finite numbers: never served
RETIRED = "retired"
LEGACY_GOOD = "good"  # written before these names; still served

SERVABLE: tuple[str, ...] = (
    BEATS_RW_CALIBRATED,
    NO_SKILL_CALIBRATED,
    BEATS_RW_MISCALIBRATED,
    NO_SKILL_MISCALIBRATED,
    UNEVALUATED,
    LEGACY_GOOD,
)
STATUSES: tuple[str, ...] = (*SERVABLE, REJECTED, RETIRED)

MEANING: dict[str, str] = {
    BEATS_RW_CALIBRATED: "the point forecast beat the random walk and the interval was calibrated",
    NO_SKILL_CALIBRATED: "the point forecast did not beat the random walk; the interval was calibrated",
    BEATS_RW_MISCALIBRATED: "the point forecast beat the random walk; the interval's coverage was off",
    NO_SKILL_MISCALIBRATED: "the point forecast did not beat the random walk and the interval's coverage was off",
    UNEVALUATED: "not evaluated walk-forward: skill and calibration unknown",
    REJECTED: "training or evaluation failed: not served",
    RETIRED: "retired by hand: not served",
    LEGACY_GOOD: "registered before status names described the evaluation: skill and calibration in its metrics",
}


def _calibrated(summary: dict[str, Any]) -> bool:
    cov, level = summary.get("coverage"), summary.get("interval")
    if not isinstance(cov, int | float) or not isinstance(level, int | float) or not math.isfinite(cov):
        return False
    return abs(float(cov) - float(level)) <= CALIBRATION_TOLERANCE


def status_for(summary: dict[str, Any] | None, summary_h1: dict[str, Any] | None = None) -> str:
    """The status name for a model with this walk-forward summary at its horizon (and at step 1)."""
    if not summary:
        return UNEVALUATED
    skill = bool(summary.get("beats_random_walk"))
    calibrated = _calibrated(summary) and (summary_h1 is None or _calibrated(summary_h1))
    if skill:
        return BEATS_RW_CALIBRATED if calibrated else BEATS_RW_MISCALIBRATED
    return NO_SKILL_CALIBRATED if calibrated else NO_SKILL_MISCALIBRATED


def describe(status: str) -> str:
    return MEANING.get(status, status)
