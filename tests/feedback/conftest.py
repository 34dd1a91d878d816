"""Loopback stubs the notification tests deliver to: an SMTP server and a webhook receiver."""

from __future__ import annotations

import email
import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class SMTPStub:
    """A minimal SMTP server on 127.0.0.1 (HELO/EHLO, MAIL, RCPT, DATA, QUIT; no TLS) keeping each
    message as ``(recipients, email.message.Message)``."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Any]] = []
        stub = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:  # noqa: C901 - one small protocol loop
                def send(line: str) -> None:
                    self.wfile.write((line + "\r\n").encode())

                send("220 stub ESMTP")
                recipients: list[str] = []
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    command = raw.decode(errors="replace").strip()
                    verb = command.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        send("250 stub")
                    elif verb == "MAIL":
                        recipients = []
                        send("250 ok")
                    elif verb == "RCPT":
                        recipients.append(command.split(":", 1)[1].strip(" <>"))
                        send("250 ok")
                    elif verb == "DATA":
                        send("354 go on")
                        lines = []
                        while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                            lines.append(line[1:] if line.startswith(b"..") else line)
                        stub.messages.append((recipients, email.message_from_bytes(b"".join(lines))))
                        send("250 queued")
                    elif verb == "QUIT":
                        send("221 bye")
                        return
                    else:
                        send("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WebhookStub:
    """An HTTP receiver on 127.0.0.1 keeping each POSTed JSON body (answers ``status``)."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[Any] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                stub.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(stub.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.status = status
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def smtp() -> Iterator[SMTPStub]:
    stub = SMTPStub()
    yield stub
    stub.close()


@pytest.fixture
def webhook() -> Iterator[WebhookStub]:
    stub = WebhookStub()
    yield stub
    stub.close()
