import json
import os
import random
import time

import pytest

from detectors.openapi import ApiSpec, SpecError, SpecOperation

SPECS = os.path.join(os.path.dirname(__file__), "specs")


def spec_path(name: str) -> str:
    return os.path.join(SPECS, name)


def write_spec(tmp_path, paths: dict, servers: list | None = None, name: str = "spec.json") -> str:
    document = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths}
    if servers is not None:
        document["servers"] = servers
    target = tmp_path / name
    target.write_text(json.dumps(document))
    return str(target)


def get_only(*templates: str) -> dict:
    return {template: {"get": {"responses": {"200": {"description": "ok"}}}} for template in templates}


@pytest.fixture(scope="module")
def shop() -> ApiSpec:
    return ApiSpec.load(spec_path("shop.yaml"))


# Loading errors: one line, naming the file and the problem.


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("missing.yaml", "not found"),
        ("broken.yaml", "not YAML or JSON (line 3, column 1: expected ',' or '}', but got '<scalar>')"),
        ("broken.json", "not JSON (line 1, column 50: Expecting property name enclosed in double quotes)"),
        ("swagger2.yaml", "not an OpenAPI 3.x document (swagger: '2.0'; convert it to OpenAPI 3 first)"),
        ("bad_template.yaml", "bad path template '/users/{id' (unbalanced or empty braces)"),
        (
            "undefined_variable.yaml",
            "server url 'https://api.example.com/{version}' uses an undefined variable in its path",
        ),
    ],
)
def test_load_error_is_one_line_naming_file_and_problem(name, problem):
    with pytest.raises(SpecError) as raised:
        ApiSpec.load(spec_path(name))
    assert str(raised.value) == f"{spec_path(name)}: {problem}"
    assert "\n" not in str(raised.value)


def test_load_rejects_openapi_4_and_top_level_list(tmp_path):
    future = tmp_path / "future.yaml"
    future.write_text("openapi: 4.0.0\ninfo: {title: t, version: '1'}\npaths: {}\n")
    listed = tmp_path / "list.yaml"
    listed.write_text("- openapi\n")
    with pytest.raises(SpecError, match=r"future\.yaml: not an OpenAPI 3\.x document \(openapi: '4\.0\.0'\)$"):
        ApiSpec.load(str(future))
    with pytest.raises(SpecError, match=r"list\.yaml: not an OpenAPI 3\.x document \(top level is a list"):
        ApiSpec.load(str(listed))


