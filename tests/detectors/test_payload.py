"""PayloadDetector: learned per-endpoint payload baselines, and the facade over the whole payload family."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from detectors.payload import PayloadDetector, PayloadSettings
from detectors.signatures import SignatureSet
from parsers.transaction import Transaction

ROOT = Path(__file__).resolve().parents[2]
ITEMS = ["SKU-1001", "SKU-2002", "SKU-3003", "SKU-4004"]


@pytest.fixture(scope="module")
def signatures() -> SignatureSet:
    return SignatureSet()


def anomaly_detector(signatures: SignatureSet, **overrides) -> PayloadDetector:
    return PayloadDetector(PayloadSettings(injection=False, exposure=False, **overrides), signatures)


def order(
    index: int,
    body: bytes | None = None,
    src_ip: str = "127.0.0.10",
    endpoint: str = "/api/v1/orders",
    status: int = 201,
    response: bytes | None = None,
    content_type: str = "application/json",
) -> Transaction:
    """A POST of a small JSON order; `body` replaces the normal one."""
    if body is None:
        body = json.dumps({"item": ITEMS[index % 4], "qty": 1 + index % 3, "address": f"{index % 90 + 1} Main St"})
        body = body.encode()
    if response is None:
        response = json.dumps({"id": 1000 + index, "status": "created", "eta_days": 2 + index % 3}).encode()
    return Transaction(
        ts=1700000000.0 + index, src_ip=src_ip, src_port=40000, dst_ip="10.0.0.1", dst_port=80, method="POST",
        uri=endpoint, host="shop", path=endpoint, query="", http_version="HTTP/1.1", endpoint=endpoint, status=status,
        req_body_bytes=len(body), resp_body_bytes=len(response), req_content_type=content_type,
        resp_content_type="application/json", client_id=src_ip, raw_target=endpoint, req_body=body,
        resp_body=response,
    )  # fmt: skip


def summary(alerts) -> list[tuple[str, str, str]]:
    return [(alert.detector, alert.rule, alert.severity) for alert in alerts]


def test_settings_have_defaults_for_everything():
    settings = PayloadSettings()
    assert (settings.min_samples, settings.window_samples, settings.max_endpoints) == (30, 256, 5000)
    assert (settings.z_threshold, settings.max_scan_bytes, settings.email_bulk_threshold) == (6.0, 65536, 10)


@pytest.mark.parametrize("overrides", [{"min_samples": -1}, {"window_samples": 0}, {"z_threshold": -2.0}])
def test_settings_reject_nonsense_naming_the_key(overrides):
    with pytest.raises(ValueError, match=next(iter(overrides))):
        PayloadSettings(**overrides)
    with pytest.raises(ValueError, match="z_medium"):
        PayloadSettings(z_threshold=8.0, z_medium=7.0)


def test_normal_traffic_raises_nothing(signatures):
    detector = PayloadDetector(PayloadSettings(), signatures)
    assert detector.inspect([order(index) for index in range(500)]) == []


def test_empty_batch_gives_no_alerts(signatures):
    assert PayloadDetector(signatures=signatures).inspect([]) == []


def test_nothing_is_judged_before_min_samples(signatures):
    huge = json.dumps({"item": "SKU-1001", "qty": 1, "coupon": "A" * 200_000}).encode()
    detector = anomaly_detector(signatures)
    assert detector.inspect([order(index) for index in range(29)] + [order(29, huge)]) == []
    detector = anomaly_detector(signatures)
    alerts = detector.inspect([order(index) for index in range(30)] + [order(30, huge)])
    assert ("payload_anomaly", "size_zscore", "medium") in summary(alerts)


def test_huge_body_raises_a_size_alert_with_its_sizes(signatures):
    huge = json.dumps({"item": "SKU-1001", "qty": 1, "coupon": "A" * 200_000}).encode()
    detector = anomaly_detector(signatures)
    alerts = detector.inspect([order(index) for index in range(40)] + [order(40, huge, src_ip="127.0.0.71")])
    size = next(alert for alert in alerts if alert.rule == "size_zscore")
    assert size.message == "Unusually large request body on POST /api/v1/orders from 127.0.0.71"
    assert size.evidence.startswith(f"{len(huge)} bytes, usual ")
    assert (size.ts, size.src_ip, size.client_id, size.endpoint, size.count) == (
        1700000040.0, "127.0.0.71", "127.0.0.71", "/api/v1/orders", 1
    )  # fmt: skip
    assert size.severity == "medium" and size.score > 12


def test_moderately_larger_body_is_low_severity(signatures):
    detector = anomaly_detector(signatures)
    larger = json.dumps({"item": "SKU-1001", "qty": 1, "address": "1 Main St", "note": "x" * 420}).encode()
    alerts = detector.inspect([order(index) for index in range(40)] + [order(40, larger)])
    assert [(alert.rule, alert.severity) for alert in alerts if alert.rule == "size_zscore"] == [("size_zscore", "low")]
    [size] = [alert for alert in alerts if alert.rule == "size_zscore"]
    assert 6 < size.score < 12


def test_random_bytes_raise_entropy_size_and_charclass_alerts(signatures):
    noise = random.Random(3).randbytes(8192)
    detector = anomaly_detector(signatures)
    alerts = detector.inspect([order(index) for index in range(40)] + [order(40, noise, status=415)])
    assert sorted(alert.rule for alert in alerts) == ["charclass_zscore", "entropy_zscore", "size_zscore"]
    entropy = next(alert for alert in alerts if alert.rule == "entropy_zscore")
    assert entropy.message == "Unusually high byte entropy of the request body on POST /api/v1/orders from 127.0.0.10"
    assert entropy.evidence.startswith("entropy 7.9")


def test_digit_heavy_body_raises_a_charclass_alert(signatures):
    digits = json.dumps({"item": "SKU-1001", "qty": 1, "address": "1234567890123456789012345"}).encode()
    detector = anomaly_detector(signatures)
    alerts = detector.inspect([order(index) for index in range(40)] + [order(40, digits)])
    assert [alert.rule for alert in alerts] == ["charclass_zscore"]
    assert "more digits" in alerts[0].message


def test_unknown_json_keys_are_medium_and_named(signatures):
    sneaky = json.dumps({"item": "SKU-1001", "qty": 1, "address": "1 Main St", "is_admin": True}).encode()
    detector = anomaly_detector(signatures)
    alerts = detector.inspect([order(index) for index in range(40)] + [order(40, sneaky)])
    assert summary(alerts) == [("payload_anomaly", "json_keys", "medium")]
    assert alerts[0].evidence == "new keys: is_admin"
    assert alerts[0].message == "Unusual JSON request key set on POST /api/v1/orders from 127.0.0.10"
    assert alerts[0].score == pytest.approx(0.25)


def test_known_keys_in_a_new_combination_are_low(signatures):
    partial = json.dumps({"item": "SKU-1001", "qty": 1}).encode()
    detector = anomaly_detector(signatures)
    alerts = detector.inspect([order(index) for index in range(40)] + [order(40, partial)])
    assert summary(alerts) == [("payload_anomaly", "json_keys", "low")]
    assert alerts[0].evidence.startswith("known keys in a new combination")


def test_json_keys_are_not_judged_where_keys_are_data(signatures):
    def keyed_by_user(index: int) -> bytes:
        return json.dumps({f"user{index}": {"qty": 1}, f"user{index + 1}": {"qty": 2}}).encode()

    detector = anomaly_detector(signatures)
    assert detector.inspect([order(index, keyed_by_user(index)) for index in range(100)]) == []


def test_error_responses_are_neither_learned_nor_judged(signatures):
    tiny = b'{"error": "nope"}'
    detector = anomaly_detector(signatures)
    listing = json.dumps({"id": 7, "items": list(range(60))}).encode()
    normal = [order(index, response=listing) for index in range(40)]
    assert detector.inspect(normal + [order(40, status=404, response=tiny)]) == []
    alerts = detector.inspect([order(41, status=200, response=tiny)])
    assert "response body" in alerts[0].message


def test_batch_boundaries_do_not_change_the_alerts(signatures):
    rng = random.Random(11)
    stream = []
    for index in range(400):
        endpoint = f"/api/v1/orders/{index % 3}"
        body = None
        if index > 120 and rng.random() < 0.05:
            body = rng.choice([rng.randbytes(3000), b'{"item": "x", "qty": 1, "admin": true}', b"1" * 900])
        stream.append(order(index, body, endpoint=endpoint))
    results = []
    for size in (1, 7, 64, 1000):
        detector = anomaly_detector(signatures)
        alerts = []
        for start in range(0, len(stream), size):
            alerts += detector.inspect(stream[start:start + size])
        results.append([(alert.ts, alert.rule, alert.severity, round(alert.score, 9)) for alert in alerts])
    assert len(results[0]) > 10
    assert results[1:] == [results[0]] * 3


def test_least_recently_used_baseline_is_evicted(signatures):
    detector = anomaly_detector(signatures, max_endpoints=2)
    detector.inspect([order(0, endpoint="/a"), order(1, endpoint="/b")])
    detector.inspect([order(2, endpoint="/a")])
    detector.inspect([order(3, endpoint="/c")])
    assert list(detector.baselines.slot_of) == [("POST", "/a"), ("POST", "/c")]
    assert detector.baselines.fills.tolist() == [2, 1]


def test_more_endpoints_in_one_batch_than_capacity_are_skipped(signatures):
    detector = anomaly_detector(signatures, max_endpoints=2)
    assert detector.inspect([order(index, endpoint=f"/e{index}") for index in range(5)]) == []
    assert list(detector.baselines.slot_of) == [("POST", "/e0"), ("POST", "/e1")]


def test_baseline_memory_is_bounded_by_max_endpoints(signatures):
    detector = anomaly_detector(signatures, max_endpoints=100, window_samples=64)
    for start in range(0, 3000, 500):
        detector.inspect([order(index, endpoint=f"/r/{index}") for index in range(start, start + 500)])
    assert len(detector.baselines) == 100
    assert detector.baselines.windows.shape == (100, 64, 12)


def test_facade_returns_all_three_detectors_in_arrival_order(signatures):
    detector = PayloadDetector(PayloadSettings(), signatures)
    normal = [order(index) for index in range(40)]
    attack = order(40, b'{"item": "SKU-1001", "qty": "1\' OR \'1\'=\'1", "address": "1 Main St"}')
    leak = order(41, response=b'{"id": 1, "card": "4111 1111 1111 1111"}')
    odd = order(42, b'{"item": "SKU-1001", "qty": 1, "address": "1 Main St", "is_admin": true}')
    alerts = detector.inspect(normal + [attack, leak, odd])
    assert [alert.ts for alert in alerts] == sorted(alert.ts for alert in alerts)
    assert {(1700000040.0, "injection", "sqli"), (1700000041.0, "data_exposure", "credit_card"),
            (1700000042.0, "payload_anomaly", "json_keys")} <= {(a.ts, a.detector, a.rule) for a in alerts}  # fmt: skip
    assert alerts[0].detector == "injection"


def replay(capture: str) -> list[Transaction]:
    from sniffer.capture.pcapfile import open_capture
    from sniffer.config import load_config
    from sniffer.replay import replay as replay_captures

    transactions: list[Transaction] = []
    replay_captures([open_capture(str(ROOT / "pcaps" / capture))], load_config(), transactions.append)
    return transactions


def test_labelled_payload_capture_anomalies_come_from_the_attacker_only(signatures):
    labels = json.loads((ROOT / "pcaps" / "attacks_labels.json").read_text())
    expected = [label for label in labels["attacks"] if label["detector"] == "payload_anomaly"]
    for capture in labels["captures"]:
        transactions = replay(capture)
        alerts = []
        detector = anomaly_detector(signatures)
        for start in range(0, len(transactions), 1000):
            alerts += detector.inspect(transactions[start:start + 1000])
        wanted = {(label["src_ip"], label["method"], label["endpoint"]) for label in expected
                  if label["capture"] == capture}  # fmt: skip
        assert {(alert.src_ip, alert.method, alert.endpoint) for alert in alerts} == wanted, capture
        if wanted:
            rules = {alert.rule for alert in alerts}
            assert {"size_zscore", "entropy_zscore", "json_keys"} <= rules
            assert sum(alert.rule == "json_keys" for alert in alerts) == 2


def test_an_endpoints_repeated_body_gets_the_key_set_json_keyset_gives(monkeypatch) -> None:
    """The last body per endpoint and direction is remembered: the same body again takes its key set without
    json_keyset; a different body, or the same bytes under another content type, does not."""
    from detectors import payload as module
    from detectors.payload import EndpointBaselines, json_keyset

    baselines = EndpointBaselines(PayloadSettings())
    bodies = [(b'{"a": 1, "b": 2}', "application/json"), (b'{"a": 1, "b": 2}', "application/json"),
              (b' {"c": 3}', "application/json"), (b' {"c": 3}', "text/plain"), (b'{"a": 1, "b": 2}', ""),
              (b"[1, 2]", "application/json"), (b"[1, 2]", "application/json")]  # fmt: skip
    calls = []
    monkeypatch.setattr(module, "json_keyset", lambda *args: calls.append(args) or json_keyset(*args))
    for body, content_type in bodies:
        assert baselines._keyset("/e", 1, body, content_type) == json_keyset(body, content_type, 64)
    assert len(calls) == 5  # the second of each identical pair came from the endpoint's last body
    assert baselines._keyset("/other", 1, b'{"a": 1, "b": 2}', "application/json") == frozenset({"a", "b"})
    assert len(calls) == 6  # another endpoint has its own


def test_remembered_bodies_are_bounded(monkeypatch) -> None:
    from detectors import payload as module
    from detectors.payload import EndpointBaselines

    monkeypatch.setattr(module, "RECENT_KEYSET_ENTRIES", 8)
    baselines = EndpointBaselines(PayloadSettings())
    for n in range(100):
        baselines._keyset(f"/e{n}", 1, b'{"a": 1}', "application/json")
    baselines._keyset("/big", 1, b'{"a": "' + b"x" * 10_000 + b'"}', "application/json")
    assert 0 < len(baselines.recent_keysets) <= 8
    assert all(len(body) <= module.KEYSET_CACHE_MAX_BYTES for body, _, _ in baselines.recent_keysets.values())


def test_bodies_with_the_same_keys_share_one_interned_key_set(monkeypatch) -> None:
    """Key sets are compared and counted by identity first: bodies that differ only in their values (too big for
    the body memo, or different) must give the very same object, and the interning table stays bounded."""
    import detectors.payload as module

    first = module.json_keyset(b'{"id": 1, "name": "a"}', "application/json", 64)
    second = module.json_keyset(b'{"name": "b", "id": 2}', "application/json", 64)
    big = module.json_keyset(b'{"id": 3, "name": "' + b"x" * 5000 + b'"}', "application/json", 64)
    assert first == frozenset({"id", "name"}) and first is second and first is big
    monkeypatch.setattr(module, "KEYSET_CACHE_ENTRIES", 4)
    for n in range(10):
        module.json_keyset(b'{"k%d": %d}' % (n, n), "application/json", 64)
    assert len(module._interned_keysets) <= 4


def test_baseline_slots_are_looked_up_once_per_operation_leaving_the_order_of_every_row(signatures) -> None:
    """Each batch's operations are looked up once, in the order of their last rows: the baselines' least recently
    used order and the slots are those that looking up every row in turn gives."""
    from detectors.batchkeys import TransactionBatch

    rng = random.Random(8)
    by_operation = anomaly_detector(signatures, max_endpoints=6).baselines
    by_row = anomaly_detector(signatures, max_endpoints=6).baselines
    for batch_number in range(200):
        size = rng.randrange(1, 12)
        batch = TransactionBatch(order(index, endpoint=f"/e{rng.randrange(9)}") for index in range(size))
        by_operation.batch_number = by_row.batch_number = batch_number
        slots = by_operation.slots_of_rows(batch).tolist()
        assert slots == [by_row.slot((transaction.method, transaction.endpoint)) for transaction in batch]
        assert list(by_operation.slot_of.items()) == list(by_row.slot_of.items())


def test_adding_a_key_set_many_times_is_adding_it_once_each_time() -> None:
    """`add_many` (an endpoint's run of rows with one key set) leaves the window as that many `add` calls do:
    the ring, its cursor and the counts, whatever the ring held and wherever it wraps."""
    from detectors.payload import KeysetWindow

    rng = random.Random(5)
    keysets = [frozenset({"a"}), frozenset({"a", "b"}), frozenset({"c"}), frozenset()]
    for _ in range(300):
        size = rng.randrange(1, 9)
        one_by_one, at_once = KeysetWindow(size), KeysetWindow(size)
        for keyset in rng.choices(keysets, k=rng.randrange(0, 20)):
            one_by_one.add(keyset)
            at_once.add(keyset)
        keyset, times = rng.choice(keysets), rng.randrange(0, 25)
        for _ in range(times):
            one_by_one.add(keyset)
        at_once.add_many(frozenset(keyset), times)  # an equal key set, not the same object
        assert (at_once.recent, at_once.cursor, at_once.set_counts) == (
            one_by_one.recent, one_by_one.cursor, one_by_one.set_counts)  # fmt: skip


def test_key_sets_are_judged_alike_whatever_the_batches(signatures) -> None:
    """Key sets are judged per endpoint in runs of rows (`_judge_keysets`): endpoints interleaved in a batch, and
    their key sets changing within it, give the alerts and the windows that batches of one row give."""
    rng = random.Random(12)
    responses = [b'{"id": 1, "name": "a"}', b'{"id": 2, "name": "b", "tags": []}', b'{"id": 3}', b"[1]"]
    stream = []
    for index in range(600):
        response = rng.choice(responses) if rng.random() < 0.3 else responses[index % 2 == 0]
        body = b'{"item": "x", "qty": 1, "admin": true}' if rng.random() < 0.05 else None
        stream.append(order(index, body, endpoint=f"/api/v1/orders/{rng.randrange(3)}", response=response))
    results = []
    for size in (1, 5, 64, 600):
        detector = anomaly_detector(signatures, window_samples=16, min_samples=4)
        alerts = []
        for start in range(0, len(stream), size):
            alerts += detector.inspect(stream[start : start + size])
        windows = [(window.recent, window.cursor, window.set_counts)
                   for pair in detector.baselines.keysets if pair is not None for window in pair]  # fmt: skip
        results.append(([(alert.ts, alert.rule, alert.severity, alert.evidence) for alert in alerts], windows))
    assert sum(rule == "json_keys" for _, rule, _, _ in results[0][0]) > 20
    assert results[1:] == [results[0]] * 3


def test_key_sets_of_a_batch_are_those_of_each_row_alone(signatures) -> None:
    """Key sets are read once per run of identical bodies (detectors.batchbodies), also where the run's first
    body is not read itself (a non-2xx response) or differs in its content type."""
    from detectors.batchkeys import TransactionBatch

    same = b'{"id": 5, "name": "a"}'
    rows = [order(0, response=same, status=404), order(1, response=same), order(2, response=same),
            order(3, body=b" [1]", content_type="text/plain"), order(4, body=b' {"a": 1}'), order(5, response=b"[]"),
            order(6, response=same, endpoint="/api/v1/other"), order(7, response=same)]  # fmt: skip
    rows[4].req_content_type = "application/json"  # a leading space: an object only where the type says JSON
    rows[7].resp_content_type = "text/plain"
    features = anomaly_detector(signatures).baselines.features(TransactionBatch(rows))
    alone = [anomaly_detector(signatures).baselines.features(TransactionBatch([row])).pairs()[0] for row in rows]
    assert features.pairs() == alone
    # The ids the runs of key sets are found by, taken once per run of bodies: each row's key set object's own.
    for keysets, ids in ((features.requests, features.request_ids), (features.responses, features.response_ids)):
        assert ids.tolist() == [id(keyset) for keyset in keysets]
    assert [pair[1] for pair in alone[:3]] == [None, frozenset({"id", "name"}), frozenset({"id", "name"})]


def test_key_sets_read_by_the_kernel_are_those_json_loads_gives(signatures, monkeypatch) -> None:
    """Where detectors.jsonkeys reads a body's keys (or finds an array), the key set is the one json.loads gives;
    the bodies it leaves (escaped keys, NaN, too many keys, cut, not JSON) still get json.loads's answer."""
    import detectors.payload as module
    from detectors.batchkeys import TransactionBatch

    many = json.dumps({f"k{n}": n for n in range(70)}).encode()
    bodies = [b'{"id": 1, "name": "a"}', b'{"": 1, "": 2}', b"{}", b' {"a": [1, {"b": null}]} ', b'{"\\u0061": 1}',
              b'{"a": NaN}', b"[1]", many, b'{"a": 1', b"x"]  # fmt: skip
    rows = [order(n, response=body, endpoint=f"/e{n}") for n, body in enumerate(bodies)]
    baselines = anomaly_detector(signatures).baselines
    calls, loads = [], json.loads
    monkeypatch.setattr(module.json, "loads", lambda body: calls.append(body) or loads(body))
    monkeypatch.setattr(module, "_keyset_cache", {})
    found = [pair[1] for pair in baselines.features(TransactionBatch(rows)).pairs()]
    expected = []
    for body in bodies:
        try:
            document = loads(body)
        except ValueError:
            document = None
        expected.append(frozenset(document) if isinstance(document, dict) and len(document) <= 64 else None)
    assert found == expected
    assert calls == bodies[4:6] + bodies[7:]  # the kernel read the first four and the array


def test_a_content_type_that_is_not_json_leaves_only_bodies_that_open_an_object(signatures) -> None:
    """As json_keyset decides: a body that starts with "{" is read whatever its content type; one that starts with
    whitespace only where the content type says JSON; an array never has a key set."""
    from detectors.batchkeys import TransactionBatch

    rows = [order(n, response=body) for n, body in enumerate([b'{"a": 1}', b' {"a": 1}', b' {"a": 1}', b"[1]"])]
    for row in rows[:2] + rows[3:]:
        row.resp_content_type = "text/plain"
    found = [pair[1] for pair in anomaly_detector(signatures).baselines.features(TransactionBatch(rows)).pairs()]
    assert found == [frozenset({"a"}), None, frozenset({"a"}), None]


def test_the_judge_of_several_workers_keeps_one_copy_of_each_key_set(signatures, monkeypatch) -> None:
    """The parent of --workers gets each block's key sets as copies of its own (pickled): the judge keeps the
    first equal one, so its windows hold one object per key set, as one process's do, and runs of rows with the
    same key sets do not break at every block. The table of copies stays bounded."""
    import pickle

    import detectors.payload as module
    from detectors.batchkeys import TransactionBatch

    responses = [b'{"id": 1, "name": "a"}', b'{"id": 2, "name": "b", "tags": []}', b'{"id": 3}']
    odd = b'{"item": "x", "qty": 1, "admin": true}'

    def sent(index: int) -> Transaction:
        return order(index, odd if index in (150, 230) else None, response=responses[index % 3])

    stream = [sent(index) for index in range(240)]
    tagger = module.AnomalyFeatureTagger(PayloadSettings(injection=False, exposure=False))
    judge = module.AnomalyJudge(PayloadSettings(injection=False, exposure=False))
    alone = anomaly_detector(signatures)
    judged, expected = [], []
    for start in range(0, len(stream), 16):  # a block of a worker: shipped, so every key set is a new copy
        block = TransactionBatch(stream[start : start + 16])
        tagger.tag(block)
        shipped = pickle.loads(pickle.dumps([t.payload_features for t in block]))
        arrived = [sent(start + row) for row in range(len(block))]
        for transaction, features in zip(arrived, shipped, strict=True):
            transaction.payload_features = features
        judged += judge.inspect(TransactionBatch(arrived))
        expected += alone.inspect(stream[start : start + 16])
    assert [(a.ts, a.rule, a.evidence) for a in judged] == [(a.ts, a.rule, a.evidence) for a in expected]
    assert {a.rule for a in judged} == {"json_keys"}
    windows = [window for pair in judge.baselines.keysets if pair is not None for window in pair]
    held = {id(keyset) for window in windows for keyset in window.recent}
    assert len(held) == len({keyset for window in windows for keyset in window.recent}) == 5  # 3 responses, 2 requests
    monkeypatch.setattr(module, "MAX_INTERNED_KEYSETS", 3)
    for number in range(20):
        extra = sent(number)
        extra.payload_features = (shipped[0][0], 0, (frozenset({f"key{number}"}), None))
        judge.inspect(TransactionBatch([extra]))
        # Emptied once above the bound, before a batch adds its own (here one key set, and one copy of it).
        assert len(judge.interned) <= 3 + 1 and len(judge.aliases) <= 3 + 1
