import json
import os
import random

import pytest
import yaml

from detectors.inventory import Inventory
from detectors.openapi import ApiSpec
from parsers.templating import EndpointTemplater
from parsers.transaction import Transaction
from sniffer.sinks.documents import write_document

SPECS = os.path.join(os.path.dirname(__file__), "specs")
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
UUID = "550e8400-e29b-41d4-a716-446655440000"


def transaction(
    method: str,
    path: str,
    status: int | None = 200,
    ts: float = T0,
    endpoint: str | None = None,
    query: str = "",
    req_content_type: str = "",
    resp_content_type: str = "application/json",
) -> Transaction:
    return Transaction(
        ts=ts,
        src_ip="127.0.0.66",
        src_port=40_000,
        dst_ip="127.0.0.1",
        dst_port=8080,
        method=method,
        uri=path + (f"?{query}" if query else ""),
        host="api.example.com",
        path=path,
        query=query,
        http_version="HTTP/1.1",
        endpoint=endpoint if endpoint is not None else EndpointTemplater().template(path),
        status=status,
        req_content_type=req_content_type,
        resp_content_type=resp_content_type,
    )


@pytest.fixture(scope="module")
def shop() -> ApiSpec:
    return ApiSpec.load(os.path.join(SPECS, "shop.yaml"))


def traffic() -> list[Transaction]:
    return [
        transaction("GET", "/api/users/42", ts=T0, query="expand=orders&token=REDACTED"),
        transaction("GET", "/api/users/7", 404, ts=T0 + 1.5, resp_content_type="text/html; charset=utf-8"),
        transaction("GET", "/api/users/7", ts=T0 + 2, query="fields=name"),
        transaction("POST", "/api/users", 201, ts=T0 + 3, req_content_type="application/json; charset=utf-8"),
        transaction("GET", f"/api/orders/{UUID}", ts=T0 + 4),
        transaction("GET", "/api/reports/2024-01-31", ts=T0 + 5, resp_content_type="text/csv"),
        transaction("GET", "/api/people/bob%40example.com", ts=T0 + 6),
        transaction("DELETE", "/api/sessions", None, ts=T0 + 7, resp_content_type=""),
    ]


def assert_openapi_structure(document: dict) -> None:
    """The parts of OpenAPI 3.0 every consumer relies on."""
    assert document["openapi"] == "3.0.3"
    assert isinstance(document["info"]["title"], str) and document["info"]["title"]
    assert isinstance(document["info"]["version"], str) and document["info"]["version"]
    for path, path_item in document["paths"].items():
        assert path.startswith("/")
        for method, operation in path_item.items():
            if method.startswith("x-"):
                continue
            assert method in ("get", "put", "post", "delete", "options", "head", "patch", "trace")
            assert operation["responses"]
            for status, response in operation["responses"].items():
                assert status == "default" or (len(status) == 3 and status[0] in "12345" and status.isdigit())
                assert isinstance(response["description"], str)


