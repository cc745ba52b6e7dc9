"""Sensitive data in responses: each kind found and masked, look-alikes left alone, the labelled capture matched."""

from __future__ import annotations

import base64
import json
import random
import uuid
from pathlib import Path

import pytest

from detectors.exposure import card_brand, jwt_algorithm
from detectors.payload import PayloadDetector, PayloadSettings
from detectors.signatures import RESPONSE, RULES, SignatureSet
from parsers.transaction import Transaction

ROOT = Path(__file__).resolve().parents[2]
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA75H2vFz3\n-----END RSA PRIVATE KEY-----\n"


@pytest.fixture(scope="module")
def signatures() -> SignatureSet:
    return SignatureSet()


@pytest.fixture
def detector(signatures) -> PayloadDetector:
    return PayloadDetector(PayloadSettings(injection=False, anomaly=False), signatures)


def response(body: str | bytes, endpoint: str = "/api/v1/users/{id}", headers=None, status: int = 200) -> Transaction:
    body = body.encode() if isinstance(body, str) else body
    return Transaction(
        ts=1700000100.25, src_ip="127.0.0.12", src_port=40000, dst_ip="10.0.0.1", dst_port=80, method="GET",
        uri="/x", host="api.example.com", path=endpoint, query="", http_version="HTTP/1.1", endpoint=endpoint,
        status=status, client_id="client-12", resp_body=body, resp_content_type="application/json",
        resp_headers=headers or [(b"content-type", b"application/json")],
    )  # fmt: skip


def found(detector: PayloadDetector, *transactions: Transaction) -> list[tuple[str, str, str]]:
    return [(alert.rule, alert.severity, alert.evidence) for alert in detector.inspect(list(transactions))]


@pytest.mark.parametrize(
    ("number", "evidence"),
    [
        ("4111111111111111", "4111********1111"),
        ("4111 1111 1111 1111", "4111********1111"),
        ("5500-0055-5555-5559", "5500********5559"),
        ("2221000000000009", "2221********0009"),
        ("378282246310005", "3782*******0005"),
        ("3782 822463 10005", "3782*******0005"),
        ("6011111111111117", "6011********1117"),
        ("3530111333300000", "3530********0000"),
        ("4222222222222", "4222*****2222"),
    ],
)
def test_credit_card_found_and_masked(detector, number, evidence):
    assert found(detector, response(json.dumps({"name": "Ann", "card": number}))) == [("credit_card", "high", evidence)]


@pytest.mark.parametrize(
    "body",
    [
        '{"card": "4111111111111112"}',  # Luhn fails
        '{"card": "1234567812345670"}',  # Luhn passes, no issuer starts with 1
        '{"card": "41111111111111"}',  # Visa has 13, 16 or 19 digits
        '{"n": "94111111111111111"}',  # inside a longer digit run
        '{"n": "41111111111111110000"}',
        '{"n": "12 4111 1111 1111 1111"}',
        '{"ratio": 0.4111111111111111}',
        '{"hash": "ab4111111111111111cd"}',
        '{"id": 4111111111111111}',
        '{"orderId": "4111111111111111"}',
        '{"ts": 4111111111111111}',
        '{"created_ms": 1700000000000, "trace": 1700000000000123}',
        '{"x_request_id": "550e8400-e29b-41d4-a716-446655440000"}',
    ],
)
def test_card_look_alikes_are_not_reported(detector, body):
    assert found(detector, response(body)) == []


def test_card_brand_checks_issuer_range_and_length():
    assert card_brand("4111111111111111") == "Visa"
    assert card_brand("2720990000000007") == "Mastercard"
    assert card_brand("2721000000000000") is None
    assert card_brand("378282246310005") == "American Express"
    assert card_brand("37828224631000") is None
    assert card_brand("6499000000000000") == "Discover"
    assert card_brand("1111111111111111") is None


def test_ssn_found_and_masked(detector):
    assert found(detector, response('{"name": "Carol", "ssn": "123-45-6789"}')) == [("ssn", "high", "***-**-6789")]


@pytest.mark.parametrize(
    "value", ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "A123-45-6789",
              "123-45-67890", "555-123-4567", "2024-01-31", "1-123-45-6789"],
)  # fmt: skip
def test_invalid_or_embedded_ssn_is_not_reported(detector, value):
    assert found(detector, response(json.dumps({"value": value}))) == []


def test_jwt_found_in_body_and_named_by_its_algorithm(detector):
    expected = [("jwt", "medium", "JWT alg=HS256 (redacted)")]
    assert found(detector, response(json.dumps({"debug_token": JWT}))) == expected


def test_jwt_in_a_response_header_is_found(detector):
    headers = [(b"content-type", b"application/json"), (b"x-debug-token", JWT.encode())]
    [alert] = detector.inspect([response("{}", headers=headers)])
    assert (alert.rule, alert.evidence) == ("jwt", "JWT alg=HS256 (redacted)")
    assert alert.message == "JSON web token in the response headers of GET /api/v1/users/{id} returned to 127.0.0.12"


