"""HTTP routers. Each area module exposes `router`; the app includes every module listed here."""

ROUTER_MODULES: list[str] = [
    "agent.api.core_routes",
    "agent.api.forecast",
    "agent.api.backtest",
    "agent.api.market",
    "agent.api.options",
    "agent.slack.routes",
    "agent.api.trading",
    "agent.api.news",
    "agent.api.web",
]