def test_load_rejects_empty_file_and_directory(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(SpecError, match=r"empty\.yaml: not an OpenAPI 3\.x document \(the file is empty\)$"):
        ApiSpec.load(str(empty))
    with pytest.raises(SpecError, match=r": is a directory, not a spec file$"):
        ApiSpec.load(str(tmp_path))


def test_load_rejects_path_not_starting_with_slash(tmp_path):
    path = write_spec(tmp_path, get_only("users"))
    with pytest.raises(SpecError, match=r"spec\.json: bad path template 'users' \(must start with '/'\)$"):
        ApiSpec.load(path)


def test_load_rejects_external_path_item_ref(tmp_path):
    path = write_spec(tmp_path, {"/users": {"$ref": "users.yaml#/Users"}})
    with pytest.raises(SpecError, match=r"uses the external \$ref 'users\.yaml#/Users'; bundle the spec"):
        ApiSpec.load(path)


def test_yaml_spec_operations_carry_method_wire_template_and_operation_id(shop):
    assert shop.title == "Shop API"
    assert shop.version == "1.4.0"
    assert shop.operations[:3] == [
        SpecOperation("GET", "/v1/users", "listUsers", "/users", "/v1"),
        SpecOperation("POST", "/v1/users", "createUser", "/users", "/v1"),
        SpecOperation("GET", "/v1/users/{userId}", "getUser", "/users/{userId}", "/v1"),
    ]
    assert len(shop.operations) == 11  # the `x-internal-note` key of paths is not a path


# Server base paths.


def test_absolute_server_url_base_path_is_prefixed_to_templates(shop):
    assert shop.match("GET", "/v1/users/42") == "/v1/users/{userId}"
    assert shop.match("GET", "/users/42") is None


def test_relative_server_url_in_json_spec_and_local_path_item_ref():
    spec = ApiSpec.load(spec_path("relative.json"))
    assert spec.match("GET", "/api/things/abc") == "/api/things/{thingId}"
    assert spec.match("POST", "/api/shared") == "/api/shared"
    assert spec.has_operation("POST", "/api/shared")
    assert spec.match("GET", "/things/abc") is None


def test_server_variables_use_default_and_enum_values_in_the_path():
    spec = ApiSpec.load(spec_path("variables.yaml"))
    assert spec.match("GET", "/v2/orders/7") == "/v2/orders/{id}"
    assert spec.match("GET", "/v3/orders/7") == "/v3/orders/{id}"
    assert spec.match("GET", "/v4/orders/7") is None


def test_path_item_and_operation_servers_override_document_servers():
    spec = ApiSpec.load(spec_path("variables.yaml"))
    assert spec.match("GET", "/internal/metrics") == "/internal/metrics"
    assert spec.match("GET", "/v2/metrics") is None
    assert spec.has_operation("GET", "/batch/jobs")
    assert spec.has_operation("POST", "/v2/jobs")
    assert not spec.has_operation("GET", "/v2/jobs")


def test_no_servers_means_root_base_and_root_path_matches():
    spec = ApiSpec.load(spec_path("no_servers.yaml"))
    assert spec.match("GET", "/") == "/"
    assert spec.match("GET", "/ping") == "/ping"


def test_root_path_of_a_based_api_is_the_base_itself(tmp_path):
    spec = ApiSpec.load(write_spec(tmp_path, get_only("/", "/ping"), servers=[{"url": "https://x.example/v1/"}]))
    assert spec.match("GET", "/v1") == "/v1"
    assert spec.match("GET", "/v1/") == "/v1"
    assert spec.match("GET", "/v1/ping") == "/v1/ping"


def test_several_servers_with_different_base_paths_each_match(tmp_path):
    servers = [{"url": "https://a.example/v1"}, {"url": "/v2"}, {"url": "https://b.example/v1"}]
    spec = ApiSpec.load(write_spec(tmp_path, get_only("/ping"), servers=servers))
    assert [operation.template for operation in spec.operations] == ["/v1/ping", "/v2/ping"]


# Template matching.


def test_literal_beats_parameter_as_openapi_requires(shop):
    assert shop.match("GET", "/v1/users/export") == "/v1/users/export"
    assert shop.match("GET", "/v1/users/exports") == "/v1/users/{userId}"


def test_literal_wins_even_when_only_the_parameter_template_has_the_method(shop):
    assert shop.match("DELETE", "/v1/users/export") == "/v1/users/export"


def test_more_literal_segments_win_over_an_earlier_literal(tmp_path):
    spec = ApiSpec.load(write_spec(tmp_path, get_only("/a/{x}/{y}", "/{p}/b/c")))
    assert spec.match("GET", "/a/b/c") == "/{p}/b/c"


def test_equal_literal_count_prefers_earliest_literal(tmp_path):
    spec = ApiSpec.load(write_spec(tmp_path, get_only("/{p}/b/{q}", "/a/{x}/{y}", "/{p}/{q}/c")))
    assert spec.match("GET", "/a/b/c") == "/a/{x}/{y}"
    assert spec.match("GET", "/z/b/c") == "/{p}/b/{q}"
    assert spec.match("GET", "/z/y/c") == "/{p}/{q}/c"


def test_mixed_segment_beats_bare_parameter_and_loses_to_literal(tmp_path):
    spec = ApiSpec.load(write_spec(tmp_path, get_only("/files/{name}", "/files/{id}.json", "/files/index.json")))
    assert spec.match("GET", "/files/7.json") == "/files/{id}.json"
    assert spec.match("GET", "/files/index.json") == "/files/index.json"
    assert spec.match("GET", "/files/7.csv") == "/files/{name}"


def test_mixed_segment_parameter_must_be_non_empty(shop):
    assert shop.match("GET", "/v1/reports/2024.csv") == "/v1/reports/{year}.csv"
    assert shop.match("GET", "/v1/reports/.csv") is None


def test_identical_shapes_prefer_the_template_documenting_the_method(tmp_path):
    paths = {
        "/users/{id}": {"get": {"responses": {"200": {"description": "ok"}}}},
        "/users/{name}": {"delete": {"responses": {"204": {"description": "ok"}}}},
    }
    spec = ApiSpec.load(write_spec(tmp_path, paths))
    assert spec.match("GET", "/users/7") == "/users/{id}"
    assert spec.match("DELETE", "/users/7") == "/users/{name}"
    assert spec.match("PATCH", "/users/7") == "/users/{id}"


def test_parameter_matches_exactly_one_non_empty_segment(shop):
    assert shop.match("GET", "/v1/users/42/orders/7") == "/v1/users/{userId}/orders/{orderId}"
    assert shop.match("GET", "/v1/users//orders") is None
    assert shop.match("GET", "/v1/users/42/7") is None


def test_percent_encoded_segments_match_after_decoding_without_splitting(shop):
    assert shop.match("GET", "/v1/us%65rs/export") == "/v1/users/export"
    assert shop.match("GET", "/v1/files/a%2Fb") == "/v1/files/{name}"


def test_trailing_slash_falls_back_only_without_explicit_template(shop):
    assert shop.match("GET", "/v1/users/") == "/v1/users"
    assert shop.match("GET", "/v1/items/") == "/v1/items/"
    assert shop.match("GET", "/v1/items") is None


def test_query_string_and_non_origin_form_paths(shop):
    assert shop.match("GET", "/v1/users/42?expand=orders") == "/v1/users/{userId}"
    assert shop.match("OPTIONS", "*") is None
    assert shop.match("GET", "") is None


def test_has_operation_is_exact_and_allows_adds_head_and_options(shop):
    assert shop.has_operation("get", "/v1/users/{userId}")
    assert not shop.has_operation("DELETE", "/v1/users/{userId}")
    assert not shop.has_operation("HEAD", "/v1/users/{userId}")
    assert not shop.has_operation("GET", "/users/{userId}")
    assert shop.allows("HEAD", "/v1/users/{userId}")
    assert shop.allows("OPTIONS", "/v1/users/{userId}")
    assert not shop.allows("DELETE", "/v1/users/{userId}")
    assert not shop.allows("HEAD", "/v1/unknown")
    assert shop.methods("/v1/users") == ("GET", "POST")


def test_many_templates_match_their_own_paths_and_quickly(tmp_path):
    resources = [f"res{index}" for index in range(200)]
    templates = []
    for resource in resources:
        templates += [f"/{resource}", f"/{resource}/{{id}}", f"/{resource}/{{id}}/items/{{itemId}}"]
        templates.append(f"/{resource}/search")
    spec = ApiSpec.load(write_spec(tmp_path, get_only(*templates), servers=[{"url": "/api"}]))
    generator = random.Random(7)
    cases = []
    for _ in range(20_000):
        resource = generator.choice(resources)
        shape = generator.randrange(4)
        if shape == 0:
            cases.append((f"/api/{resource}", f"/api/{resource}"))
        elif shape == 1:
            cases.append((f"/api/{resource}/{generator.randrange(10**6)}", f"/api/{resource}/{{id}}"))
        elif shape == 2:
            path = f"/api/{resource}/{generator.randrange(99)}/items/{generator.randrange(99)}"
            cases.append((path, f"/api/{resource}/{{id}}/items/{{itemId}}"))
        else:
            cases.append((f"/api/{resource}/search", f"/api/{resource}/search"))
    started = time.perf_counter()
    matched = [spec.match("GET", path) for path, _ in cases]
    elapsed_s = time.perf_counter() - started
    assert matched == [template for _, template in cases]
    assert spec.match("GET", "/api/unknown/1/2/3") is None
    # Here the trie takes about 50 ms; a first-match scan over the 800 templates as regexes takes about 800 ms.
    assert elapsed_s < 0.5
