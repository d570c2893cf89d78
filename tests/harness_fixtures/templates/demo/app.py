"""Fixture template with marked regions (the code is only compared, never run)."""

import os


# region login
def login_url() -> str:
    return os.environ["SCALEKIT_ENVIRONMENT_URL"] + "/oauth/authorize"


# endregion login


def callback(code: str) -> str:
    # region exchange
    token = code.upper()
    return token
    # endregion exchange
