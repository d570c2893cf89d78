"""The local mailbox: emails the environment would send (passwordless codes and magic links, user
invitations) are kept here instead, so a developer or a test can read them. Admin routes
(endpoints/admin.py):

    GET    /_local/mailbox               the messages as a page, newest first (?to=EMAIL filters)
    GET    /_local/mailbox.json          the same as JSON: {"messages": [{id, to, subject, kind, text,
                                         code?, link?, auth_request_id?, organization_id?, sent_at}]}
    DELETE /_local/mailbox               empty it

The last MAX_MESSAGES messages are kept, in memory only.
"""
from __future__ import annotations

import collections
import itertools
import threading
import time
from typing import Any

MAX_MESSAGES = 500


class Mailbox:
    def __init__(self):
        self._lock = threading.Lock()
        self._messages: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_MESSAGES)
        self._ids = itertools.count(1)

    def send(self, to: str, subject: str, kind: str, text: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            message = {"id": f"msg_{next(self._ids)}", "to": to, "subject": subject, "kind": kind, "text": text,
                       **{k: v for k, v in fields.items() if v is not None}, "sent_at": time.time()}
            self._messages.append(message)
            return dict(message)

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = [dict(m) for m in self._messages if to is None or m["to"] == to.strip().lower()]
        return found[::-1]

    def clear(self) -> int:
        with self._lock:
            count = len(self._messages)
            self._messages.clear()
            return count
