"""When a reporters' door tells the sender to come back later: a key over its request rate
(429) or a database that does not answer (503), both with Retry-After."""

import time
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError

DATABASE_RETRY_AFTER = 5


class ComeBackLater(Exception):
    def __init__(self, status, message, retry_after):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def check_rate(key):
    """Count one request of this API key; ComeBackLater(429) past INGEST_RATE_PER_MINUTE.

    Counted in Django's cache per minute (per process unless CACHES is shared), like
    API_RATE_PER_MINUTE for people.
    """
    limit = settings.INGEST_RATE_PER_MINUTE
    if not limit:
        return
    now = time.time()
    bucket = f"ingest-rate:{key.pk}:{int(now // 60)}"
    cache.add(bucket, 0, timeout=120)
    try:
        count = cache.incr(bucket)
    except ValueError:  # expired between add and incr
        cache.set(bucket, 1, timeout=120)
        count = 1
    if count > limit:
        raise ComeBackLater(
            429,
            f"Over {limit} requests a minute for this API key (INGEST_RATE_PER_MINUTE).",
            retry_after=max(1, 60 - int(now % 60)),
        )


@contextmanager
def database_answers():
    """Turn a database that cannot be reached into ComeBackLater(503): nothing was stored."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise ComeBackLater(
            503,
            f"The database is not answering ({type(exc).__name__}); nothing was stored.",
            retry_after=DATABASE_RETRY_AFTER,
        ) from exc
