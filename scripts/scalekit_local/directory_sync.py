"""Test-only SCIM stand-in: admin routes that push directory users and groups, emitting the
`organization.directory.*` events an identity provider's SCIM client would cause.

Users and groups go into store.directories (records.py: the same objects the gRPC DirectoryService
lists); SCIM-only attributes (active, external ids, roles) are kept in store.directory_sync.extra.
A directory comes from the seed's `directories` or is created by the first push that names an
`organization_id` (an `organization.directory_enabled` event is emitted then).

    GET    /_local/directories/{dir_id}                       the directory, its users and groups
    POST   /_local/directories/{dir_id}/users                 {email, given_name?, family_name?, active?,
                                                              external_id?, groups?: [group ids], organization_id?}
                                                              -> 201 user_created (200 user_updated when the email exists)
    PATCH  /_local/directories/{dir_id}/users/{user_id}       same fields -> user_updated
    DELETE /_local/directories/{dir_id}/users/{user_id}       -> user_deleted
    POST   /_local/directories/{dir_id}/groups                {display_name, external_id?, organization_id?} -> group_created
    PATCH  /_local/directories/{dir_id}/groups/{group_id}     -> group_updated
    DELETE /_local/directories/{dir_id}/groups/{group_id}     -> group_deleted
"""
from __future__ import annotations

import secrets
import time
from typing import Any

from .records import Directory, DirectoryGroup, DirectoryUser
from .safe_input import loads_json
from .webhooks import rfc3339

USER_FIELDS = {"email", "given_name", "family_name", "active", "external_id", "groups", "organization_id", "roles"}
GROUP_FIELDS = {"display_name", "external_id", "organization_id"}


def _id(prefix: str) -> str:
    return f"{prefix}_{10**17 + secrets.randbelow(9 * 10**17)}"


def _by_id(items, item_id: str, kind: str):
    """The directory user or group with this id. Raises LookupError (a 404)."""
    found = next((i for i in items if i.id == item_id), None)
    if found is None:
        raise LookupError(f"unknown directory {kind} {item_id!r}")
    return found


def directory_json(d) -> dict[str, Any]:
    return {"id": d.id, "organization_id": d.organization_id, "directory_type": d.directory_type,
            "provider": d.provider, "enabled": d.enabled}


class DirectorySync:
    """Pushes into store.directories; SCIM-only attributes (active, external ids, roles) live in `extra`."""

    def __init__(self, store):
        self.store = store
        self.lock = store.lock
        self.extra: dict[str, dict[str, Any]] = {}  # directory user/group id -> attributes records.py lacks
        if not hasattr(store, "directories"):
            store.directories = {}

    @classmethod
    def of(cls, store) -> DirectorySync:
        with store.lock:
            sync = getattr(store, "directory_sync", None)
            if sync is None:
                sync = store.directory_sync = cls(store)
            return sync

    def directory(self, dir_id: str, organization_id: str | None = None):
        """The directory; created on first use when `organization_id` is given. Raises LookupError."""
        with self.lock:
            directory = self.store.directories.get(dir_id)
            if directory is not None:
                return directory
            if not organization_id:
                raise LookupError(f"unknown directory {dir_id!r}: send organization_id to create it")
            if self.store.organization(organization_id) is None:
                raise LookupError(f"unknown organization {organization_id!r}")
            directory = self.store.directories[dir_id] = Directory(id=dir_id, organization_id=organization_id)
        self.store.events.emit("organization.directory_enabled", directory_json(directory) | {"updated_at": rfc3339()},
                               organization_id=organization_id)
        return directory

    def user_json(self, directory, user) -> dict[str, Any]:
        groups = {g.id: g for g in directory.groups}
        extra = self.extra.get(user.id, {})
        return {
            "id": user.id, "organization_id": directory.organization_id, "directory_id": directory.id,
            "dp_id": extra.get("dp_id", ""), "external_id": extra.get("external_id", ""), "email": user.email,
            "given_name": user.given_name, "family_name": user.family_name,
            "name": " ".join(p for p in (user.given_name, user.family_name) if p),
            "preferred_username": user.preferred_username, "active": extra.get("active", True),
            "roles": [{"role_name": r} for r in extra.get("roles", [])],
            "groups": [{"id": g, "name": groups[g].display_name} for g in user.groups if g in groups],
            "updated_at": rfc3339(user.updated_at),
        }

    def group_json(self, directory, group) -> dict[str, Any]:
        return {"id": group.id, "organization_id": directory.organization_id, "directory_id": directory.id,
                "display_name": group.display_name, "external_id": self.extra.get(group.id, {}).get("external_id", ""),
                "total_users": sum(group.id in u.groups for u in directory.users), "updated_at": rfc3339(group.updated_at)}

    def _emit(self, directory, kind: str, data: dict[str, Any]) -> None:
        self.store.events.emit(f"organization.directory.{kind}", data, organization_id=directory.organization_id)

    def upsert_user(self, directory, fields: dict[str, Any], user_id: str | None = None) -> tuple[dict, bool]:
        with self.lock:
            email = (fields.get("email") or "").strip().lower()
            if fields.get("email") is not None and "@" not in email:
                raise ValueError("email must be an email address")
            if user_id is not None:
                user = _by_id(directory.users, user_id, "user")
            else:
                if not email:
                    raise ValueError("email is required")
                user = next((u for u in directory.users if u.email == email), None)
            if "groups" in fields:
                wanted = list(fields["groups"] or [])
                known = {g.id for g in directory.groups}
                unknown = [g for g in wanted if g not in known]
                if unknown:
                    raise ValueError(f"unknown group {unknown[0]!r}")
            created = user is None
            if created:
                user = DirectoryUser(id=_id("diruser"), email=email, preferred_username=email)
                directory.users.append(user)
                self.extra[user.id] = {"dp_id": secrets.token_hex(10), "active": True, "roles": []}
            extra = self.extra.setdefault(user.id, {"active": True, "roles": []})
            if email:
                user.email = user.preferred_username = email
            for key in ("given_name", "family_name"):
                if key in fields:
                    setattr(user, key, str(fields[key] or ""))
            if "groups" in fields:
                user.groups = list(fields["groups"] or [])
            if "active" in fields:
                extra["active"] = bool(fields["active"])
            if "external_id" in fields:
                extra["external_id"] = str(fields["external_id"] or "")
            if "roles" in fields:
                extra["roles"] = [str(r) for r in fields["roles"] or []]
            user.updated_at = time.time()
            data = self.user_json(directory, user)
        self._emit(directory, "user_created" if created else "user_updated", data)
        return data, created

    def delete_user(self, directory, user_id: str) -> dict:
        with self.lock:
            user = _by_id(directory.users, user_id, "user")
            data = self.user_json(directory, user) | {"active": False}
            directory.users.remove(user)
            self.extra.pop(user_id, None)
        self._emit(directory, "user_deleted", data)
        return data

    def upsert_group(self, directory, fields: dict[str, Any], group_id: str | None = None) -> tuple[dict, bool]:
        with self.lock:
            if group_id is not None:
                group = _by_id(directory.groups, group_id, "group")
            else:
                if not fields.get("display_name"):
                    raise ValueError("display_name is required")
                group = None
            created = group is None
            if created:
                group = DirectoryGroup(id=_id("dirgroup"), display_name=str(fields["display_name"]))
                directory.groups.append(group)
                self.extra[group.id] = {"external_id": secrets.token_hex(10)}
            if fields.get("display_name"):
                group.display_name = str(fields["display_name"])
            if "external_id" in fields:
                self.extra.setdefault(group.id, {})["external_id"] = str(fields["external_id"] or "")
            group.updated_at = time.time()
            data = self.group_json(directory, group)
        self._emit(directory, "group_created" if created else "group_updated", data)
        return data, created

    def delete_group(self, directory, group_id: str) -> dict:
        with self.lock:
            group = _by_id(directory.groups, group_id, "group")
            data = self.group_json(directory, group)
            directory.groups.remove(group)
            for user in directory.users:
                if group_id in user.groups:
                    user.groups.remove(group_id)
            self.extra.pop(group_id, None)
        self._emit(directory, "group_deleted", data)
        return data


