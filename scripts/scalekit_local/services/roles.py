"""RolesService: environment roles, organization roles and permissions.

Role names are what memberships and tokens carry (`roles` claim); a role's effective permissions
(its own plus those of the role it `extends`) become the token's `permissions` claim. The default
creator and member roles (seed `environment.default_roles`, UpdateDefaultRoles, and per organization
UpdateDefaultOrganizationRoles) are what new members get. As the hosted service answers: a
duplicate role or permission name is INVALID_ARGUMENT "duplicate key not allowed", and a role still
assigned to users cannot be deleted without a role to reassign them to.
"""
from __future__ import annotations

import re

import grpc

from ..records import Permission, env_settings
from ..store import Role, now
from . import abort_with_error, servicer
from ._util import invalid, not_found, paginate, require_org, ts

DUPLICATE = "duplicate key not allowed"
IN_USE = "role cannot be deleted as it is assigned to users"

NAME = re.compile(r"^[A-Za-z0-9_:.-]{1,100}$")


def register(server: grpc.Server, ctx) -> None:
    from google.protobuf.empty_pb2 import Empty
    from scalekit.v1.roles import roles_pb2 as pb
    from scalekit.v1.roles import roles_pb2_grpc as pb_grpc

    store = ctx.store

    def perm_message(perm: Permission):
        return pb.Permission(id=perm.id, name=perm.name, description=perm.description, create_time=ts(perm.created_at),
                             update_time=ts(perm.updated_at))

    def role_message(role: Role, org_id: str | None = None):
        settings = env_settings(store)
        member = settings.org_default_member_roles.get(org_id or "", settings.default_member_role)
        msg = pb.Role(id=f"role_{role.name}", name=role.name, display_name=role.display_name or role.name,
                      description=role.description, is_org_role=role.organization_id is not None,
                      default_member=role.name == member, default_creator=role.name == settings.default_creator_role,
                      dependent_roles_count=sum(1 for r in all_roles(org_id) if r.extends == role.name))
        if role.extends:
            msg.extends = role.extends
        for name in role.permissions:
            perm = store.permissions.get(name)
            msg.permissions.append(pb.RolePermission(id=perm.id if perm else "", name=name, role_name=role.name,
                                                     description=perm.description if perm else ""))
        return msg

    def all_roles(org_id=None):
        roles = list(store.roles.values())
        if org_id:
            roles += list(store.org_roles.get(org_id, {}).values())
        return roles

    def check_name(context, name, what="role"):
        if not name or not NAME.match(name):
            invalid(context, f"{what} name {name!r} must be 1-100 characters of letters, digits, '_', ':', '.', '-'")

    def check_perms(context, names):
        for name in names:
            if name not in store.permissions:
                not_found(context, "PERMISSION_NOT_FOUND", f"permission {name!r} does not exist")
        return list(dict.fromkeys(names))

    def find_role(context, name, org_id=None):
        role = store.org_roles.get(org_id, {}).get(name) if org_id else store.roles.get(name)
        if role is None:
            not_found(context, "ROLE_NOT_FOUND", f"role {name!r} not found")
        return role

    def find_perm(context, name):
        perm = store.permissions.get(name)
        if perm is None:
            not_found(context, "PERMISSION_NOT_FOUND", f"permission {name!r} not found")
        return perm

    def new_role(context, spec, org_id=None) -> Role:
        check_name(context, spec.name)
        if org_id is None and spec.name in store.roles or org_id and spec.name in store.org_roles.get(org_id, {}):
            invalid(context, DUPLICATE)
        extends = spec.extends if spec.HasField("extends") and spec.extends else None
        if extends and store.find_role(extends, org_id) is None:
            not_found(context, "ROLE_NOT_FOUND", f"role {extends!r} (extends) not found")
        return Role(spec.name, spec.display_name, spec.description, check_perms(context, spec.permissions), extends, org_id)

    def update_role(context, role, upd, org_id=None):
        if upd.HasField("display_name"):
            role.display_name = upd.display_name
        if upd.HasField("description"):
            role.description = upd.description
        if upd.HasField("extends"):
            if upd.extends and store.find_role(upd.extends, org_id) is None:
                not_found(context, "ROLE_NOT_FOUND", f"role {upd.extends!r} (extends) not found")
            role.extends = upd.extends or None
        if upd.permissions:
            role.permissions = check_perms(context, upd.permissions)

    def users_with(role_name, org_id=None):
        return sum(1 for u in store.users.values() for m in u.memberships
                   if role_name in m.roles and (org_id is None or m.organization_id == org_id))

    def reassign(context, role_name, target, org_id=None):
        if target and store.find_role(target, org_id) is None:
            not_found(context, "ROLE_NOT_FOUND", f"role {target!r} (reassign) not found")
        if users_with(role_name, org_id) and not target:
            abort_with_error(context, grpc.StatusCode.FAILED_PRECONDITION, "ROLE_IN_USE", IN_USE)
        for u in store.users.values():
            for m in u.memberships:
                if role_name in m.roles and (org_id is None or m.organization_id == org_id):
                    m.roles = [r for r in m.roles if r != role_name]
                    if target and target not in m.roles:
                        m.roles.append(target)

    class Roles:
        # ---- environment roles ----
        def CreateRole(self, request, context):
            with store.lock:
                role = new_role(context, request.role)
                store.roles[role.name] = role
                return pb.CreateRoleResponse(role=role_message(role))

        def GetRole(self, request, context):
            with store.lock:
                return pb.GetRoleResponse(role=role_message(find_role(context, request.role_name)))

        def ListRoles(self, request, context):
            with store.lock:
                return pb.ListRolesResponse(roles=[role_message(r) for r in sorted(store.roles.values(), key=lambda r: r.created_at)])

        def UpdateRole(self, request, context):
            with store.lock:
                role = find_role(context, request.role_name)
                update_role(context, role, request.role)
                return pb.UpdateRoleResponse(role=role_message(role))

        def DeleteRole(self, request, context):
            with store.lock:
                find_role(context, request.role_name)
                target = request.reassign_role_name if request.HasField("reassign_role_name") else None
                reassign(context, request.role_name, target)
                del store.roles[request.role_name]
            return Empty()

        def GetRoleUsersCount(self, request, context):
            with store.lock:
                find_role(context, request.role_name)
                return pb.GetRoleUsersCountResponse(count=users_with(request.role_name))

        def UpdateDefaultRoles(self, request, context):
            def wanted(plain: str, legacy) -> str | None:
                if request.HasField(plain):
                    return getattr(request, plain)
                if request.HasField(legacy):
                    ref = getattr(request, legacy)
                    return ref.name if ref.HasField("name") else ref.id.removeprefix("role_")
                return None

            creator = wanted("default_creator_role", "default_creator")
            member = wanted("default_member_role", "default_member")
            if creator is None and member is None:
                invalid(context, "default_creator_role or default_member_role is required")
            with store.lock:
                roles = {name: find_role(context, name) for name in (creator, member) if name is not None}
                settings = env_settings(store)
                if creator is not None:
                    settings.default_creator_role = creator
                if member is not None:
                    settings.default_member_role = member
                response = pb.UpdateDefaultRolesResponse()
                for name, target in ((settings.default_creator_role, response.default_creator),
                                     (settings.default_member_role, response.default_member)):
                    if name and (name in roles or name in store.roles):
                        target.CopyFrom(role_message(roles.get(name) or store.roles[name]))
                return response

        def UpdateDefaultOrganizationRoles(self, request, context):
            org = require_org(context, store, request.org_id)
            if not request.default_member_role:
                invalid(context, "default_member_role is required")
            with store.lock:
                role = store.find_role(request.default_member_role, org.id)
                if role is None:
                    not_found(context, "ROLE_NOT_FOUND", f"role {request.default_member_role!r} not found")
                env_settings(store).org_default_member_roles[org.id] = role.name
                return pb.UpdateDefaultOrganizationRolesResponse(default_member=role_message(role, org.id))

        def DeleteRoleBase(self, request, context):
            with store.lock:
                find_role(context, request.role_name).extends = None
            return Empty()

        def DeleteOrganizationRoleBase(self, request, context):
            org = require_org(context, store, request.org_id)
            with store.lock:
                find_role(context, request.role_name, org.id).extends = None
            return Empty()

        def ListDependentRoles(self, request, context):
            with store.lock:
                find_role(context, request.role_name)
                return pb.ListDependentRolesResponse(roles=[role_message(r) for r in store.roles.values()
                                                            if r.extends == request.role_name])

        # ---- organization roles ----
        def CreateOrganizationRole(self, request, context):
            org = require_org(context, store, request.org_id)
            with store.lock:
                role = new_role(context, request.role, org.id)
                store.org_roles.setdefault(org.id, {})[role.name] = role
                return pb.CreateOrganizationRoleResponse(role=role_message(role, org.id))

        def GetOrganizationRole(self, request, context):
            org = require_org(context, store, request.org_id)
            with store.lock:
                role = store.find_role(request.role_name, org.id)
                if role is None:
                    not_found(context, "ROLE_NOT_FOUND", f"role {request.role_name!r} not found")
                return pb.GetOrganizationRoleResponse(role=role_message(role, org.id))

        def ListOrganizationRoles(self, request, context):
            org = require_org(context, store, request.org_id)
            with store.lock:
                roles = sorted(all_roles(org.id), key=lambda r: (r.organization_id is not None, r.created_at))
                return pb.ListOrganizationRolesResponse(roles=[role_message(r, org.id) for r in roles])

        def UpdateOrganizationRole(self, request, context):
            org = require_org(context, store, request.org_id)
            with store.lock:
                role = find_role(context, request.role_name, org.id)
                update_role(context, role, request.role, org.id)
                return pb.UpdateOrganizationRoleResponse(role=role_message(role, org.id))

        def DeleteOrganizationRole(self, request, context):
            org = require_org(context, store, request.org_id)
            with store.lock:
                find_role(context, request.role_name, org.id)
                target = request.reassign_role_name if request.HasField("reassign_role_name") else None
                reassign(context, request.role_name, target, org.id)
                del store.org_roles[org.id][request.role_name]
            return Empty()

        def GetOrganizationRoleUsersCount(self, request, context):
            org = require_org(context, store, request.org_id)
            with store.lock:
                if store.find_role(request.role_name, org.id) is None:
                    not_found(context, "ROLE_NOT_FOUND", f"role {request.role_name!r} not found")
                return pb.GetOrganizationRoleUsersCountResponse(count=users_with(request.role_name, org.id))

        # ---- permissions ----
        def CreatePermission(self, request, context):
            spec = request.permission
            check_name(context, spec.name, "permission")
            with store.lock:
                if spec.name in store.permissions:
                    invalid(context, DUPLICATE)
                perm = Permission(spec.name, spec.description)
                store.permissions[perm.name] = perm
                return pb.CreatePermissionResponse(permission=perm_message(perm))

        def GetPermission(self, request, context):
            return pb.GetPermissionResponse(permission=perm_message(find_perm(context, request.permission_name)))

        def ListPermissions(self, request, context):
            with store.lock:
                perms = sorted(store.permissions.values(), key=lambda p: (p.created_at, p.name))
            page, nxt, prev = paginate(context, perms, request.page_size if request.HasField("page_size") else 0,
                                       request.page_token if request.HasField("page_token") else "")
            return pb.ListPermissionsResponse(permissions=[perm_message(p) for p in page], total_size=len(perms),
                                              next_page_token=nxt, prev_page_token=prev)

        def UpdatePermission(self, request, context):
            with store.lock:
                perm = find_perm(context, request.permission_name)
                if request.permission.name and request.permission.name != perm.name:
                    invalid(context, "a permission cannot be renamed")
                perm.description = request.permission.description
                perm.updated_at = now()
                return pb.UpdatePermissionResponse(permission=perm_message(perm))

        def DeletePermission(self, request, context):
            with store.lock:
                find_perm(context, request.permission_name)
                del store.permissions[request.permission_name]
                for role in all_roles() + [r for roles in store.org_roles.values() for r in roles.values()]:
                    if request.permission_name in role.permissions:
                        role.permissions.remove(request.permission_name)
            return Empty()

        def ListRolePermissions(self, request, context):
            with store.lock:
                role = find_role(context, request.role_name)
                return pb.ListRolePermissionsResponse(permissions=[perm_message(store.permissions[n]) for n in role.permissions
                                                                   if n in store.permissions])

        def ListEffectiveRolePermissions(self, request, context):
            with store.lock:
                find_role(context, request.role_name)
                return pb.ListEffectiveRolePermissionsResponse(permissions=[
                    perm_message(store.permissions[n]) for n in store.effective_permissions(request.role_name)
                    if n in store.permissions])

        def AddPermissionsToRole(self, request, context):
            with store.lock:
                role = find_role(context, request.role_name)
                if not request.permission_names:
                    invalid(context, "permission_names must not be empty")
                names = check_perms(context, request.permission_names)
                role.permissions += [n for n in names if n not in role.permissions]
                return pb.AddPermissionsToRoleResponse(permissions=[perm_message(store.permissions[n]) for n in role.permissions])

        def RemovePermissionFromRole(self, request, context):
            with store.lock:
                role = find_role(context, request.role_name)
                if request.permission_name not in role.permissions:
                    not_found(context, "PERMISSION_NOT_FOUND", f"role {role.name!r} does not have permission {request.permission_name!r}")
                role.permissions.remove(request.permission_name)
            return Empty()

    impl = servicer(pb_grpc.RolesServiceServicer, Roles)
    pb_grpc.add_RolesServiceServicer_to_server(impl(), server)
