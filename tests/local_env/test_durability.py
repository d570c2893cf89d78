"""--persist keeps its promise under `kill -9`: nothing acknowledged more than 0.5 s before the kill is
lost, even when the state is large (here 60 000 sessions and refresh tokens and 2 000 users)."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .helpers import ALICE, REDIRECT, authorize_params, query_of

CLI = Path(__file__).resolve().parents[2] / "scripts" / "local_scalekit.py"
PROMISE = 0.5          # seconds: reference/local-environment.md, persistence.py
BOB_ID = "usr_70000000000003002"


def large_state(path: Path, sessions: int, users: int) -> None:
    """A state file holding the default seed plus many sessions, refresh tokens and users."""
    from scalekit_local.persistence import Persister
    from scalekit_local.seed import load_seed
    from scalekit_local.store import Membership, Store, User, new_id

    store = Store(load_seed())
    for i in range(users):
        user = User(id=new_id("usr"), email=f"user{i}@bulk.test", given_name="Bulk",
                    memberships=[Membership("org_70000000000001001", ["member"])])
        store.users[user.id] = user
    for i in range(sessions):
        session = store.create_session("usr_70000000000003001", "org_70000000000001001", "conn_70000000000000101")
        store.issue_refresh_token(f"rtf_{i}", "skc_70000000000000001", "usr_70000000000003001",
                                  "org_70000000000001001", session.id, "conn_70000000000000101", ["openid"])
    Persister(path, store).load()  # a new file: saves everything


def saved(path: Path, kind: str) -> dict[str, str]:
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT id, doc FROM objects WHERE kind = ?", (kind,)).fetchall())
    finally:
        db.close()


@pytest.mark.slow
def test_kill_9_loses_nothing_acknowledged_half_a_second_earlier(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    state = data / "state.sqlite3"
    large_state(state, sessions=30_000, users=2_000)
    assert len(saved(state, "session")) == 30_000

    proc = subprocess.Popen([sys.executable, str(CLI), "--port", "0", "--json", "--persist", "--data-dir", str(data),
                             "--auto-login", ALICE], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    logins: list[tuple[float, str]] = []      # (acknowledged at, session id)
    passwords: list[tuple[float, str]] = []   # (acknowledged at, bob's new password)
    try:
        info = json.loads(proc.stdout.readline())
        env = info["env"]
        with httpx.Client(base_url=info["url"], verify=env["REQUESTS_CA_BUNDLE"], timeout=10) as http:
            stop_at = time.monotonic() + 4
            i = 0
            while time.monotonic() < stop_at:
                i += 1
                resp = http.get("/oauth/authorize", params=authorize_params(env["SCALEKIT_CLIENT_ID"]))
                code = query_of(resp.headers["location"])["code"]
                tokens = http.post("/oauth/token", data={
                    "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                    "client_id": env["SCALEKIT_CLIENT_ID"], "client_secret": env["SCALEKIT_CLIENT_SECRET"]}).json()
                claims = json.loads(_payload(tokens["id_token"]))
                logins.append((time.monotonic(), claims["sid"]))
                if i % 5 == 0:
                    password = f"password-{i:06d}"
                    assert http.post("/_local/users/password", json={"user_id": BOB_ID, "password": password}).is_success
                    passwords.append((time.monotonic(), password))
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    promised = killed_at - PROMISE
    sessions = saved(state, "session")
    lost = [sid for acked, sid in logins if acked < promised and sid not in sessions]
    assert len(logins) > 50 and not lost, f"{len(lost)} of {len(logins)} acknowledged logins lost"
    bob = json.loads(saved(state, "user")[BOB_ID])
    owed = [p for acked, p in passwords if acked < promised]
    assert owed and bob["password"] >= owed[-1], (bob["password"], owed[-1])


def _payload(jwt_text: str) -> bytes:
    import base64

    part = jwt_text.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
