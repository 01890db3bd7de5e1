"""The web desk in headless Chromium: first render, page weight and approve-to-filled, against the Swagger UI page
(`/docs`, the way to see the desk in a browser before the web desk) as the anchor, in one run.

The whole app runs in-process on a loopback port (embedded MongoDB, the fake Binance from tests/fakes for prices,
paper trading) and Chromium (Debian's `chromium`, or CHROMIUM_PATH) loads it with every non-loopback request cut off.

- first_render_ms: a fresh browser context (cold cache, a first visit) with the API key already in the tab's session:
  from the start of the navigation to the Desk page showing the desk's state (HTML, modules, CSS, /v1/whoami, then
  the desk's reads), on the browser's clock (a MutationObserver notes when the state element appears). Median of
  WEB_BENCH_RUNS (default 7). first_render_wall_ms is the same seen from this script (it adds Playwright's
  round trips).
- fcp_ms: the browser's own first-contentful-paint for the same loads (median).
- page_kb: what the page downloads besides its data (document, scripts, styles, icon; the API's JSON excluded), as
  the browser's resource timing reports it (encoded body sizes).
- approve_to_filled_ms: a proposal made over HTTP waits on the Approvals page; from the click on Approve to the
  page showing the order filled (the approval, the gate again, the paper fill, the page drawing the answer), on the
  browser's clock. Median of WEB_BENCH_APPROVALS (default 5); approve_to_filled_wall_ms as seen from this script.
  approve_request_ms is the approve request alone (gate, paper fill, answer), from the browser's resource timing.
- docs_first_render_ms / docs_kb: the same first-visit measures for /docs (Swagger UI until the API title shows).

Prints one JSON line last.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import httpx
import uvicorn

RUNS = int(os.environ.get("WEB_BENCH_RUNS", "7"))
APPROVALS = int(os.environ.get("WEB_BENCH_APPROVALS", "5"))
WEIGHT_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  let bytes = nav ? nav.encodedBodySize : 0;
  for (const r of performance.getEntriesByType('resource')) {
    if (r.initiatorType !== 'fetch' && r.initiatorType !== 'xmlhttprequest') bytes += r.encodedBodySize;
  }
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return { bytes, fcp: fcp ? fcp.startTime : null };
}"""


def chromium() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        sys.exit("no chromium executable: apt-get install chromium (or set CHROMIUM_PATH)")
    return path


def start_app(tmp: Path, exchange_url: str, mongo_uri: str) -> tuple[Any, uvicorn.Server, str]:
    from core import settings as settings_mod
    from tests.fakes.asgi_server import free_port

    os.environ.update({"DATA_DIR": str(tmp / "data"), "MONGO_URI": mongo_uri, "MONGO_DB": "webbench",
                       "EXCHANGE_API_URL": exchange_url, "EXCHANGE_ID": "binance", "LOG_LEVEL": "WARNING",
                       "RATE_LIMIT_PER_MINUTE": "100000"})
    os.environ.pop("LLM_API_KEY", None)
    settings_mod.reset_settings()
    from agent.app import create_app

    app = create_app()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 120
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    return app, server, f"http://127.0.0.1:{port}"


def offline(context: Any) -> None:
    def gate(route: Any) -> None:
        if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            route.abort("internetdisconnected")

    context.route("**/*", gate)


# On the Approvals page: when each Approve button is clicked and when its order's row first shows it filled (ms on the
# browser's clock).
APPROVE_JS = """(() => {
  window.__clicked = {}; window.__filled = {};
  document.addEventListener('click', (ev) => {
    const b = ev.target.closest && ev.target.closest('[data-action=approve]');
    if (b) window.__clicked[b.textContent.replace('Approve ', '')] = performance.now();
  }, true);
  new MutationObserver(() => {
    for (const tr of document.querySelectorAll('#decided tr[data-state=filled]')) {
      const id = tr.dataset.order;
      if (window.__clicked[id] && !window.__filled[id]) window.__filled[id] = performance.now();
    }
  }).observe(document, { childList: true, subtree: true });
})();"""

# Installed before the page's own scripts: notes the time (ms from the start of the navigation, the browser's clock)
# at which the element that says "rendered" first appears.
OBSERVE_JS = """(() => {
  const sel = %s;
  const seen = () => { if (!window.__rendered && document.querySelector(sel)) window.__rendered = performance.now(); };
  new MutationObserver(seen).observe(document, { childList: true, subtree: true });
})();"""


