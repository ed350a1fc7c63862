"""gunicorn's threaded worker with the TLS handshake moved off the request threads.

gunicorn's ``gthread`` worker hands every new connection to its thread pool
straight away; a pool thread then waits up to 5 s for the first byte and,
once one arrives, does the TLS handshake on a blocking socket with no time
limit. Forty connections that send nothing (or half a ClientHello) keep
every thread busy, and the page, ``/healthz`` included, stops answering.

Here the worker's event loop does the handshake on a non-blocking socket,
one step each time the client sends something, and closes a connection that
has not finished it within :data:`HANDSHAKE_TIMEOUT_S`. A connection reaches
a pool thread only once it is encrypted and its first request has started
to arrive; a request that then stalls mid-way is cut after
:data:`READ_TIMEOUT_S`. Silent or slow clients cost a file descriptor, not
a thread. (The README's "Services and sandboxing" section gives the
measurements behind this choice.)

Written against gunicorn 27's ``gthread`` internals (the lock pins 27.0.1);
``test_silent_connections_do_not_stall_the_page`` in
tests/web_ui/test_web_serve.py fails if an upgrade changes them.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import ssl
import time
from collections import deque
from functools import partial

from gunicorn import http, sock  # type: ignore[import-untyped]
from gunicorn.workers.gthread import TConn, ThreadWorker  # type: ignore[import-untyped]

# A phone on poor Wi-Fi finishes a handshake in well under a second; ten is generous.
HANDSHAKE_TIMEOUT_S = 10.0
# Longest pause inside one request (headers or a form body) before the thread gives up.
READ_TIMEOUT_S = 30.0


class HandshakenConn(TConn):
    """A connection whose TLS handshake the event loop completes before any thread sees it."""

    initialized: bool
    sock: ssl.SSLSocket

    def init(self) -> None:
        """Make the HTTP parser (no second TLS wrap) and bound every blocking read."""
        if not self.initialized:
            self.initialized = True
            self.sock.setblocking(True)
            if sock.is_http2_negotiated(self.sock):
                self.is_http2 = True
                self.parser = http.get_parser(self.cfg, self.sock, self.client,
                                              http2_connection=True)
                self.parser.initiate_connection()
            else:
                self.parser = http.get_parser(self.cfg, self.sock, self.client)
        # gunicorn makes the socket blocking (no timeout) before each request.
        self.sock.settimeout(READ_TIMEOUT_S)


class HandshakeWorker(ThreadWorker):
    """``gthread`` whose event loop, not a pool thread, waits for and does the TLS handshake."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.handshaking: deque[HandshakenConn] = deque()
        self._tls_context: ssl.SSLContext | None = None

    def tls_context(self) -> ssl.SSLContext:
        """One server context per worker (gunicorn builds one per connection)."""
        if self._tls_context is None:
            self._tls_context = sock.ssl_context(self.cfg)
        return self._tls_context

    def accept(self, listener) -> None:
        """Accept, start the handshake on the event loop, and wait for the client's bytes."""
        if not self.cfg.is_ssl:
            super().accept(listener)
            return
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            # Another worker took it, or the client gave up first; anything else
            # (out of file descriptors) ends the worker as gthread would.
            if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED):
                return
            raise
        self.nr_conns += 1
        client_sock.setblocking(False)
        try:
            tls_sock = self.tls_context().wrap_socket(
                client_sock, server_side=True, do_handshake_on_connect=False,
                suppress_ragged_eofs=self.cfg.suppress_ragged_eofs)
        except OSError:
            self.nr_conns -= 1
            client_sock.close()
            return
        conn = HandshakenConn(self.cfg, tls_sock, client_addr, listener.getsockname())
        conn.timeout = time.monotonic() + HANDSHAKE_TIMEOUT_S
        self.handshaking.append(conn)
        self.poller.register(tls_sock, selectors.EVENT_READ, partial(self._step, conn))

    def _step(self, conn: HandshakenConn, _fileobj) -> None:
        """Advance the handshake by whatever the client has sent; never blocks."""
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.poller.modify(conn.sock, selectors.EVENT_READ, partial(self._step, conn))
            return
        except ssl.SSLWantWriteError:
            self.poller.modify(conn.sock, selectors.EVENT_WRITE, partial(self._step, conn))
            return
        except (OSError, ValueError):  # a bad hello, a reset, a plain-HTTP request
            self._drop_handshaking(conn)
            return
        self.poller.unregister(conn.sock)
        self.handshaking.remove(conn)
        if conn.sock.pending():  # the request came in the same packet as the Finished
            conn.data_ready = True
            self.enqueue_req(conn)
            return
        # Wait on the event loop, as gthread does for a kept-alive connection.
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ,
                             partial(self.on_pending_socket_readable, conn))

    def _drop_handshaking(self, conn: HandshakenConn) -> None:
        # Never registered, or the socket is already closed: nothing to undo.
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        self.handshaking.remove(conn)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Also close connections that have not finished the handshake in time."""
        super().murder_pending()
        now = time.monotonic()
        # Every entry got the same time limit when accepted, so the oldest come first.
        while self.handshaking and self.handshaking[0].timeout <= now:
            self._drop_handshaking(self.handshaking[0])
