"""Steps of `test_auth_flow.py --path mcp` that the Scalekit SDK does not provide: the MCP
authorization-server metadata of a resource, dynamic client registration, the authorization URL
with PKCE and `resource`, and the token and refresh requests of a public client."""
from __future__ import annotations

from urllib.parse import urlencode

from . import net
from .report import CheckFailed, Exit, Report

REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


def discover(report: Report, http: net.Http, env_url: str, resource: str) -> dict:
    with report.check("mcp metadata") as c:
        url = f"{env_url}/.well-known/oauth-authorization-server/resources/{resource}"
        response = http.request("GET", url, "mcp metadata")
        if response.status_code == 404:
            raise CheckFailed(Exit.PROTOCOL, f"{url} is not found (HTTP 404): {resource} is not an MCP resource of this "
                              "environment, or the environment does not support MCP authorization")
        if response.status_code != 200:
            raise net.http_status_failure("mcp metadata", response.status_code, response.text[:2000], url)
        meta = net.Http.json(response, "mcp metadata")
        missing = [k for k in REQUIRED_METADATA if not meta.get(k)]
        if missing:
            raise CheckFailed(Exit.PROTOCOL, f"mcp metadata: {', '.join(missing)} missing in {url}")
        expected = f"{env_url}/resources/{resource}"
        if meta["issuer"] != expected:  # MCP clients refuse metadata whose issuer differs (RFC 8414 section 3.3)
            raise CheckFailed(Exit.PROTOCOL, f"mcp metadata: issuer is {meta['issuer']!r}, expected {expected!r}; MCP "
                              "clients refuse such metadata")
        if "S256" not in (meta.get("code_challenge_methods_supported") or []):
            raise CheckFailed(Exit.PROTOCOL, "mcp metadata: code_challenge_methods_supported lacks S256; MCP clients "
                              "must refuse to log in")
        extras = [k for k in ("registration_endpoint", "client_id_metadata_document_supported",
                              "authorization_response_iss_parameter_supported") if meta.get(k)]
        c.ok(f"issuer {meta['issuer']}, S256; {', '.join(extras) or 'no registration options'}", {"metadata": meta})
    return meta


def local_resource_url(seed_path: str | None, resource: str) -> str:
    """--local without --mcp-url: the resource's first URL in the local environment's seed."""
    from . import local

    seed = local._import().load_seed(seed_path)
    for res in seed.get("resources", []):
        if res["id"] == resource:
            return res["urls"][0]
    raise CheckFailed(Exit.CONFIG, f"the local environment's seed has no resource {resource}; "
                      f"seeded: {', '.join(r['id'] for r in seed.get('resources', [])) or 'none'}")


def register(report: Report, http: net.Http, meta: dict, redirect_uri: str) -> str:
    with report.check("client registration") as c:
        endpoint = meta.get("registration_endpoint")
        if not endpoint:
            raise CheckFailed(Exit.CONFIG, "the resource does not offer dynamic client registration "
                              "(no registration_endpoint); enable it for the MCP server in the dashboard")
        body = {"client_name": "scalekit-auth test_auth_flow.py", "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                "token_endpoint_auth_method": "none", "application_type": "native"}
        response = http.request("POST", endpoint, "client registration", json=body)
        if response.status_code not in (200, 201):
            raise net.http_status_failure("client registration", response.status_code, response.text[:2000], endpoint)
        answer = net.Http.json(response, "client registration")
        if not answer.get("client_id"):
            raise CheckFailed(Exit.PROTOCOL, "client registration: the answer has no client_id")
        c.ok(f"registered public client {answer['client_id']} for {redirect_uri}", {"client_id": answer["client_id"]})
    return answer["client_id"]


def scopes_to_ask(meta: dict) -> list[str]:
    scopes = [s for s in meta.get("scopes_supported") or [] if s != "offline_access"]
    return scopes + ["offline_access"]


def authorization_url(meta: dict, client_id: str, redirect_uri: str, state: str, challenge: str, mcp_url: str,
                      scopes: list[str]) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
              "code_challenge": challenge, "code_challenge_method": "S256", "resource": mcp_url,
              "scope": " ".join(scopes)}
    return f"{meta['authorization_endpoint']}?{urlencode(params)}"


def _token(http: net.Http, meta: dict, what: str, data: dict) -> dict:
    url = meta["token_endpoint"]
    response = http.request("POST", url, what, data=data)
    if response.status_code != 200:
        raise net.http_status_failure(what, response.status_code, response.text[:2000], url)
    body = net.Http.json(response, what)
    if not body.get("access_token"):
        raise CheckFailed(Exit.PROTOCOL, f"{what}: the answer has no access_token")
    return body


def exchange(report: Report, http: net.Http, meta: dict, client_id: str, code: str, verifier: str, redirect_uri: str,
             mcp_url: str) -> dict:
    with report.check("code exchange") as c:
        body = _token(http, meta, "code exchange", {"grant_type": "authorization_code", "client_id": client_id,
                                                    "code": code, "redirect_uri": redirect_uri,
                                                    "code_verifier": verifier, "resource": mcp_url})
        for key in ("access_token", "refresh_token"):
            report.add_secret(body.get(key))
        c.ok(f"tokens for resource {mcp_url} (refresh token: {'yes' if body.get('refresh_token') else 'no'})",
             {"expires_in": body.get("expires_in"), "scope": body.get("scope"),
              "refresh_token": bool(body.get("refresh_token"))})
    return body


def refresh(report: Report, http: net.Http, meta: dict, client_id: str, refresh_token: str | None,
            mcp_url: str) -> dict | None:
    with report.check("refresh") as c:
        if not refresh_token:
            c.skip("no refresh_token was issued for offline_access")
            return None
        body = _token(http, meta, "refresh", {"grant_type": "refresh_token", "client_id": client_id,
                                              "refresh_token": refresh_token, "resource": mcp_url})
        for key in ("access_token", "refresh_token"):
            report.add_secret(body.get(key))
        if not body.get("refresh_token") or body["refresh_token"] == refresh_token:
            raise CheckFailed(Exit.PROTOCOL, "refresh: the refresh token was not rotated; public MCP clients need "
                              "rotation (OAuth 2.1)")
        c.ok("new access token; refresh token rotated")
    return body
