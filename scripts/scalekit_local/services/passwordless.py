"""PasswordlessService: email one-time codes and magic links, delivered to the local mailbox.

Documented (developer-docs passwordless/quickstart.mdx and the SDKs' passwordless clients), and
emulated so: the environment's passwordless type (seed `environment.passwordless.type`: OTP, LINK or
LINK_OTP) decides what the email holds; `magiclink_auth_uri` is required for LINK and LINK_OTP and
the link is `<magiclink_auth_uri>?link_token=<token>`; `expires_in` defaults to 300 seconds; at most
30 template variables; a code is verified with its auth_request_id, a link token alone unless
same-browser-origin enforcement is on (then the auth_request_id is required too); five wrong
attempts within ten minutes make further attempts fail with HTTP 429 (gRPC RESOURCE_EXHAUSTED);
a resend extends the expiry and, with `regenerate_on_resend`, issues a new code and link that
replace the old ones. A request verifies once. The emails land in /_local/mailbox (mailbox.py).
Not documented, so chosen here: a wrong, used or expired credential answers INVALID_ARGUMENT.
"""
from __future__ import annotations

import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import grpc

from ..records import env_settings
from ..safe_input import split_url
from . import abort_with_error, servicer
from ._util import check_email, invalid, not_found

MAX_TEMPLATE_VARIABLES = 30
MAX_ATTEMPTS = 5
ATTEMPT_WINDOW = 600
KEEP_REQUESTS = 3600  # seconds a finished or expired request is remembered


@dataclass
class PasswordlessRequest:
    id: str
    email: str
    kind: str                        # OTP | LINK | LINK_OTP
    expires_in: int
    expires_at: float
    template: int = 0
    state: str | None = None
    magiclink_auth_uri: str | None = None
    code: str | None = None
    link_token: str | None = None
    failures: list[float] = field(default_factory=list)
    verified: bool = False
    created_at: float = field(default_factory=time.time)


