"""Replay of the bundled edge-case captures and the public `behaviour` captures: exact transactions and flags.

Each test names the capability of issue 2 that its capture exercises (pcaps/MANIFEST.md describes each file).
"""

from __future__ import annotations

import pytest
from support.samples import PCAPS, exchanges, run_replay
from support.tshark_oracle import PUBLIC

from sniffer.config import load_config


def replay_sample(name: str, config=None):
    return run_replay(PCAPS / name, config=config)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("edge_bigendian.pcap", [("GET", "/endian/big", 200)]),
        ("edge_nanosecond.pcap", [("GET", "/time/nanosecond", 200)]),
        ("edge_raw_ip.pcap", [("GET", "/raw/v4", 200), ("GET", "/raw/v6", 200)]),
        ("edge_bsd_null.pcap", [("GET", "/null/v4", 200), ("GET", "/null/v6/24", 200), ("GET", "/null/v6/30", 200)]),
        ("edge_vlan_qinq.pcap", [("GET", "/vlan/100", 200), ("GET", "/qinq/200/300", 200)]),
        ("edge_ipv6_ext.pcap", [("GET", "/v6/ext/1", 200), ("POST", "/v6/ext/2", 201)]),
        ("edge_pcapng_multi.pcapng", [("GET", "/pcapng/ethernet", 200), ("GET", "/pcapng/raw", 200)]),
        ("api_any_sll.pcap", [("GET", "/api/v1/users/1", 200), ("GET", "/api/v1/users/99", 404),
                              ("POST", "/api/v1/users", 201), ("GET", "/api/v1/users/2", 200),
                              ("GET", "/api/v1/config", 200)]),
        ("api_any_sll1.pcap", [("GET", "/api/v1/users/1", 200), ("GET", "/api/v1/users/99", 404),
                               ("POST", "/api/v1/users", 201), ("GET", "/api/v1/users/2", 200),
                               ("GET", "/api/v1/config", 200)]),
        ("edge_http_on_odd_port.pcap", [("GET", "/odd/22", 200), ("POST", "/odd/5432", 200)]),
    ],
)
def test_formats_and_link_types_yield_exact_transactions(name: str, expected: list) -> None:
    records, _ = replay_sample(name)
    assert sorted(exchanges(records), key=str) == sorted(expected, key=str)
    assert all(record["flags"] == [] for record in records)


def test_nanosecond_timestamps_keep_their_precision() -> None:
    records, _ = replay_sample("edge_nanosecond.pcap")
    # First packet at 1700000000.123456789, then +1.000123 ms per packet; the request is the 4th packet.
    assert records[0]["ts"] == pytest.approx(1700000000.123456789 + 3 * 0.001000123, abs=5e-7)
    assert records[0]["latency_ms"] == 2.0


def test_ipv6_transaction_addresses_are_ipv6_text() -> None:
    records, _ = replay_sample("edge_ipv6_ext.pcap")
    assert {(r["src_ip"], r["dst_ip"], r["dst_port"]) for r in records} == {("2001:db8::1", "2001:db8::2", 80)}


@pytest.mark.parametrize("name", ["edge_ipv4_fragments.pcap", "edge_ipv6_fragments.pcap"])
def test_fragmented_requests_are_reassembled(name: str) -> None:
    records, result = replay_sample(name)
    version = "v4" if "ipv4" in name else "v6"
    assert exchanges(records) == [("POST", f"/frag/{version}/1", 201), ("POST", f"/frag/{version}/2", 201)]
    assert [record["req_body_bytes"] for record in records] == [3000, 3000]
    assert result.counters["fragments_reassembled"] == 2


def test_reordered_segments_are_put_back_in_order() -> None:
    records, _ = replay_sample("edge_reordered.pcap")
    assert exchanges(records) == [("GET", "/reordered/1", 200), ("POST", "/reordered/2", 201)]
    assert [(r["req_body_bytes"], r["resp_body_bytes"], r["flags"]) for r in records] == [(0, 2000, []),
                                                                                          (500, 80, [])]


