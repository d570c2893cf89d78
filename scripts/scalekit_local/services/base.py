"""What every servicer shares: the Servicer base class, typed errors, timestamps and pagination."""
from __future__ import annotations

import re

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ..cross.rpc_errors import abort_with_error

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


class Servicer:
    """The base of every servicer class. Subclass it together with the SDK's generated servicer class
    and name the generated function that registers it::

        class DomainService(Servicer, domains_pb2_grpc.DomainServiceServicer):
            add_to_server = staticmethod(domains_pb2_grpc.add_DomainServiceServicer_to_server)

    An RPC of the generated class that the subclass does not define answers UNIMPLEMENTED, quietly
    (the generated method raises NotImplementedError, which grpcio logs with a traceback)."""

    add_to_server = None  # the generated add_<Service>Servicer_to_server(servicer, server)

    def __init__(self, ctx):
        self.ctx = ctx
        self.store = ctx.store

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        base = generated_base(cls)
        if base is not None:
            _answer_unimplemented(cls, base)


def generated_base(cls: type) -> type | None:
    """The SDK's generated servicer class among cls's bases (scalekit.v1.<area>.<area>_pb2_grpc)."""
    return next((c for c in cls.__mro__ if c.__module__.endswith("_pb2_grpc")), None)


def service_name(cls: type) -> str:
    """"OrganizationService" for a servicer of scalekit.v1.organizations.OrganizationService."""
    return generated_base(cls).__name__.removesuffix("Servicer")


def servicer(base_cls: type, impl: type) -> type:
    """The same for a class put together at run time: a subclass of `base_cls` using `impl`'s methods
    (its own or inherited from mixins); every other RPC answers UNIMPLEMENTED."""
    cls = type(impl.__name__, (impl, base_cls), {})
    _answer_unimplemented(cls, base_cls)
    return cls


def _answer_unimplemented(cls: type, base: type) -> None:
    for name, value in vars(base).items():
        if callable(value) and not name.startswith("_"):
            if next(c for c in cls.__mro__ if name in vars(c)) is base:  # nothing above the generated class has it
                setattr(cls, name, _unimplemented(name))


def _unimplemented(name: str):
    def method(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented by the local Scalekit environment")
    method.__name__ = name
    method.unimplemented = True  # coverage.py lists these as not implemented
    return method


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
