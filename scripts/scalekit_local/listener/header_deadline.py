"""HTTP/1.1 connections must finish their request headers in time.

uvicorn closes idle keep-alive connections, but not a connection that opens and sends nothing, nor
one that drips a request's headers a byte at a time: each would hold a socket (and a task in the
front) forever. This protocol gives every request HEADER_TIMEOUT seconds from the connection's
start, or from the first byte of the next request on a kept-alive connection, to deliver its
complete headers; otherwise the connection is closed. A pipelined request's clock starts when the
answers before it are complete. Slow bodies and slow answers are not affected.

It is uvicorn's httptools protocol (httptools parses about four times faster than h11, the
largest cost of a login after signing): the parser's callbacks tell where a request is.
"""
from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT = 10.0


class HeaderDeadlineProtocol(HttpToolsProtocol):
    _header_timer: asyncio.TimerHandle | None = None
    _in_headers = True  # from the connection's start or a request's first byte to the end of its headers

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
        self._disarm()
        super().connection_lost(exc)

    def _update_deadline(self) -> None:
        """The deadline runs while headers are awaited and no earlier answer is still being written.
        It is never restarted while it runs: a dripping client gains nothing."""
        answering = self.cycle is not None and not self.cycle.response_complete
        if self._in_headers and not answering:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(HEADER_TIMEOUT, self._expired)
        else:
            self._disarm()

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
