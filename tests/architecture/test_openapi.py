"""The OpenAPI schema at /api/schema/: valid OpenAPI 3, in JSON when asked, describing the
reporters' doors as well as the DRF API; Swagger UI and Redoc from local static files."""

import json

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/")
    assert "json" in response["Content-Type"]
    return json.loads(response.content)


def test_the_schema_is_valid_openapi_3(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")


def test_format_json_also_gives_json_and_the_default_is_yaml(client, schema):
    assert json.loads(client.get("/api/schema/?format=json").content) == schema
    yaml = client.get("/api/schema/")
    assert yaml["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.content.startswith(b"openapi: 3")


def test_every_api_path_of_the_urlconf_is_described(schema):
    paths = set(schema["paths"])
    assert {"/api/v1/events", "/v1/traces", "/api/v1/transactions", "/api/v1/dead-letters",
            "/api/v1/slos", "/api/v1/plants", "/api/v1/alert-rules"} <= paths  # fmt: skip
    assert not any(p.startswith("/api/schema") or p.startswith("/api/docs") for p in paths)


def test_the_reporters_doors_are_described_with_bodies_and_answers(schema):
    events = schema["paths"]["/api/v1/events"]["post"]
    assert set(events["responses"]) >= {"202", "400", "401", "413", "415", "429", "503"}
    event = schema["components"]["schemas"]["TraceEventIn"]
    assert set(event["required"]) == {"event_id", "correlation_id", "flow", "step", "source",
                                      "plant", "occurred_at"}  # fmt: skip
    assert "Retry-After" in events["responses"]["429"]["headers"]
    traces = schema["paths"]["/v1/traces"]["post"]
    assert set(traces["requestBody"]["content"]) == {"application/json", "application/x-protobuf"}
    answer = traces["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    partial = schema["components"]["schemas"][answer.rsplit("/", 1)[1]]["properties"]
    assert set(partial["partialSuccess"]["properties"]) == {"rejectedSpans", "errorMessage"}


def test_operation_ids_are_unique(schema):
    ids = [op["operationId"] for item in schema["paths"].values() for op in item.values()
           if isinstance(op, dict) and "operationId" in op]  # fmt: skip
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_doc_pages_load_their_assets_from_this_server(client, path):
    page = client.get(path).content.decode()
    assert "/static/drf_spectacular_sidecar/" in page
    assert "https://" not in page and "http://" not in page.replace("http://testserver", "")
    assert "<script>" not in page  # no inline script: the CSP allows none
