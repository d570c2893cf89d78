"""The SCIM stand-in's admin routes: push directory users and groups (domain/directory_sync.py does the
work and emits the organization.directory.* events).

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

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..domain.directory_sync import GROUP_FIELDS, USER_FIELDS, DirectorySync, directory_json
from ..safe_input import loads_json


def _error(message: str, status: int):
    return JSONResponse({"error": "invalid_request" if status == 400 else "not_found", "error_description": message},
                        status_code=status)


async def _handle(request, fn):
    sync = DirectorySync(request.app.state.ctx)
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


async def get_directory(request: Request) -> Response:
    return await _handle(request, _get)


async def post_user(request: Request) -> Response:
    return await _handle(request, _post_user)


async def patch_user(request: Request) -> Response:
    return await _handle(request, _patch_user)


async def delete_user(request: Request) -> Response:
    return await _handle(request, _delete_user)


async def post_group(request: Request) -> Response:
    return await _handle(request, _post_group)


async def patch_group(request: Request) -> Response:
    return await _handle(request, _patch_group)


async def delete_group(request: Request) -> Response:
    return await _handle(request, _delete_group)
