"""SSRF guard on outbound fetches (knowledge/safety.py), attacked with address encodings and redirects."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

safety = pytest.importorskip("knowledge.safety")

PRIVATE_NETS = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "0.0.0.0/8",
                "100.64.0.0/10", "224.0.0.0/4", "240.0.0.0/4"]


def _encodings(ip: ipaddress.IPv4Address) -> list[str]:
    n = int(ip)
    octets = str(ip).split(".")
    return [
        str(ip),
        str(n),  # decimal integer form
        hex(n),  # hex integer form
        ".".join(f"0{int(o):o}" for o in octets),  # octal octets
        f"[::ffff:{ip}]",  # IPv4-mapped IPv6
    ]


@st.composite
def private_urls(draw: Any) -> str:
    net = ipaddress.ip_network(draw(st.sampled_from(PRIVATE_NETS)))
    ip = net[draw(st.integers(0, net.num_addresses - 1))]
    host = draw(st.sampled_from(_encodings(ip)))  # type: ignore[arg-type]
    scheme = draw(st.sampled_from(["http", "https"]))
    port = draw(st.sampled_from(["", ":80", ":6379", ":27017"]))
    return f"{scheme}://{host}{port}/{draw(st.text('abc/?=&', max_size=10))}"


@pytest.mark.fault
@settings(max_examples=300, deadline=None, database=None)
@given(url=private_urls())
def test_private_addresses_refused_in_every_encoding(url: str) -> None:
    """Fault: a fetch aimed at loopback, private, link-local (cloud metadata), CGNAT, multicast or reserved space,
    written as dotted, decimal, hex, octal or IPv4-mapped IPv6. Must hold: refused before any connection."""
    with pytest.raises(safety.UnsafeURLError):
        safety.check_url(url)


@pytest.mark.fault
@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "ftp://example.com/x", "http://user:pw@example.com/",
    "http://[::1]/", "http://[fe80::1]/", "http://localhost/", "http:///nohost",
])
def test_non_http_credentials_and_local_names_refused(url: str) -> None:
    """Fault: other schemes, credentials in the URL, IPv6 loopback/link-local, local names. Must hold: refused."""
    with pytest.raises(safety.UnsafeURLError):
        safety.check_url(url)


@pytest.mark.fault
def test_redirect_to_metadata_endpoint_refused() -> None:
    """Fault: a public URL answers 302 to the cloud metadata address. Must hold: the redirect hop is refused by the
    guarded client and the private address is never requested."""
    requested: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        if request.url.host == "93.184.216.34":
            return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        return httpx.Response(200, text="secret metadata")

    client = httpx.Client(transport=safety.GuardedTransport(httpx.MockTransport(handler)), follow_redirects=True)
    with pytest.raises(safety.UnsafeURLError):
        client.get("http://93.184.216.34/feed.xml")
    assert requested == ["http://93.184.216.34/feed.xml"]
