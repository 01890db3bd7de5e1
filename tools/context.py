"""Who a tool call acts for: the person whose question made the agent call it (set by the agent runtime around each
tool call). The money tools record it as the requester of a proposal, so the approvers (and the four-eyes rule)
see the human behind the agent, not just "agent"."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_on_behalf_of: contextvars.ContextVar[str | None] = contextvars.ContextVar("tool_on_behalf_of", default=None)


def on_behalf_of() -> str | None:
    """The requesting person's identity (e.g. `slack:U123`, `key:ops`), or None outside an agent request."""
    return _on_behalf_of.get()


@contextmanager
def acting_for(user: str | None) -> Iterator[None]:
    token = _on_behalf_of.set(user)
    try:
        yield
    finally:
        _on_behalf_of.reset(token)
