"""OpenAPI 3.x specs as route tables: which documented path template a concrete request path belongs to.

The shadow-endpoint detector and the inventory compare what the wire shows with what the spec promises, so a
spec is loaded once into a segment trie and then asked, once per transaction, for the template of a path.

Matching rules (the same a careful router applies):
- Templates are matched as they appear on the wire: each spec path is prefixed with the base path of its
  servers (`servers: [{url: "https://api.example.com/v1"}]` or `/v1` gives `/v1`; server variables take their
  `default` and every `enum` value). `match` strips nothing and returns `/v1/users/{id}`, so an endpoint reads
  the same in alerts, the inventory and the spec-less templater. Path-item and operation `servers` override the
  document's, as OpenAPI says. Relative server URLs are resolved against `/`; the host is not compared.
- A path parameter `{name}` matches exactly one non-empty segment; a segment mixing text and parameters
  (`{id}.json`, `report-{year}`) matches when the text matches and every parameter is non-empty. Segments are
  compared after percent-decoding, each on its own, so `%2F` never creates an extra level.
- When several templates match, the one with more literal segments wins, then the one whose first differing
  segment is literal (then mixed, then a bare parameter), left to right: `/users/export` beats `/users/{id}`.
  Templates of identical shape (`/users/{id}` and `/users/{name}`, which OpenAPI forbids) prefer the one that
  documents the request's method, then document order. The method never makes a less specific path win:
  routing is by path first, so `GET /users/export` on a POST-only `/users/export` is an undocumented method.
- A trailing slash is significant when the spec says so: `/users/` matches an explicit `/users/` template and
  falls back to `/users` only when no template matches the path as written.

Not supported: external `$ref`s for path items (bundle the spec first), matching on the server host.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit

HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE")
# Combinations of server-variable values expanded per server URL; more would mean a spec that lists
# every tenant as an enum value, where the default alone is the useful answer.
MAX_SERVER_VARIANTS = 64

_TEMPLATE_PARAMETER = re.compile(r"\{([^{}/]+)\}")
_SERVER_VARIABLE = re.compile(r"\{([^{}]+)\}")
# Stands for a variable the server object does not define: valid in a scheme, a host and a path, so only its
# presence in the resulting path makes the URL unusable.
_UNDEFINED_VARIABLE_MARK = "apispyundefinedvariable"

# Segment kinds, in order of preference when two templates differ at a position.
_LITERAL, _MIXED, _PARAMETER = 0, 1, 2


class SpecError(Exception):
    """A spec that cannot be used; the message is one line naming the file and the problem."""


@dataclass(frozen=True, slots=True)
class SpecOperation:
    """One documented operation. `template` is the path as on the wire (base path included); `spec_path` is the
    key of `paths` as written in the spec and `base_path` the server base path it was prefixed with."""

    method: str
    template: str
    operation_id: str | None = None
    spec_path: str = ""
    base_path: str = ""


@dataclass(slots=True)
class _Route:
    template: str
    rank: tuple
    order: int
    methods: set[str]


@dataclass(slots=True)
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    mixed: dict[str, tuple[re.Pattern[str], _Node]] = field(default_factory=dict)
    parameter: _Node | None = None
    routes: list[_Route] = field(default_factory=list)


class ApiSpec:
    """A loaded spec: its operations and a trie of their templates for `match`.

    `match` costs one walk down the trie per path (branching only where a literal, a mixed segment and a
    parameter all fit the same segment), independent of how many templates the spec has.
    """

    def __init__(self, source: str, title: str, version: str, operations: list[SpecOperation]) -> None:
        self.source = source
        self.title = title
        self.version = version
        self.operations = operations
        self._root = _Node()
        self._routes: dict[str, _Route] = {}
        for operation in operations:
            route = self._routes.get(operation.template)
            if route is None:
                route = self._insert(operation.template)
            route.methods.add(operation.method)

    @classmethod
    def load(cls, path: str) -> ApiSpec:
        """Load an OpenAPI 3.0/3.1 document from YAML or JSON; SpecError names the file and the problem."""
        document = _read_document(path)
        if not isinstance(document, dict):
            raise SpecError(f"{path}: not an OpenAPI 3.x document (top level is {_kind(document)}, not a mapping)")
        version = document.get("openapi")
        if version is None:
            if "swagger" in document:
                found = f"swagger: {document['swagger']!r}; convert it to OpenAPI 3 first"
            else:
                found = "no 'openapi' field"
            raise SpecError(f"{path}: not an OpenAPI 3.x document ({found})")
        if not str(version).startswith("3."):
            raise SpecError(f"{path}: not an OpenAPI 3.x document (openapi: {version!r})")
        info = document.get("info") if isinstance(document.get("info"), dict) else {}
        operations = _operations(path, document)
        return cls(path, str(info.get("title", "")), str(info.get("version", "")), operations)

    def match(self, method: str, path: str) -> str | None:
        """The spec template (base path included) for a concrete request path, or None if none matches.

        `path` carries no query string (any `?...` is ignored). The method only breaks ties between templates
        of identical shape; see the module docstring.
        """
        path = path.partition("?")[0]
        if not path.startswith("/"):
            return None
        segments = [unquote(segment) if "%" in segment else segment for segment in path[1:].split("/")]
        method = method.upper()
        route = self._best_route(segments, method)
        if route is None and len(segments) > 1 and segments[-1] == "":
            route = self._best_route(segments[:-1], method)
        return route.template if route is not None else None

    def has_operation(self, method: str, template: str) -> bool:
        """True if the spec documents exactly this method on this wire template."""
        route = self._routes.get(template)
        return route is not None and method.upper() in route.methods

    def allows(self, method: str, template: str) -> bool:
        """`has_operation`, plus the methods HTTP implies: HEAD wherever GET is documented (servers answer it
        for every GET resource) and OPTIONS on every documented path (CORS preflight), which specs rarely list."""
        route = self._routes.get(template)
        if route is None:
            return False
        method = method.upper()
        return method in route.methods or (method == "HEAD" and "GET" in route.methods) or method == "OPTIONS"

    def is_template(self, template: str) -> bool:
        """True if `template` is one of the spec's wire templates (whatever its methods)."""
        return template in self._routes

    def methods(self, template: str) -> tuple[str, ...]:
        """The documented methods of a wire template, sorted; empty if the spec lacks it."""
        route = self._routes.get(template)
        return tuple(sorted(route.methods)) if route is not None else ()

    def _insert(self, template: str) -> _Route:
        node = self._root
        kinds = []
        for segment in template[1:].split("/"):
            kind, key, pattern = _compile_segment(segment)
            kinds.append(kind)
            if kind == _LITERAL:
                node = node.literals.setdefault(key, _Node())
            elif kind == _PARAMETER:
                if node.parameter is None:
                    node.parameter = _Node()
                node = node.parameter
            else:
                if key not in node.mixed:
                    node.mixed[key] = (pattern, _Node())
                node = node.mixed[key][1]
        literal_count = kinds.count(_LITERAL)
        route = _Route(template, (-literal_count, tuple(kinds)), len(self._routes), set())
        node.routes.append(route)
        self._routes[template] = route
        return route

    def _best_route(self, segments: list[str], method: str) -> _Route | None:
        best: _Route | None = None
        best_key: tuple | None = None
        pending = [(self._root, 0)]
        while pending:
            node, depth = pending.pop()
            if depth == len(segments):
                for route in node.routes:
                    key = (route.rank, method not in route.methods, route.order)
                    if best_key is None or key < best_key:
                        best, best_key = route, key
                continue
            segment = segments[depth]
            child = node.literals.get(segment)
            if child is not None:
                pending.append((child, depth + 1))
            if not segment:
                continue
            for pattern, mixed_child in node.mixed.values():
                if pattern.fullmatch(segment):
                    pending.append((mixed_child, depth + 1))
            if node.parameter is not None:
                pending.append((node.parameter, depth + 1))
        return best


