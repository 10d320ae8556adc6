"""Sign-in with a lock-out: after LOGIN_MAX_FAILURES failed attempts within
LOGIN_LOCKOUT_SECONDS, for one username or from one address, sign-in is refused (429) without
checking the password, until the window has passed. Failures are rows, so every web process
and machine counts the same ones."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.db.models import Q
from django.utils import timezone

from integration_hub.models import LoginFailure


def client_address(request):
    """The caller's address; X-Forwarded-For only when a trusted proxy sets it."""
    if settings.TRUST_PROXY_HEADERS:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return request.META.get("REMOTE_ADDR", "")[:64]


def locked_for(username, address, now=None):
    """Seconds until this username or address may try again (0: not locked)."""
    now = now or timezone.now()
    window = timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    recent = LoginFailure.objects.filter(at__gt=now - window)
    limit = settings.LOGIN_MAX_FAILURES
    oldest = []
    for match in (Q(username=username.lower()), Q(address=address)):
        times = list(recent.filter(match).order_by("-at").values_list("at", flat=True)[:limit])
        if len(times) >= limit:
            oldest.append(times[-1])
    if not oldest:
        return 0
    return max(1, int((min(oldest) + window - now).total_seconds()))


class LoginView(auth_views.LoginView):
    def post(self, request, *args, **kwargs):
        username = (request.POST.get("username") or "")[:150]
        address = client_address(request)
        wait = locked_for(username, address)
        if wait:
            response = self.render_to_response(
                self.get_context_data(locked_minutes=(wait + 59) // 60), status=429
            )
            response["Retry-After"] = str(wait)
            return response
        response = super().post(request, *args, **kwargs)
        if response.status_code != 302:  # the form came back: a failed sign-in
            LoginFailure.objects.create(username=username.lower(), address=address)
            cutoff = timezone.now() - timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
            LoginFailure.objects.filter(at__lt=cutoff).delete()
        return response
