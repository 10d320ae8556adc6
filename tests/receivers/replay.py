"""A local HTTP receiver on 127.0.0.1 that records what it gets and answers as programmed.

It behaves like an idempotent target system: a request whose Idempotency-Key already
succeeded is answered 200 again but not applied twice (`applied` counts each key once).
"""

import json
import socket
import threading
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, responses=(), *, delay=0.0):
        self.requests = []
        self.applied = Counter()  # key → times applied (must stay ≤ 1)
        self.seen = Counter()  # key → requests received with it
        self.responses = deque(responses)  # (status, headers, body) answered in turn, then 200
        self.delay = delay
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/replay"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def keys(self):
        return [r["headers"].get("Idempotency-Key") for r in self.requests]

    def _answer(self, key):
        with self.lock:
            self.seen[key] += 1
            if self.responses:
                status, headers, body = self.responses.popleft()
            else:
                status, headers, body = 200, {}, None
            if 200 <= status < 300 and key:
                duplicate = self.applied[key] > 0
                if not duplicate:
                    self.applied[key] += 1
                body = body or json.dumps({"ok": True, "duplicate": duplicate})
            return status, headers, body or ""

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # Headers and body go out in two writes: without this, Nagle and delayed ACK
                # add 40 ms to every response on a kept-alive connection.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                key = self.headers.get("Idempotency-Key")
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                status, headers, text = receiver._answer(key)
                data = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler
