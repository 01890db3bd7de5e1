"""Typed tool registry: a tool is a pydantic argument model plus one domain call returning JSON-able data.

The agent runtime turns these into LangChain tools; the same functions back HTTP endpoints. Errors are raised as
`ToolError` and returned to the model as data, never as exceptions that end the turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from core.strict import unknown_fields_message
from trading.exchanges.errors import ExchangeError

ArgsT = TypeVar("ArgsT", bound=BaseModel)
ToolFn = Callable[[Any], dict[str, Any]]


class ToolError(Exception):
    """A readable failure the model may act on (bad symbol, no data, limit hit)."""


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    args: type[BaseModel]
    fn: ToolFn
    # Tools that touch the money path only ever create proposals; this flag lets the runtime audit them.
    proposes_orders: bool = False

    def invoke(self, raw_args: dict[str, Any]) -> dict[str, Any]:
        """Validate and call. Returns {'ok': True, 'result': ...} or {'ok': False, 'error': ...}."""
        if not isinstance(raw_args, dict):
            return {"ok": False, "error": f"arguments for {self.name} must be a JSON object"}
        # Unknown keys are refused, not ignored: a model must not be able to smuggle fields such as `approved`.
        unknown = sorted(set(raw_args) - set(self.args.model_fields), key=str)
        if unknown:
            return {"ok": False, "error": f"{self.name}: {unknown_fields_message(unknown, self.args.model_fields)}"}
        try:
            parsed = self.args.model_validate(raw_args)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'args'}: {str(err['msg']).removeprefix('Value error, ')}"
                for err in exc.errors()[:5]
            )
            return {"ok": False, "error": f"invalid arguments for {self.name}: {problems}"}
        try:
            return {"ok": True, "result": self.fn(parsed)}
        except (ToolError, ExchangeError) as exc:  # an unknown symbol or a venue refusal is an answer, not a crash
            return {"ok": False, "error": str(exc)}


_REGISTRY: dict[str, ToolSpec] = {}


def tool(
    *, name: str, description: str, args: type[ArgsT], proposes_orders: bool = False
) -> Callable[[Callable[[ArgsT], dict[str, Any]]], Callable[[ArgsT], dict[str, Any]]]:
    def decorator(fn: Callable[[ArgsT], dict[str, Any]]) -> Callable[[ArgsT], dict[str, Any]]:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"tool {name} registered twice")
        _REGISTRY[name] = ToolSpec(name, description, args, fn, proposes_orders)
        return fn

    return decorator


def get_tool(name: str) -> ToolSpec | None:
    return _REGISTRY.get(name)


def all_tools() -> dict[str, ToolSpec]:
    return dict(_REGISTRY)
