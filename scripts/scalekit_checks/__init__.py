"""Shared code for scripts/validate_env.py, test_connection.py and test_auth_flow.py.

Internal: users run the scripts, not this package.
"""