def test_retransmissions_and_conflicting_overlaps_keep_the_first_copy() -> None:
    records, result = replay_sample("edge_retransmit_overlap.pcap")
    assert exchanges(records) == [("GET", "/retransmit/1", 200), ("GET", "/retransmit/2", 200)]
    assert result.counters["overlap_conflicts"] >= 1
    assert result.counters["parse_errors"] == 0


def test_sequence_numbers_wrapping_past_two_to_the_32() -> None:
    records, _ = replay_sample("edge_seq_wraparound.pcap")
    assert [(r["method"], r["status"], r["req_body_bytes"], r["resp_body_bytes"]) for r in records] == [
        ("GET", 200, 0, 2400), ("POST", 201, 600, 60)]


def test_gap_inside_a_body_of_known_length_is_skipped_and_flagged() -> None:
    records, result = replay_sample("edge_gap_body.pcap")
    assert exchanges(records) == [("GET", "/gap/body/1", 200), ("GET", "/gap/body/2", 200)]
    assert [record["flags"] for record in records] == [["gap"], []]
    assert records[0]["resp_body_bytes"] == 3000
    assert (result.counters["gaps"], result.counters["gap_bytes"]) == (1, 1000)


def test_gap_inside_headers_reports_the_status_and_resynchronises() -> None:
    records, _ = replay_sample("edge_gap_headers.pcap")
    assert exchanges(records) == [("GET", "/gap/headers/1", 200), ("GET", "/gap/headers/2", 200),
                                  ("GET", "/gap/headers/3", 404)]
    assert "gap" in records[0]["flags"]
    assert "resync" in records[1]["flags"]


def test_midstream_pickup_starts_at_the_first_message() -> None:
    records, _ = replay_sample("edge_midstream.pcap")
    assert exchanges(records) == [("GET", "/mid/2", 200), ("POST", "/mid/3", 201)]
    assert records[0]["flags"] == ["midstream"]


def test_pipelined_requests_pair_in_order_with_chunked_answer() -> None:
    records, _ = replay_sample("edge_pipelined.pcap")
    assert exchanges(records) == [("GET", "/pipe/1", 200), ("GET", "/pipe/2", 200), ("GET", "/pipe/3", 404)]
    assert [record["flags"] for record in records] == [[], ["pipelined"], ["pipelined"]]
    assert records[1]["resp_body_bytes"] == 300 + 33 + 1200


def test_head_interim_100_204_and_304_have_no_bodies_where_none_are_sent() -> None:
    records, _ = replay_sample("edge_head_1xx_204_304.pcap")
    assert [(r["method"], r["status"], r["resp_body_bytes"]) for r in records] == [
        ("HEAD", 200, 0), ("POST", 201, 37), ("DELETE", 204, 0), ("GET", 304, 0), ("GET", 200, 80)]
    assert records[1]["flags"] == ["interim_100"]
    assert records[1]["req_body_bytes"] == 64


def test_close_delimited_body_and_rst_end_transactions() -> None:
    records, _ = replay_sample("edge_close_delimited.pcap")
    assert exchanges(records) == [("GET", "/old", 200), ("GET", "/rst/1", 200), ("GET", "/rst/2", None)]
    assert records[0]["resp_body_bytes"] == 1800
    assert records[2]["flags"] == ["no_response"]
    assert records[2]["latency_ms"] is None


def test_upgrade_and_connect_stop_parsing_the_connection() -> None:
    records, result = replay_sample("edge_upgrade_connect.pcap")
    assert exchanges(records) == [("GET", "/ws/chat", 101), ("CONNECT", "api.example.com:443", 200)]
    assert [record["flags"] for record in records] == [["upgrade"], ["upgrade"]]
    assert result.counters["parse_errors"] == 0


def test_capture_truncated_mid_packet_is_read_up_to_the_break_with_a_warning() -> None:
    records, result = replay_sample("edge_truncated_packet.pcap")
    assert exchanges(records) == [("GET", "/trunc/1", 200), ("GET", "/trunc/2", None)]
    assert len(result.warnings) == 1
    assert "truncated mid-packet" in result.warnings[0]


