"""PasswordlessService: email one-time codes and magic links, delivered to the local mailbox.

Documented (developer-docs passwordless/quickstart.mdx and the SDKs' passwordless clients), and
emulated so: the environment's passwordless type (seed `environment.passwordless.type`: OTP, LINK or
LINK_OTP) decides what the email holds; `magiclink_auth_uri` is required for LINK and LINK_OTP and
the link is `<magiclink_auth_uri>?link_token=<token>`; `expires_in` defaults to 300 seconds; at most
30 template variables; a code is verified with its auth_request_id, a link token alone unless
same-browser-origin enforcement is on (then the auth_request_id is required too); five wrong
attempts within ten minutes make further attempts fail with HTTP 429 (gRPC RESOURCE_EXHAUSTED);
a resend extends the expiry and, with `regenerate_on_resend`, issues a new code and link that
replace the old ones. A request verifies once. The emails land in /_local/mailbox (cross/mailbox.py).
Not documented, so chosen here: a wrong, used or expired credential answers INVALID_ARGUMENT.
"""
from __future__ import annotations

import hmac
import secrets
import time
import uuid
from urllib.parse import urlencode

import grpc
from scalekit.v1.auth import passwordless_pb2 as pb
from scalekit.v1.auth import passwordless_pb2_grpc as pb_grpc

from ..cross.rpc_errors import abort_with_error
from ..safe_input import split_url
from ..state.records import PasswordlessRequest
from .base import Servicer, check_email, invalid, not_found

MAX_TEMPLATE_VARIABLES = 30
MAX_ATTEMPTS = 5
ATTEMPT_WINDOW = 600
KEEP_REQUESTS = 3600  # seconds a finished or expired request is remembered


class PasswordlessService(Servicer, pb_grpc.PasswordlessServiceServicer):
    add_to_server = staticmethod(pb_grpc.add_PasswordlessServiceServicer_to_server)

    def SendPasswordlessEmail(self, request, context):
        settings = self.store.environment_settings()
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
        self._credentials(req)
        with self.store.lock:
            self._prune(t)
            self.store.passwordless_requests[req.id] = req
        self._deliver(req, dict(request.template_variables))
        self.store.count("passwordless.sent")
        return self._answer(req)

    def ResendPasswordlessEmail(self, request, context):
        with self.store.lock:
            req = self._request_by_id(context, request.auth_request_id)
            if req.verified:
                invalid(context, "this passwordless request was already verified; send a new one")
            if self.store.environment_settings().regenerate_on_resend:
                self._credentials(req)
            req.expires_at = time.time() + req.expires_in
        self._deliver(req, {})
        return self._answer(req)

    def VerifyPasswordlessEmail(self, request, context):
        which = request.WhichOneof("auth_credential")
        given = getattr(request, which) if which else ""
        if not given:
            invalid(context, "a code or a link_token is required")
        auth_request_id = request.auth_request_id if request.HasField("auth_request_id") else ""
        with self.store.lock:
            if which == "code":
                if not auth_request_id:
                    invalid(context, "auth_request_id is required to verify a code")
                req = self._request_by_id(context, auth_request_id)
            else:
                req = next((r for r in self.store.passwordless_requests.values()
                            if r.link_token and hmac.compare_digest(r.link_token, given)), None)
                if req is None:
                    invalid(context, "the magic link is invalid or was replaced by a newer one")
                if self.store.environment_settings().enforce_same_browser_origin and not auth_request_id:
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
        self.store.count("passwordless.verified")
        response = pb.VerifyPasswordLessResponse(email=req.email, template=req.template,
                                                 passwordless_type=pb.PasswordlessType.Value(req.kind))
        if req.state is not None:
            response.state = req.state
        return response

    # ---- helpers ---------------------------------------------------------------------------------
    def _credentials(self, req: PasswordlessRequest) -> None:
        req.code = f"{secrets.randbelow(10**6):06d}" if req.kind in ("OTP", "LINK_OTP") else None
        req.link_token = f"{uuid.uuid4()}_l" if req.kind in ("LINK", "LINK_OTP") else None

    def _deliver(self, req: PasswordlessRequest, variables) -> None:
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
        self.ctx.mailbox.send(req.email, "Your sign-in code" if req.code else "Your sign-in link", "passwordless",
                              "\n".join(lines), code=req.code, link=link, auth_request_id=req.id)

    def _answer(self, req: PasswordlessRequest):
        return pb.SendPasswordlessResponse(auth_request_id=req.id, expires_at=int(req.expires_at),
                                           expires_in=req.expires_in,
                                           passwordless_type=pb.PasswordlessType.Value(req.kind))

    def _prune(self, t: float) -> None:
        for key in [k for k, r in self.store.passwordless_requests.items() if r.expires_at < t - KEEP_REQUESTS]:
            del self.store.passwordless_requests[key]

    def _request_by_id(self, context, auth_request_id: str) -> PasswordlessRequest:
        req = self.store.passwordless_requests.get(auth_request_id or "")
        if req is None:
            not_found(context, "AUTH_REQUEST_NOT_FOUND", f"passwordless request {auth_request_id!r} not found")
        return req
