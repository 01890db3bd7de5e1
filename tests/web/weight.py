"""Page weight: the bytes a first visit to a page downloads (the HTML, then every script, stylesheet and icon it
references, and the modules those scripts import), fetched over HTTP the way a browser would."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx

_HTML_REFS = re.compile(r"""(?:src|href)=["']([^"'#]+)["']""")
_JS_IMPORTS = re.compile(r"""(?:import|from)\s*\(?\s*["']([^"']+\.js)["']""")
_FETCHED = (".js", ".css", ".svg", ".png", ".ico")


def page_bytes(base: str, path: str = "/") -> int:
    seen: set[str] = set()
    total = 0
    queue = [urljoin(base, path)]
    with httpx.Client(timeout=30) as client:
        while queue:
            url = queue.pop()
            if url in seen:
                continue
            seen.add(url)
            r = client.get(url)
            r.raise_for_status()
            total += len(r.content)
            text = r.text if ("html" in r.headers.get("content-type", "") or url.endswith(".js")) else ""
            refs = _HTML_REFS.findall(text) if "html" in r.headers.get("content-type", "") else []
            refs += _JS_IMPORTS.findall(text) if url.endswith(".js") else []
            for ref in refs:
                target = urljoin(url, ref)
                if target.startswith(base) and target.split("?")[0].endswith(_FETCHED):
                    queue.append(target)
    return total
