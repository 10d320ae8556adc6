"""Error pages: API clients get JSON, browsers the usual page."""

from django.http import JsonResponse
from django.views import defaults

API_PREFIXES = ("/api/", "/v1/")


def not_found(request, exception):
    """404 for a URL no route matches (/api/v1/slos/abc): JSON under the API prefixes."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
