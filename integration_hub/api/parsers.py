"""The JSON parser of every DRF view: exact integers, no lone surrogates, no NUL in any field
(no text column stores one), each a 400 naming what is wrong."""

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from integration_hub import exact_json


class ExactJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = exact_json.loads(stream.read())
        except (exact_json.JSONDecodeError, exact_json.TooDeep) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if isinstance(data, dict) and (name := exact_json.field_with_nul(data)) is not None:
            raise ValidationError({name: ["Must not contain NUL characters."]})
        return data
