"""The HTTP front door: approver API, webhooks, dashboard and the MCP HTTP transports."""
