"""Reporter API keys: the raw key's hash, and finding the active key of a raw key string."""

import functools
import hashlib

from django.db import models
from django.db.models import StringAgg

API_KEY_PREFIX = "ihk_"


def hash_api_key(raw):
    """API keys are 256-bit random strings, so one SHA-256 is enough (no salt/KDF needed)."""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)

    def find(self, raw):
        """The active key for a raw key string, or None. One query, compiled once per database:
        the reporters' doors ask on every request, and compiling it cost more than running it."""
        if not raw or not raw.startswith(API_KEY_PREFIX):
            return None
        sql, params = _find_query(self.model, self.db)
        hashed = hash_api_key(raw)
        key = next(iter(self.raw(sql, [hashed if p == _SOUGHT else p for p in params])), None)
        if key is not None:
            key.allowed_codes = _split(key.system_codes), _split(key.plant_codes)
        return key


_SOUGHT = "<sought key hash>"  # the hash in the compiled query (no SHA-256 hex digest)


@functools.cache
def _find_query(model, alias):
    rows = (
        model.objects.using(alias)
        .active()
        .filter(key_hash=_SOUGHT)
        .annotate(
            system_codes=_codes(model.systems.through, "system"),
            plant_codes=_codes(model.plants.through, "plant"),
        )
    )
    return rows.order_by("pk")[:1].query.sql_with_params()


def _codes(through, name):
    """The codes a key is limited to, as one comma-separated text (codes hold no comma)."""
    rows = through.objects.filter(apikey_id=models.OuterRef("pk")).order_by()
    rows = rows.values("apikey_id").annotate(codes=StringAgg(f"{name}__code", models.Value(",")))
    return models.Subquery(rows.values("codes"))


def _split(codes):
    return set(codes.split(",")) if codes else set()
