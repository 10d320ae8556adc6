"""A stand-in for the systems' replay endpoints in the demo: accepts replays, applies each
Idempotency-Key once, and prints what it received."""

import json
from http.server import BaseHTTPRequestHandler

from django.core.management.base import BaseCommand

from monitoring.management.receivers import serve_http


class Command(BaseCommand):
    help = "Listen for replayed dead letters (demo stand-in for ERP/MES/WMS/QMS endpoints)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8766")

    def handle(self, *args, addr, **options):
        command, applied = self, set()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key", "")
                repeat = key in applied
                applied.add(key)
                try:
                    summary = ", ".join(list(json.loads(body))[:3]) if body else "empty body"
                except (ValueError, TypeError):
                    summary = f"{len(body)} bytes"
                note = " (already applied: not posted again)" if repeat else ""
                command.stdout.write(
                    f"replay to {self.path} · {self.headers.get('X-Correlation-ID', '?')} · "
                    f"key {key} · {summary}{note}"
                )
                reply = json.dumps({"applied": not repeat, "idempotency_key": key}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        serve_http(
            addr, Handler, self.stdout, f"Replay receiver on http://{addr}/<system>; Ctrl-C stops."
        )
