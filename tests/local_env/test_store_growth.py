"""State that grows with every login stays bounded and cheap to save: ended sessions, their refresh
tokens and revoked token ids are pruned after their time, and a save writes what changed, not the
whole state (what keeps logins per second level over a long --persist run; the figure itself is
measured by benchmarks/local_env_bench.py)."""
from __future__ import annotations

import json
import types

import pytest

ALICE_ID = "usr_70000000000003001"
ACME = "org_70000000000001001"
PASSWORD_CONN = "conn_70000000000000101"


@pytest.fixture
def store():
    from scalekit_local.seed import load_seed
    from scalekit_local.store import Store

    return Store(load_seed())


@pytest.fixture
def clock(monkeypatch):
    """The store's clock, moved by hand."""
    import time

    from scalekit_local import store as store_module

    state = types.SimpleNamespace(now=time.time())
    monkeypatch.setattr(store_module, "now", lambda: state.now)
    return state


def login(store, n: int = 1) -> list[str]:
    ids = []
    for i in range(n):
        session = store.create_session(ALICE_ID, ACME, PASSWORD_CONN)
        store.issue_refresh_token(f"rtf_{session.id}", "skc_70000000000000001", ALICE_ID, ACME, session.id,
                                  PASSWORD_CONN, ["openid", "offline_access"])
        ids.append(session.id)
    return ids


def test_ended_sessions_and_their_refresh_tokens_are_pruned(store, clock):
    from scalekit_local.store import ENDED_SESSION_RETENTION

    ended = login(store, 50)
    for session_id in ended:
        store.end_session(session_id)
    live = login(store, 1)[0]
    assert len(store.sessions) == 51 and len(store.refresh_tokens) == 51
    clock.now += ENDED_SESSION_RETENTION + 1
    login(store, 1)  # any new session prunes what has had its time
    assert live in store.sessions and not set(ended) & set(store.sessions)
    assert len(store.sessions) == 2 and len(store.refresh_tokens) == 2
    assert not store.revoked_families, "families of pruned tokens are forgotten with them"
    assert [s.id for s in store.sessions_of(ALICE_ID)][-1] == live


def test_revoked_token_ids_are_forgotten_after_the_token_expired(store, clock):
    store.revoke_jti("tkn_1", clock.now + 300)
    assert store.is_revoked("tkn_1")
    clock.now += 301
    login(store)
    assert not store.is_revoked("tkn_1") and not store.revoked_jtis


def test_expired_codes_and_login_requests_are_pruned(store, clock):
    from scalekit_local.store import CODE_REPLAY_WINDOW, AuthCode, AuthRequest

    for i in range(300):
        store.add_code(AuthCode(f"code{i}", "skc", "http://x/cb", ALICE_ID, ACME, "ses_1", PASSWORD_CONN, ["openid"],
                                None, None, clock.now + 60))
        store.add_auth_request(AuthRequest(f"areq{i}", "skc", "http://x/cb", ["openid"], None, None, None, None, None,
                                           None, clock.now + 600))
    clock.now += 600 + CODE_REPLAY_WINDOW + 1
    store.add_code(AuthCode("fresh", "skc", "http://x/cb", ALICE_ID, ACME, "ses_1", PASSWORD_CONN, ["openid"],
                            None, None, clock.now + 60))
    assert list(store.codes) == ["fresh"] and not store.auth_requests


def test_a_save_writes_what_changed_not_the_whole_state(store, tmp_path, monkeypatch):
    from scalekit_local import persistence

    saver = persistence.Persister(tmp_path / "state.sqlite3", store)
    saver.load()
    login(store, 3000)
    assert saver.flush() >= 6000
    dumped = []
    counting = types.SimpleNamespace(**{name: getattr(json, name) for name in dir(json) if not name.startswith("__")})
    counting.dumps = lambda *a, **k: dumped.append(1) or json.dumps(*a, **k)
    monkeypatch.setattr(persistence, "json", counting)
    login(store, 1)
    written = saver.flush()
    assert written == 2, written  # one session, one refresh token
    assert len(dumped) <= 5, f"{len(dumped)} documents serialised to save one login"
