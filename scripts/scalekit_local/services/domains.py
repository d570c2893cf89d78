"""DomainService: organization domains. Seeded domains are verified; domains created here are PENDING
until VerifyDomain (or POST /_local/domains/{id}/verify). Verified organization domains route SSO."""
from __future__ import annotations

import secrets

from google.protobuf.empty_pb2 import Empty
from scalekit.v1.domains import domains_pb2 as pb
from scalekit.v1.domains import domains_pb2_grpc as pb_grpc

from ..domain.domains import sync_connection_domains, verify_domain
from ..ids import new_id
from ..state.records import Domain
from .base import DOMAIN, Servicer, conflict, invalid, not_found, require_org, ts


class DomainService(Servicer, pb_grpc.DomainServiceServicer):
    add_to_server = staticmethod(pb_grpc.add_DomainServiceServicer_to_server)

    def CreateDomain(self, request, context):
        org = self._org_of(request, context)
        name = request.domain.domain.strip().lower()
        if not DOMAIN.match(name):
            invalid(context, f"{request.domain.domain!r} is not a valid domain name", "INVALID_DOMAIN")
        kind = pb.DomainType.Name(request.domain.domain_type) if request.domain.domain_type else "ORGANIZATION_DOMAIN"
        with self.store.lock:
            if any(d.domain == name and (d.organization_id == org.id or d.domain_type == "ORGANIZATION_DOMAIN")
                   for d in self.store.domains.values()):
                conflict(context, "DOMAIN_ALREADY_EXISTS", f"domain {name} is already registered")
            dom = Domain(id=new_id("dom"), domain=name, organization_id=org.id, domain_type=kind,
                         txt_record_key=f"_scalekit-verification.{name}",
                         txt_record_secret="sk-verification=" + secrets.token_hex(16))
            self.store.domains[dom.id] = dom
        return pb.CreateDomainResponse(domain=self._message(dom))

    def GetDomain(self, request, context):
        return pb.GetDomainResponse(domain=self._message(self._find(request, context)))

    def ListDomains(self, request, context):
        org = self._org_of(request, context)
        with self.store.lock:
            doms = sorted((d for d in self.store.domains.values() if d.organization_id == org.id),
                          key=lambda d: (d.created_at, d.id))
        if request.domain_type:
            doms = [d for d in doms if d.domain_type == pb.DomainType.Name(request.domain_type)]
        size = request.page_size.value if request.HasField("page_size") and request.page_size.value else len(doms) or 1
        number = request.page_number.value if request.HasField("page_number") and request.page_number.value else 1
        if size > 100 and request.HasField("page_size"):
            invalid(context, "page_size must be at most 100")
        page = doms[(number - 1) * size: number * size]
        return pb.ListDomainResponse(domains=[self._message(d) for d in page], page_size=len(page), page_number=number)

    def VerifyDomain(self, request, context):
        dom = self._find(request, context)
        verify_domain(self.store, dom)
        return pb.VerifyDomainResponse(verified=True)

    def DeleteDomain(self, request, context):
        dom = self._find(request, context)
        with self.store.lock:
            self.store.domains.pop(dom.id, None)
            sync_connection_domains(self.store, dom.organization_id)
        return Empty()

    # ---- helpers ---------------------------------------------------------------------------------
    def _message(self, d: Domain):
        return pb.Domain(
            id=d.id, domain=d.domain, environment_id=self.store.environment_name, organization_id=d.organization_id,
            txt_record_key=d.txt_record_key, txt_record_secret=d.txt_record_secret,
            verification_status=pb.VerificationStatus.Value(d.verification_status),
            create_time=ts(d.created_at), update_time=ts(d.updated_at), domain_type=pb.DomainType.Value(d.domain_type),
            verification_method=pb.DNS if d.verification_status == "PENDING" else pb.ADMIN,
        )

    def _org_of(self, request, context):
        which = request.WhichOneof("identities")
        if which == "external_id" and request.external_id:
            org = self.store.organization_by_external_id(request.external_id)
            if org is None:
                not_found(context, "ORGANIZATION_NOT_FOUND", f"organization {request.external_id} not found")
            return org
        return require_org(context, self.store, request.organization_id)

    def _find(self, request, context):
        org = self._org_of(request, context)
        dom = self.store.domains.get(request.id)
        if dom is None or dom.organization_id != org.id:
            not_found(context, "DOMAIN_NOT_FOUND", f"domain {request.id} not found in organization {org.id}")
        return dom
