"""Prometheus metrics shared across the service (default registry, exposed at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter("cqa_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "cqa_http_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TOOL_LATENCY = Histogram(
    "cqa_tool_seconds", "Agent tool latency", ["tool"], buckets=(0.001, 0.005, 0.02, 0.1, 0.5, 2, 10)
)
LLM_TOKENS = Counter("cqa_llm_tokens_total", "LLM tokens", ["kind"])
LLM_COST = Counter("cqa_llm_cost_usd_total", "LLM cost in USD")
