"""Clients that connect to the web page and then say nothing (or half a TLS hello).

What a port scanner, a stuck phone or a deliberate slow-loris does. The test
of the TLS front (tests/web_ui/test_web_serve.py) and the web bench
(tests/bench/bench_web.py) hold many of these open while they measure.
"""

from __future__ import annotations

import selectors
import socket
import threading

# The first byte of a TLS record (handshake): the server waits for the rest.
HALF_HELLO = b"\x16"


class SilentClients:
    """``count`` TCP connections to ``port`` that send nothing, kept open in the background.

    Every ``partial``-th connection sends one byte of a ClientHello and stops.
    A connection the server closes is opened again, so ``count`` stay open for
    as long as the context lasts (``reopened`` counts those).
    """

    def __init__(self, port: int, count: int, host: str = "127.0.0.1", partial: int = 2):
        self.address = (host, port)
        self.count = count
        self.partial = partial
        self.reopened = 0
        self._opened = 0
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep_open, name="silent-clients",
                                        daemon=True)

    def __enter__(self) -> SilentClients:
        for _ in range(self.count):
            self._open()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()

    def _open(self) -> None:
        sock = socket.create_connection(self.address, timeout=10)
        self._opened += 1
        if self.partial and self._opened % self.partial == 0:
            sock.sendall(HALF_HELLO)
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ)

    def _keep_open(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.2):
                sock = key.fileobj
                self._selector.unregister(sock)
                sock.close()  # type: ignore[union-attr]
                if not self._stop.is_set():
                    self._open()
                    self.reopened += 1
