"""UserService: users and their organization memberships (roles shown in the next token after a refresh).

Invitations, as documented (developer-docs fsa/guides/user-invitations.mdx, migration guides): with
send_invitation_email the membership is PENDING_INVITE (a new user's email unverified) until the
user signs in, the invitation expires after 15 days, and the email goes to /_local/mailbox; without
it the membership is ACTIVE and the email verified. ResendInvite sends it again, counting resends,
with a fresh expiry when the old one passed; an accepted invitation cannot be resent. Lists are
newest first.
"""
from __future__ import annotations

import grpc

from ..records import env_settings, org_settings
from ..store import Membership, User, new_id, now
from ..webhooks import membership_data, user_json
from . import abort_with_error, servicer
from ._util import check_email, conflict, invalid, not_found, paginate, require_org, ts


INVITE_TTL = 15 * 24 * 3600
PROFILE_FIELDS = ("locale", "phone_number", "preferred_username", "picture", "gender")


def invite(store, user: User, membership: Membership, inviter_email: str | None = None) -> None:
    """Put a membership in PENDING_INVITE and send the invitation to the mailbox."""
    t = now()
    membership.status, membership.invite_expires_at = "PENDING_INVITE", t + INVITE_TTL
    org = store.organization(membership.organization_id)
    name = org.display_name if org else membership.organization_id
    store.mailbox.send(user.email, f"You are invited to {name}", "invitation",
                       f"{inviter_email or 'An administrator'} invited you to join {name}. Sign in to accept; "
                       f"the invitation expires in 15 days.", organization_id=membership.organization_id)


def delete_user(store, user_id: str) -> None:
    with store.lock:
        store.users.pop(user_id, None)
        for session in store.sessions_of(user_id):
            store.end_session(session.id)


def new_profile(profile) -> dict:
    """The profile fields of a CreateUserProfile that the User dataclass keeps in `profile`."""
    fields = {k: getattr(profile, k) for k in PROFILE_FIELDS if getattr(profile, k)}
    if profile.custom_attributes:
        fields["custom_attributes"] = dict(profile.custom_attributes)
    return fields