def test_document_lists_operations_with_parameters_responses_and_packet_times():
    inventory = Inventory()
    inventory.observe(traffic())
    document = inventory.to_openapi()
    assert_openapi_structure(document)
    assert document["info"]["title"] == "apispy observed API"
    assert document["info"]["description"].startswith(
        "Inferred by apispy from 8 HTTP transactions observed on the wire between "
        "2023-11-14T22:13:20.000Z and 2023-11-14T22:13:27.000Z (packet time)."
    )
    assert list(document["paths"]) == [
        "/api/orders/{uuid}",
        "/api/people/{email}",
        "/api/reports/{date}",
        "/api/sessions",
        "/api/users",
        "/api/users/{id}",
    ]
    assert document["paths"]["/api/users/{id}"] == {
        "get": {
            "parameters": [
                {"in": "path", "name": "id", "required": True, "schema": {"type": "integer"}},
                {"in": "query", "name": "expand", "required": False, "schema": {"type": "string"}},
                {"in": "query", "name": "fields", "required": False, "schema": {"type": "string"}},
                {"in": "query", "name": "token", "required": False, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "404": {"description": "Not Found", "content": {"text/html": {}}},
            },
            "x-apispy-calls": 3,
            "x-apispy-first-seen": "2023-11-14T22:13:20.000Z",
            "x-apispy-last-seen": "2023-11-14T22:13:22.000Z",
        }
    }


def test_placeholder_types_become_parameter_schemas():
    inventory = Inventory()
    inventory.observe(traffic())
    paths = inventory.to_openapi()["paths"]
    assert paths["/api/orders/{uuid}"]["get"]["parameters"][0]["schema"] == {"type": "string", "format": "uuid"}
    assert paths["/api/reports/{date}"]["get"]["parameters"][0]["schema"] == {"type": "string", "format": "date"}
    assert paths["/api/people/{email}"]["get"]["parameters"][0]["schema"] == {"type": "string", "format": "email"}


def test_request_content_types_and_unanswered_calls():
    inventory = Inventory()
    inventory.observe(traffic())
    paths = inventory.to_openapi()["paths"]
    assert paths["/api/users"]["post"]["requestBody"] == {"content": {"application/json": {}}}
    assert paths["/api/sessions"]["delete"]["responses"] == {"default": {"description": "No response observed"}}
    assert paths["/api/sessions"]["delete"]["x-apispy-unanswered"] == 1


def test_query_values_never_appear_and_odd_names_are_dropped():
    inventory = Inventory()
    inventory.observe([transaction("GET", "/search", query="q=secretvalue&eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc")])
    text = json.dumps(inventory.to_openapi())
    assert "secretvalue" not in text
    assert "eyJ" not in text
    names = [parameter["name"] for parameter in inventory.to_openapi()["paths"]["/search"]["get"]["parameters"]]
    assert names == ["q"]


def test_spec_comparison_marks_shadow_and_lists_zombies(shop):
    inventory = Inventory(shop)
    inventory.observe(
        [
            transaction("GET", "/v1/users/42", endpoint="/v1/users/{userId}"),
            transaction("GET", "/v1/users/43"),  # apispy's `/v1/users/{id}`, matched to the spec's template
            transaction("HEAD", "/v1/users/43"),
            transaction("DELETE", "/v1/users/43", 204),
            transaction("POST", "/v1/admin/export"),
        ]
    )
    document = inventory.to_openapi()
    paths = document["paths"]
    assert_openapi_structure(document)
    assert paths["/v1/users/{userId}"]["get"]["x-apispy-calls"] == 2
    assert paths["/v1/users/{userId}"]["get"]["operationId"] == "getUser"
    assert "x-apispy-shadow" not in paths["/v1/users/{userId}"]["get"]
    assert "x-apispy-shadow" not in paths["/v1/users/{userId}"]["head"]
    assert paths["/v1/users/{userId}"]["delete"]["x-apispy-shadow"] is True
    assert paths["/v1/admin/export"]["post"]["x-apispy-shadow"] is True
    assert paths["/v1/users/{userId}"]["put"] == {
        "operationId": "replaceUser",
        "parameters": [{"in": "path", "name": "userId", "required": True, "schema": {"type": "string"}}],
        "responses": {"default": {"description": "Not observed"}},
        "x-apispy-calls": 0,
        "x-apispy-zombie": True,
    }
    zombies = sorted(
        (path, method)
        for path, item in paths.items()
        for method, operation in item.items()
        if operation.get("x-apispy-zombie")
    )
    assert len(zombies) == len(shop.operations) - 1
    assert ("/v1/users/export", "get") in zombies
    assert "x-apispy-shadow" in document["info"]["description"]


def test_duplicate_placeholders_stray_braces_custom_methods_and_asterisk_stay_valid():
    inventory = Inventory()
    inventory.observe(
        [
            transaction("GET", "/users/1/friends/2"),
            transaction("PROPFIND", "/dav/files"),
            transaction("GET", "/odd/%7Bx", endpoint="/odd/{x"),
            transaction("OPTIONS", "*", 204, endpoint="*"),
        ]
    )
    document = inventory.to_openapi()
    paths = document["paths"]
    assert paths["/users/{id}/friends/{id_2}"]["x-apispy-endpoint"] == "/users/{id}/friends/{id}"
    assert [parameter["name"] for parameter in paths["/users/{id}/friends/{id_2}"]["get"]["parameters"]] == [
        "id",
        "id_2",
    ]
    assert paths["/dav/files"]["x-apispy-other-operations"]["PROPFIND"]["x-apispy-calls"] == 1
    assert paths["/odd/%7Bx"]["x-apispy-endpoint"] == "/odd/{x"
    assert document["x-apispy-untracked-calls"] == 1
    assert "*" not in paths


def test_output_is_deterministic_whatever_the_arrival_order(tmp_path):
    transactions = traffic() * 3
    shuffled = list(transactions)
    random.Random(3).shuffle(shuffled)
    first, second = Inventory(), Inventory()
    first.observe(transactions)
    for start in range(0, len(shuffled), 5):
        second.observe(shuffled[start : start + 5])
    write_document(first.to_openapi(), str(tmp_path / "a.json"))
    write_document(second.to_openapi(), str(tmp_path / "b.json"))
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert json.dumps(first.to_openapi()) == json.dumps(second.to_openapi())


@pytest.mark.parametrize("name", ["inventory.yaml", "inventory.yml", "inventory.json", "inventory.out"])
def test_write_chooses_yaml_by_extension_else_json(tmp_path, name):
    inventory = Inventory()
    inventory.observe(traffic())
    target = tmp_path / name
    write_document(inventory.to_openapi(), str(target))
    text = target.read_text()
    loaded = yaml.safe_load(text) if name.endswith((".yaml", ".yml")) else json.loads(text)
    assert loaded == inventory.to_openapi()
    assert text.startswith("{") is not name.endswith((".yaml", ".yml"))
    assert [entry.name for entry in tmp_path.iterdir()] == [name]


def test_written_inventory_reloads_as_a_spec(tmp_path):
    inventory = Inventory()
    inventory.observe(traffic())
    target = tmp_path / "observed.yaml"
    write_document(inventory.to_openapi(), str(target))
    spec = ApiSpec.load(str(target))
    assert spec.match("GET", "/api/users/99") == "/api/users/{id}"
    assert spec.has_operation("DELETE", "/api/sessions")


def test_operations_are_bounded_and_overflow_is_counted():
    inventory = Inventory(max_endpoints=3)
    inventory.observe([transaction("GET", f"/r{index}") for index in range(10)] + [transaction("GET", "/r0")])
    document = inventory.to_openapi()
    assert list(document["paths"]) == ["/r0", "/r1", "/r2"]
    assert document["paths"]["/r0"]["get"]["x-apispy-calls"] == 2
    assert document["x-apispy-untracked-calls"] == 7


def test_per_operation_sets_are_bounded():
    inventory = Inventory()
    inventory.observe(
        [
            transaction("GET", "/r", 200 + index % 100, query=f"p{index}=1", resp_content_type=f"text/x-{index}")
            for index in range(500)
        ]
    )
    operation = inventory.to_openapi()["paths"]["/r"]["get"]
    assert len(operation["parameters"]) == 64
    assert len(operation["responses"]) == 64
    assert all(len(response["content"]) <= 16 for response in operation["responses"].values())


def test_empty_inventory_is_a_valid_document():
    document = Inventory().to_openapi()
    assert_openapi_structure(document)
    assert document["paths"] == {}


def test_documents_validate_with_openapi_spec_validator(shop):
    from openapi_spec_validator import validate

    plain = Inventory()
    plain.observe(
        traffic()
        + [
            transaction("GET", "/users/1/friends/2"),
            transaction("PROPFIND", "/dav/files"),
            transaction("GET", "/odd/%7Bx", endpoint="/odd/{x"),
            transaction("GET", "/weird", 999),
            transaction("GET", "/files/7.json"),
        ]
    )
    compared = Inventory(shop)
    compared.observe([transaction("GET", "/v1/users/42"), transaction("DELETE", "/v1/users/42", 204)])
    validate(plain.to_openapi())
    validate(compared.to_openapi())
