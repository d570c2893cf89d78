#!/usr/bin/env python3
"""Check that this machine reaches the Scalekit environment and that the credentials work.

Steps, each with its own line and its own failure message: the discovery document (its issuer must
equal SCALEKIT_ENVIRONMENT_URL), the signing keys (RS256, each with a kid), a client-credentials
token, the SDK's gRPC connection and one management call (list organizations, page size 1), the
clock skew against the server, and the round-trip latency.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bootstrap  # noqa: E402  (standard library only: switches to the skill's venv, creating it on first use)

_bootstrap.use_skill_venv()

import statistics
import time
from email.utils import parsedate_to_datetime

from scalekit_checks import cli, net
from scalekit_checks.report import CheckFailed, Exit, Report

EXAMPLES = """\
  python scripts/test_connection.py --env-file path/to/your-app/.env
  python scripts/test_connection.py --local
  python scripts/test_connection.py --env-file path/to/your-app/.env --timeout 5 --json
"""
DEFAULT_TIMEOUT = 10.0
SKEW_WARN_S = 5  # the Date header has one-second resolution, and the midpoint guess adds latency
SKEW_FAIL_S = 300
SLOW_MS = 1500


def check_discovery(http: net.Http, env_url: str, report: Report) -> dict:
    with report.check("discovery") as c:
        url = f"{env_url}/.well-known/openid-configuration"
        doc, _ = http.get_json(url, "discovery")
        missing = [k for k in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri") if not doc.get(k)]
        if missing:
            raise CheckFailed(Exit.PROTOCOL, f"discovery: {url} lacks {', '.join(missing)}")
        if doc["issuer"] != env_url:
            raise CheckFailed(Exit.PROTOCOL, f"discovery: issuer is {doc['issuer']!r} but SCALEKIT_ENVIRONMENT_URL is "
                              f"{env_url!r}; tokens would fail the iss check: use the issuer as the environment URL",
                              {"issuer": doc["issuer"]})
        c.ok(f"issuer matches {env_url}", {"issuer": doc["issuer"], "jwks_uri": doc["jwks_uri"]})
    return doc


def check_jwks(http: net.Http, env_url: str, discovery: dict, report: Report) -> None:
    import jwt

    with report.check("jwks") as c:
        url = f"{env_url}/keys"  # the SDK always fetches this path, whatever discovery says
        body, _ = http.get_json(url, "jwks")
        keys = body.get("keys")
        if not isinstance(keys, list) or not keys:
            raise CheckFailed(Exit.PROTOCOL, f"jwks: {url} has no keys")
        kids = []
        for i, key in enumerate(keys):
            if not isinstance(key, dict) or not key.get("kid"):
                raise CheckFailed(Exit.PROTOCOL, f"jwks: key #{i + 1} at {url} has no 'kid'; "
                                  "the Python SDK needs a kid on every key (it fails with KeyError)")
            if key.get("kty") != "RSA" or key.get("alg", "RS256") != "RS256":
                raise CheckFailed(Exit.PROTOCOL, f"jwks: key {key['kid']} is {key.get('kty')}/{key.get('alg')}; "
                                  "the SDKs verify RS256 keys only")
            try:
                jwt.PyJWK.from_dict(key)
            except Exception as exc:
                raise CheckFailed(Exit.PROTOCOL, f"jwks: key {key['kid']} cannot be parsed ({exc})") from None
            kids.append(key["kid"])
        note = "" if discovery.get("jwks_uri") == url else f"; discovery names {discovery.get('jwks_uri')}"
        c.ok(f"{len(kids)} RS256 key(s): {', '.join(kids)}{note}", {"kids": kids})


def check_token(http: net.Http, settings, report: Report) -> tuple[str, float, float, str | None]:
    """A client-credentials token straight from /oauth/token, for a precise error message."""
    with report.check("client credentials") as c:
        url = f"{settings.env_url}/oauth/token"
        sent = time.time()
        response = http.request("POST", url, "client credentials", data={
            "grant_type": "client_credentials",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret,
        })
        received = time.time()
        if response.status_code != 200:
            raise net.http_status_failure("client credentials", response.status_code, response.text[:2000], url)
        body = http.json(response, "client credentials")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise CheckFailed(Exit.PROTOCOL, "client credentials: the token response has no access_token")
        report.add_secret(token)
        c.ok(f"access token issued for {settings.client_id} (expires_in {body.get('expires_in')} s)",
             {"token_type": body.get("token_type"), "expires_in": body.get("expires_in"), "scope": body.get("scope")})
    return token, sent, received, response.headers.get("date")


def check_sdk(settings, token: str, timeout: float, report: Report) -> float | None:
    """The SDK's own view: its client, token validation and one gRPC management call. Returns the
    gRPC round trip in ms (None when gRPC cannot be used)."""
    from scalekit import ScalekitClient
    from scalekit.common.scalekit import TokenValidationOptions

    url = settings.env_url
    with report.check("sdk client") as c:
        client = net.sdk_call(lambda: ScalekitClient(url, settings.client_id, settings.client_secret,
                                                     call_timeout_s=timeout), "sdk client", url, timeout)
        c.ok("ScalekitClient authenticated (client credentials)")

    with report.check("token validation") as c:
        options = TokenValidationOptions(issuer=url)
        claims = net.sdk_call(lambda: client.validate_token(token, options=options), "token validation", url, timeout)
        c.ok("client token: RS256 signature, iss and exp valid", {"claims": claims})

    with report.check("grpc tls") as c:
        if not url.startswith("https://"):
            c.warn("management API not checked: the Python SDK always uses TLS for gRPC, so it needs an https:// "
                   "environment URL (the Node SDK also works with http://)")
            return None
        roots = net.check_grpc_tls(url, timeout)
        c.ok(f"TLS with ALPN h2; certificate trusted by {roots}")

    with report.check("management api") as c:
        start = time.perf_counter()
        response, _ = net.sdk_call(lambda: client.organization.list_organizations(page_size=1), "management api",
                                   url, timeout)
        elapsed = round((time.perf_counter() - start) * 1000, 1)
        c.ok(f"list_organizations answered over gRPC ({response.total_size} organizations in total)",
             {"total_size": response.total_size, "round_trip_ms": elapsed})
    return elapsed


def check_clock(token: str, sent: float, received: float, date_header: str | None, report: Report) -> None:
    import jwt

    token_iat = jwt.decode(token, options={"verify_signature": False}).get("iat")
    midpoint = (sent + received) / 2
    with report.check("clock skew") as c:
        skews = {}
        if date_header:
            try:
                skews["date_header_s"] = round(parsedate_to_datetime(date_header).timestamp() - midpoint, 1)
            except (TypeError, ValueError):
                pass
        if isinstance(token_iat, (int, float)):
            skews["token_iat_s"] = round(token_iat - received, 1)
        if not skews:
            c.skip("the server sent neither a Date header nor a token iat")
            return
        skew = skews.get("date_header_s", skews.get("token_iat_s"))
        ahead = skews.get("token_iat_s", 0) > 0  # PyJWT rejects an iat in the future
        if abs(skew) > SKEW_FAIL_S:
            raise CheckFailed(Exit.CONFIG, f"clock skew: this machine's clock differs from the server's by {skew:+.0f} s; "
                              "tokens will be rejected: sync the clock (NTP)", skews)
        if abs(skew) > SKEW_WARN_S or ahead:
            c.warn(f"this machine's clock is {abs(skew):.0f} s {'behind' if skew > 0 or ahead else 'ahead of'} the server; "
                   "fresh tokens can fail validation (iat in the future): sync the clock", skews)
        else:
            c.ok(f"{skew:+.1f} s (server minus local)", skews)


def check_latency(http: net.Http, grpc_ms: float | None, report: Report) -> None:
    with report.check("latency") as c:
        samples = dict(http.latencies_ms, **({"grpc": grpc_ms} if grpc_ms is not None else {}))
        median = statistics.median(samples.values())
        text = ", ".join(f"{k} {v:.0f} ms" for k, v in samples.items())
        data = {"round_trips_ms": samples, "median_ms": median}
        (c.warn if median > SLOW_MS else c.ok)(f"median {median:.0f} ms ({text})", data)


def body(args, report: Report) -> None:
    timeout = args.timeout or DEFAULT_TIMEOUT
    settings, local_env = cli.load_settings(args, report)
    try:
        http = net.Http(timeout)
        discovery = check_discovery(http, settings.env_url, report)
        check_jwks(http, settings.env_url, discovery, report)
        token, sent, received, date_header = check_token(http, settings, report)
        grpc_ms = check_sdk(settings, token, timeout, report)
        check_clock(token, sent, received, date_header, report)
        check_latency(http, grpc_ms, report)
    finally:
        if local_env is not None:
            local_env.stop()


def main() -> int:
    parser = cli.make_parser("test_connection.py", __doc__.strip().splitlines()[0], EXAMPLES, network=True)
    return cli.run("test_connection", parser, body)


if __name__ == "__main__":
    sys.exit(main())
