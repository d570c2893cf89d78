"""Just-in-time users: an SSO or social login (endpoints/login.py) or the custom-auth bridge
(domain/bridge.py) brings an email; the user, its membership and, for a social sign-up, a personal
organization are created as needed, with the events Scalekit sends for them."""
from __future__ import annotations

from ..ids import new_id
from ..state.records import Membership, Organization, User, membership_data, organization_json, signup_data, user_json


def provision_user(ctx, email: str, organization_id: str | None, given_name: str = "", family_name: str = "") -> User:
    """The user with this email, created (or given a membership of `organization_id`) when missing."""
    store = ctx.store
    with store.lock:
        existing = store.user_by_email(email)
        if existing:
            if organization_id and existing.membership(organization_id) is None:
                existing.memberships.append(Membership(organization_id, store.default_roles(organization_id, "member")))
                store.management_changed()
                _emit_provisioned(ctx.events, existing, organization_id, new_user=False)
            return existing
        local = email.split("@", 1)[0]
        user = User(id=new_id("usr"), email=email.lower(), given_name=given_name or local.capitalize(),
                    family_name=family_name)
        personal = organization_id is None
        if personal:  # social sign-up: a personal organization, as full-stack auth does
            org = Organization(id=new_id("org"), display_name=f"{user.display_name}'s workspace")
            store.organizations[org.id] = org
            organization_id = org.id
            roles = store.default_roles(organization_id, "creator")
        else:
            roles = store.default_roles(organization_id, "member")
        user.memberships.append(Membership(organization_id, roles))
        store.users[user.id] = user
        store.management_changed()
        _emit_provisioned(ctx.events, user, organization_id, new_user=True,
                          new_org=store.organizations[organization_id] if personal else None)
        return user


def _emit_provisioned(events, user: User, organization_id: str, *, new_user: bool, new_org=None) -> None:
    """organization.created, user.created, user.organization_membership_created and user.signup, in that
    order, as applicable."""
    if new_org is not None:
        events.emit("organization.created", organization_json(new_org), organization_id=new_org.id)
    if new_user:
        events.emit("user.created", user_json(user), organization_id=organization_id)
    events.emit("user.organization_membership_created", membership_data(user, organization_id), organization_id=organization_id)
    if new_user and new_org is not None:
        events.emit("user.signup", signup_data(user, new_org), organization_id=new_org.id)
