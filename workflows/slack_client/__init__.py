"""Slack: the Web API client and the message mailgate posts for a pending send."""
