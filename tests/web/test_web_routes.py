"""The web desk's routes without a browser: the page and its assets (local only, CSP), offline docs, the two read
endpoints the page added (whoami, equity), the backtest's equity curve, and the wheel's package data."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from agent.web import STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]
_URL = re.compile(r"""https?://[^\s"'`)<>]+""")


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_page_and_assets_are_local(make_client: Callable[..., tuple[TestClient, str]]) -> None:
    client, _key = make_client("read")
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    refs = re.findall(r"""(?:src|href)=["']([^"'#]+)["']""", page.text)
    assert "ui/app.js" in refs and "ui/app.css" in refs
    for ref in refs:
        assert not ref.startswith(("http:", "https:", "//")), ref
        assert client.get("/" + ref).status_code == 200, ref
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        # the only absolute URL in the front end is the SVG namespace (an identifier, never fetched)
        assert {u for u in _URL.findall(text)} <= {"http://www.w3.org/2000/svg"}, path.name
        assert "innerHTML" not in text and "eval(" not in text, path.name
        if path.suffix == ".js":
            assert client.get(f"/ui/{path.name}").headers["content-type"].startswith(("text/javascript",
                                                                                        "application/javascript"))
    assert "localStorage" not in (STATIC_DIR / "api.js").read_text()  # the key lives in sessionStorage only


def test_docs_and_redoc_use_packaged_assets(make_client: Callable[..., tuple[TestClient, str]]) -> None:
    client, _key = make_client("read")
    for path in ("/docs", "/redoc"):
        html = client.get(path)
        assert html.status_code == 200
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
        assert assets and all(a.startswith("/") for a in assets), assets
        assert "fonts.googleapis" not in html.text and "cdn." not in html.text
        for asset in assets:
            r = client.get(asset)
            assert r.status_code == 200 and len(r.content) > 100, asset
    assert client.get("/openapi.json").status_code == 200


def test_whoami_and_equity(make_client: Callable[..., tuple[TestClient, str]]) -> None:
    client, admin = make_client("admin", four_eyes="true")
    read, _ = client.app.state.api_keys.create("viewer", "read")  # type: ignore[attr-defined]
    assert client.get("/v1/whoami").status_code == 401
    me = client.get("/v1/whoami", headers=h(read)).json()
    assert me["actor"] == "viewer" and me["scopes"] == ["read"] and me["four_eyes"] is True
    assert me["can"] == {"read": True, "trade": False, "approve": False, "admin": False}
    assert me["symbols"] and me["mode"] == "paper"
    assert all(client.get("/v1/whoami", headers=h(admin)).json()["can"].values())
    client.get("/v1/risk", headers=h(read))  # marks the book: today's point of the curve
    eq = client.get("/v1/desk/equity", headers=h(read)).json()
    assert eq["equity"] > 0 and len(eq["points"]) == 1
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", eq["points"][0]["day"]) and eq["points"][0]["equity"] > 0
    assert client.get("/v1/desk/equity").status_code == 401


def test_backtest_equity_curve(make_client: Callable[..., tuple[TestClient, str]]) -> None:
    client, key = make_client("read")
    body = {"strategy": "sma_crossover", "symbols": ["BTC/USDT"], "limit": 300}
    plain = client.post("/v1/backtests", json=body, headers=h(key)).json()
    assert "equity_curve" not in plain
    out = client.post("/v1/backtests", json={**body, "include_equity": True}, headers=h(key)).json()
    curve = out["equity_curve"]
    assert out["equity_columns"] == ["timestamp_ms", "equity", "buy_and_hold"]
    assert len(curve) == out["bars"] <= 1000
    assert curve[0][0] == out["start_ms"] and curve[-1][0] == out["end_ms"]
    assert abs(curve[-1][1] - out["metrics"]["final_equity"]) < 1e-3
    assert abs(curve[-1][2] - out["buy_and_hold"]["final_equity"]) < 1e-3
    stamps = {row[0] for row in curve}
    for trade in out["trades"]:
        assert trade["entry_ms"] in stamps
    long = client.post("/v1/backtests", json={**body, "limit": 2500, "include_equity": True}, headers=h(key)).json()
    assert len(long["equity_curve"]) <= 1001 and long["equity_curve"][-1][0] == long["end_ms"]


def test_wheel_carries_the_front_end() -> None:
    """Every file of the front end matches the package-data globs, so a wheel (not only a checkout) serves it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["agent.web"]
    files = [p.relative_to(STATIC_DIR.parent).as_posix() for p in STATIC_DIR.iterdir()]
    assert files and all(any(fnmatch.fnmatch(f, g) for g in globs) for f in files), (files, globs)
    assert (STATIC_DIR.parent / "__init__.py").exists()


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_colour_contrast_meets_wcag_aa() -> None:
    """Every text colour of the stylesheet against the backgrounds it is drawn on: at least 4.5:1 (WCAG AA)."""
    css = (STATIC_DIR / "app.css").read_text()
    var = dict(re.findall(r"--([a-z]+):\s*(#[0-9a-f]{6})", css))
    backgrounds = [var["bg"], var["panel"], "#131a21", "#121920"]  # page, cards, proposals, charts
    for name in ("text", "muted", "accent", "good", "bad", "warn"):
        for bg in backgrounds:
            assert contrast(var[name], bg) >= 4.5, (name, bg, contrast(var[name], bg))
    pairs = [("#ffffff", "#2a5b8c"), ("#ffffff", "#1f6e47"), ("#ffffff", "#8c2a2f"), ("#ffffff", "#25415f"),
             ("#c9f5dd", "#1e4d36"), ("#ffd9d6", "#5c2326"), ("#fff1c7", "#5a4a17"), ("#111111", var["warn"])]
    for fg, bg in pairs:  # buttons, current nav link, state badges, pending count
        assert bg in css, bg  # the pair is one the stylesheet draws
        assert contrast(fg, bg) >= 4.5, (fg, bg, contrast(fg, bg))
