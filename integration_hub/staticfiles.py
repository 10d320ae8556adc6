"""Serves the plotly.js that the plotly package ships as static/plotly/plotly.min.js (no CDN)."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

_PACKAGE_DATA = Path(plotly.__file__).parent / "package_data"
_SERVED = {"plotly/plotly.min.js": _PACKAGE_DATA / "plotly.min.js"}


class PlotlyFinder(BaseFinder):
    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        found = _SERVED.get(path)
        if found is None or not found.exists():
            return [] if find_all else None
        return [str(found)] if find_all else str(found)

    def list(self, ignore_patterns):
        storage = FileSystemStorage(location=str(_PACKAGE_DATA))
        storage.prefix = "plotly"
        yield "plotly.min.js", storage
