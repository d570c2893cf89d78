"""Shared code for scripts/validate_env.py, test_connection.py, test_auth_flow.py, test_web_app.py and
test_mcp_server.py: each script holds its command line; the checks it runs live here (auth_flow.py
and mcp.py for test_auth_flow.py, webapp.py, mcp_server.py).

Internal: users run the scripts, not this package.
"""
