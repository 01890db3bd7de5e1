"""Execution: the venue interface, the paper exchange, order splitting and smart routing."""
