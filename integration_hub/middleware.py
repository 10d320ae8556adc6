"""Refuses NUL characters in query strings and form fields before any view sees them: no text
column can store one (PostgreSQL refuses them), so they are a 400 naming the parameter."""

from django.http import JsonResponse


class RefuseNul:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        fields = list(request.GET.lists())
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            fields += list(request.POST.lists())
        for name, values in fields:
            if "\x00" in name or any("\x00" in v for v in values):
                shown = name.replace("\x00", "\\0")[:64]
                return JsonResponse({shown: ["Must not contain NUL characters."]}, status=400)
        return self.get_response(request)