def register(server: grpc.Server, ctx) -> None:
    from google.protobuf.empty_pb2 import Empty
    from scalekit.v1.commons import commons_pb2 as cpb
    from scalekit.v1.users import users_pb2 as pb
    from scalekit.v1.users import users_pb2_grpc as pb_grpc

    store = ctx.store

    def role_message(name: str, org_id: str):
        role = store.find_role(name, org_id)
        return cpb.Role(id=f"role_{name}", name=name, display_name=(role.display_name if role else "") or name)

    def message(user: User):
        msg = pb.User(
            id=user.id, environment_id=store.environment_name, create_time=ts(user.created_at),
            update_time=ts(user.updated_at), email=user.email, metadata=user.metadata,
            user_profile=cpb.UserProfile(id=user.id, given_name=user.given_name, family_name=user.family_name,
                                         first_name=user.given_name, last_name=user.family_name,
                                         name=user.display_name, email_verified=user.email_verified,
                                         **{k: v for k, v in user.profile.items() if k in PROFILE_FIELDS},
                                         custom_attributes=user.profile.get("custom_attributes", {})),
        )
        if user.external_id:
            msg.external_id = user.external_id
        for m in user.memberships:
            org = store.organization(m.organization_id)
            _, perms = store.roles_and_permissions(user, m.organization_id)
            membership = cpb.OrganizationMembership(
                organization_id=m.organization_id, join_time=ts(m.created_at), created_at=ts(m.created_at),
                membership_status=cpb.MembershipStatus.Value(
                    "INVITE_EXPIRED" if m.status == "PENDING_INVITE" and (m.invite_expires_at or 0) < now() else m.status),
                roles=[role_message(r, m.organization_id) for r in m.roles],
                name=org.display_name if org else "", display_name=org.display_name if org else "",
                metadata=m.metadata, permissions=perms, provisioning_method="api",
            )
            if m.invite_expires_at is not None:
                membership.expires_at.CopyFrom(ts(m.invite_expires_at))
            if m.accepted_at is not None:
                membership.accepted_at.CopyFrom(ts(m.accepted_at))
            msg.memberships.append(membership)
        return msg

    def find(request, context, field="identities"):
        which = request.WhichOneof(field)
        if which is None or not getattr(request, which):
            invalid(context, "user id or external_id is required")
        with store.lock:
            if which == "id":
                user = store.users.get(request.id)
            else:
                user = next((u for u in store.users.values() if u.external_id == request.external_id), None)
        if user is None:
            not_found(context, "USER_NOT_FOUND", "user not found")
        return user

    def find_by_id(context, user_id):
        user = store.users.get(user_id or "")
        if user is None:
            not_found(context, "USER_NOT_FOUND", f"user {user_id} not found")
        return user

    def membership_of(context, user, org_id):
        m = user.membership(org_id)
        if m is None:
            not_found(context, "MEMBERSHIP_NOT_FOUND", f"user {user.id} is not a member of organization {org_id}")
        return m

    def check_roles(context, names, org_id) -> list[str]:
        out = []
        for name in names:
            if not name:
                invalid(context, "every role needs a name")
            if store.find_role(name, org_id) is None:
                invalid(context, f"role {name!r} does not exist", "ROLE_NOT_FOUND")
            if name not in out:
                out.append(name)
        return out

    def default_roles(org_id):
        settings = env_settings(store)
        name = settings.org_default_member_roles.get(org_id, settings.default_member_role)
        return [name] if name and store.find_role(name, org_id) else []

    def check_seat(context, org_id):
        limit = org_settings(store, org_id).max_allowed_users
        if limit is not None and sum(1 for u in store.users.values() if u.membership(org_id)) >= limit:
            abort_with_error(context, grpc.StatusCode.FAILED_PRECONDITION, "MAX_USERS_LIMIT_REACHED",
                             f"organization {org_id} already has its maximum of {limit} users")

    def check_external_id(context, external_id, user_id=None):
        if external_id and any(u.external_id == external_id and u.id != user_id for u in store.users.values()):
            conflict(context, "USER_EXTERNAL_ID_EXISTS", f"a user with external_id {external_id!r} already exists")

    def page_of(context, users, request, response_cls):
        page, nxt, prev = paginate(context, users, request.page_size, request.page_token)
        return response_cls(users=[message(u) for u in page], total_size=len(users), next_page_token=nxt, prev_page_token=prev)

    def all_users():  # newest first, as the hosted service lists
        return sorted(store.users.values(), key=lambda u: (-u.created_at, u.id))

    def matches(user, query):
        return query in user.email or query in user.display_name.lower() or query == (user.external_id or "").lower() or query == user.id

    def emit_membership(action: str, user: User, org_id: str) -> None:
        store.events.emit(f"user.organization_membership_{action}",
                          membership_data(user, org_id, provisioning_method="api"), organization_id=org_id)

    class Users:
        def CreateUserAndMembership(self, request, context):
            org = require_org(context, store, request.organization_id)
            new = request.user
            email = check_email(context, new.email)
            with store.lock:
                roles = check_roles(context, [r.name for r in new.membership.roles], org.id) or default_roles(org.id)
                existing = store.user_by_email(email)
                if existing is not None and existing.membership(org.id) is not None:
                    conflict(context, "USER_ALREADY_EXISTS", f"{email} is already a member of organization {org.id}")
                check_external_id(context, new.external_id if new.HasField("external_id") else None,
                                  existing.id if existing else None)
                check_seat(context, org.id)
                created = existing is None
                inviting = request.HasField("send_invitation_email") and request.send_invitation_email
                if created:
                    profile = new.user_profile
                    existing = User(id=new_id("usr"), email=email, given_name=profile.given_name or profile.first_name,
                                    family_name=profile.family_name or profile.last_name, name=profile.name,
                                    external_id=(new.external_id or None) if new.HasField("external_id") else None,
                                    metadata=dict(new.metadata), email_verified=not inviting,
                                    profile=new_profile(profile))
                    store.users[existing.id] = existing
                membership = Membership(org.id, roles, dict(new.membership.metadata))
                existing.memberships.append(membership)
                if inviting:
                    invite(store, existing, membership, new.membership.inviter_email or None)
                existing.updated_at = now()
                response = pb.CreateUserAndMembershipResponse(user=message(existing))
            if created:
                store.events.emit("user.created", user_json(existing), organization_id=org.id)
            emit_membership("created", existing, org.id)
            return response

        def GetUser(self, request, context):
            return pb.GetUserResponse(user=message(find(request, context)))

        def ListUsers(self, request, context):
            with store.lock:
                return page_of(context, all_users(), request, pb.ListUsersResponse)

        def SearchUsers(self, request, context):
            query = request.query.strip().lower()
            if len(query) < 3:
                invalid(context, "query must be at least 3 characters")
            with store.lock:
                return page_of(context, [u for u in all_users() if matches(u, query)], request, pb.SearchUsersResponse)

        def ListOrganizationUsers(self, request, context):
            require_org(context, store, request.organization_id)
            with store.lock:
                users = [u for u in all_users() if u.membership(request.organization_id)]
                return page_of(context, users, request, pb.ListOrganizationUsersResponse)

        def SearchOrganizationUsers(self, request, context):
            require_org(context, store, request.organization_id)
            query = request.query.strip().lower()
            if len(query) < 3:
                invalid(context, "query must be at least 3 characters")
            with store.lock:
                users = [u for u in all_users() if u.membership(request.organization_id) and matches(u, query)]
                return page_of(context, users, request, pb.SearchOrganizationUsersResponse)

        def UpdateUser(self, request, context):
            user = find(request, context)
            upd = request.user
            with store.lock:
                if upd.HasField("external_id"):
                    check_external_id(context, upd.external_id, user.id)
                    user.external_id = upd.external_id or None
                if upd.HasField("user_profile"):
                    p = upd.user_profile
                    if p.HasField("given_name") or p.HasField("first_name"):
                        user.given_name = p.given_name if p.HasField("given_name") else p.first_name
                    if p.HasField("family_name") or p.HasField("last_name"):
                        user.family_name = p.family_name if p.HasField("family_name") else p.last_name
                    if p.HasField("name"):
                        user.name = p.name
                    user.profile.update({k: getattr(p, k) for k in PROFILE_FIELDS if p.HasField(k)})
                    if p.custom_attributes:
                        user.profile.setdefault("custom_attributes", {}).update(p.custom_attributes)
                user.metadata.update(upd.metadata)
                user.updated_at = now()
                response = pb.UpdateUserResponse(user=message(user))
            store.events.emit("user.updated", user_json(user))
            return response

        def DeleteUser(self, request, context):
            user = find(request, context)
            delete_user(store, user.id)
            store.events.emit("user.deleted", user_json(user))
            return Empty()

        def CreateMembership(self, request, context):
            org = require_org(context, store, request.organization_id)
            user = find(request, context)
            with store.lock:
                if user.membership(org.id) is not None:
                    conflict(context, "MEMBERSHIP_ALREADY_EXISTS", f"user {user.id} is already a member of organization {org.id}")
                roles = check_roles(context, [r.name for r in request.membership.roles], org.id) or default_roles(org.id)
                check_seat(context, org.id)
                membership = Membership(org.id, roles, dict(request.membership.metadata))
                user.memberships.append(membership)
                if request.HasField("send_invitation_email") and request.send_invitation_email:
                    invite(store, user, membership, request.membership.inviter_email or None)
                user.updated_at = now()
                response = pb.CreateMembershipResponse(user=message(user))
            emit_membership("created", user, org.id)
            return response

        def UpdateMembership(self, request, context):
            require_org(context, store, request.organization_id)
            user = find(request, context)
            with store.lock:
                m = membership_of(context, user, request.organization_id)
                if request.membership.roles:
                    m.roles = check_roles(context, [r.name for r in request.membership.roles], request.organization_id)
                m.metadata.update(request.membership.metadata)
                user.updated_at = now()
                response = pb.UpdateMembershipResponse(user=message(user))
            emit_membership("updated", user, request.organization_id)
            return response

        def DeleteMembership(self, request, context):
            require_org(context, store, request.organization_id)
            user = find(request, context)
            with store.lock:
                roles = membership_of(context, user, request.organization_id).roles
                user.memberships = [m for m in user.memberships if m.organization_id != request.organization_id]
                for session in store.sessions_of(user.id):
                    if session.organization_id == request.organization_id:
                        store.end_session(session.id)
                if request.HasField("cascade") and request.cascade and not user.memberships:
                    delete_user(store, user.id)
            store.events.emit("user.organization_membership_deleted",
                              membership_data(user, request.organization_id, roles, provisioning_method="api"),
                              organization_id=request.organization_id)
            return Empty()

        def ResendInvite(self, request, context):
            require_org(context, store, request.organization_id)
            user = find_by_id(context, request.id)
            with store.lock:
                m = membership_of(context, user, request.organization_id)
                if m.status != "PENDING_INVITE":
                    invalid(context, "invite already accepted" if m.status == "ACTIVE" else "no invitation to resend")
                t = now()
                if m.invite_expires_at is None or m.invite_expires_at < t:
                    m.invite_expires_at = t + INVITE_TTL  # expired: a new invitation
                m.resent_at, m.resent_count = t, m.resent_count + 1
                org = store.organization(request.organization_id)
                store.mailbox.send(user.email, f"Reminder: you are invited to {org.display_name if org else m.organization_id}",
                                   "invitation", "Sign in to accept the invitation.", organization_id=m.organization_id)
                return pb.ResendInviteResponse(invite=pb.Invite(
                    organization_id=m.organization_id, user_id=user.id, status=m.status, created_at=ts(m.created_at),
                    expires_at=ts(m.invite_expires_at), resent_at=ts(m.resent_at), resent_count=m.resent_count))

        def ListUserRoles(self, request, context):
            require_org(context, store, request.organization_id)
            user = find_by_id(context, request.user_id)
            m = membership_of(context, user, request.organization_id)
            return pb.ListUserRolesResponse(roles=[role_message(r, request.organization_id) for r in m.roles])

        def ListUserPermissions(self, request, context):
            require_org(context, store, request.organization_id)
            user = find_by_id(context, request.user_id)
            membership_of(context, user, request.organization_id)
            _, perms = store.roles_and_permissions(user, request.organization_id)
            out = []
            for name in perms:
                perm = store.permissions.get(name)
                out.append(pb.Permission(id=perm.id if perm else f"perm_{name}", name=name,
                                         description=perm.description if perm else ""))
            return pb.ListUserPermissionsResponse(permissions=out)

        def AssignUserRoles(self, request, context):
            require_org(context, store, request.organization_id)
            user = find_by_id(context, request.user_id)
            with store.lock:
                m = membership_of(context, user, request.organization_id)
                names = check_roles(context, [r.role_name or r.id.removeprefix("role_") for r in request.roles],
                                    request.organization_id)
                if not names:
                    invalid(context, "roles must not be empty")
                m.roles += [n for n in names if n not in m.roles]
                user.updated_at = now()
                return pb.AssignUserRolesResponse(roles=[role_message(r, request.organization_id) for r in m.roles])

        def RemoveUserRole(self, request, context):
            require_org(context, store, request.organization_id)
            user = find_by_id(context, request.user_id)
            with store.lock:
                m = membership_of(context, user, request.organization_id)
                if request.role_name not in m.roles:
                    not_found(context, "ROLE_NOT_FOUND", f"user {user.id} does not have role {request.role_name!r}")
                m.roles.remove(request.role_name)
                user.updated_at = now()
            return Empty()

    impl = servicer(pb_grpc.UserServiceServicer, Users)
    pb_grpc.add_UserServiceServicer_to_server(impl(), server)
