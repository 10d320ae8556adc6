"""A small local webhook receiver for the demo: prints each alert and checks its signature."""

import base64
import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from monitoring.management.receivers import serve_http

DEFAULT_SECRET_FILE = "demo-webhook.secret"


def signature_ok(secret, headers, body):
    if not secret:
        return None
    msg_id, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    wanted = "v1," + base64.b64encode(digest).decode()
    return any(hmac.compare_digest(wanted, s) for s in headers.get("webhook-signature", "").split())


class Command(BaseCommand):
    help = "Listen for signed alert webhooks and print them (demo receiver)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8765")
        parser.add_argument(
            "--secret-file",
            default=None,
            help=f"The channel's whsec_ secret (default: $HUB_VAR_DIR/{DEFAULT_SECRET_FILE}, "
            "written by ensure_demo_alerts).",
        )

    def handle(self, *args, addr, secret_file, **options):
        path = Path(secret_file) if secret_file else settings.VAR_DIR / DEFAULT_SECRET_FILE
        command = self
        seen = set()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                secret = path.read_text().strip() if path.exists() else ""
                ok = signature_ok(secret, headers, body)
                msg_id = headers.get("webhook-id", "?")
                repeat = " (repeat of a notice already received: ignored)" if msg_id in seen else ""
                seen.add(msg_id)
                try:
                    doc = json.loads(body)
                    text = doc.get("summary") or doc.get("text") or ""
                    line = f"[{doc.get('severity', '?')}] {doc.get('transition', '?')}: {text}"
                except ValueError:
                    line = body[:200].decode(errors="replace")
                status = {True: "signature OK", False: "BAD SIGNATURE", None: "unsigned?"}[ok]
                command.stdout.write(f"webhook {msg_id} — {status}{repeat}\n  {line}")
                self.send_response(200 if ok is not False else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        serve_http(
            addr,
            Handler,
            self.stdout,
            f"Webhook receiver on http://{addr}/ (secret from {path}); Ctrl-C stops.",
        )