# ---- routes -----------------------------------------------------------------------------------------
def _error(message: str, status: int):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": "invalid_request" if status == 400 else "not_found", "error_description": message},
                        status_code=status)


async def _handle(request, fn):
    from starlette.responses import JSONResponse

    store = request.app.state.ctx.store
    sync = DirectorySync.of(store)
    body: dict[str, Any] = {}
    if request.method in ("POST", "PATCH"):
        try:
            body = loads_json(await request.body())
        except (ValueError, UnicodeDecodeError):
            return _error("the body must be a JSON object", 400)
        if not isinstance(body, dict):
            return _error("the body must be a JSON object", 400)
        allowed = USER_FIELDS if "/users" in request.url.path else GROUP_FIELDS
        unknown = set(body) - allowed
        if unknown:
            return _error(f"unknown key {min(unknown)!r}", 400)
    try:
        directory = sync.directory(request.path_params["dir_id"], body.get("organization_id"))
        data, status = fn(sync, directory, body, request.path_params)
    except LookupError as exc:
        return _error(str(exc.args[0]), 404)
    except ValueError as exc:
        return _error(str(exc), 400)
    return JSONResponse(data, status_code=status)


def _get(sync, directory, body, params):
    with sync.lock:
        users = [sync.user_json(directory, u) for u in directory.users]
        groups = [sync.group_json(directory, g) for g in directory.groups]
    return {"directory": directory_json(directory), "users": users, "groups": groups}, 200


def _post_user(sync, directory, body, params):
    data, created = sync.upsert_user(directory, body)
    return data, 201 if created else 200


def _patch_user(sync, directory, body, params):
    return sync.upsert_user(directory, body, params["item_id"])[0], 200


def _delete_user(sync, directory, body, params):
    return sync.delete_user(directory, params["item_id"]), 200


def _post_group(sync, directory, body, params):
    data, created = sync.upsert_group(directory, body)
    return data, 201 if created else 200


def _patch_group(sync, directory, body, params):
    return sync.upsert_group(directory, body, params["item_id"])[0], 200


def _delete_group(sync, directory, body, params):
    return sync.delete_group(directory, params["item_id"]), 200


def routes() -> list:
    from starlette.routing import Route

    def endpoint(fn):
        async def handler(request):
            return await _handle(request, fn)
        return handler

    base = "/_local/directories/{dir_id}"
    return [
        Route(base, endpoint(_get)),
        Route(f"{base}/users", endpoint(_post_user), methods=["POST"]),
        Route(f"{base}/users/{{item_id}}", endpoint(_patch_user), methods=["PATCH"]),
        Route(f"{base}/users/{{item_id}}", endpoint(_delete_user), methods=["DELETE"]),
        Route(f"{base}/groups", endpoint(_post_group), methods=["POST"]),
        Route(f"{base}/groups/{{item_id}}", endpoint(_patch_group), methods=["PATCH"]),
        Route(f"{base}/groups/{{item_id}}", endpoint(_delete_group), methods=["DELETE"]),
    ]
