"""Serves the plotly.js that the plotly package ships (no CDN), and its style rules as a file.

plotly.js adds its global style rules (mode bar, hover labels, notifier) at run time through
an inline `<style>` element, which a Content Security Policy without `'unsafe-inline'` blocks.
It skips that when the page already holds an element with the id `plotly.js-style-global` and
the class `no-inline-styles`, so pages link `plotly/plotly.css` under that id; the file is
made here from the rules table inside the bundled plotly.min.js, so it always matches the
plotly.js it is served with. Bundled parts that inject a `<style>` of their own unless an
element with its id exists (maplibre's, for map traces, which the hub does not draw) get a
placeholder element of that id instead (`{% plotly_assets %}`), so nothing inline is tried.
"""

import functools
import re
from pathlib import Path

import plotly
from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

_PACKAGE_DATA = Path(plotly.__file__).parent / "package_data"
_BUNDLE = _PACKAGE_DATA / "plotly.min.js"

# `{...};for(k in rules)sel=k.replace(/^,/," ,").replace(/X/g,"…").replace(/Y/g,"…"),`
# then `….addStyleRule(sel, rules[k])`: the literal is read as string pairs.
_LOOP = re.compile(
    r"for\((?P<key>\w+) in (?P<table>\w+)\)\w+=(?P=key)\.replace\(/\^,/g?,\" ,\"\)"
    r"\.replace\(/X/g,\"(?P<x>[^\"]+)\"\)\.replace\(/Y/g,\"(?P<y>[^\"]+)\"\),\w+\.addStyleRule"
)
_STRING = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
_PAIR = re.compile(rf"\s*({_STRING}|[A-Za-z_$][\w$]*)\s*:\s*({_STRING})\s*([,}}])")
_SELF_INJECTED = re.compile(
    r"getElementById\(\"(?P<id>[\w-]+)\"\)\)\{var (?P<v>\w+)="
    r"document\.createElement\(\"style\"\);(?P=v)\.id=\"(?P=id)\",(?P=v)\.textContent="
)


class PlotlyStylesMissing(ValueError):
    """The bundled plotly.js no longer holds its style rules in the shape read here."""


def _unquote(token):
    if token[0] not in "\"'":
        return token
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def self_injected_style_ids(bundle_text):
    """Element ids of the bundled parts that add their own `<style>` element when it is absent."""
    return sorted({m["id"] for m in _SELF_INJECTED.finditer(bundle_text)})


def plotly_css(bundle_text):
    """The CSS that plotly.js would insert at run time, read from its bundle."""
    loop = _LOOP.search(bundle_text)
    if loop is None:
        raise PlotlyStylesMissing("no style-rule loop found in plotly.min.js")
    start = bundle_text.rfind(f"{loop['table']}={{", 0, loop.start())
    if start < 0:
        raise PlotlyStylesMissing(f"no rules table {loop['table']} in plotly.min.js")
    position, rules = start + len(loop["table"]) + 2, []
    while True:
        pair = _PAIR.match(bundle_text, position)
        if pair is None:
            raise PlotlyStylesMissing(f"unreadable style rule at offset {position}")
        selector = re.sub(r"^,", " ,", _unquote(pair[1]))
        selector = selector.replace("X", loop["x"]).replace("Y", loop["y"])
        rules.append(f"{selector} {{{_unquote(pair[2])}}}")
        position = pair.end()
        if pair[3] == "}":
            return "/* Generated from plotly.min.js by integration_hub.staticfiles */\n" + (
                "\n".join(rules) + "\n"
            )


def _generated_dir():
    return Path(settings.VAR_DIR) / "generated-static"


def _css_path():
    """plotly/plotly.css under var/, written again whenever the bundle is newer."""
    target = _generated_dir() / "plotly" / "plotly.css"
    if not target.exists() or target.stat().st_mtime < _BUNDLE.stat().st_mtime:
        target.parent.mkdir(parents=True, exist_ok=True)
        css = plotly_css(_BUNDLE.read_text(encoding="utf-8"))
        partial = target.with_suffix(".css.part")
        partial.write_text(css, encoding="utf-8")
        partial.replace(target)
    return target


_SERVED = {
    "plotly/plotly.min.js": lambda: _BUNDLE,
    "plotly/plotly.css": _css_path,
}


class PlotlyFinder(BaseFinder):
    def check(self, **kwargs):
        try:
            _css_path()
        except (OSError, PlotlyStylesMissing) as exc:
            return [Error(f"plotly.css cannot be made: {exc}", id="integration_hub.E010")]
        return []

    def find(self, path, find_all=False, **kwargs):
        made = _SERVED.get(path)
        found = made() if made is not None and _BUNDLE.exists() else None
        if found is None:
            return [] if find_all else None
        return [str(found)] if find_all else str(found)

    def list(self, ignore_patterns):
        bundle = FileSystemStorage(location=str(_PACKAGE_DATA))
        bundle.prefix = "plotly"
        yield "plotly.min.js", bundle
        _css_path()
        generated = FileSystemStorage(location=str(_generated_dir() / "plotly"))
        generated.prefix = "plotly"
        yield "plotly.css", generated


@functools.cache
def page_placeholders():
    """Ids the pages carry so bundled parts of plotly.js do not inject styles of their own."""
    return self_injected_style_ids(_BUNDLE.read_text(encoding="utf-8")) if _BUNDLE.exists() else []
