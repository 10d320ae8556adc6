"""`{% plotly_assets %}`: plotly.js, its style rules as a file, and no inline style from it."""

from django import template
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join

from integration_hub.staticfiles import page_placeholders

register = template.Library()


@register.simple_tag
def plotly_assets():
    return format_html(
        '<link id="plotly.js-style-global" class="no-inline-styles" rel="stylesheet" href="{}">'
        '{}<script src="{}" defer></script>',
        static("plotly/plotly.css"),
        format_html_join(
            "",
            '<meta id="{}" name="plotly-style" content="not used">',
            ((i,) for i in page_placeholders()),
        ),
        static("plotly/plotly.min.js"),
    )
