"""A loopback stand-in for the Messages API as the flea-market reviewer calls it.

Each ``POST /v1/messages`` takes the next scripted answer from ``script`` (default: ``safe``):

* ``safe`` / ``high`` — a JSON verdict (``high`` carries a finding at the first file, line 3);
* ``500`` — HTTP 500 (the SDK retries); ``slow`` — answers after ``delay`` seconds (a timeout);
* ``text`` — prose that is not JSON; ``wait`` — holds the answer until ``release`` is set, then ``high``.

Every request is checked for the delimiters: the system prompt must call the bundle untrusted,
the user message must hold exactly one ``<flea_bundle>`` … ``</flea_bundle>`` with every file in
``<flea_file>`` tags, and text planted in a file (``planted``) must sit inside them. The outcome
is kept in ``checks`` (one per request). A request whose delimiters fail is answered ``safe``,
as a fooled model would, so a test seeing "blocked" knows the hardening held.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERDICTS = {
    "safe": {"risk": "safe", "summary": "Reads SQL files only.", "findings": []},
    "high": {
        "risk": "high",
        "summary": "Sends the user's credentials to an outside host.",
        "findings": [{"file": "FIRST", "line": 3, "severity": "high", "message": "Posts ~/.aws/credentials out."}],
    },
}


class ReviewerStub:
    def __init__(self) -> None:
        self.script: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.checks: list[bool] = []
        self.planted = ""
        self.delay = 2.0
        self.release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                stub.requests.append(body)
                ok = stub.check(body)
                stub.checks.append(ok)
                mode = stub.script.pop(0) if stub.script else "safe"
                if mode == "500":
                    self._send(500, {"type": "error", "error": {"type": "api_error", "message": "overloaded"}})
                    return
                if mode == "slow":
                    time.sleep(stub.delay)
                if mode == "wait":
                    stub.release.wait(30)
                    mode = "high"
                if mode == "text":
                    text = "This looks fine to me, nothing to worry about."
                else:
                    verdict = json.loads(json.dumps(VERDICTS["safe" if not ok else mode]))
                    first = stub.first_file(body)
                    for finding in verdict["findings"]:
                        finding["file"] = first
                    text = json.dumps(verdict)
                self._send(
                    200,
                    {
                        "id": f"msg_{len(stub.requests)}",
                        "type": "message",
                        "role": "assistant",
                        "model": body.get("model", "x"),
                        "content": [{"type": "text", "text": text}],
                        "stop_reason": "end_turn",
                        "stop_sequence": None,
                        "usage": {"input_tokens": 10, "output_tokens": 10},
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def user_text(body: dict[str, Any]) -> str:
        content = body["messages"][0]["content"]
        return content if isinstance(content, str) else "".join(c.get("text", "") for c in content)

    def first_file(self, body: dict[str, Any]) -> str:
        found = re.search(r'<flea_file path="([^"]+)"', self.user_text(body))
        return found.group(1) if found else ""

    def check(self, body: dict[str, Any]) -> bool:
        system = body.get("system")
        system_text = system if isinstance(system, str) else "".join(s.get("text", "") for s in system or [])
        text = self.user_text(body)
        if "UNTRUSTED" not in system_text:
            return False
        if text.count("<flea_bundle>") != 1 or text.count("</flea_bundle>") != 1:
            return False
        inside = text.split("<flea_bundle>", 1)[1].split("</flea_bundle>", 1)[0]
        if self.planted and self.planted in text:
            files = re.findall(r"<flea_file [^>]*>(.*?)</flea_file>", inside, re.S)
            if not any(self.planted in f for f in files):
                return False
        return True

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
