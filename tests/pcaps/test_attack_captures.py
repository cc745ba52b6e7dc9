"""The labelled attack captures (pcaps/attacks_*.pcap, made by pcaps/record_attacks.py) agree with their labels
(pcaps/attacks_labels.json), the spec of the recorded API (pcaps/attacks_api.yaml) and pcaps/MANIFEST.md, with
tshark as the oracle for what is on the wire."""

from __future__ import annotations

import functools
import ipaddress
import json
import subprocess
from collections import Counter
from typing import NamedTuple

import pytest
import yaml
from support.samples import PCAPS, manifest_rows

from detectors.alert import DETECTORS
from parsers.templating import EndpointTemplater

MAX_CAPTURE_BYTES = 1_000_000
# record_attacks.py holds the payload attacker back until the server has created this many normal orders.
BASELINE_ORDERS = 40
# "A few requests per second": the normal clients are paced at 2/s at most.
NORMAL_MAX_REQUESTS_PER_SECOND = 3
RULES = {
    "injection": {"sqli", "xss", "path_traversal", "cmd_injection", "jndi", "ssrf"},
    "data_exposure": {"credit_card", "ssn", "jwt", "aws_key", "private_key", "email_bulk"},
}
LABEL_LISTS = ("attacks", "exposures", "expected_benign_findings", "tolerated_findings")

LABELS = json.loads((PCAPS / "attacks_labels.json").read_text())
CAPTURES = sorted(LABELS["captures"])
PORT = int(LABELS["server"].rpartition(":")[2])
NORMAL = {client["src_ip"] for client in LABELS["normal_clients"]}
SPEC = yaml.safe_load((PCAPS / LABELS["spec"]).read_text())
ALL_LABELS = [(kind, label) for kind in LABEL_LISTS for label in LABELS[kind]]


class Request(NamedTuple):
    frame: int
    time_s: float
    src_ip: str
    method: str
    uri: str


class Response(NamedTuple):
    dst_ip: str
    status: str
    request_frame: int


@functools.cache
def wire(name: str) -> tuple[list[Request], list[Response]]:
    """Every HTTP request and response tshark finds in the capture, in frame order."""
    result = subprocess.run(
        ["tshark", "-r", str(PCAPS / name), "-d", f"tcp.port=={PORT},http", "-Y", "http.request || http.response",
         "-T", "fields", "-E", "occurrence=f", *[option for field in (
             "frame.number", "frame.time_relative", "ip.src", "ip.dst", "http.request.method", "http.request.uri",
             "http.response.code", "http.request_in") for option in ("-e", field)]],
        capture_output=True, text=True, check=True)
    requests, responses = [], []
    for line in result.stdout.splitlines():
        frame, time_s, src_ip, dst_ip, method, uri, status, request_frame = line.split("\t")
        if method:
            requests.append(Request(int(frame), float(time_s), src_ip, method, uri))
        else:
            responses.append(Response(dst_ip, status, int(request_frame)))
    return requests, responses


def tshark_count(name: str, display_filter: str, field: str) -> int:
    result = subprocess.run(["tshark", "-r", str(PCAPS / name), "-d", f"tcp.port=={PORT},http", "-Y", display_filter,
                             "-T", "fields", "-e", field, "-E", "occurrence=a"],
                            capture_output=True, text=True, check=True)
    return sum(len(line.split(",")) for line in result.stdout.splitlines() if line)


def spec_operations() -> set[tuple[str, str]]:
    base = SPEC["servers"][0]["url"].rstrip("/")
    return {(method.upper(), base + path) for path, item in SPEC["paths"].items() for method in item
            if method != "parameters"}


def templated_requests(name: str) -> set[tuple[str, str, str]]:
    """(src_ip, method, endpoint) of every request, templated in capture order as apispy does."""
    templater = EndpointTemplater()
    return {(request.src_ip, request.method, templater.template(request.uri)) for request in wire(name)[0]}


def test_labels_name_exactly_the_attack_captures_on_disk() -> None:
    assert CAPTURES == sorted(path.name for path in PCAPS.glob("attacks_*.pcap"))


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_is_under_one_megabyte(name: str) -> None:
    assert (PCAPS / name).stat().st_size < MAX_CAPTURE_BYTES


