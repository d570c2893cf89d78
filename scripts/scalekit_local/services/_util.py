"""Small helpers shared by the management services: timestamps, pagination, typed errors."""
from __future__ import annotations

import re

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ..cross.rpc_errors import abort_with_error

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


def ts(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    t = Timestamp()
    t.FromNanoseconds(int(seconds * 1e9))
    return t


def invalid(context, message: str, error_code: str = "INVALID_ARGUMENT"):
    abort_with_error(context, grpc.StatusCode.INVALID_ARGUMENT, error_code, message)


def not_found(context, error_code: str, message: str):
    abort_with_error(context, grpc.StatusCode.NOT_FOUND, error_code, message)


def conflict(context, error_code: str, message: str):
    abort_with_error(context, grpc.StatusCode.ALREADY_EXISTS, error_code, message)


def paginate(context, items: list, page_size: int, page_token: str):
    """(page, next_page_token, prev_page_token): tokens are offsets; page_size 0 means the default."""
    size = page_size or DEFAULT_PAGE_SIZE
    if size > MAX_PAGE_SIZE:
        invalid(context, f"page_size must be at most {MAX_PAGE_SIZE}")
    start = 0
    if page_token:
        if not page_token.isdigit() or int(page_token) > len(items):
            invalid(context, "invalid page_token")
        start = int(page_token)
    nxt = start + size
    return (items[start:nxt], str(nxt) if nxt < len(items) else "",
            str(max(start - size, 0)) if start > 0 else "")


def require_org(context, store, org_id: str):
    if not org_id:
        invalid(context, "organization_id is required")
    org = store.organization(org_id)
    if org is None:
        not_found(context, "ORGANIZATION_NOT_FOUND", f"organization {org_id} not found")
    return org


def check_email(context, email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL.match(email):
        invalid(context, f"email {email!r} is not a valid email address", "INVALID_EMAIL")
    return email
