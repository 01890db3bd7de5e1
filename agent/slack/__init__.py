"""Slack front door (slack-bolt): commands, the approve-trade workflow and briefings, over the desk service."""