@pytest.mark.parametrize("name", CAPTURES)
def test_manifest_row_has_the_label_counts_and_tshark_counts(name: str, tshark: str) -> None:
    row = manifest_rows()[name]
    planned = sum(client["requests"] for client in LABELS["captures"][name]["clients"].values())
    packets = subprocess.run(["tshark", "-r", str(PCAPS / name), "-T", "fields", "-e", "frame.number"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert (row["made by"], row["tshark options"], row["requests"], row["responses"]) == (
        "record_attacks.py", f"-d tcp.port=={PORT},http", str(planned), str(planned))
    assert (len(packets), tshark_count(name, "http.request", "http.request.method"),
            tshark_count(name, "http.response", "http.response.code")) == (
        int(row["packets"]), int(row["tshark requests"]), int(row["tshark responses"]))


@pytest.mark.parametrize("name", CAPTURES)
def test_clients_on_the_wire_are_exactly_the_labelled_ones(name: str, tshark: str) -> None:
    result = subprocess.run(["tshark", "-r", str(PCAPS / name), "-Y", f"tcp.dstport=={PORT}", "-T", "fields",
                             "-e", "ip.src"], capture_output=True, text=True, check=True)
    assert set(result.stdout.split()) == NORMAL | set(LABELS["captures"][name]["attackers"])


@pytest.mark.parametrize("name", CAPTURES)
def test_requests_and_statuses_per_client_match_the_labels(name: str, tshark: str) -> None:
    requests, responses = wire(name)
    statuses: dict[str, Counter] = {}
    for response in responses:
        statuses.setdefault(response.dst_ip, Counter())[response.status] += 1
    observed = {src_ip: {"requests": count, "statuses": dict(statuses.get(src_ip, {}))}
                for src_ip, count in Counter(request.src_ip for request in requests).items()}
    assert observed == LABELS["captures"][name]["clients"]


def test_normal_and_attacker_addresses_are_disjoint_and_loopback() -> None:
    attackers = {src_ip for capture in LABELS["captures"].values() for src_ip in capture["attackers"]}
    assert attackers == {label["src_ip"] for label in LABELS["attacks"]}
    assert not attackers & NORMAL
    assert all(ipaddress.ip_address(src_ip) in ipaddress.ip_network("127.0.0.0/8") for src_ip in attackers | NORMAL)


@pytest.mark.parametrize(("kind", "label"), ALL_LABELS,
                         ids=[f"{kind}-{label['src_ip']}-{label['detector']}" for kind, label in ALL_LABELS])
def test_label_names_a_known_detector_and_rule_and_a_client_of_its_capture(kind: str, label: dict) -> None:
    assert label["detector"] in DETECTORS
    assert label.get("rule") in RULES.get(label["detector"], {None})
    assert set(label.get("also_matches", [])) <= RULES.get(label["detector"], set())
    assert label["src_ip"] in LABELS["captures"][label["capture"]]["clients"]


@pytest.mark.parametrize("name", CAPTURES)
def test_labelled_request_targets_are_on_the_wire(name: str, tshark: str) -> None:
    sent = {(request.src_ip, request.method, request.uri) for request in wire(name)[0]}
    labelled = {(label["src_ip"], label["method"], label["target"]) for label in LABELS["attacks"]
                if label["capture"] == name and "target" in label}
    assert labelled <= sent


@pytest.mark.parametrize("name", CAPTURES)
def test_labelled_endpoints_are_what_apispy_templates(name: str, tshark: str) -> None:
    sent = templated_requests(name)
    sent_without_method = {(src_ip, endpoint) for src_ip, _, endpoint in sent}
    for _, label in ALL_LABELS:
        if label["capture"] != name or "endpoint" not in label:
            continue
        if "method" in label:
            assert (label["src_ip"], label["method"], label["endpoint"]) in sent, label
        else:
            assert (label["src_ip"], label["endpoint"]) in sent_without_method, label


def test_spec_documents_the_zombie_but_not_the_shadow_operations() -> None:
    coverage = LABELS["spec_coverage"]
    operations = spec_operations()
    assert set(coverage["zombie_operations"]) <= {f"{method} {path}" for method, path in operations}
    assert not set(coverage["shadow_operations"]) & {f"{method} {path}" for method, path in operations}


@pytest.mark.parametrize("name", CAPTURES)
def test_every_served_operation_is_documented_or_a_labelled_shadow(name: str, tshark: str) -> None:
    requests, responses = wire(name)
    templater = EndpointTemplater()
    endpoints = {request.frame: (request.method, templater.template(request.uri)) for request in requests}
    served = {endpoints[response.request_frame] for response in responses if response.status.startswith("2")}
    shadows = {tuple(operation.split(" ", 1)) for operation in LABELS["spec_coverage"]["shadow_operations"]}
    assert served - spec_operations() <= shadows


@pytest.mark.parametrize("name", CAPTURES)
def test_nobody_calls_the_zombie_operation(name: str, tshark: str) -> None:
    zombies = {tuple(operation.split(" ", 1)) for operation in LABELS["spec_coverage"]["zombie_operations"]}
    assert not {(method, endpoint) for _, method, endpoint in templated_requests(name)} & zombies


@pytest.mark.parametrize("name", CAPTURES)
def test_normal_clients_send_a_few_requests_per_second_at_most(name: str, tshark: str) -> None:
    for src_ip in NORMAL:
        times = [request.time_s for request in wire(name)[0] if request.src_ip == src_ip]
        busiest = max(sum(start <= other < start + 1.0 for other in times) for start in times)
        assert busiest <= NORMAL_MAX_REQUESTS_PER_SECOND, src_ip


def test_payload_anomalies_come_after_the_normal_order_baseline(tshark: str) -> None:
    payload_attackers = {label["src_ip"] for label in LABELS["attacks"] if label["detector"] == "payload_anomaly"}
    for name in {label["capture"] for label in LABELS["attacks"] if label["detector"] == "payload_anomaly"}:
        orders = [request.src_ip for request in wire(name)[0]
                  if (request.method, request.uri) == ("POST", "/api/v1/orders")]
        first_anomaly = next(index for index, src_ip in enumerate(orders) if src_ip in payload_attackers)
        assert sum(src_ip in NORMAL for src_ip in orders[:first_anomaly]) >= BASELINE_ORDERS