def first_visit(browser: Any, url: str, ready: str, key: str | None) -> tuple[float, int, float | None, float]:
    """(first render ms as the browser measures it, bytes downloaded other than data, FCP ms, wall ms seen here)."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    offline(context)
    if key:
        context.add_init_script(f"sessionStorage.setItem('cqa.apiKey', {json.dumps(key)})")
    context.add_init_script(OBSERVE_JS % json.dumps(ready))
    page = context.new_page()
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.locator(ready).first.wait_for(state="visible", timeout=30_000)
    wall = (time.perf_counter() - started) * 1000
    page.wait_for_load_state("load")
    weight = page.evaluate(WEIGHT_JS)
    rendered = float(page.evaluate("window.__rendered"))
    context.close()
    return rendered, int(weight["bytes"]), weight["fcp"], wall


def main() -> None:
    from playwright.sync_api import sync_playwright

    from core.embedded_mongo import EmbeddedMongo
    from tests.fakes.binance_server import FakeBinance

    tmp = Path(tempfile.mkdtemp(prefix="cqa-web-bench-"))
    mongo = EmbeddedMongo(tmp / "mongo")
    mongo.start()
    fake = FakeBinance()
    fake.start()
    app, server, base = start_app(tmp, fake.url, mongo.uri)
    try:
        keys = app.state.api_keys
        reader = keys.create("viewer", "read")[0]
        trader = keys.create("trader", "read,trade")[0]
        approver = keys.create("approver", "read,approve")[0]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium(), headless=True,
                                         args=["--no-sandbox", "--disable-dev-shm-usage"])
            first_visit(browser, base + "/", "#desk-state-value", reader)  # warm the server's caches
            desk = [first_visit(browser, base + "/", "#desk-state-value", reader) for _ in range(RUNS)]
            first_visit(browser, base + "/docs", ".swagger-ui .info .title", None)
            docs = [first_visit(browser, base + "/docs", ".swagger-ui .info .title", None) for _ in range(RUNS)]

            context = browser.new_context(viewport={"width": 1360, "height": 900})
            offline(context)
            context.add_init_script(f"sessionStorage.setItem('cqa.apiKey', {json.dumps(approver)})")
            context.add_init_script(APPROVE_JS)
            page = context.new_page()
            page.goto(base + "/#/approvals")
            fills: list[float] = []
            wall: list[float] = []
            posts: list[float] = []  # the approve request alone (the desk's work), from the browser's resource timing
            for i in range(APPROVALS):
                r = httpx.post(f"{base}/v1/proposals", json={"symbol": "BTC/USDT", "side": "buy" if i % 2 == 0
                               else "sell", "qty": 0.01, "note": "benchmark"},
                               headers={"Authorization": f"Bearer {trader}"}, timeout=30)
                oid = r.json()["order"]["id"]
                button = page.locator(f"#proposal-{oid}").get_by_role("button", name=f"Approve {oid}")
                button.wait_for(timeout=30_000)
                started = time.perf_counter()
                button.click()
                page.locator(f'#decided tr[data-order="{oid}"][data-state="filled"]').wait_for(timeout=30_000)
                fills.append(page.evaluate("(id) => window.__filled[id] - window.__clicked[id]", oid))
                wall.append((time.perf_counter() - started) * 1000)
                posts.append(page.evaluate(
                    "(id) => performance.getEntriesByType('resource')"
                    ".filter((r) => r.name.includes(`/approvals/${id}/`)).map((r) => r.duration)[0]", oid))
            context.close()
            browser.close()
    finally:
        server.should_exit = True
        time.sleep(0.5)
        fake.stop()
        mongo.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(values: list[Any]) -> float:
        return round(statistics.median(values), 1)

    out = {
        "benchmark": "web",
        "first_render_ms": med([d[0] for d in desk]),
        "page_kb": round(med([d[1] for d in desk]) / 1024, 1),
        "approve_to_filled_ms": med(fills),
        "approve_request_ms": med(posts),
        "approve_to_filled_wall_ms": med(wall),
        "fcp_ms": med([d[2] for d in desk if d[2] is not None]),
        "first_render_ms_max": round(max(d[0] for d in desk), 1),
        "first_render_wall_ms": med([d[3] for d in desk]),
        "docs_first_render_ms": med([d[0] for d in docs]),
        "docs_kb": round(med([d[1] for d in docs]) / 1024, 1),
        "runs": RUNS,
        "approvals": APPROVALS,
    }
    print(f"desk first render {out['first_render_ms']} ms (max {out['first_render_ms_max']}), "
          f"{out['page_kb']} kB; /docs {out['docs_first_render_ms']} ms, {out['docs_kb']} kB; "
          f"approve to filled {out['approve_to_filled_ms']} ms", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
