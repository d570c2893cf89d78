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
from google.protobuf.empty_pb2 import Empty
from scalekit.v1.roles import roles_pb2 as pb
from scalekit.v1.roles import roles_pb2_grpc as pb_grpc

from ..cross.rpc_errors import abort_with_error
from ..ids import now
from ..state.records import Permission, Role
from .base import Servicer, invalid, not_found, paginate, require_org, ts

DUPLICATE = "duplicate key not allowed"
IN_USE = "role cannot be deleted as it is assigned to users"

NAME = re.compile(r"^[A-Za-z0-9_:.-]{1,100}$")


class RolesService(Servicer, pb_grpc.RolesServiceServicer):
    add_to_server = staticmethod(pb_grpc.add_RolesServiceServicer_to_server)

    def CreateRole(self, request, context):
        with self.store.lock:
            role = self._new_role(context, request.role)
            self.store.roles[role.name] = role
            return pb.CreateRoleResponse(role=self._role_message(role))

    def GetRole(self, request, context):
        with self.store.lock:
            return pb.GetRoleResponse(role=self._role_message(self._find_role(context, request.role_name)))

    def ListRoles(self, request, context):
        with self.store.lock:
            return pb.ListRolesResponse(roles=[self._role_message(r) for r in sorted(self.store.roles.values(), key=lambda r: r.created_at)])

    def UpdateRole(self, request, context):
        with self.store.lock:
            role = self._find_role(context, request.role_name)
            self._update_role(context, role, request.role)
            return pb.UpdateRoleResponse(role=self._role_message(role))

    def DeleteRole(self, request, context):
        with self.store.lock:
            self._find_role(context, request.role_name)
            target = request.reassign_role_name if request.HasField("reassign_role_name") else None
            self._reassign(context, request.role_name, target)
            del self.store.roles[request.role_name]
        return Empty()

    def GetRoleUsersCount(self, request, context):
        with self.store.lock:
            self._find_role(context, request.role_name)
            return pb.GetRoleUsersCountResponse(count=self._users_with(request.role_name))

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
        with self.store.lock:
            roles = {name: self._find_role(context, name) for name in (creator, member) if name is not None}
            settings = self.store.environment_settings()
            if creator is not None:
                settings.default_creator_role = creator
            if member is not None:
                settings.default_member_role = member
            response = pb.UpdateDefaultRolesResponse()
            for name, target in ((settings.default_creator_role, response.default_creator),
                                 (settings.default_member_role, response.default_member)):
                if name and (name in roles or name in self.store.roles):
                    target.CopyFrom(self._role_message(roles.get(name) or self.store.roles[name]))
            return response

    def UpdateDefaultOrganizationRoles(self, request, context):
        org = require_org(context, self.store, request.org_id)
        if not request.default_member_role:
            invalid(context, "default_member_role is required")
        with self.store.lock:
            role = self.store.find_role(request.default_member_role, org.id)
            if role is None:
                not_found(context, "ROLE_NOT_FOUND", f"role {request.default_member_role!r} not found")
            self.store.environment_settings().org_default_member_roles[org.id] = role.name
            return pb.UpdateDefaultOrganizationRolesResponse(default_member=self._role_message(role, org.id))

    def DeleteRoleBase(self, request, context):
        with self.store.lock:
            self._find_role(context, request.role_name).extends = None
        return Empty()

    def DeleteOrganizationRoleBase(self, request, context):
        org = require_org(context, self.store, request.org_id)
        with self.store.lock:
            self._find_role(context, request.role_name, org.id).extends = None
        return Empty()

    def ListDependentRoles(self, request, context):
        with self.store.lock:
            self._find_role(context, request.role_name)
            return pb.ListDependentRolesResponse(roles=[self._role_message(r) for r in self.store.roles.values()
                                                        if r.extends == request.role_name])

    # ---- organization roles ----
    def CreateOrganizationRole(self, request, context):
        org = require_org(context, self.store, request.org_id)
        with self.store.lock:
            role = self._new_role(context, request.role, org.id)
            self.store.org_roles.setdefault(org.id, {})[role.name] = role
            return pb.CreateOrganizationRoleResponse(role=self._role_message(role, org.id))

    def GetOrganizationRole(self, request, context):
        org = require_org(context, self.store, request.org_id)
        with self.store.lock:
            role = self.store.find_role(request.role_name, org.id)
            if role is None:
                not_found(context, "ROLE_NOT_FOUND", f"role {request.role_name!r} not found")
            return pb.GetOrganizationRoleResponse(role=self._role_message(role, org.id))

    def ListOrganizationRoles(self, request, context):
        org = require_org(context, self.store, request.org_id)
        with self.store.lock:
            roles = sorted(self._all_roles(org.id), key=lambda r: (r.organization_id is not None, r.created_at))
            return pb.ListOrganizationRolesResponse(roles=[self._role_message(r, org.id) for r in roles])

    def UpdateOrganizationRole(self, request, context):
        org = require_org(context, self.store, request.org_id)
        with self.store.lock:
            role = self._find_role(context, request.role_name, org.id)
            self._update_role(context, role, request.role, org.id)
            return pb.UpdateOrganizationRoleResponse(role=self._role_message(role, org.id))

    def DeleteOrganizationRole(self, request, context):
        org = require_org(context, self.store, request.org_id)
        with self.store.lock:
            self._find_role(context, request.role_name, org.id)
            target = request.reassign_role_name if request.HasField("reassign_role_name") else None
            self._reassign(context, request.role_name, target, org.id)
            del self.store.org_roles[org.id][request.role_name]
        return Empty()

    def GetOrganizationRoleUsersCount(self, request, context):
        org = require_org(context, self.store, request.org_id)
        with self.store.lock:
            if self.store.find_role(request.role_name, org.id) is None:
                not_found(context, "ROLE_NOT_FOUND", f"role {request.role_name!r} not found")
            return pb.GetOrganizationRoleUsersCountResponse(count=self._users_with(request.role_name, org.id))

    # ---- permissions ----
    def CreatePermission(self, request, context):
        spec = request.permission
        self._check_name(context, spec.name, "permission")
        with self.store.lock:
            if spec.name in self.store.permissions:
                invalid(context, DUPLICATE)
            perm = Permission(spec.name, spec.description)
            self.store.permissions[perm.name] = perm
            return pb.CreatePermissionResponse(permission=self._perm_message(perm))

    def GetPermission(self, request, context):
        return pb.GetPermissionResponse(permission=self._perm_message(self._find_perm(context, request.permission_name)))

    def ListPermissions(self, request, context):
        with self.store.lock:
            perms = sorted(self.store.permissions.values(), key=lambda p: (p.created_at, p.name))
        page, nxt, prev = paginate(context, perms, request.page_size if request.HasField("page_size") else 0,
                                   request.page_token if request.HasField("page_token") else "")
        return pb.ListPermissionsResponse(permissions=[self._perm_message(p) for p in page], total_size=len(perms),
                                          next_page_token=nxt, prev_page_token=prev)

    def UpdatePermission(self, request, context):
        with self.store.lock:
            perm = self._find_perm(context, request.permission_name)
            if request.permission.name and request.permission.name != perm.name:
                invalid(context, "a permission cannot be renamed")
            perm.description = request.permission.description
            perm.updated_at = now()
            return pb.UpdatePermissionResponse(permission=self._perm_message(perm))

    def DeletePermission(self, request, context):
        with self.store.lock:
            self._find_perm(context, request.permission_name)
            del self.store.permissions[request.permission_name]
            for role in self._all_roles() + [r for roles in self.store.org_roles.values() for r in roles.values()]:
                if request.permission_name in role.permissions:
                    role.permissions.remove(request.permission_name)
        return Empty()

    def ListRolePermissions(self, request, context):
        with self.store.lock:
            role = self._find_role(context, request.role_name)
            return pb.ListRolePermissionsResponse(permissions=[self._perm_message(self.store.permissions[n]) for n in role.permissions
                                                               if n in self.store.permissions])

    def ListEffectiveRolePermissions(self, request, context):
        with self.store.lock:
            self._find_role(context, request.role_name)
            return pb.ListEffectiveRolePermissionsResponse(permissions=[
                self._perm_message(self.store.permissions[n]) for n in self.store.effective_permissions(request.role_name)
                if n in self.store.permissions])

    def AddPermissionsToRole(self, request, context):
        with self.store.lock:
            role = self._find_role(context, request.role_name)
            if not request.permission_names:
                invalid(context, "permission_names must not be empty")
            names = self._check_perms(context, request.permission_names)
            role.permissions += [n for n in names if n not in role.permissions]
            return pb.AddPermissionsToRoleResponse(permissions=[self._perm_message(self.store.permissions[n]) for n in role.permissions])

    def RemovePermissionFromRole(self, request, context):
        with self.store.lock:
            role = self._find_role(context, request.role_name)
            if request.permission_name not in role.permissions:
                not_found(context, "PERMISSION_NOT_FOUND", f"role {role.name!r} does not have permission {request.permission_name!r}")
            role.permissions.remove(request.permission_name)
        return Empty()

    # ---- helpers ---------------------------------------------------------------------------------
    def _perm_message(self, perm: Permission):
        return pb.Permission(id=perm.id, name=perm.name, description=perm.description, create_time=ts(perm.created_at),
                             update_time=ts(perm.updated_at))

    def _role_message(self, role: Role, org_id: str | None = None):
        settings = self.store.environment_settings()
        member = settings.org_default_member_roles.get(org_id or "", settings.default_member_role)
        msg = pb.Role(id=f"role_{role.name}", name=role.name, display_name=role.display_name or role.name,
                      description=role.description, is_org_role=role.organization_id is not None,
                      default_member=role.name == member, default_creator=role.name == settings.default_creator_role,
                      dependent_roles_count=sum(1 for r in self._all_roles(org_id) if r.extends == role.name))
        if role.extends:
            msg.extends = role.extends
        for name in role.permissions:
            perm = self.store.permissions.get(name)
            msg.permissions.append(pb.RolePermission(id=perm.id if perm else "", name=name, role_name=role.name,
                                                     description=perm.description if perm else ""))
        return msg

    def _all_roles(self, org_id=None):
        roles = list(self.store.roles.values())
        if org_id:
            roles += list(self.store.org_roles.get(org_id, {}).values())
        return roles

    def _check_name(self, context, name, what="role"):
        if not name or not NAME.match(name):
            invalid(context, f"{what} name {name!r} must be 1-100 characters of letters, digits, '_', ':', '.', '-'")

    def _check_perms(self, context, names):
        for name in names:
            if name not in self.store.permissions:
                not_found(context, "PERMISSION_NOT_FOUND", f"permission {name!r} does not exist")
        return list(dict.fromkeys(names))

    def _find_role(self, context, name, org_id=None):
        role = self.store.org_roles.get(org_id, {}).get(name) if org_id else self.store.roles.get(name)
        if role is None:
            not_found(context, "ROLE_NOT_FOUND", f"role {name!r} not found")
        return role

    def _find_perm(self, context, name):
        perm = self.store.permissions.get(name)
        if perm is None:
            not_found(context, "PERMISSION_NOT_FOUND", f"permission {name!r} not found")
        return perm

    def _new_role(self, context, spec, org_id=None) -> Role:
        self._check_name(context, spec.name)
        if org_id is None and spec.name in self.store.roles or org_id and spec.name in self.store.org_roles.get(org_id, {}):
            invalid(context, DUPLICATE)
        extends = spec.extends if spec.HasField("extends") and spec.extends else None
        if extends and self.store.find_role(extends, org_id) is None:
            not_found(context, "ROLE_NOT_FOUND", f"role {extends!r} (extends) not found")
        return Role(spec.name, spec.display_name, spec.description, self._check_perms(context, spec.permissions), extends, org_id)

    def _update_role(self, context, role, upd, org_id=None):
        if upd.HasField("display_name"):
            role.display_name = upd.display_name
        if upd.HasField("description"):
            role.description = upd.description
        if upd.HasField("extends"):
            if upd.extends and self.store.find_role(upd.extends, org_id) is None:
                not_found(context, "ROLE_NOT_FOUND", f"role {upd.extends!r} (extends) not found")
            role.extends = upd.extends or None
        if upd.permissions:
            role.permissions = self._check_perms(context, upd.permissions)

    def _users_with(self, role_name, org_id=None):
        return sum(1 for u in self.store.users.values() for m in u.memberships
                   if role_name in m.roles and (org_id is None or m.organization_id == org_id))

    def _reassign(self, context, role_name, target, org_id=None):
        if target and self.store.find_role(target, org_id) is None:
            not_found(context, "ROLE_NOT_FOUND", f"role {target!r} (reassign) not found")
        if self._users_with(role_name, org_id) and not target:
            abort_with_error(context, grpc.StatusCode.FAILED_PRECONDITION, "ROLE_IN_USE", IN_USE)
        for u in self.store.users.values():
            for m in u.memberships:
                if role_name in m.roles and (org_id is None or m.organization_id == org_id):
                    m.roles = [r for r in m.roles if r != role_name]
                    if target and target not in m.roles:
                        m.roles.append(target)
