"""EventsService.ListEventsPaginated: the events the environment emitted (webhooks.py keeps the last
EVENT_RING of them), newest first, filtered by type, time window, organization and source
(DIR_SYNC for directory events, SCALEKIT for the rest). Events are what the environment itself
emits (organizations, users, memberships, logins, directory changes) or what was posted to
POST /_local/events; they are not saved across restarts.
"""
from __future__ import annotations

import datetime

import grpc

from . import servicer
from ._util import invalid, ts

MAX_PAGE_SIZE = 100


def _seconds(rfc3339: str) -> float:
    return datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.UTC).timestamp()


def register(server: grpc.Server, ctx) -> None:
    from scalekit.v1.events import events_pb2 as pb
    from scalekit.v1.events import events_pb2_grpc as pb_grpc

    from ._util import paginate

    store = ctx.store

    def message(event: dict):
        msg = pb.ScalekitEvent(spec_version=event["spec_version"], id=event["id"], type=event["type"],
                               occurred_at=ts(_seconds(event["occurred_at"])), environment_id=event["environment_id"],
                               display_name=event["type"])
        if event.get("organization_id"):
            msg.organization_id = event["organization_id"]
        names = pb.ObjectType.keys()
        msg.object = pb.ObjectType.Value(event["object"]) if event.get("object") in names else pb.OBJECT_TYPE_UNSPECIFIED
        if isinstance(event.get("data"), dict):
            msg.data.update(event["data"])
        return msg

    def matches(event: dict, f) -> bool:
        if f.event_types and event["type"] not in f.event_types:
            return False
        if f.organization_id and event.get("organization_id") != f.organization_id:
            return False
        if f.source:
            source = pb.DIR_SYNC if ".directory" in event["type"] else pb.SCALEKIT
            if f.source != source:
                return False
        if f.HasField("start_time") or f.HasField("end_time"):
            moment = _seconds(event["occurred_at"])
            if f.HasField("start_time") and moment < f.start_time.ToNanoseconds() / 1e9:
                return False
            if f.HasField("end_time") and moment > f.end_time.ToNanoseconds() / 1e9:
                return False
        return True

    class Events:
        def ListEventsPaginated(self, request, context):
            if request.page_size > MAX_PAGE_SIZE:
                invalid(context, f"page_size must be at most {MAX_PAGE_SIZE}")
            f = request.filter
            if f.HasField("start_time") and f.HasField("end_time") and f.end_time.ToNanoseconds() < f.start_time.ToNanoseconds():
                invalid(context, "filter.end_time is before filter.start_time")
            events = [e for e in reversed(store.events.recent_events()) if matches(e, f)]
            page, nxt, prev = paginate(context, events, request.page_size, request.page_token)
            return pb.ListEventsPaginatedResponse(events=[message(e) for e in page], next_page_token=nxt,
                                                  prev_page_token=prev)

    pb_grpc.add_EventsServiceServicer_to_server(servicer(pb_grpc.EventsServiceServicer, Events)(), server)
