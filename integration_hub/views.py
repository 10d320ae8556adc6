from django.shortcuts import render

from integration_hub.models import Flow, Plant, System


def home(request):
    """Landing page: what this hub watches, and where to go next."""
    return render(
        request,
        "home.html",
        {
            "plants": Plant.objects.all(),
            "flows": Flow.objects.all(),
            "systems": System.objects.all(),
        },
    )
