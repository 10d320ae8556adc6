"""The parsers of every DRF view: JSON with exact integers and no lone surrogates, and no NUL
in any field of any body, form bodies of PUT and PATCH included (no text column stores one;
the middleware sees only POST's form), each a 400 naming what is wrong."""

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser

from integration_hub import exact_json


class ExactJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = exact_json.loads(stream.read())
        except (exact_json.JSONDecodeError, exact_json.TooDeep) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if isinstance(data, dict) and (name := exact_json.field_with_nul(data)) is not None:
            raise ValidationError({name: [exact_json.NUL_REFUSED]})
        return data


def refuse_nul(fields):
    """A 400 naming the first field of a parsed form whose name or a value holds a NUL."""
    if (name := exact_json.form_field_with_nul(fields.lists())) is not None:
        raise ValidationError({name: [exact_json.NUL_REFUSED]})


class NulFreeFormParser(FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        refuse_nul(data)
        return data


class NulFreeMultiPartParser(MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        refuse_nul(parsed.data)
        return parsed
