"""A WAN link the bench can cut: a TCP relay on a free loopback port to another port.

While cut, every open connection is closed and the port refuses new ones (as a router that
lost its uplink answers), so both brokers stay up and only the link between them goes. (An
earlier relay accepted and closed connections during a cut: Mosquitto 2.0.11's bridge, then
in a TLS handshake with a peer that had hung up, stopped serving its own clients.)
"""

from __future__ import annotations

import contextlib
import socket
import threading

from bench.infra import free_port


class WanLink:
    """Relays 127.0.0.1:``port`` → 127.0.0.1:``target``; ``cut()`` and ``restore()`` it."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._cut = False
        self._closed = False
        self._server = self._listen()

    def _listen(self) -> socket.socket:
        server = socket.create_server(("127.0.0.1", self.port))
        server.settimeout(0.2)
        threading.Thread(target=self._accept, args=(server,), name="bench-wan", daemon=True).start()
        return server

    def _accept(self, server: socket.socket) -> None:
        while not self._closed:
            try:
                near, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:  # closed: a cut
                return
            try:
                far = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                near.close()
                continue
            for s in (near, far):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.settimeout(None)
            with self._lock:
                if self._cut:  # cut while this one was being connected
                    near.close()
                    far.close()
                    continue
                self._open += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(src, dst)

    def _drop(self, *socks: socket.socket) -> None:
        with self._lock:
            for s in socks:
                if s in self._open:
                    self._open.remove(s)
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def cut(self) -> None:
        """Close every connection across the link and refuse new ones."""
        with self._lock:
            if self._cut:
                return
            self._cut = True
            live = list(self._open)
            # shutdown first: a close alone leaves the port listening until the accept
            # thread's pending accept() returns
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
        self._drop(*live)

    def restore(self) -> None:
        """Let connections through again (on the same port)."""
        with self._lock:
            if self._cut and not self._closed:
                self._server = self._listen()
                self._cut = False

    @property
    def connections(self) -> int:
        """Relayed connections open now (each counts once)."""
        with self._lock:
            return len(self._open) // 2

    def close(self) -> None:
        """Cut for good and stop listening."""
        self.cut()
        self._closed = True
