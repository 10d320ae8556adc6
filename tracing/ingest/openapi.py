"""OpenAPI descriptions of the reporters' doors, which are plain Django views that
drf-spectacular does not see: POST /api/v1/events and POST /v1/traces."""

from tracing.ingest.contract import ERROR_CLASSES, MAX_ATTRIBUTES, MAX_ID, MAX_KEYS, STATUSES

REPORTER_KEY = [{"ReporterKey": []}, {"ReporterApiKey": []}]


def _error(description):
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestError"}}},
    }


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}


def _retry(description):
    return {**_error(description), "headers": RETRY_AFTER}


EVENT = {
    "type": "object",
    "description": "One hop of one business transaction (README: Sending events).",
    "required": ["event_id", "correlation_id", "flow", "step", "source", "plant", "occurred_at"],
    "additionalProperties": False,
    "properties": {
        "event_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID},
        "correlation_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID},
        "flow": {"type": "string", "description": "A registered flow code."},
        "step": {"type": "string", "description": "A milestone of that flow."},
        "source": {"type": "string", "description": "A registered system code."},
        "target": {"type": "string", "description": "A registered system code."},
        "plant": {"type": "string", "description": "A registered plant code."},
        "status": {"type": "string", "enum": list(STATUSES), "default": "ok"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "business_keys": {
            "type": "object",
            "maxProperties": MAX_KEYS,
            "additionalProperties": {"type": "string"},
        },
        "error": {
            "type": "object",
            "required": ["class"],
            "additionalProperties": False,
            "properties": {
                "class": {"type": "string", "enum": list(ERROR_CLASSES)},
                "code": {"type": "string", "maxLength": 128},
                "message": {"type": "string", "maxLength": 4000},
            },
        },
        "payload": {"description": "Any JSON, at most 256 KiB: the message, kept for replay."},
        "attributes": {"type": "object", "maxProperties": MAX_ATTRIBUTES},
    },
}
RESULT = {
    "type": "object",
    "required": ["accepted", "duplicates", "rejected"],
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "event_id": {"type": "string", "nullable": True},
                    "errors": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
}
OTLP_STATUS = {
    "type": "object",
    "description": "google.rpc.Status, as the OTLP/HTTP specification asks for failures.",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}
OTLP_ANSWER = {
    "type": "object",
    "description": "ExportTraceServiceResponse; partialSuccess only when spans were rejected.",
    "properties": {
        "partialSuccess": {
            "type": "object",
            "properties": {
                "rejectedSpans": {"type": "integer"},
                "errorMessage": {"type": "string"},
            },
        }
    },
}


def _otlp(description, schema="OtlpStatus", headers=None):
    ref = {"$ref": f"#/components/schemas/{schema}"}
    answer = {
        "description": description,
        "content": {
            "application/json": {"schema": ref},
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
        },
    }
    if headers:
        answer["headers"] = headers
    return answer


EVENTS_PATH = {
    "post": {
        "operationId": "events_create",
        "summary": "Send trace events",
        "description": "One event object, or {events: [...]} with up to 5,000 events and "
        "10 MiB (Content-Encoding: gzip accepted). Idempotent on event_id.",
        "tags": ["ingest"],
        "security": REPORTER_KEY,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/TraceEventIn"},
                            {
                                "type": "object",
                                "required": ["events"],
                                "additionalProperties": False,
                                "properties": {
                                    "events": {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": 5000,
                                        "items": {"$ref": "#/components/schemas/TraceEventIn"},
                                    }
                                },
                            },
                        ]
                    }
                }
            },
        },
        "responses": {
            "202": {
                "description": "Valid events stored (durable) even when others were rejected.",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/IngestResult"}}
                },
            },
            "400": {
                "description": "Malformed JSON (IngestError), or every event rejected "
                "(IngestResult).",
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/IngestResult"},
                                {"$ref": "#/components/schemas/IngestError"},
                            ]
                        }
                    }
                },
            },
            "401": _error("Missing, unknown or revoked API key."),
            "405": _error("Anything but POST."),
            "413": _error("Over 10 MiB or over 5,000 events."),
            "415": _error("Not application/json, or an unknown Content-Encoding."),
            "429": _retry("The key is over its rate limit (events_per_second, burst)."),
            "503": _retry("The database does not answer; nothing was stored."),
        },
    }
}
TRACES_PATH = {
    "post": {
        "operationId": "otlp_traces_export",
        "summary": "Export OpenTelemetry spans (OTLP/HTTP)",
        "description": "An ExportTraceServiceRequest as protobuf or OTLP/JSON (hex IDs), "
        "gzip accepted. Each span becomes one trace event (README: Sending OpenTelemetry "
        "spans).",
        "tags": ["ingest"],
        "security": REPORTER_KEY,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"resourceSpans": {"type": "array", "items": {}}},
                    }
                },
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        "responses": {
            "200": _otlp("Spans stored; partialSuccess names rejected ones.", "OtlpExportAnswer"),
            "400": _otlp("Not an OTLP trace export request."),
            "401": _otlp("Missing, unknown or revoked API key."),
            "405": _otlp("Anything but POST."),
            "413": _otlp("Over 10 MiB or over 5,000 spans."),
            "415": _otlp("Neither application/x-protobuf nor application/json."),
            "429": _otlp(
                "The key is over its rate limit (events_per_second, burst).", headers=RETRY_AFTER
            ),
            "503": _otlp("The database does not answer.", headers=RETRY_AFTER),
        },
    }
}


def describe_doors(result, generator, request, public):
    """drf-spectacular post-processing hook: add both doors and their components."""
    result.setdefault("paths", {})["/api/v1/events"] = EVENTS_PATH
    result["paths"]["/v1/traces"] = TRACES_PATH
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(
        {
            "TraceEventIn": EVENT,
            "IngestResult": RESULT,
            "IngestError": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
            "OtlpStatus": OTLP_STATUS,
            "OtlpExportAnswer": OTLP_ANSWER,
        }
    )
    components.setdefault("securitySchemes", {}).update(
        {
            "ReporterKey": {"type": "http", "scheme": "bearer", "description": "Reporter API key"},
            "ReporterApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        }
    )
    return result
