"""Per-key rate limits in events a second with a burst, shared by every web process.

Counted in events, not requests: a batch of 1,000 costs 1,000. The algorithm is GCRA (a token
bucket kept as one number): `full_at`, the moment the bucket is full again. n events pass when
max(full_at, now) + n/rate - now <= burst/rate, and then move `full_at` there; otherwise the
sender waits the difference. The number lives in Redis when REDIS_URL is set (one Lua script),
else in the database (one conditional upsert), so every gunicorn worker and machine shares it.
A Redis that does not answer falls back to the database: ingest never depends on Redis.
"""

import logging
import math
import time

import orjson
from django.conf import settings
from django.db import connection
from django.http import HttpResponse

from integration_hub.models import RateBucket

log = logging.getLogger(__name__)
JSON = "application/json"


class RateLimited(Exception):
    """The key's bucket cannot take this many events now (`retry_after` s), or ever (`never`)."""

    def __init__(self, *, name, rate, burst, cost, retry_after, never=False):
        super().__init__(name)
        self.name, self.rate, self.burst, self.cost = name, rate, burst, cost
        self.retry_after, self.never = retry_after, never

    @property
    def status(self):
        """429, or 413 for a batch larger than the burst, which no wait can let through."""
        return 413 if self.never else 429

    @property
    def retry_after_header(self):
        return None if self.never else max(1, math.ceil(self.retry_after))

    @property
    def message(self):
        if self.never:
            return (
                f"This API key may send at most {self.burst} events at once "
                f"({self.rate} events/s, burst {self.burst}); this request has {self.cost}. "
                "Send smaller batches."
            )
        return (
            f"Rate limit of this API key: {self.rate} events/s with a burst of {self.burst}; "
            f"{self.cost} event(s) do not fit now. Retry after {self.retry_after_header} s."
        )

    def response(self):
        """429 with Retry-After naming the limit (413 when it can never fit), as JSON."""
        limit = {"events_per_second": self.rate, "burst": self.burst}
        body = {"error": self.message, "limit": limit}
        body |= {"field": "events"} if self.never else {"retry_after": self.retry_after_header}
        response = HttpResponse(orjson.dumps(body), status=self.status, content_type=JSON)
        if not self.never:
            response["Retry-After"] = str(self.retry_after_header)
        return response


def spend_for_key(api_key, cost, *, now=None):
    """Charge `cost` events to a reporter key's limit; raise RateLimited when over it."""
    if api_key.rate_limit is None:
        return
    rate, burst = api_key.rate_limit
    spend(f"apikey:{api_key.pk}:{api_key.prefix}", cost, rate=rate, burst=burst, now=now)


def spend(name, cost, *, rate, burst, now=None):
    """Take `cost` from the bucket `name` (`rate` a second, `burst` at most at once)."""
    if cost > burst:
        raise RateLimited(name=name, rate=rate, burst=burst, cost=cost, retry_after=0, never=True)
    now = time.time() if now is None else now
    amount, capacity = cost / rate, burst / rate
    wait = store().take(name, amount=amount, capacity=capacity, now=now)
    if wait > 0:
        raise RateLimited(name=name, rate=rate, burst=burst, cost=cost, retry_after=wait)


def store():
    return RedisBuckets.shared() if settings.REDIS_URL else DatabaseBuckets


class DatabaseBuckets:
    """Buckets as rows: one upsert that only moves `full_at` when the events fit."""

    @staticmethod
    def take(name, *, amount, capacity, now):
        table = RateBucket._meta.db_table
        greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
        start = f"{greatest}({table}.full_at, %s)"
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (name, full_at) VALUES (%s, %s) "
                f"ON CONFLICT (name) DO UPDATE SET full_at = {start} + %s "
                f"WHERE {start} + %s - %s <= %s RETURNING full_at",
                [name, now + amount, now, amount, now, amount, now, capacity],
            )
            if cursor.fetchone() is not None:
                return 0.0
            cursor.execute(f"SELECT full_at FROM {table} WHERE name = %s", [name])
            (full_at,) = cursor.fetchone()
        return max(full_at, now) + amount - now - capacity


# KEYS[1] bucket; ARGV: now, amount, capacity. Returns "0" when taken, else the wait.
TAKE_SCRIPT = """
local full_at = tonumber(redis.call('GET', KEYS[1]) or '0')
local now, amount, capacity = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local after = math.max(full_at, now) + amount
if after - now <= capacity then
  local ttl = math.ceil((after - now) * 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX', ttl)
  return '0'
end
return string.format('%.6f', after - now - capacity)
"""


class RedisBuckets:
    _shared = None

    def __init__(self, url):
        import redis

        self.errors = redis.RedisError
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.script = self.client.register_script(TAKE_SCRIPT)

    @classmethod
    def shared(cls):
        """One client per process (and per URL, for tests that change it)."""
        if cls._shared is None or cls._shared[0] != settings.REDIS_URL:
            cls._shared = (settings.REDIS_URL, cls(settings.REDIS_URL))
        return cls._shared[1]

    def take(self, name, *, amount, capacity, now):
        try:
            wait = self.script(keys=[f"hub:rate:{name}"], args=[now, amount, capacity])
        except self.errors as exc:
            log.warning("Redis unavailable for rate limits, counting in the database: %s", exc)
            return DatabaseBuckets.take(name, amount=amount, capacity=capacity, now=now)
        return float(wait)
