"""The MCP server for assistants (docs/MCP.md): tools, resources and a prompt over the
gateway's HTTP API, which it calls like any client app; it never opens PostgreSQL or Redis."""
