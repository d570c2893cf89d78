"""The data folder: local CA, TLS leaf certificate, CA bundle and the token signing key.

Everything here is created once and reused, so trust settings and issued tokens stay valid across
restarts. Several instances may share one folder (the test fixture does): creation is serialised
with a file lock and every file is written atomically.
"""
from __future__ import annotations

import datetime
import fcntl
import hashlib
import os
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_DATA_DIR = REPO_ROOT / ".local-scalekit"

# Debian/Ubuntu system roots; the bundle we hand out is these plus the local CA, so that other
# HTTPS keeps working when our variables replace the machine's REQUESTS_CA_BUNDLE/SSL_CERT_FILE.
SYSTEM_BUNDLE_CANDIDATES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
LEAF_LIFETIME = datetime.timedelta(days=397)
LEAF_RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class DataDir:
    path: Path
    ca_cert: Path       # the local CA alone (NODE_EXTRA_CA_CERTS)
    ca_bundle: Path     # system roots + local CA (REQUESTS_CA_BUNDLE, GRPC_..., SSL_CERT_FILE)
    leaf_cert: Path
    leaf_key: Path
    signing_key: "rsa.RSAPrivateKey"
    kid: str


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


@contextmanager
def _locked(folder: Path):
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _system_roots() -> bytes:
    candidates = list(SYSTEM_BUNDLE_CANDIDATES)
    default = ssl.get_default_verify_paths().openssl_cafile
    if default:
        candidates.append(default)
    for candidate in candidates:
        try:
            return Path(candidate).read_bytes()
        except OSError:
            continue
    try:
        import certifi

        return Path(certifi.where()).read_bytes()
    except Exception:  # no system roots at all: the bundle is just the local CA
        return b""


def _kid_for(key: "rsa.RSAPrivateKey") -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    number = int.from_bytes(hashlib.sha256(der).digest()[:8], "big") % 10**17
    return f"snk_{10**17 + number}"


def _leaf_needs_renewal(cert_path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return True
    now = datetime.datetime.now(datetime.UTC)
    return cert.not_valid_after_utc - now < LEAF_RENEW_BEFORE


def prepare(folder: str | Path | None = None) -> DataDir:
    """Create (first run) or load the CA, leaf certificate, bundle and signing key."""
    import trustme

    path = Path(folder).expanduser().resolve() if folder else DEFAULT_DATA_DIR
    path.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = path / "ca.pem", path / "ca-key.pem"
    leaf_cert, leaf_key = path / "tls-cert.pem", path / "tls-key.pem"
    bundle, signing = path / "ca-bundle.pem", path / "signing-key.pem"

    with _locked(path):
        if not (ca_cert.exists() and ca_key.exists()):
            ca = trustme.CA(organization_name="scalekit-auth", organization_unit_name="Local Scalekit environment CA")
            _write_atomic(ca_key, ca.private_key_pem.bytes(), 0o600)
            _write_atomic(ca_cert, ca.cert_pem.bytes())
            leaf_cert.unlink(missing_ok=True)
        if _leaf_needs_renewal(leaf_cert) or not leaf_key.exists():
            ca = trustme.CA.from_pem(ca_cert.read_bytes(), ca_key.read_bytes())
            now = datetime.datetime.now(datetime.UTC)
            leaf = ca.issue_cert(
                "127.0.0.1", "localhost", common_name="localhost",
                not_before=now - datetime.timedelta(days=1), not_after=now + LEAF_LIFETIME,
            )
            _write_atomic(leaf_key, leaf.private_key_pem.bytes(), 0o600)
            _write_atomic(leaf_cert, b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        wanted = _system_roots().rstrip(b"\n") + b"\n" + ca_cert.read_bytes()
        if not bundle.exists() or bundle.read_bytes() != wanted:
            _write_atomic(bundle, wanted)
        if not signing.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            _write_atomic(signing, pem, 0o600)

    key = serialization.load_pem_private_key(signing.read_bytes(), password=None)
    return DataDir(path=path, ca_cert=ca_cert, ca_bundle=bundle, leaf_cert=leaf_cert, leaf_key=leaf_key,
                   signing_key=key, kid=_kid_for(key))


def server_ssl_context(data: DataDir) -> ssl.SSLContext:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(data.leaf_cert, data.leaf_key)
    # http/1.1 first: Python's ssl picks by server preference, so browsers and curl (which offer
    # both) get HTTP/1.1, while gRPC clients (which offer only h2) still get h2.
    tls.set_alpn_protocols(["http/1.1", "h2"])
    return tls
