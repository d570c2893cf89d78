"""The hostile-IdP switch (--hostile-idp CONNECTION_ID): that connection's identity provider may assert
any email, not only one of its organization's domains.

Many identity providers let an IT admin create a user with any address, so an app must not trust
the asserted email to pick an existing account. Without the switch the simulated identity provider
page only signs in users of the connection's domains; with it, the page accepts whatever email is
typed, so a test can play Acme's IdP asserting `carol@globex.test` and check that the app refuses to
hand it Carol's account. Whether the hosted Scalekit checks the asserted email in modular SSO is not
documented (its full-stack docs describe an extra email check on a domain mismatch), so apps must
not rely on either behaviour.
"""
from __future__ import annotations


def enable(store, connection_ids) -> None:
    """Mark these connections hostile. Raises ValueError naming an unknown connection id."""
    hostile = set()
    for connection_id in connection_ids:
        if store.connection(connection_id) is None:
            raise ValueError(f"--hostile-idp: unknown connection {connection_id!r}")
        hostile.add(connection_id)
    store.hostile_idp_connections = hostile


def asserts_any_email(store, connection_id: str) -> bool:
    return connection_id in getattr(store, "hostile_idp_connections", ())
