"""Thin typed tool adapters over trading/, models/ and knowledge/.

`load_all()` imports every tool module so that the registry is complete.
"""

from __future__ import annotations

import importlib

TOOL_MODULES: list[str] = [
    "tools.market",
    "tools.forecast",
    "tools.backtest",
    "tools.options",
    "tools.trading",
    "tools.news",
]


def load_all() -> None:
    for name in TOOL_MODULES:
        importlib.import_module(name)
