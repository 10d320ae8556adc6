"""Reads at scale: with DATABASE_READ_URL set, dashboards and read APIs query a replica.

Only the reads of a GET or HEAD request to a page or an API go there (a middleware marks the
request); everything else reads the primary: writes and the reads of a write, Celery tasks
and commands, the admin, the probes, and who the person is (sessions, users, tokens, API
keys), so a sign-in or a new token works at once even while the replica lags. The replica
may trail the primary by its replication lag: a page can show a second-old figure, never a
wrong one.
"""

from contextvars import ContextVar

from django.conf import settings

REPLICA = "replica"
_reading = ContextVar("reads_from_replica", default=False)
# Who is asking is always read from the primary.
PRIMARY_ONLY_APPS = frozenset({"auth", "authtoken", "sessions", "contenttypes", "admin"})
PRIMARY_ONLY_MODELS = frozenset({"integration_hub.apikey", "integration_hub.ratebucket"})
NOT_FROM_REPLICA = ("/admin/", "/accounts/", "/healthz", "/readyz")


class ReadReplicaRouter:
    def db_for_read(self, model, **hints):
        if not _reading.get():
            return None
        meta = model._meta
        if meta.app_label in PRIMARY_ONLY_APPS or meta.label_lower in PRIMARY_ONLY_MODELS:
            return None
        return REPLICA

    def db_for_write(self, model, **hints):
        return None

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica is a copy of the primary: rows relate across both

    def allow_migrate(self, db, app_label, **hints):
        return db != REPLICA


class ReadsFromReplica:
    """Marks a GET or HEAD request to a page or a read API as one that reads the replica."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not (
            REPLICA in settings.DATABASES
            and request.method in ("GET", "HEAD")
            and not request.path.startswith(NOT_FROM_REPLICA)
        ):
            return self.get_response(request)
        token = _reading.set(True)
        try:
            return self.get_response(request)
        finally:
            _reading.reset(token)
