"""What the HTTP app and the gRPC services share for one running environment."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from .store import Store
from .tokens import TokenIssuer

LOOPBACK_NAMES = ("127.0.0.1", "localhost")


@dataclass
class Context:
    store: Store
    tokens: TokenIssuer
    tls: bool
    host: str
    port: int = 0                   # set once the front is listening
    auto_login_user_id: str | None = None
    code_ttl: int = 60              # authorization codes are short-lived and single use

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def cookie_name(self) -> str:
        # Browsers share cookies across ports of one host, so name the cookie after the port.
        return f"sk_local_session_{self.port}"

    def issuer_for(self, host_header: str | None) -> str:
        """The environment URL the caller used: 127.0.0.1 and localhost are both accepted, and
        tokens carry exactly the origin the app was configured with."""
        if host_header:
            try:
                parts = urlsplit(f"//{host_header}")
                port, hostname = parts.port, parts.hostname
            except ValueError:  # a broken Host header ("[::1", port 99999) names no issuer of ours
                port = hostname = None
            if hostname in LOOPBACK_NAMES and port == self.port:
                return f"{self.scheme}://{hostname}:{self.port}"
        return self.url

    def known_issuers(self) -> set[str]:
        return {f"{self.scheme}://{name}:{self.port}" for name in LOOPBACK_NAMES}
