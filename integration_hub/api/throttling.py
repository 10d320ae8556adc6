"""API throttling per person or token (per address for reporters without a login)."""

from django.conf import settings
from rest_framework.throttling import UserRateThrottle


class PerPersonRate(UserRateThrottle):
    """API_RATE_PER_MINUTE requests a minute (0: unlimited), read at request time. Counts live
    in Django's cache: per process unless CACHES points at a shared one."""

    def get_rate(self):
        rate = settings.API_RATE_PER_MINUTE
        return f"{rate}/min" if rate else None

    def allow_request(self, request, view):
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)
