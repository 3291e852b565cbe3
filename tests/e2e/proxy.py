"""A TCP proxy for fault tests: forwards to a server, and can cut or stall the path.

Pointing one process at the proxy (say, the worker at the database) lets a test make a server
unreachable for that process only, without touching the server itself.

- `cut()`: new connections are refused and open ones reset, as when a server goes away;
  `restore()` listens again.
- `stall()`: nothing is forwarded any more, but nothing is closed either: open connections
  stay established (the proxy's kernel still acknowledges what clients send) and new ones
  are accepted and held. Neither side sees an error, as with a frozen server, a hung
  connection pooler, or a network path that silently drops packets. TCP keepalives and
  TCP_USER_TIMEOUT do not fire here, since this host's TCP stack answers for the server.
  `resume()` forwards again, held bytes first, as if the path had only been slow.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from tests.support import free_port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._flowing = threading.Event()
        self._flowing.set()
        self.connections = 0

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.add(client)
            threading.Thread(target=self._connect, args=(listener, client), daemon=True).start()

    def _connect(self, listener: socket.socket, client: socket.socket) -> None:
        self._flowing.wait()  # a stalled proxy holds new connections here
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            with self._lock:
                self._close(client)
            return
        upstream.settimeout(None)
        with self._lock:
            if self._listener is not listener:  # cut meanwhile
                self._close(client, upstream)
                return
            self._open.add(upstream)
            self.connections += 1
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self._flowing.wait()  # stalled: hold what was read until resume()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _close(self, *sockets: socket.socket) -> None:
        """Closes sockets this proxy opened; the caller holds the lock."""
        for sock in sockets:
            self._open.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def cut(self) -> None:
        """New connections are refused, open ones reset (as when a server goes away)."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
        if listener is not None:
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                # SO_LINGER 0: close with RST, like a dead peer.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
        self._flowing.set()  # a cut ends a stall: held connections find the proxy cut and close

    def restore(self) -> None:
        self.start()

    def stall(self) -> None:
        """Stops forwarding without closing anything: connections open, no bytes through."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self.cut()
