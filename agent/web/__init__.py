"""The web desk's static assets (HTML, CSS, one small ES module set), shipped as package data.

Nothing here is built: the files are served as they are by `agent.api.web`, so the wheel carries the whole front end
and the page works offline (no CDN, no npm step)."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX_HTML = STATIC_DIR / "index.html"
