"""The transaction's JSON-line form: public fields only, in declaration order, the same as dataclasses.asdict
would give them, and independent of the transaction it came from."""

from __future__ import annotations

import json
from dataclasses import asdict, fields

from parsers.transaction import PRIVATE_FIELDS, PUBLIC_FIELDS, Transaction
from sniffer.sinks.jsonl import JsonLinesSink


def a_transaction() -> Transaction:
    transaction = Transaction(
        ts=1700000000.123456, src_ip="10.0.0.1", src_port=40000, dst_ip="10.0.0.2", dst_port=80, method="POST",
        uri="/login?password=***", host="api.example", path="/login", query="password=***", http_version="1.1",
        endpoint="/login", status=401, reason="Unauthorized", latency_ms=1.5, client_id="10.0.0.1",
        user_agent="curl/8 \u00e9", flags=["midstream"],
    )  # fmt: skip
    transaction.req_body = b'{"password": "hunter2"}'
    transaction.req_headers = [(b"authorization", b"Bearer secret-token")]
    transaction.forwarded_for = "192.0.2.7"
    transaction.raw_target = "/login?password=hunter2"
    return transaction


def test_record_is_asdict_without_the_private_fields() -> None:
    transaction = a_transaction()
    expected = asdict(transaction)
    for name in PRIVATE_FIELDS:
        del expected[name]
    record = transaction.to_record()
    assert record == expected
    assert list(record) == [field.name for field in fields(Transaction) if field.name not in PRIVATE_FIELDS]
    assert list(record) == list(PUBLIC_FIELDS)


def test_record_shares_nothing_mutable_with_the_transaction() -> None:
    transaction = a_transaction()
    record = transaction.to_record()
    record["flags"].append("changed")
    assert transaction.flags == ["midstream"]


def test_json_line_holds_no_secret_and_reads_back_as_the_record(tmp_path) -> None:
    transaction = a_transaction()
    path = tmp_path / "transactions.jsonl"
    sink = JsonLinesSink(str(path))
    sink.write(transaction)
    sink.close()
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.count("\n") == 1
    assert "hunter2" not in text and "secret-token" not in text and "192.0.2.7" not in text
    assert "curl/8 \u00e9" in text  # not escaped: the log is UTF-8
    assert json.loads(text) == transaction.to_record()
