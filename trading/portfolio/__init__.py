"""Positions and balances per venue and consolidated."""

from trading.portfolio.book import Portfolio, Position

__all__ = ["Portfolio", "Position"]
