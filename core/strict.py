"""`StrictModel`: the base of every request body and tool argument model.

Unknown fields are refused, not dropped: `{"stoploss": 30000}` must not become an order without a stop-loss, and
`"leverage": 10` or `"$where"` must not pass silently. The refusal names the field and, when one is close, the
valid field it was probably meant to be. Numbers must be finite (JSON `Infinity` and `NaN` are refused).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, ValidatorFunctionWrapHandler, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError


def _squash(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def closest_field(name: str, valid: Iterable[str]) -> str | None:
    """The valid name `name` was most likely meant to be (`stoploss` -> `stop_loss`), or None."""
    pool = list(valid)
    squashed = {_squash(v): v for v in pool}
    if _squash(name) in squashed:
        return squashed[_squash(name)]
    close = difflib.get_close_matches(name.lower(), pool, n=1, cutoff=0.75)
    return close[0] if close else None


def unknown_fields_message(unknown: Iterable[object], valid: Iterable[str]) -> str:
    """One sentence: which fields are unknown, what each was probably meant to be, and the valid ones."""
    pool = sorted(valid)
    parts = []
    for key in unknown:
        text = str(key)[:60]
        near = closest_field(text, pool)
        parts.append(f"'{text}' (did you mean '{near}'?)" if near else f"'{text}'")
    noun = "field" if len(parts) == 1 else "fields"
    return f"unknown {noun} {', '.join(parts)}; valid fields: {', '.join(pool) or 'none'}"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="wrap")
    @classmethod
    def _name_unknown_fields(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Pydantic reports each unknown field (`extra_forbidden`, next to any missing or invalid ones); reword
        those of this model to name the valid field meant and the valid ones. Other errors pass unchanged."""
        try:
            return handler(data)
        except ValidationError as exc:
            errors = exc.errors()
            if not any(e["type"] == "extra_forbidden" and len(e["loc"]) == 1 for e in errors):
                raise
            details: list[InitErrorDetails] = []
            for e in errors:
                message = e["msg"]
                if e["type"] == "extra_forbidden" and len(e["loc"]) == 1:
                    message = unknown_fields_message([e["loc"][0]], cls.model_fields)
                error = PydanticCustomError(e["type"], message)  # no context: the text is not formatted
                details.append(InitErrorDetails(type=error, loc=e["loc"], input=e["input"]))
            raise ValidationError.from_exception_data(exc.title, details) from None
