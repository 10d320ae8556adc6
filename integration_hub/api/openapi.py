"""OpenAPI generation: the schema class for the hub's API views, and a post-processing hook
for the answers every operation can give besides its success (DRF's validation,
authentication, permission, not found and throttling answers)."""

from drf_spectacular.openapi import AutoSchema
from rest_framework.generics import GenericAPIView


class HubAutoSchema(AutoSchema):
    """Plain APIViews that build their answers by hand have no serializer to describe; their
    bodies are documented as JSON of any shape (README "API" tells each one) rather than
    warned about on every generation. Lists and details get distinct operation ids."""

    def _get_serializer(self):
        view = self.view
        if not isinstance(view, GenericAPIView) and not (
            hasattr(view, "get_serializer")
            or hasattr(view, "get_serializer_class")
            or hasattr(view, "serializer_class")
        ):
            return None
        return super()._get_serializer()

    def get_operation_id(self):
        operation_id = super().get_operation_id()
        on_item = self.path.rstrip("/").endswith("}")
        if self.method == "GET" and not on_item and operation_id.endswith("_retrieve"):
            return operation_id.removesuffix("_retrieve") + "_list"
        if self.method == "POST" and on_item and operation_id.endswith("_create"):
            return operation_id.removesuffix("_create") + "_act"
        return operation_id


ERROR = {
    "type": "object",
    "description": "{field: [reasons]} for invalid input, or {detail: reason}.",
    "additionalProperties": True,
}
COMMON = {
    "400": "Invalid input: each field with its reasons.",
    "401": "Not signed in: send Authorization: Token <token>.",
    "403": "Signed in, but this role may not do that.",
    "404": "No such item among the plants the reader may see.",
    "405": "Method not allowed.",
    "413": "Body too large.",
    "415": "Unsupported Content-Type (send application/json).",
    "429": "Over API_RATE_PER_MINUTE; see Retry-After.",
}
METHODS = ("get", "put", "post", "patch", "delete")


def document_errors(result, generator, request, public):
    """Add the common error answers to every DRF operation; a success answer that the view
    builds by hand (no serializer) is documented as JSON of any shape, not as empty."""
    # The router answers with or without a trailing slash; the README writes paths without.
    result["paths"] = {
        (path.rstrip("/") if path.startswith("/api/v1/") else path): item
        for path, item in result.get("paths", {}).items()
    }
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["ApiError"] = ERROR
    ref = {"$ref": "#/components/schemas/ApiError"}
    for item in result.get("paths", {}).values():
        for method in METHODS:
            operation = item.get(method)
            if operation is None or "ingest" in operation.get("tags", ()):
                continue
            responses = operation.setdefault("responses", {})
            for status, text in COMMON.items():
                responses.setdefault(
                    status, {"description": text, "content": {"application/json": {"schema": ref}}}
                )
            for status, answer in responses.items():
                if status in ("200", "201", "202") and "content" not in answer:
                    answer["content"] = {"application/json": {"schema": {}}}
    return result
