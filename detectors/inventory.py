"""The API inventory: an OpenAPI 3.0.3 document of the API as the traffic shows it.

Each observed (endpoint, method) becomes an operation carrying what the wire proved and nothing more: path
parameters inferred from the endpoint's placeholders, the NAMES of query parameters (values never; they are
redacted anyway), the status codes answered with their content types, and how often and when (packet time)
it was called (`x-apispy-calls`, `x-apispy-first-seen`, `x-apispy-last-seen`, ISO 8601 UTC).

Compared with a spec, observed operations the spec lacks carry `x-apispy-shadow: true` (HEAD where GET is
documented and OPTIONS on documented paths are not shadows, see `ApiSpec.allows`), and spec operations never
seen are listed with `x-apispy-zombie: true` and `x-apispy-calls: 0`. When a spec is given, a transaction whose
endpoint is not a spec template is matched against the spec by its path, so the inventory keys it by the
spec's template whatever the caller's templater produced.

Keeping the document valid OpenAPI 3.0 costs three small departures from "keyed by endpoint", each recorded:
- a placeholder repeated in one endpoint (`/users/{id}/orders/{id}`) is renamed (`{id_2}`), since parameter
  names must be unique, and a brace that is not a placeholder is percent-encoded; the path item then carries
  the endpoint as observed in `x-apispy-endpoint`;
- methods OpenAPI 3.0 has no field for (PROPFIND, custom verbs) go under `x-apispy-other-operations`;
- endpoints that are not paths (`*` of `OPTIONS *`) are not listed, only counted in `x-apispy-untracked-calls`.

Output is deterministic for the same transactions: every mapping is built in sorted order (and the sink that
writes the document sorts keys). Memory bound: at most `max_endpoints` (endpoint, method) operations, each
holding at most MAX_QUERY_NAMES names, MAX_STATUSES status codes and MAX_CONTENT_TYPES content types per
status and for the request; calls to operations beyond the bound are counted in `x-apispy-untracked-calls`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from urllib.parse import unquote_plus

from detectors.openapi import ApiSpec
from parsers.templating import EndpointTemplater
from parsers.transaction import Transaction

OPENAPI_VERSION = "3.0.3"
TITLE = "apispy observed API"
MAX_QUERY_NAMES = 64
MAX_STATUSES = 64
MAX_CONTENT_TYPES = 16
OPENAPI_METHODS = ("delete", "get", "head", "options", "patch", "post", "put", "trace")

_PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
# What a query parameter name looks like. A name is also dropped when the templater would call it a value
# (an id, a uuid, a token, an email): a bare `?<token>` query carries its secret in the name position.
_QUERY_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]$]{1,40}")
# Stateless for one-segment paths: the first segment never learns, and the cache is off.
_SHAPE_TEMPLATER = EndpointTemplater(cache_size=0)
_PARAMETER_SCHEMAS = {
    "id": {"type": "integer"},
    "uuid": {"type": "string", "format": "uuid"},
    "date": {"type": "string", "format": "date"},
    "email": {"type": "string", "format": "email"},
}


@dataclass(slots=True)
class _OperationStats:
    calls: int = 0
    unanswered: int = 0
    first_ts: float = float("inf")
    last_ts: float = float("-inf")
    query_names: set[str] = field(default_factory=set)
    request_types: set[str] = field(default_factory=set)
    responses: dict[str, set[str]] = field(default_factory=dict)


class Inventory:
    """Accumulates observed operations; `to_openapi` renders them (see the module docstring)."""

    def __init__(self, spec: ApiSpec | None = None, max_endpoints: int = 50_000) -> None:
        if max_endpoints < 1:
            raise ValueError(f"max_endpoints must be >= 1, got {max_endpoints}")
        self._spec = spec
        self._max_endpoints = max_endpoints
        self._operations: dict[tuple[str, str], _OperationStats] = {}
        self._untracked_calls = 0
        self._spec_operation_ids = {
            (operation.template, operation.method): operation.operation_id
            for operation in (spec.operations if spec is not None else ())
            if operation.operation_id is not None
        }

    def observe(self, transactions: Sequence[Transaction]) -> None:
        for transaction in transactions:
            method = transaction.method.upper()
            endpoint = self._endpoint(transaction, method)
            if not method or not endpoint.startswith("/"):
                self._untracked_calls += 1
                continue
            stats = self._operations.get((endpoint, method))
            if stats is None:
                if len(self._operations) >= self._max_endpoints:
                    self._untracked_calls += 1
                    continue
                stats = self._operations[(endpoint, method)] = _OperationStats()
            _record(stats, transaction)

    def to_openapi(self) -> dict:
        """The inventory as an OpenAPI 3.0.3 document (a fresh dict; safe to modify)."""
        operations: dict[tuple[str, str], dict] = {}
        for (endpoint, method), stats in self._operations.items():
            operations[(endpoint, method)] = self._observed_operation(endpoint, method, stats)
        if self._spec is not None:
            for spec_operation in self._spec.operations:
                key = (spec_operation.template, spec_operation.method)
                if key not in operations:
                    operations[key] = _zombie_operation(spec_operation.template)
        paths: dict[str, dict] = {}
        used_operation_ids: set[str] = set()
        for endpoint, method in sorted(operations):
            path_key, _ = _openapi_path(endpoint)
            path_item = paths.setdefault(path_key, {})
            if path_key != endpoint:
                path_item["x-apispy-endpoint"] = endpoint
            operation = operations[(endpoint, method)]
            operation_id = self._spec_operation_ids.get((endpoint, method))
            if operation_id is not None and operation_id not in used_operation_ids:
                used_operation_ids.add(operation_id)
                operation = {"operationId": operation_id, **operation}
            if method.lower() in OPENAPI_METHODS:
                path_item[method.lower()] = operation
            else:
                path_item.setdefault("x-apispy-other-operations", {})[method] = operation
        document = {
            "openapi": OPENAPI_VERSION,
            "info": {"title": TITLE, "version": "observed", "description": self._description()},
            "paths": {key: _sorted_mapping(paths[key]) for key in sorted(paths)},
        }
        if self._untracked_calls:
            document["x-apispy-untracked-calls"] = self._untracked_calls
        return document

    def _endpoint(self, transaction: Transaction, method: str) -> str:
        endpoint = transaction.endpoint or transaction.path
        spec = self._spec
        if spec is not None and not spec.is_template(endpoint):
            endpoint = spec.match(method, transaction.path) or endpoint
        return endpoint

    def _observed_operation(self, endpoint: str, method: str, stats: _OperationStats) -> dict:
        operation: dict = {}
        parameters = _path_parameters(endpoint) + [
            {"in": "query", "name": name, "required": False, "schema": {"type": "string"}}
            for name in sorted(stats.query_names)
        ]
        if parameters:
            operation["parameters"] = parameters
        if stats.request_types:
            operation["requestBody"] = {"content": {media: {} for media in sorted(stats.request_types)}}
        operation["responses"] = _responses(stats)
        operation["x-apispy-calls"] = stats.calls
        operation["x-apispy-first-seen"] = _iso_utc(stats.first_ts)
        operation["x-apispy-last-seen"] = _iso_utc(stats.last_ts)
        if stats.unanswered:
            operation["x-apispy-unanswered"] = stats.unanswered
        if self._spec is not None and not self._spec.allows(method, endpoint):
            operation["x-apispy-shadow"] = True
        return operation

    def _description(self) -> str:
        calls = sum(stats.calls for stats in self._operations.values())
        text = f"Inferred by apispy from {calls} HTTP transactions observed on the wire"
        if self._operations:
            first = min(stats.first_ts for stats in self._operations.values())
            last = max(stats.last_ts for stats in self._operations.values())
            text += f" between {_iso_utc(first)} and {_iso_utc(last)} (packet time)"
        text += (
            ". Not a contract: parameters, status codes and content types are only those seen, "
            "and query parameters are listed by name only."
        )
        if self._spec is not None:
            text += (
                f" Compared with the OpenAPI spec {self._spec.title or self._spec.source!r}: x-apispy-shadow marks "
                "observed operations the spec lacks, x-apispy-zombie spec operations never observed."
            )
        return text


def _record(stats: _OperationStats, transaction: Transaction) -> None:
    stats.calls += 1
    stats.first_ts = min(stats.first_ts, transaction.ts)
    stats.last_ts = max(stats.last_ts, transaction.ts)
    for name in _query_names(transaction.query):
        if len(stats.query_names) >= MAX_QUERY_NAMES:
            break
        stats.query_names.add(name)
    request_type = _media_type(transaction.req_content_type)
    if request_type and len(stats.request_types) < MAX_CONTENT_TYPES:
        stats.request_types.add(request_type)
    status = transaction.status
    if status is None:
        stats.unanswered += 1
        return
    status_key = str(status) if 100 <= status <= 599 else "default"
    types = stats.responses.get(status_key)
    if types is None:
        if len(stats.responses) >= MAX_STATUSES:
            return
        types = stats.responses[status_key] = set()
    response_type = _media_type(transaction.resp_content_type)
    if response_type and len(types) < MAX_CONTENT_TYPES:
        types.add(response_type)


def _query_names(query: str) -> list[str]:
    names = []
    for part in re.split(r"[&;]", query) if query else ():
        name = unquote_plus(part.partition("=")[0])
        if _QUERY_NAME.fullmatch(name) and _SHAPE_TEMPLATER.template(f"/{name}") == f"/{name}":
            names.append(name)
    return names


def _media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def _responses(stats: _OperationStats) -> dict:
    if not stats.responses:
        return {"default": {"description": "No response observed"}}
    responses = {}
    for status_key in sorted(stats.responses):
        response: dict = {"description": _status_description(status_key)}
        if stats.responses[status_key]:
            response["content"] = {media: {} for media in sorted(stats.responses[status_key])}
        responses[status_key] = response
    return responses


def _status_description(status_key: str) -> str:
    try:
        return HTTPStatus(int(status_key)).phrase
    except ValueError:
        return "Observed status outside 100-599" if status_key == "default" else f"Status {status_key}"


def _zombie_operation(template: str) -> dict:
    operation: dict = {}
    parameters = _path_parameters(template)
    if parameters:
        operation["parameters"] = parameters
    operation["responses"] = {"default": {"description": "Not observed"}}
    operation["x-apispy-calls"] = 0
    operation["x-apispy-zombie"] = True
    return operation


def _openapi_path(endpoint: str) -> tuple[str, list[tuple[str, str]]]:
    """(OpenAPI path key, [(parameter name, placeholder it came from)]) for an endpoint; see the module
    docstring for why a key can differ from its endpoint."""
    pieces = []
    parameters: list[tuple[str, str]] = []
    used: set[str] = set()
    position = 0
    for found in _PLACEHOLDER.finditer(endpoint):
        pieces.append(_escape_braces(endpoint[position : found.start()]))
        placeholder = found.group(1)
        name = _UNSAFE_NAME_CHARS.sub("_", placeholder)
        suffix = 2
        unique = name
        while unique in used:
            unique = f"{name}_{suffix}"
            suffix += 1
        used.add(unique)
        parameters.append((unique, placeholder))
        pieces.append("{" + unique + "}")
        position = found.end()
    pieces.append(_escape_braces(endpoint[position:]))
    return "".join(pieces), parameters


def _escape_braces(literal: str) -> str:
    return literal.replace("{", "%7B").replace("}", "%7D")


def _path_parameters(endpoint: str) -> list[dict]:
    _, parameters = _openapi_path(endpoint)
    return [
        {
            "in": "path",
            "name": name,
            "required": True,
            "schema": dict(_PARAMETER_SCHEMAS.get(placeholder, {"type": "string"})),
        }
        for name, placeholder in parameters
    ]


def _sorted_mapping(mapping: dict) -> dict:
    return {key: mapping[key] for key in sorted(mapping)}


def _iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
