"""OrganizationService: organizations, their settings, session policy and admin portal links."""
from __future__ import annotations

import secrets

import grpc

from ..records import PORTAL_LINK_TTL, PortalLink, org_settings
from ..safe_input import split_url
from ..store import Organization, new_id, now
from ..webhooks import organization_json
from . import servicer
from ._util import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, conflict, invalid, not_found, paginate, require_org, ts

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "to_message", "register"]
SLUG_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-.")  # dots too: slugs like auth.megasoft.com


def to_message(org, pb, store=None):
    from scalekit.v1.commons import commons_pb2

    msg = pb.Organization(
        id=org.id, display_name=org.display_name, create_time=ts(org.created_at),
        update_time=ts(org.updated_at), region_code=commons_pb2.RegionCode.Value(org.region_code),
        metadata=org.metadata,
    )
    if org.external_id is not None:
        msg.external_id = org.external_id
    if org.slug is not None:
        msg.slug = org.slug
    if org.logo_url:
        msg.logo_url = org.logo_url
    if store is not None and org.id in store.org_settings:
        for name, enabled in sorted(store.org_settings[org.id].features.items()):
            msg.settings.features.add(name=name, enabled=enabled)
    return msg


def delete_organization(store, org_id: str) -> None:
    """Removes an organization and everything that belongs to it; ends its sessions."""
    with store.lock:
        store.organizations.pop(org_id, None)
        for key in [k for k, c in store.connections.items() if c.organization_id == org_id]:
            del store.connections[key]
        for table in (store.domains, store.directories, store.portal_links):
            for key in [k for k, v in table.items() if v.organization_id == org_id]:
                del table[key]
        for key in [k for k, c in store.clients.items() if c.type == "m2m" and c.organization_id == org_id]:
            del store.clients[key]
        store.org_settings.pop(org_id, None)
        for user in store.users.values():
            user.memberships = [m for m in user.memberships if m.organization_id != org_id]
        for session in list(store.sessions.values()):
            if session.organization_id == org_id:
                store.end_session(session.id)


