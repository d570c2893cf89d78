"""SessionService: the sessions that logins at /oauth/authorize create. Revoking one ends it for
the OAuth side too: its refresh tokens stop working and /userinfo refuses its access tokens."""
from __future__ import annotations

import grpc

from . import servicer
from ._util import invalid, not_found, paginate, ts

STATUSES = ("ACTIVE", "REVOKED")  # ended sessions (revoked here or by logout) are REVOKED


def register(server: grpc.Server, ctx) -> None:
    from scalekit.v1.sessions import sessions_pb2 as pb
    from scalekit.v1.sessions import sessions_pb2_grpc as pb_grpc

    store = ctx.store

    def status(s):
        return "ACTIVE" if s.active else "REVOKED"

    def details(s):
        user = store.users.get(s.user_id)
        orgs = [m.organization_id for m in user.memberships] if user else []
        clients = store.session_clients(s.id)
        msg = pb.SessionDetails(
            session_id=s.id, user_id=s.user_id, organization_id=s.organization_id or "",
            authenticated_organizations=[s.organization_id] if s.organization_id else orgs[:1],
            created_at=ts(s.created_at), updated_at=ts(s.ended_at or s.created_at),
            last_active_at=ts(s.created_at), status=status(s),
            absolute_expires_at=ts(s.created_at + 7 * 86400), idle_expires_at=ts(s.created_at + 86400),
            authenticated_clients=[pb.AuthenticatedClients(client_id=c, organization_id=s.organization_id or "")
                                   for c in clients],
        )
        if s.ended_at:
            msg.logout_at.CopyFrom(ts(s.ended_at))
        return msg

    def revoked(s):
        msg = pb.RevokedSessionDetails(session_id=s.id, user_id=s.user_id, created_at=ts(s.created_at),
                                       updated_at=ts(s.ended_at or s.created_at), status=status(s),
                                       last_active_at=ts(s.created_at))
        if s.ended_at:
            msg.logout_at.CopyFrom(ts(s.ended_at))
        return msg

    def find(context, session_id):
        if not session_id:
            invalid(context, "session_id is required")
        s = store.sessions.get(session_id)
        if s is None:
            not_found(context, "SESSION_NOT_FOUND", f"session {session_id} not found")
        return s

    def user_of(context, user_id):
        if not user_id:
            invalid(context, "user_id is required")
        if user_id not in store.users:
            not_found(context, "USER_NOT_FOUND", f"user {user_id} not found")

    class Sessions:
        def GetSession(self, request, context):
            with store.lock:
                return details(find(context, request.session_id))

        def GetUserSessions(self, request, context):
            user_of(context, request.user_id)
            wanted = [s.upper() for s in request.filter.status]
            unknown = [s for s in wanted if s not in STATUSES]
            if unknown:
                invalid(context, f"unknown session status: {', '.join(unknown)} (use {', '.join(STATUSES)})")
            with store.lock:
                sessions = store.sessions_of(request.user_id)
                if wanted:
                    sessions = [s for s in sessions if status(s) in wanted]
                if request.filter.HasField("start_time"):
                    sessions = [s for s in sessions if s.created_at >= request.filter.start_time.ToNanoseconds() / 1e9]
                if request.filter.HasField("end_time"):
                    sessions = [s for s in sessions if s.created_at <= request.filter.end_time.ToNanoseconds() / 1e9]
                page, nxt, prev = paginate(context, sessions, request.page_size, request.page_token)
                return pb.UserSessionDetails(sessions=[details(s) for s in page], total_size=len(sessions),
                                             next_page_token=nxt, prev_page_token=prev)

        def RevokeSession(self, request, context):
            with store.lock:
                s = find(context, request.session_id)
                store.end_session(s.id)
                return pb.RevokeSessionResponse(revoked_session=revoked(s))

        def RevokeAllUserSessions(self, request, context):
            user_of(context, request.user_id)
            with store.lock:
                ended = [s for s in store.sessions_of(request.user_id) if s.active]
                for s in ended:
                    store.end_session(s.id)
                return pb.RevokeAllUserSessionsResponse(revoked_sessions=[revoked(s) for s in ended],
                                                        total_revoked=len(ended))

    impl = servicer(pb_grpc.SessionServiceServicer, Sessions)
    pb_grpc.add_SessionServiceServicer_to_server(impl(), server)
