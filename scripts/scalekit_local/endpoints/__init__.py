"""The HTTP endpoints, served by one Starlette app: OAuth 2.0 / OpenID Connect and the login pages,
the MCP authorization server, the custom-auth bridge, the admin portal and the /_local/ admin routes."""