def register(server: grpc.Server, ctx) -> None:
    from scalekit.v1.auth import passwordless_pb2 as pb
    from scalekit.v1.auth import passwordless_pb2_grpc as pb_grpc

    store = ctx.store

    def credentials(req: PasswordlessRequest) -> None:
        req.code = f"{secrets.randbelow(10**6):06d}" if req.kind in ("OTP", "LINK_OTP") else None
        req.link_token = f"{uuid.uuid4()}_l" if req.kind in ("LINK", "LINK_OTP") else None

    def deliver(req: PasswordlessRequest, variables) -> None:
        link = None
        if req.link_token:
            sep = "&" if "?" in req.magiclink_auth_uri else "?"
            link = f"{req.magiclink_auth_uri}{sep}{urlencode({'link_token': req.link_token})}"
        lines = ["Sign in to the local app."]
        if req.code:
            lines.append(f"Your verification code: {req.code}")
        if link:
            lines.append(f"Or open this link: {link}")
        lines.append(f"It expires in {req.expires_in} seconds.")
        lines += [f"{k}: {v}" for k, v in sorted(variables.items())]
        store.mailbox.send(req.email, "Your sign-in code" if req.code else "Your sign-in link", "passwordless",
                           "\n".join(lines), code=req.code, link=link, auth_request_id=req.id)

    def answer(req: PasswordlessRequest):
        return pb.SendPasswordlessResponse(auth_request_id=req.id, expires_at=int(req.expires_at),
                                           expires_in=req.expires_in,
                                           passwordless_type=pb.PasswordlessType.Value(req.kind))

    def prune(t: float) -> None:
        for key in [k for k, r in store.passwordless_requests.items() if r.expires_at < t - KEEP_REQUESTS]:
            del store.passwordless_requests[key]

    def request_by_id(context, auth_request_id: str) -> PasswordlessRequest:
        req = store.passwordless_requests.get(auth_request_id or "")
        if req is None:
            not_found(context, "AUTH_REQUEST_NOT_FOUND", f"passwordless request {auth_request_id!r} not found")
        return req

    class Passwordless:
        def SendPasswordlessEmail(self, request, context):
            settings = env_settings(store)
            email = check_email(context, request.email)
            uri = request.magiclink_auth_uri if request.HasField("magiclink_auth_uri") else None
            if settings.passwordless_type in ("LINK", "LINK_OTP"):
                if not uri:
                    invalid(context, "magiclink_auth_uri is required: this environment sends magic links "
                                     f"({settings.passwordless_type})")
                parts = split_url(uri)
                if parts is None or parts.scheme not in ("http", "https"):
                    invalid(context, f"magiclink_auth_uri {uri!r} is not an http(s) URL")
            if len(request.template_variables) > MAX_TEMPLATE_VARIABLES:
                invalid(context, f"at most {MAX_TEMPLATE_VARIABLES} template_variables are allowed")
            expires_in = request.expires_in if request.HasField("expires_in") and request.expires_in else \
                settings.passwordless_expires_in
            t = time.time()
            req = PasswordlessRequest(id=secrets.token_urlsafe(24), email=email, kind=settings.passwordless_type,
                                      expires_in=expires_in, expires_at=t + expires_in,
                                      template=request.template if request.HasField("template") else 0,
                                      state=request.state if request.HasField("state") else None,
                                      magiclink_auth_uri=uri)
            credentials(req)
            with store.lock:
                prune(t)
                store.passwordless_requests[req.id] = req
            deliver(req, dict(request.template_variables))
            store.count("passwordless.sent")
            return answer(req)

        def ResendPasswordlessEmail(self, request, context):
            with store.lock:
                req = request_by_id(context, request.auth_request_id)
                if req.verified:
                    invalid(context, "this passwordless request was already verified; send a new one")
                if env_settings(store).regenerate_on_resend:
                    credentials(req)
                req.expires_at = time.time() + req.expires_in
            deliver(req, {})
            return answer(req)

        def VerifyPasswordlessEmail(self, request, context):
            which = request.WhichOneof("auth_credential")
            given = getattr(request, which) if which else ""
            if not given:
                invalid(context, "a code or a link_token is required")
            auth_request_id = request.auth_request_id if request.HasField("auth_request_id") else ""
            with store.lock:
                if which == "code":
                    if not auth_request_id:
                        invalid(context, "auth_request_id is required to verify a code")
                    req = request_by_id(context, auth_request_id)
                else:
                    req = next((r for r in store.passwordless_requests.values()
                                if r.link_token and hmac.compare_digest(r.link_token, given)), None)
                    if req is None:
                        invalid(context, "the magic link is invalid or was replaced by a newer one")
                    if env_settings(store).enforce_same_browser_origin and not auth_request_id:
                        invalid(context, "auth_request_id is required (same-browser origin is enforced)")
                    if auth_request_id and auth_request_id != req.id:
                        invalid(context, "the magic link does not belong to this auth_request_id")
                t = time.time()
                req.failures = [f for f in req.failures if f > t - ATTEMPT_WINDOW]
                if len(req.failures) >= MAX_ATTEMPTS:
                    abort_with_error(context, grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_ATTEMPTS",
                                     "too many attempts for this passwordless request; start again")
                if req.verified:
                    invalid(context, "this passwordless request was already verified")
                expected = req.code if which == "code" else req.link_token
                if not expected or not hmac.compare_digest(expected, given):
                    req.failures.append(t)
                    invalid(context, "the code is not correct" if which == "code" else "the magic link is not valid")
                if req.expires_at < t:
                    invalid(context, "the code or link has expired; resend it")
                req.verified = True
            store.count("passwordless.verified")
            response = pb.VerifyPasswordLessResponse(email=req.email, template=req.template,
                                                     passwordless_type=pb.PasswordlessType.Value(req.kind))
            if req.state is not None:
                response.state = req.state
            return response

    pb_grpc.add_PasswordlessServiceServicer_to_server(servicer(pb_grpc.PasswordlessServiceServicer, Passwordless)(),
                                                      server)
