"""Request guards around every view: NUL characters refused before any view sees them, and an
unavailable database answered as 503 with Retry-After (integration_hub/unavailable.py)."""

import logging

from django.http import JsonResponse

from integration_hub.exact_json import NUL_REFUSED, form_field_with_nul
from integration_hub.unavailable import Saturated, is_unavailable, unavailable_response

log = logging.getLogger(__name__)


class RefuseNul:
    """No text column can store a NUL (PostgreSQL refuses them): a 400 naming the parameter."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        fields = list(request.GET.lists())
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            fields += list(request.POST.lists())
        if (name := form_field_with_nul(fields)) is not None:
            return JsonResponse({name: [NUL_REFUSED]}, status=400)
        return self.get_response(request)


class DatabaseUnavailable:
    """A view (or its template) that could not reach the database answers 503 with
    Retry-After instead of 500; Django hands view and rendering exceptions to this hook."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, Saturated):
            log.warning("Saturated (%s %s): %s", request.method, request.path, exception)
            return unavailable_response(
                request, message=exception.message, wait=exception.retry_after
            )
        if is_unavailable(exception):
            log.warning("Database unavailable (%s %s): %s", request.method, request.path, exception)
            return unavailable_response(request)
        return None
