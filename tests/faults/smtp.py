"""A mail server for the fault tests, in a thread: it records every message it accepts and can hang on one, as
a real server sometimes does, until the client goes away (a worker killed in the middle of sending)."""
import contextlib
import re
import select
import socket
import socketserver
import threading
from collections import Counter


class MailServer:
    def __init__(self, *, hang_on: int | None = None, refuse: int = 0):
        self.hang_on = hang_on  # the 1-based number of the message whose acceptance hangs
        self.refuse = refuse  # how many messages, the first ones, are answered "451 try again later"
        self.refused = 0
        self.accepted: list[tuple[tuple[str, ...], bytes]] = []  # (recipients, message) for each 250 after DATA
        self.attempted: list[str] = []  # every RCPT TO, accepted or not
        self.hanging = threading.Event()  # set while the client waits for the answer to that message
        self.dropped = threading.Event()  # the client of the hanging message went away
        self.release = threading.Event()
        self._received = 0
        self._lock = threading.Lock()
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                server._session(self.request, self.rfile, self.wfile)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "MailServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def delivered_to(self) -> Counter:
        with self._lock:
            return Counter(recipient for recipients, _ in self.accepted for recipient in recipients)

    def _session(self, sock: socket.socket, rfile, wfile) -> None:
        def reply(text: str) -> None:
            wfile.write(text.encode() + b"\r\n")
            wfile.flush()

        reply("220 faults ESMTP")
        recipients: list[str] = []
        while line := rfile.readline():
            command = line.strip().upper()
            if command.startswith(b"EHLO"):
                reply("250-faults\r\n250 8BITMIME")
            elif command.startswith(b"MAIL FROM"):
                recipients = []
                reply("250 OK")
            elif command.startswith(b"RCPT TO"):
                address = re.search(rb"<([^>]*)>", line).group(1).decode()
                recipients.append(address)
                with self._lock:
                    self.attempted.append(address)
                reply("250 OK")
            elif command == b"DATA":
                reply("354 go ahead")
                data = self._data(rfile)
                if data is None:
                    return  # cut in the middle of the message
                with self._lock:
                    self._received += 1
                    number = self._received
                    refusing = self.refused < self.refuse
                    self.refused += refusing
                if refusing:
                    reply("451 try again later")
                    continue
                if number == self.hang_on and not self._hang(sock):
                    return  # the client went away: nothing was delivered
                with self._lock:
                    self.accepted.append((tuple(recipients), data))
                reply("250 queued")
            elif command in (b"RSET", b"NOOP") or command.startswith(b"HELO"):
                reply("250 OK")
            elif command == b"QUIT":
                reply("221 bye")
                return
            else:
                reply("502 not implemented")

    @staticmethod
    def _data(rfile) -> bytes | None:
        lines = []
        while (line := rfile.readline()) != b".\r\n":
            if not line:
                return None
            lines.append(line)
        return b"".join(lines)

    def _hang(self, sock: socket.socket) -> bool:
        """Hold the answer until released (True) or until the client closes its end (False)."""
        self.hanging.set()
        while not self.release.is_set():
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                with contextlib.suppress(OSError):
                    if sock.recv(1, socket.MSG_PEEK):  # the client spoke out of turn; keep holding
                        self.release.wait(0.2)
                        continue
                self.dropped.set()
                return False
        return True
