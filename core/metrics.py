"""Prometheus metrics shared across the service (default registry, exposed at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
ORDERS = Counter("cqa_orders_total", "Order and child-order state transitions", ["kind", "state"])
GATE_REJECTIONS = Counter("cqa_gate_rejections_total", "Risk gate rejections by failed check", ["check"])
STREAM_RECONNECTS = Counter("cqa_stream_reconnects_total", "Market stream reconnects", ["exchange", "kind"])
STREAM_LAG = Gauge("cqa_stream_lag_seconds", "Age of the last stream update's exchange timestamp", ["exchange", "kind"])
