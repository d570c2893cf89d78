"""Organization domains: verifying one (DomainService.VerifyDomain, POST /_local/domains/{id}/verify) and
keeping SSO routing by email domain in step with the organization's verified domains."""
from __future__ import annotations

from ..ids import now
from ..state.records import Domain


def verify_domain(store, dom: Domain) -> None:
    with store.lock:
        dom.verification_status = "VERIFIED"
        dom.updated_at = now()
        sync_connection_domains(store, dom.organization_id)


def sync_connection_domains(store, org_id: str) -> None:
    """SSO routing by email domain follows the organization's verified organization domains."""
    with store.lock:
        names = sorted({d.domain for d in store.domains.values() if d.organization_id == org_id
                        and d.domain_type == "ORGANIZATION_DOMAIN" and d.verification_status == "VERIFIED"})
        for conn in store.connections.values():
            if conn.organization_id == org_id:
                conn.domains = list(names)
