"""Transaction records: the parts of a request-target, redacted once; their flags."""

from __future__ import annotations

from dataclasses import fields

from hypothesis import given, settings
from hypothesis import strategies as st
from support.samples import PCAPS

from parsers.memo import SharedHeaders
from parsers.messages import MessageHead
from parsers.redact import redact_query, redact_target
from parsers.templating import EndpointTemplater
from parsers.transaction import Transaction
from sniffer.capture.pcapfile import open_capture
from sniffer.config import load_config
from sniffer.identity import ClientIdentity
from sniffer.records import (
    EXACT_SUM_FROM_S,
    TransactionBuilder,
    _transaction,
    latency_ms,
    seconds,
    split_target,
    target_parts,
)
from sniffer.replay import replay

NAMES = ["q", "page", "password", "user_pwd", "api-key", "monkey", "p%61ss", "x.sig", ""]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["/a", "/x/y", "*", "http://u:p@h/p", "h.example:443", "odd?password=1", "/u@v", "/"]),
       st.lists(st.tuples(st.sampled_from(NAMES), st.text(alphabet="ab%=?", max_size=4)), max_size=4),
       st.booleans())  # fmt: skip
def test_the_parts_are_the_split_target_redacted(start, parameters, with_query) -> None:
    target = start + ("?" + "&".join(f"{name}={value}" for name, value in parameters) if with_query else "")
    host, path, query = split_target(target)
    assert target_parts(target) == (host, path, redact_query(query), redact_target(target))


def test_a_password_in_the_query_is_redacted_in_both_the_query_and_the_uri() -> None:
    assert target_parts("/login?user=a&password=x") == ("", "/login", "user=a&password=REDACTED",
                                                        "/login?user=a&password=REDACTED")  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.integers(-10**9, 10**13), st.integers(-10**7, 10**10).map(lambda us: us * 1000)))
def test_latency_is_the_elapsed_time_rounded_to_the_microsecond(elapsed_ns) -> None:
    """Whole microseconds are divided exactly, anything else rounded as before: the same float either way."""
    assert latency_ms(elapsed_ns) == round(elapsed_ns / 1_000_000, 3)


def test_an_endpoints_repeated_body_is_the_same_object_bounded_in_size_and_number() -> None:
    from sniffer import records

    last: dict[str, bytes] = {}
    first = records._shared_body(last, "/items", b'{"items": []}')
    again = records._shared_body(last, "/items", bytes(bytearray(b'{"items": []}')))  # equal, another object
    assert again is first
    other = records._shared_body(last, "/items", b'{"items": [1]}')
    assert other == b'{"items": [1]}' and records._shared_body(last, "/items", b'{"items": [1]}') is other
    fresh = bytes(bytearray(b'{"items": [1]}'))  # equal bytes under another endpoint: not shared across them
    assert records._shared_body(last, "/users", fresh) is fresh
    large = b"x" * (records.MAX_SHARED_BODY_BYTES + 1)
    assert records._shared_body(last, "/large", large) is large and "/large" not in last
    for number in range(records.MAX_SHARED_BODY_ENDPOINTS + 5):
        records._shared_body(last, f"/e{number}", b"{}")
    assert len(last) <= records.MAX_SHARED_BODY_ENDPOINTS


def test_a_transaction_without_flags_holds_the_shared_empty_default_and_one_with_flags_its_list() -> None:
    """A batch held for the detectors holds no empty list a transaction; flagged ones keep theirs, each flag once."""
    default = Transaction(0.0, "", 0, "", 0, "", "", "", "", "", "").flags
    transactions: list[Transaction] = []
    replay([open_capture(str(PCAPS / "api_python_curl.pcap"))], load_config(), transactions.append)
    replay([open_capture(str(PCAPS / "edge_midstream.pcap"))], load_config(), transactions.append)
    plain = [transaction for transaction in transactions if not transaction.flags]
    flagged = [transaction for transaction in transactions if transaction.flags]
    assert plain and all(transaction.flags is default for transaction in plain)
    assert flagged and all(type(transaction.flags) is list for transaction in flagged)
    assert all(len(set(transaction.flags)) == len(transaction.flags) for transaction in flagged)


def test_the_builders_transaction_is_the_classes_with_its_defaults() -> None:
    """The builder makes each transaction field by field: every field, private ones included, as calling the class
    with the same twelve leading fields makes it."""
    leading = (1700000000.25, "10.0.0.1", 40000, "10.0.0.2", 80, "GET", "/a?b=1", "api", "/a", "b=1", "HTTP/1.1", "/a")
    made, expected = _transaction(*leading), Transaction(*leading)
    for field in fields(Transaction):
        assert getattr(made, field.name) == getattr(expected, field.name), field.name
    assert made.flags is expected.flags  # the one shared empty default


def test_request_facts_kept_on_a_shared_header_list_are_each_builders_own() -> None:
    """The facts a builder reads from a shared header list are kept on the list, under that builder's token:
    another builder (other API key headers, another salt) reads its own, and a plain list is read every time."""
    lines = [(b"host", b"api"), (b"user-agent", b"poller/2"), (b"x-token", b"s3cret")]
    shared = SharedHeaders(lines)
    by_header = TransactionBuilder(EndpointTemplater(), ClientIdentity(), api_key_headers=(b"x-token",))
    by_other = TransactionBuilder(EndpointTemplater(), ClientIdentity(salt=b"pepper"), api_key_headers=(b"x-key",))
    first = by_header._facts_of(MessageHead(1, "1.1", shared, "GET", "/"))
    assert first[1] == "poller/2" and first[4] is not None and first[5] == "api"
    assert shared.request_facts == (by_header.facts_token, first)
    assert by_header._facts_of(MessageHead(2, "1.1", shared, "GET", "/")) is first  # kept: not read again
    other = by_other._facts_of(MessageHead(3, "1.1", shared, "GET", "/"))
    assert other[4] is None and other[1] == "poller/2"  # its own reading: no key header it knows
    assert by_header._facts_of(MessageHead(4, "1.1", shared, "GET", "/")) == first
    plain = by_header._facts_of(MessageHead(5, "1.1", list(lines), "GET", "/"))
    assert plain == first and plain is not first


@settings(max_examples=3000, deadline=None)
@given(st.one_of(
    st.integers(0, 2**63 - 1),
    st.integers(EXACT_SUM_FROM_S - 5, 2**33).flatmap(lambda s: st.integers(0, 10**9 - 1).map(lambda f: s * 10**9 + f)),
    st.integers(1_600_000_000, 1_900_000_000).map(lambda s: s * 10**9 + 500_000_000),  # halves, exactly
))  # fmt: skip
def test_seconds_are_the_correctly_rounded_quotient_python_gives(ts_ns) -> None:
    assert seconds(ts_ns) == ts_ns / 1_000_000_000
