"""A TCP forwarder on loopback, in threads, that a test puts between the plugin and its database
to take the database away for real and bring it back, without touching the server:

- ``stop()``: the server is gone. Open connections are reset; new ones are refused.
- ``blackhole()``: the server hangs. Open connections are reset; new ones are accepted and never
  answered.
- ``resume()``: forwarding again, on the same port.
"""

from __future__ import annotations

import socket
import struct
import threading

_CHUNK = 65536


class TcpProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._lock = threading.Lock()
        self._forwarding = True
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()

    def __enter__(self) -> TcpProxy:
        self._listen()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            # Wakes the thread blocked in accept(): close() alone leaves it accepting.
            listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self._reset_open_connections()

    def blackhole(self) -> None:
        with self._lock:
            self._forwarding = False
        self._reset_open_connections()
        if self._listener is None:
            self._listen()

    def resume(self) -> None:
        with self._lock:
            self._forwarding = True
        if self._listener is None:
            self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by stop()
                return
            with self._lock:
                self._open.add(client)
                forwarding = self._forwarding
            if forwarding:
                threading.Thread(target=self._connect, args=(client,), daemon=True).start()
            # Else the connection is held open, unanswered, until it is reset.

    def _connect(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target)
        except OSError:
            self._reset(client)
            return
        with self._lock:
            self._open.add(server)
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        self._reset(source)
        self._reset(sink)

    def _reset_open_connections(self) -> None:
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            self._reset(connection)

    def _reset(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.discard(connection)
        try:
            # Closed with a reset, as a vanished server's connections end.
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        connection.close()