def test_jwt_expected_from_login_endpoints_and_in_set_cookie(detector):
    assert found(detector, response(json.dumps({"access_token": JWT}), endpoint="/api/v1/login")) == []
    assert found(detector, response(json.dumps({"access_token": JWT}), endpoint="/oauth/token")) == []
    headers = [(b"set-cookie", b"session=" + JWT.encode() + b"; HttpOnly; Secure")]
    assert found(detector, response("{}", headers=headers)) == []


def test_jwt_look_alike_without_alg_header_is_not_reported(detector):
    header = base64.urlsafe_b64encode(b'{"typ":"JWT"}').rstrip(b"=").decode()
    assert jwt_algorithm(header.encode()) is None
    assert found(detector, response(json.dumps({"t": f"{header}.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"}))) == []
    assert found(detector, response(json.dumps({"t": "eyJhbGciOiJIUzI1NiJ9garbage.eyJzdWIiOiIxIn0.sig"}))) == []


def test_aws_access_key_id_and_secret_found_and_masked(detector):
    assert found(detector, response(json.dumps({"aws_access_key_id": AWS_KEY_ID}))) == [
        ("aws_key", "critical", "AKIA************MPLE")
    ]
    assert found(detector, response(f"aws_secret_access_key = {AWS_SECRET}\n")) == [
        ("aws_key", "critical", "wJal********************************EKEY")
    ]
    assert found(detector, response(json.dumps({"a": "ASIAY34FZKBOKMUTVV7A"}))) == [
        ("aws_key", "critical", "ASIA************VV7A")
    ]


@pytest.mark.parametrize("value", ["AKIAIOSFODNN7EXAMPLEX", "XAKIAIOSFODNN7EXAMPLE", "akiaiosfodnn7example"])
def test_aws_key_look_alikes_are_not_reported(detector, value):
    assert found(detector, response(json.dumps({"v": value}))) == []


@pytest.mark.parametrize("kind", ["RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", ""])
def test_private_key_found_and_redacted(detector, kind):
    pem = f"-----BEGIN {kind}PRIVATE KEY-----\nMIIEpAIBAAKCAQEA75\n-----END {kind}PRIVATE KEY-----"
    expected = [("private_key", "critical", f"-----BEGIN {kind}PRIVATE KEY----- (redacted)")]
    assert found(detector, response(json.dumps({"key": pem}))) == expected


def test_public_keys_and_certificates_are_not_reported(detector):
    body = "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----\n-----BEGIN CERTIFICATE-----\nMIID\n"
    assert found(detector, response(body)) == []


def test_more_than_ten_distinct_emails_is_bulk(detector):
    users = [{"id": index, "email": f"user{index}@example.com"} for index in range(11)]
    assert found(detector, response(json.dumps(users))) == [
        ("email_bulk", "medium", "11 distinct addresses, e.g. u***@example.com")
    ]


def test_ten_emails_or_repeated_ones_are_not_bulk(detector):
    assert found(detector, response(json.dumps([f"user{index}@example.com" for index in range(10)]))) == []
    repeated = [f"{name}@example.com" for name in ("ann", "ANN", "bob") * 20]
    assert found(detector, response(json.dumps(repeated))) == []


def test_one_alert_per_rule_per_response_with_fields_filled(detector):
    body = json.dumps({
        "cards": ["4111111111111111", "5500005555555559"], "ssns": ["123-45-6789", "234-56-7890"],
        "keys": [AWS_KEY_ID, "AKIAI44QH8DHBEXAMPLE"], "pem": PRIVATE_KEY,
    })  # fmt: skip
    alerts = detector.inspect([response(body)])
    assert sorted((alert.rule, alert.severity) for alert in alerts) == [
        ("aws_key", "critical"), ("credit_card", "high"), ("private_key", "critical"), ("ssn", "high"),
    ]  # fmt: skip
    for alert in alerts:
        assert (alert.detector, alert.ts, alert.src_ip, alert.client_id) == ("data_exposure", 1700000100.25,
                                                                             "127.0.0.12", "client-12")  # fmt: skip
        assert (alert.method, alert.endpoint, alert.score, alert.count) == ("GET", "/api/v1/users/{id}", 1.0, 1)
        assert alert.message.endswith("in the response body of GET /api/v1/users/{id} returned to 127.0.0.12")


def test_evidence_and_messages_never_hold_a_full_secret(detector):
    secrets = ["4111111111111111", "123-45-6789", JWT, AWS_KEY_ID, AWS_SECRET, "MIIEpAIBAAKCAQEA75H2vFz3"]
    bodies = [json.dumps({"v": secret}) for secret in secrets[:4]]
    bodies += [PRIVATE_KEY, f"aws_secret_access_key={AWS_SECRET}"]
    alerts = detector.inspect([response(body) for body in bodies])
    assert len(alerts) == len(bodies)
    for alert in alerts:
        for secret in secrets:
            assert secret not in alert.evidence and secret not in alert.message
            assert secret[4:-4] not in alert.evidence


def test_exposure_severities():
    severities = {(rule.rule, rule.severity) for rule in RULES if rule.direction == RESPONSE}
    assert severities == {
        ("credit_card", "high"), ("ssn", "high"), ("jwt", "medium"), ("aws_key", "critical"),
        ("private_key", "critical"), ("email_bulk", "medium"),
    }  # fmt: skip


