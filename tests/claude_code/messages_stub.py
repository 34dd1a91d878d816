"""A small loopback stand-in for the Anthropic Messages API, enough for ``claude -p``.

``POST /v1/messages`` answers (streamed as server-sent events when the request asks for it):

* a request whose tools include ``Skill``, which lists the skill among the available ones (as
  Claude Code does for the skills it loaded) and whose conversation has no tool result yet: a
  ``tool_use`` of ``Skill`` with ``{"skill": <skill>}`` (the model invoking a skill by itself);
* any other request (after the tool result, titles, summaries): a short text answer.

``POST /v1/messages/count_tokens`` answers a fixed count. Every request body is kept in
``requests`` for assertions.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


class MessagesStub:
    def __init__(self, skill: str) -> None:
        self.skill = skill
        self.requests: list[dict[str, Any]] = []
        self.tool_uses = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                stub.requests.append({"path": self.path, "body": body})
                if self.path.startswith("/v1/messages/count_tokens"):
                    self._json({"input_tokens": 42})
                elif self.path.startswith("/v1/messages"):
                    self._message(body)
                else:
                    self._json({"type": "error", "error": {"type": "not_found_error", "message": "no"}}, 404)

            def _json(self, payload: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _message(self, body: dict[str, Any]) -> None:
                content = stub.reply(body)
                model = body.get("model") or "claude-sonnet-4-5"
                stop = "tool_use" if content[0]["type"] == "tool_use" else "end_turn"
                usage = {"input_tokens": 100, "output_tokens": 20}
                message = {
                    "id": f"msg_stub_{len(stub.requests)}",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                }
                if not body.get("stream"):
                    self._json(message)
                    return
                started = {**message, "content": [], "stop_reason": None}
                events: list[tuple[str, dict[str, Any]]] = [
                    ("message_start", {"type": "message_start", "message": started})
                ]
                for i, block in enumerate(content):
                    if block["type"] == "text":
                        start = {"type": "text", "text": ""}
                        delta = {"type": "text_delta", "text": block["text"]}
                    else:
                        start = {**block, "input": {}}
                        delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
                    events += [
                        ("content_block_start", {"type": "content_block_start", "index": i, "content_block": start}),
                        ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}),
                        ("content_block_stop", {"type": "content_block_stop", "index": i}),
                    ]
                events += [
                    (
                        "message_delta",
                        {
                            "type": "message_delta",
                            "delta": {"stop_reason": stop, "stop_sequence": None},
                            "usage": usage,
                        },
                    ),
                    ("message_stop", {"type": "message_stop"}),
                ]
                data = _sse(events)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The content blocks answering one request (see the module docstring)."""
        tools = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
        answered = any(
            isinstance(block, dict) and block.get("type") == "tool_result"
            for message in body.get("messages") or []
            if isinstance(message.get("content"), list)
            for block in message["content"]
        )
        listed = self.skill in json.dumps(body.get("messages")) + json.dumps(body.get("system"))
        if "Skill" in tools and listed and not answered:
            self.tool_uses += 1
            return [
                {
                    "type": "tool_use",
                    "id": f"toolu_stub_{self.tool_uses:02d}",
                    "name": "Skill",
                    "input": {"skill": self.skill},
                }
            ]
        return [{"type": "text", "text": "Done."}]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
