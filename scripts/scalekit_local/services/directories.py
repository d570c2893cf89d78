"""DirectoryService: SCIM directories with their users and groups. Seeded or created here (a new
directory starts disabled, with no users or groups, until it is enabled and /_local/directories/...
pushes users); list, get, enable, disable, delete."""
from __future__ import annotations

import grpc

from ..records import Directory
from ..store import new_id
from . import servicer
from ._util import invalid, not_found, paginate, require_org, ts


def register(server: grpc.Server, ctx) -> None:
    from google.protobuf.struct_pb2 import Struct
    from scalekit.v1.directories import directories_pb2 as pb
    from scalekit.v1.directories import directories_pb2_grpc as pb_grpc

    store = ctx.store

    def message(d):
        return pb.Directory(
            id=d.id, name=d.name, directory_type=pb.DirectoryType.Value(d.directory_type), organization_id=d.organization_id,
            enabled=d.enabled, directory_provider=pb.DirectoryProvider.Value(d.provider), last_synced_at=ts(d.created_at),
            directory_endpoint=f"{ctx.url}/api/v1/directories/{d.id}/scim/v2", total_users=len(d.users),
            total_groups=len(d.groups), status="COMPLETED" if d.enabled else "DISABLED",
        )

    def group_message(d, g, detail: bool):
        msg = pb.DirectoryGroup(id=g.id, display_name=g.display_name, updated_at=ts(g.updated_at),
                                total_users=sum(1 for u in d.users if g.id in u.groups))
        if detail:
            msg.group_detail.update({"id": g.id, "displayName": g.display_name})
        return msg

    def user_message(d, u, detail: bool):
        groups = {g.id: g for g in d.groups}
        msg = pb.DirectoryUser(
            id=u.id, email=u.email, preferred_username=u.preferred_username, given_name=u.given_name,
            family_name=u.family_name, updated_at=ts(u.updated_at), emails=[u.email],
            groups=[group_message(d, groups[g], False) for g in u.groups if g in groups],
        )
        if detail:
            s = Struct()
            s.update({"id": u.id, "userName": u.email, "active": True,
                      "name": {"givenName": u.given_name, "familyName": u.family_name},
                      "emails": [{"value": u.email, "primary": True}]})
            msg.user_detail.CopyFrom(s)
        return msg

    def find(context, org_id, dir_id):
        require_org(context, store, org_id)
        d = store.directories.get(dir_id)
        if d is None or d.organization_id != org_id:
            not_found(context, "DIRECTORY_NOT_FOUND", f"directory {dir_id} not found in organization {org_id}")
        return d

    def after(items, request):
        if request.HasField("updated_after"):
            cutoff = request.updated_after.ToNanoseconds() / 1e9
            items = [i for i in items if i.updated_at > cutoff]
        return items

    class Directories:
        def CreateDirectory(self, request, context):
            org = require_org(context, store, request.organization_id)
            spec = request.directory
            kind = pb.DirectoryType.Name(spec.directory_type) if spec.directory_type else "SCIM"
            if kind != "SCIM":
                invalid(context, f"directory_type {kind} is not supported here (SCIM only)")
            if not spec.directory_provider:
                invalid(context, "directory_provider is required")
            d = Directory(id=new_id("dir"), organization_id=org.id, name=f"{pb.DirectoryProvider.Name(spec.directory_provider).title()} directory",
                          provider=pb.DirectoryProvider.Name(spec.directory_provider), directory_type=kind, enabled=False)
            with store.lock:
                store.directories[d.id] = d
                return pb.CreateDirectoryResponse(directory=message(d))

        def DeleteDirectory(self, request, context):
            from google.protobuf.empty_pb2 import Empty

            d = find(context, request.organization_id, request.id)
            with store.lock:
                store.directories.pop(d.id, None)
            return Empty()

        def ListDirectories(self, request, context):
            require_org(context, store, request.organization_id)
            with store.lock:
                dirs = sorted((d for d in store.directories.values() if d.organization_id == request.organization_id),
                              key=lambda d: (d.created_at, d.id))
                return pb.ListDirectoriesResponse(directories=[message(d) for d in dirs])

        def GetDirectory(self, request, context):
            return pb.GetDirectoryResponse(directory=message(find(context, request.organization_id, request.id)))

        def EnableDirectory(self, request, context):
            d = find(context, request.organization_id, request.id)
            d.enabled = True
            return pb.ToggleDirectoryResponse(enabled=True)

        def DisableDirectory(self, request, context):
            d = find(context, request.organization_id, request.id)
            d.enabled = False
            return pb.ToggleDirectoryResponse(enabled=False)

        def ListDirectoryUsers(self, request, context):
            d = find(context, request.organization_id, request.directory_id)
            users = list(d.users)
            if request.HasField("directory_group_id"):
                users = [u for u in users if request.directory_group_id in u.groups]
            users = after(users, request)
            page, nxt, prev = paginate(context, users, request.page_size, request.page_token)
            detail = request.HasField("include_detail") and request.include_detail
            return pb.ListDirectoryUsersResponse(users=[user_message(d, u, detail) for u in page], total_size=len(users),
                                                 next_page_token=nxt, prev_page_token=prev)

        def ListDirectoryGroups(self, request, context):
            d = find(context, request.organization_id, request.directory_id)
            groups = after(list(d.groups), request)
            page, nxt, prev = paginate(context, groups, request.page_size, request.page_token)
            detail = request.HasField("include_detail") and request.include_detail
            return pb.ListDirectoryGroupsResponse(groups=[group_message(d, g, detail) for g in page], total_size=len(groups),
                                                  next_page_token=nxt, prev_page_token=prev)

    impl = servicer(pb_grpc.DirectoryServiceServicer, Directories)
    pb_grpc.add_DirectoryServiceServicer_to_server(impl(), server)
