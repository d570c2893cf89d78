"""HTTP/1.1 connections must finish their request headers in time.

uvicorn closes idle keep-alive connections, but not a connection that opens and sends nothing, nor
one that drips a request's headers a byte at a time: each would hold a socket (and a task in the
front) forever. This protocol gives every request HEADER_TIMEOUT seconds from the connection's
start, or from the first byte of the next request on a kept-alive connection, to deliver its
complete headers; otherwise the connection is closed. A pipelined request's clock starts when the
answers before it are complete. Slow bodies and slow answers are not affected.

It is uvicorn's httptools protocol (h11's parsing was the largest avoidable cost of a login in the
profile): the parser's callbacks tell where a request is.
"""
from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT = 10.0


class HeaderDeadlineProtocol(HttpToolsProtocol):
    _in_headers = True  # from the connection's start or a request's first byte to the end of its headers
    _headers_due: float | None = None  # when the awaited headers must be complete (None: nothing awaited)
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._update_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._update_deadline()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._update_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._update_deadline()

    def connection_lost(self, exc) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _update_deadline(self) -> None:
        """The deadline runs while headers are awaited and no earlier answer is still being written.
        It is never moved while it runs: a dripping client gains nothing."""
        answering = self.cycle is not None and not self.cycle.response_complete
        if not self._in_headers or answering:
            self._headers_due = None
        elif self._headers_due is None:
            self._headers_due = self.loop.time() + HEADER_TIMEOUT
            if self._header_timer is None:
                self._header_timer = self.loop.call_at(self._headers_due, self._check_deadline)

    def _check_deadline(self) -> None:
        # One timer per connection, not one per request: when it fires for a request that has since
        # sent its headers, it follows the deadline of the next one, if any.
        self._header_timer = None
        if self._headers_due is None or self.transport.is_closing():
            return
        if self.loop.time() >= self._headers_due:
            self.transport.close()
        else:
            self._header_timer = self.loop.call_at(self._headers_due, self._check_deadline)
