"""Real local receivers for alert tests: an SMTP server and an HTTP webhook endpoint.

The webhook receiver checks Standard Webhooks signatures with its own code (not the hub's),
written from the specification: base64(HMAC-SHA256(base64decode(secret after "whsec_"),
"{webhook-id}.{webhook-timestamp}.{raw body}")), sent as "v1,<sig>" entries separated by spaces.
"""

import base64
import hmac
import json
import socket
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- SMTP -----------------------------------------------------------------------------------


class _Recorder:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append(
            {"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "message": msg}
        )
        return "250 OK"


class SMTPReceiver:
    """aiosmtpd on a free port in this process; `.messages` holds what arrived."""

    def __init__(self):
        self.port = free_port()
        self._recorder = _Recorder()
        self._controller = Controller(self._recorder, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self):
        return self._recorder.messages

    def mailer(self):
        return {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": self.port, "timeout": 5},
        }

    def start(self):
        self._controller.start()
        return self

    def stop(self):
        self._controller.stop()

    @staticmethod
    def text_and_html(message):
        text = message.get_body(preferencelist=("plain",)).get_content()
        html = message.get_body(preferencelist=("html",)).get_content()
        return text, html


# --- HTTP -----------------------------------------------------------------------------------


def verify_standard_webhook(secret, headers, body, *, tolerance=300):
    """True if any v1 signature matches; an independent implementation of the scheme."""
    msg_id, ts, sigs = (
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
    )
    if not (msg_id and ts and sigs):
        return False
    if abs(time.time() - int(ts)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = hmac.new(key, msg_id.encode() + b"." + ts.encode() + b"." + body, "sha256")
    wanted = base64.b64encode(expected.digest())
    for entry in sigs.split(" "):
        version, _, sig = entry.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode(), wanted):
            return True
    return False


class WebhookReceiver:
    """An HTTP server on a free port that records every POST and answers from a script.

    `responses` is a list of status codes used in order (then 200); `stall_first` makes the
    first request hang until `release()` (or 30 s), to kill a worker mid-delivery.
    """

    def __init__(self, secret=None, responses=(), stall_first=False):
        self.secret = secret
        self.responses = list(responses)
        self.requests = []
        self.stall_first = stall_first
        self.first_arrived = threading.Event()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                record = {
                    "path": self.path,
                    "headers": headers,
                    "body": body,
                    "json": json.loads(body or b"null"),
                    "verified": bool(receiver.secret)
                    and verify_standard_webhook(receiver.secret, headers, body),
                }
                receiver.requests.append(record)
                if len(receiver.requests) == 1 and receiver.stall_first:
                    receiver.first_arrived.set()
                    receiver._release.wait(30)
                status = receiver.responses.pop(0) if receiver.responses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def release(self):
        self._release.set()

    def stop(self):
        self.release()
        self.server.shutdown()
        self.server.server_close()