def register(server: grpc.Server, ctx) -> None:
    from scalekit.v1.commons import commons_pb2
    from scalekit.v1.organizations import organizations_pb2 as pb
    from scalekit.v1.organizations import organizations_pb2_grpc as pb_grpc

    store = ctx.store

    def lookup(request, context):
        which = request.WhichOneof("identities")
        if which is None or not getattr(request, which):
            invalid(context, "organization id or external_id is required")
        org = store.organization(request.id) if which == "id" else store.organization_by_external_id(request.external_id)
        if org is None:
            not_found(context, "ORGANIZATION_NOT_FOUND", "organization not found")
        return org

    def check_fields(context, org_id, display_name, external_id, slug):
        if display_name is not None and not display_name.strip():
            invalid(context, "display_name must not be empty")
        if display_name is not None and len(display_name) > 200:
            invalid(context, "display_name must be at most 200 characters")
        if external_id:
            other = store.organization_by_external_id(external_id)
            if other is not None and other.id != org_id:
                conflict(context, "ORGANIZATION_EXTERNAL_ID_EXISTS", f"an organization with external_id {external_id!r} already exists")
        if slug is not None and (not slug or set(slug) - SLUG_CHARS or slug[0] in ".-" or slug[-1] in ".-"):
            invalid(context, "slug may only contain lowercase letters, digits, '-' and '.' (not first or last)")

    def check_logo(context, spec) -> str | None:
        if not spec.HasField("logo_url") or not spec.logo_url:
            return None
        parts = split_url(spec.logo_url)
        if parts is None or parts.scheme not in ("http", "https"):
            invalid(context, f"logo_url {spec.logo_url!r} is not an http(s) URL")
        return spec.logo_url

    def policy_message(settings):
        from google.protobuf.wrappers_pb2 import BoolValue, Int32Value

        p = settings.session_policy
        msg = pb.OrganizationSessionPolicySettings(policy_source=pb.SessionPolicyType.Value(p.get("policy_source", "APPLICATION")))
        if p.get("absolute_session_timeout") is not None:
            msg.absolute_session_timeout.CopyFrom(Int32Value(value=p["absolute_session_timeout"]))
        if p.get("absolute_session_timeout_unit"):
            msg.absolute_session_timeout_unit = commons_pb2.TimeUnit.Value(p["absolute_session_timeout_unit"])
        if p.get("idle_session_timeout_enabled") is not None:
            msg.idle_session_timeout_enabled.CopyFrom(BoolValue(value=p["idle_session_timeout_enabled"]))
        if p.get("idle_session_timeout") is not None:
            msg.idle_session_timeout.CopyFrom(Int32Value(value=p["idle_session_timeout"]))
        if p.get("idle_session_timeout_unit"):
            msg.idle_session_timeout_unit = commons_pb2.TimeUnit.Value(p["idle_session_timeout_unit"])
        return msg

    def user_mgmt_message(settings):
        msg = pb.OrganizationUserManagementSettings()
        if settings.max_allowed_users is not None:
            msg.max_allowed_users.value = settings.max_allowed_users
        return msg

    class Organizations:
        def GetOrganization(self, request, context):
            return pb.GetOrganizationResponse(organization=to_message(lookup(request, context), pb, store))

        GetOrganizationByExternalId = GetOrganization

        def ListOrganization(self, request, context):
            orgs = store.list_organizations()
            if request.HasField("external_id"):
                orgs = [o for o in orgs if o.external_id == request.external_id]
            page, nxt, prev = paginate(context, orgs, request.page_size, request.page_token)
            return pb.ListOrganizationsResponse(organizations=[to_message(o, pb, store) for o in page],
                                                total_size=len(orgs), next_page_token=nxt, prev_page_token=prev)

        def SearchOrganization(self, request, context):
            query = request.query.strip().lower()
            if len(query) < 3:
                invalid(context, "query must be at least 3 characters")
            orgs = [o for o in store.list_organizations()
                    if query in o.display_name.lower() or query in (o.external_id or "").lower() or query in o.id]
            page, nxt, prev = paginate(context, orgs, request.page_size, request.page_token)
            return pb.SearchOrganizationsResponse(organizations=[to_message(o, pb, store) for o in page],
                                                  total_size=len(orgs), next_page_token=nxt, prev_page_token=prev)

        def CreateOrganization(self, request, context):
            new = request.organization
            external_id = new.external_id if new.HasField("external_id") and new.external_id else None
            slug = new.slug if new.HasField("slug") else None
            with store.lock:
                check_fields(context, None, new.display_name, external_id, slug)
                if slug and any(o.slug == slug for o in store.organizations.values()):
                    conflict(context, "ORGANIZATION_SLUG_EXISTS", f"an organization with slug {slug!r} already exists")
                region = commons_pb2.RegionCode.Name(new.region_code) if new.region_code else "US"
                org = Organization(id=new_id("org"), display_name=new.display_name.strip(), external_id=external_id,
                                   slug=slug, region_code=region if region in ("US", "EU") else "US",
                                   metadata=dict(new.metadata), logo_url=check_logo(context, new))
                store.organizations[org.id] = org
            store.events.emit("organization.created", organization_json(org), organization_id=org.id)
            return pb.CreateOrganizationResponse(organization=to_message(org, pb, store))

        def UpdateOrganization(self, request, context):
            org = lookup(request, context)
            upd = request.organization
            with store.lock:
                check_fields(context, org.id, upd.display_name if upd.HasField("display_name") else None,
                             upd.external_id if upd.HasField("external_id") else None,
                             upd.slug if upd.HasField("slug") else None)
                if upd.HasField("display_name"):
                    org.display_name = upd.display_name.strip()
                if upd.HasField("external_id"):
                    org.external_id = upd.external_id or None
                if upd.HasField("slug"):
                    org.slug = upd.slug
                if upd.HasField("logo_url"):
                    org.logo_url = check_logo(context, upd)
                if upd.metadata:
                    org.metadata.update(upd.metadata)
                org.updated_at = now()
            store.events.emit("organization.updated", organization_json(org), organization_id=org.id)
            return pb.UpdateOrganizationResponse(organization=to_message(org, pb, store))

        def DeleteOrganization(self, request, context):
            from google.protobuf.empty_pb2 import Empty

            org = lookup(request, context)
            delete_organization(store, org.id)
            store.events.emit("organization.deleted", organization_json(org), organization_id=org.id)
            return Empty()

        def UpdateOrganizationSettings(self, request, context):
            org = require_org(context, store, request.id)
            settings = org_settings(store, org.id)
            with store.lock:
                for feature in request.settings.features:
                    if not feature.name:
                        invalid(context, "every feature needs a name")
                    settings.features[feature.name] = feature.enabled
                org.updated_at = now()
            return pb.GetOrganizationResponse(organization=to_message(org, pb, store))

        def UpsertUserManagementSettings(self, request, context):
            org = require_org(context, store, request.organization_id)
            settings = org_settings(store, org.id)
            if request.settings.HasField("max_allowed_users"):
                if request.settings.max_allowed_users.value < 0:
                    invalid(context, "max_allowed_users must not be negative")
                settings.max_allowed_users = request.settings.max_allowed_users.value
            return pb.UpsertUserManagementSettingsResponse(settings=user_mgmt_message(settings))

        def GetOrganizationUserManagementSetting(self, request, context):
            org = require_org(context, store, request.organization_id)
            return pb.GetOrganizationUserManagementSettingsResponse(settings=user_mgmt_message(org_settings(store, org.id)))

        def GetOrganizationSessionPolicy(self, request, context):
            org = require_org(context, store, request.organization_id)
            return pb.GetOrganizationSessionPolicyResponse(policy=policy_message(org_settings(store, org.id)))

        def UpdateOrganizationSessionPolicy(self, request, context):
            org = require_org(context, store, request.organization_id)
            if request.policy_source == pb.SESSION_POLICY_TYPE_UNSPECIFIED:
                invalid(context, "policy_source must be APPLICATION or CUSTOM")
            policy = {"policy_source": pb.SessionPolicyType.Name(request.policy_source)}
            for name in ("absolute_session_timeout", "idle_session_timeout"):
                if request.HasField(name):
                    if getattr(request, name).value <= 0:
                        invalid(context, f"{name} must be positive")
                    policy[name] = getattr(request, name).value
            if request.HasField("idle_session_timeout_enabled"):
                policy["idle_session_timeout_enabled"] = request.idle_session_timeout_enabled.value
            for name in ("absolute_session_timeout_unit", "idle_session_timeout_unit"):
                if request.HasField(name) and getattr(request, name):
                    policy[name] = commons_pb2.TimeUnit.Name(getattr(request, name))
            settings = org_settings(store, org.id)
            with store.lock:
                settings.session_policy = policy
            return pb.UpdateOrganizationSessionPolicyResponse(policy=policy_message(settings))

        def GeneratePortalLink(self, request, context):
            org = require_org(context, store, request.id)
            features = [pb.Feature.Name(f) for f in request.features]
            if request.HasField("sso") and request.sso:
                features.append("sso")
            if request.HasField("directory_sync") and request.directory_sync:
                features.append("dir_sync")
            link = PortalLink(id="lnk_" + secrets.token_hex(12), organization_id=org.id,
                              expires_at=now() + PORTAL_LINK_TTL, features=features)
            with store.lock:
                store.portal_links[link.id] = link
            return pb.GeneratePortalLinkResponse(link=pb.Link(
                id=link.id, location=f"{ctx.url}/magicLink/{link.id}", expire_time=ts(link.expires_at)))

    impl = servicer(pb_grpc.OrganizationServiceServicer, Organizations)
    pb_grpc.add_OrganizationServiceServicer_to_server(impl(), server)
