"""The demo's local HTTP receivers (replays, webhooks) share how they listen and stop."""

from http.server import ThreadingHTTPServer

from django.core.management.base import CommandError


def serve_http(addr, handler, out, banner):
    """Listen on host:port with `handler` until Ctrl-C; a bad address is a CommandError."""
    host, _, port = addr.rpartition(":")
    try:
        server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), handler)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot listen on {addr}: {exc}") from exc
    out.write(banner)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