def test_several_files_are_read_in_order_as_one_stream() -> None:
    records, result = run_replay(PCAPS / "edge_bigendian.pcap", PCAPS / "edge_nanosecond.pcap")
    assert exchanges(records) == [("GET", "/endian/big", 200), ("GET", "/time/nanosecond", 200)]
    assert result.counters["packets"] == 20


def test_real_python_api_capture_counts_and_identity() -> None:
    records, result = replay_sample("api_python_curl.pcap")
    assert len(records) == 94
    assert result.counters["parse_errors"] == 0
    assert {record["src_ip"] for record in records} == {"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}
    assert any(record["api_key_hash"] for record in records)
    assert all(record["status"] is not None for record in records)


def test_trusted_proxy_makes_the_forwarded_client_the_client_id() -> None:
    config = load_config(overrides={"identity": {"trusted_proxies": ["127.0.0.0/8"]}})
    records, _ = replay_sample("api_python_curl.pcap", config)
    forwarded = [record for record in records if record["client_id"] != record["src_ip"]]
    assert forwarded
    assert all(not record["client_id"].startswith("127.") for record in forwarded)


def test_secrets_never_appear_in_transaction_records() -> None:
    raw = (PCAPS / "api_python_curl.pcap").read_bytes()
    records, _ = replay_sample("api_python_curl.pcap")
    text = repr(records)
    for header in (b"Authorization: Bearer ", b"X-Api-Key: "):
        start = raw.index(header) + len(header)
        secret = raw[start : raw.index(b"\r\n", start)].decode()
        assert len(secret) >= 8
        assert secret not in text


def test_gzip_response_body_is_decoded_for_analysis() -> None:
    from support.samples import ROOT  # noqa: F401  (documents where captures come from)

    from sniffer.capture.pcapfile import open_capture
    from sniffer.replay import replay

    bodies = []
    replay([open_capture(str(PCAPS / "api_python_curl.pcap"))], load_config(),
           lambda t: bodies.append((t.path, t.resp_body)) if t.path == "/api/v1/report" else None)
    assert bodies
    assert bodies[0][1].startswith(b"{")


# ---- public captures whose oracle is behaviour -------------------------------------------------------------


def test_request_body_with_header_like_text_is_body_not_headers() -> None:
    records, result = run_replay(PUBLIC / "zeek-content-length-in-request-body.pcap")
    assert exchanges(records) == [("POST", "/first", 200), ("POST", "/smuggle-this", 200)]
    assert result.counters["parse_errors"] == 0


def test_gap_inside_response_body_is_flagged() -> None:
    records, result = run_replay(PUBLIC / "zeek-entity_gap.pcap")
    assert exchanges(records) == [("GET", "/download/CHANGES.bro-aux.txt", 200)]
    assert records[0]["flags"] == ["gap"]
    assert result.counters["gap_bytes"] == 1448


def test_lower_case_status_line_on_a_nonstandard_port_is_read() -> None:
    records, _ = run_replay(PUBLIC / "zeek-http-lower-case-nonstandard-port.pcap")
    assert exchanges(records) == [("GET", "/index.html", 200)]
    assert records[0]["dst_port"] == 1234
    assert records[0]["flags"] == ["lowercase_version", "truncated"]


def test_smuggling_attempt_is_parsed_by_the_framing_the_server_used() -> None:
    records, result = run_replay(PUBLIC / "zeek-smuggle-http-request.pcap")
    assert exchanges(records) == [("POST", "/first", 200), ("POST", "/smuggle-this", 200)]
    assert result.counters["parse_errors"] == 0


def test_unanswered_request_after_retransmission_timeout() -> None:
    records, _ = run_replay(PUBLIC / "zeek-tcp-retransmit-timeout.pcapng")
    assert exchanges(records) == [("GET", "/", None)]
    assert "no_response" in records[0]["flags"]


def test_drops_with_zero_length_bodies_resume_parsing() -> None:
    records, result = run_replay(PUBLIC / "zeek-zero-length-bodies-with-drops.pcap")
    assert sum(1 for r in records if r["method"]) == 7
    assert sum(1 for r in records if r["status"] is not None) == 8
    assert result.counters["gaps"] == 3
    assert any("resync" in r["flags"] for r in records)