def _read_document(path: str) -> object:
    try:
        with open(path, "rb") as spec_file:
            raw = spec_file.read()
    except FileNotFoundError:
        raise SpecError(f"{path}: not found") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, not a spec file") from None
    except OSError as error:
        raise SpecError(f"{path}: cannot read ({error.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SpecError(f"{path}: not YAML or JSON (not UTF-8 text at byte {error.start})") from None
    if path.lower().endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise SpecError(f"{path}: not JSON (line {error.lineno}, column {error.colno}: {error.msg})") from None
    import yaml  # only a spec in YAML needs it: importing it took every run 30 ms of start-up

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise SpecError(f"{path}: not YAML or JSON ({where}{' '.join(str(problem).split())})") from None
    if document is None:
        raise SpecError(f"{path}: not an OpenAPI 3.x document (the file is empty)")
    return document


def _kind(value: object) -> str:
    return {list: "a list", str: "a string"}.get(type(value), type(value).__name__)


def _operations(source: str, document: dict) -> list[SpecOperation]:
    paths = document.get("paths") or {}
    if not isinstance(paths, dict):
        raise SpecError(f"{source}: 'paths' is {_kind(paths)}, not a mapping")
    root_bases = _base_paths(source, document.get("servers"))
    operations: list[SpecOperation] = []
    seen: set[tuple[str, str]] = set()
    for spec_path, path_item in paths.items():
        if str(spec_path).startswith("x-"):
            continue
        _check_template(source, spec_path)
        path_item = _resolve_path_item(source, document, spec_path, path_item)
        item_bases = _base_paths(source, path_item.get("servers")) or root_bases
        for key, operation in path_item.items():
            method = str(key).upper()
            if method not in HTTP_METHODS or not isinstance(operation, dict):
                continue
            operation_id = str(operation["operationId"]) if operation.get("operationId") is not None else None
            for base in _base_paths(source, operation.get("servers")) or item_bases or [""]:
                template = _join(base, spec_path)
                if (method, template) in seen:
                    continue
                seen.add((method, template))
                operations.append(SpecOperation(method, template, operation_id, spec_path, base))
    return operations


def _resolve_path_item(source: str, document: dict, spec_path: str, path_item: object) -> dict:
    """The path item, following local `$ref`s (`#/components/pathItems/...` in 3.1)."""
    for _ in range(16):
        if not isinstance(path_item, dict):
            raise SpecError(f"{source}: path {spec_path!r} is {_kind(path_item)}, not a path item mapping")
        reference = path_item.get("$ref")
        if reference is None:
            return path_item
        if not isinstance(reference, str) or not reference.startswith("#/"):
            raise SpecError(
                f"{source}: path {spec_path!r} uses the external $ref {reference!r}; bundle the spec into one file"
            )
        target: object = document
        for part in reference[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise SpecError(f"{source}: path {spec_path!r} refers to {reference!r}, which does not exist")
            target = target[part]
        path_item = target
    raise SpecError(f"{source}: path {spec_path!r} has a $ref cycle")


def _check_template(source: str, spec_path: object) -> None:
    if not isinstance(spec_path, str) or not spec_path.startswith("/"):
        raise SpecError(f"{source}: bad path template {spec_path!r} (must start with '/')")
    rest = _TEMPLATE_PARAMETER.sub("", spec_path)
    if "{" in rest or "}" in rest:
        raise SpecError(f"{source}: bad path template {spec_path!r} (unbalanced or empty braces)")


def _base_paths(source: str, servers: object) -> list[str]:
    """The distinct base paths (no trailing slash, "" for the root) of a `servers` list, in order."""
    if not isinstance(servers, list):
        return []
    bases: list[str] = []
    for server in servers:
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            continue
        for url in _expand_server_url(source, server["url"], server.get("variables") or {}):
            base = unquote(urlsplit(urljoin("http://apispy.invalid/", url)).path).rstrip("/")
            if _UNDEFINED_VARIABLE_MARK in base:
                raise SpecError(f"{source}: server url {server['url']!r} uses an undefined variable in its path")
            if base not in bases:
                bases.append(base)
    return bases


def _expand_server_url(source: str, url: str, variables: object) -> list[str]:
    if not isinstance(variables, dict):
        variables = {}
    names = [name for name in dict.fromkeys(_SERVER_VARIABLE.findall(url)) if name in variables]
    choices = []
    for name in names:
        variable = variables[name] if isinstance(variables[name], dict) else {}
        values = [variable["default"]] if "default" in variable else []
        values += [value for value in variable.get("enum") or [] if value not in values]
        if not values:
            raise SpecError(f"{source}: server variable {name!r} of {url!r} has no default")
        choices.append([str(value) for value in values])
    return [
        _substitute(url, dict(zip(names, values, strict=True)))
        for values in itertools.islice(itertools.product(*choices), MAX_SERVER_VARIANTS)
    ]


def _substitute(url: str, substitutions: dict[str, str]) -> str:
    return _SERVER_VARIABLE.sub(lambda found: substitutions.get(found.group(1), _UNDEFINED_VARIABLE_MARK), url)


def _join(base: str, spec_path: str) -> str:
    """The wire template: `/v1` + `/users` is `/v1/users`; the root path `/` of a based API is the base itself."""
    if spec_path == "/" and base:
        return base
    return base + spec_path


def _compile_segment(segment: str) -> tuple[int, str, re.Pattern[str] | None]:
    """(kind, trie key, pattern) of one template segment; literals are percent-decoded like request paths."""
    parameters = _TEMPLATE_PARAMETER.findall(segment)
    if not parameters:
        return _LITERAL, unquote(segment), None
    if len(parameters) == 1 and segment == "{" + parameters[0] + "}":
        return _PARAMETER, "", None
    pieces = _TEMPLATE_PARAMETER.split(segment)
    regex = "".join(re.escape(unquote(piece)) if index % 2 == 0 else "(.+?)" for index, piece in enumerate(pieces))
    shape = _TEMPLATE_PARAMETER.sub("{}", segment)
    return _MIXED, shape, re.compile(regex, re.DOTALL)
