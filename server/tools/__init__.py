"""MCP tools, one module per area; `server.mcp_server` puts them on one MCPServer."""