def test_ordinary_api_responses_raise_nothing(detector):
    rng = random.Random(5)
    bodies = []
    for index in range(500):
        bodies.append(json.dumps({
            "id": rng.randrange(10**18), "ts": 1700000000000 + index, "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
            "phone": f"+1-{rng.randrange(200, 999)}-{rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}",
            "price": rng.random() * 1000, "order_id": str(rng.randrange(10**15, 10**16)), "date": "2024-01-31",
            "sku": f"{rng.randrange(100, 999)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}A",
            "hash": f"{rng.getrandbits(128):032x}", "email": f"user{index}@example.com", "version": "1.2.3",
            "etag": base64.b64encode(rng.randbytes(18)).decode(),
        }))  # fmt: skip
    alerts = detector.inspect([response(body) for body in bodies])
    assert [(alert.rule, alert.evidence) for alert in alerts] == []


def test_error_responses_are_scanned_too(detector):
    assert found(detector, response('{"error": "card 4111111111111111 declined"}', status=402)) == [
        ("credit_card", "high", "4111********1111")
    ]


def test_labelled_captures_exposures_match_labels():
    from sniffer.capture.pcapfile import open_capture
    from sniffer.config import load_config
    from sniffer.replay import replay

    labels = json.loads((ROOT / "pcaps" / "attacks_labels.json").read_text())
    for capture in labels["captures"]:
        transactions: list[Transaction] = []
        replay([open_capture(str(ROOT / "pcaps" / capture))], load_config(), transactions.append)
        alerts = PayloadDetector(PayloadSettings(injection=False, anomaly=False)).inspect(transactions)
        got = sorted({(alert.src_ip, alert.rule, alert.endpoint) for alert in alerts})
        expected = sorted({(label["src_ip"], label["rule"], label["endpoint"]) for label in labels["exposures"]
                           if label["capture"] == capture})  # fmt: skip
        assert got == expected, capture


@pytest.fixture(params=["located", "too many matches"])
def locating(request, monkeypatch) -> None:
    """Runs a test with the batch's hits located from one scan, and again past the match limit that makes them
    be found by scanning groups of responses."""
    if request.param == "too many matches":
        monkeypatch.setattr("detectors.signatures.LOCATE_MAX_MATCHES", 1)


def test_a_batch_finds_what_each_response_finds_alone(detector, locating) -> None:
    """Responses are scanned as one batch first: the findings must not depend on the company a response keeps."""
    bodies = ['{"id": 1, "name": "x"}', '{"card": "4111111111111111"}', '{"ssn": "123-45-6789"}', f'"{JWT}"',
              '{"ok": true}', AWS_KEY_ID, PRIVATE_KEY, '{"total": 12}']  # fmt: skip
    batch = [response(bodies[(n * 5) % len(bodies)]) for n in range(40)]
    alone = [alert for transaction in batch for alert in detector.inspect([transaction])]
    assert detector.inspect(batch) == alone
    assert len(alone) == 25


def test_responses_sharing_a_header_list_are_judged_per_response(detector, locating) -> None:
    """The first pass scans each distinct header list once; a shared list (a remembered head) must still give
    every response its own findings."""
    from parsers.memo import SharedHeaders

    plain = SharedHeaders([(b"content-type", b"application/json"), (b"server", b"nginx")])
    leaking = SharedHeaders([(b"content-type", b"application/json"), (b"x-debug-token", JWT.encode())])
    batch = [response('{"ok": true}' if n % 4 else '{"ssn": "123-45-6789"}', headers=leaking if n % 5 == 2 else plain)
             for n in range(30)]  # fmt: skip
    alone = [alert for transaction in batch for alert in detector.inspect([transaction])]
    assert detector.inspect(batch) == alone
    assert {alert.rule for alert in alone} == {"ssn", "jwt"}
    assert sum(alert.rule == "jwt" for alert in alone) == sum(n % 5 == 2 for n in range(30))  # by headers alone


def test_runs_of_identical_responses_are_each_judged(detector, locating) -> None:
    """A body is scanned once per run of identical ones (detectors.batchbodies), yet every response of the run
    gets its own findings, and whether a JWT is expected still depends on each one's endpoint."""
    bodies = ['{"ok": true}', '{"card": "4111111111111111"}', f'{{"token": "{JWT}"}}', '{"ssn": "123-45-6789"}']
    endpoints = ["/api/v1/users/{id}", "/api/v1/login", "/api/v1/orders"]
    rng = random.Random(4)
    batch = []
    for _ in range(12):  # runs of one body on one endpoint, of random lengths
        body, endpoint = rng.choice(bodies), rng.choice(endpoints)
        batch += [response(body, endpoint=endpoint) for _ in range(rng.randrange(1, 6))]
    alone = [alert for transaction in batch for alert in detector.inspect([transaction])]
    assert detector.inspect(batch) == alone
    assert {alert.rule for alert in alone} == {"credit_card", "jwt", "ssn"}
    assert not any(alert.rule == "jwt" and alert.endpoint == "/api/v1/login" for alert in alone)
