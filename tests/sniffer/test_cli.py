"""The `apispy replay` command as a user runs it: exit codes, one-line errors, the JSON contract, the summary."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.samples import PCAPS

APISPY = str(Path(sys.executable).with_name("apispy"))
CONTRACT_FIELDS = {
    "ts",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "method",
    "uri",
    "host",
    "path",
    "query",
    "endpoint",
    "status",
    "latency_ms",
    "req_body_bytes",
    "resp_body_bytes",
    "client_id",
    "api_key_hash",
    "flags",
}


def apispy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([APISPY, *args], capture_output=True, text=True, timeout=120)


def test_replay_writes_one_json_line_per_transaction_with_the_contract_fields() -> None:
    result = apispy("replay", "--transactions", "-", str(PCAPS / "api_python_curl.pcap"))
    assert result.returncode == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 94
    for record in records:
        assert CONTRACT_FIELDS <= set(record)
        assert isinstance(record["ts"], float)
        assert isinstance(record["status"], int)
        assert isinstance(record["flags"], list)


def test_summary_on_stderr_names_counters_and_top_endpoints() -> None:
    result = apispy("replay", str(PCAPS / "api_nginx_wrk.pcap"))
    assert result.returncode == 0
    assert result.stdout == ""
    for counter in ("packets=2446", "tcp_flows=5", "transactions=1203", "parse_errors=0", "gaps=0", "evictions=0"):
        assert counter in result.stderr
    assert "p50ms" in result.stderr and "p99ms" in result.stderr
    assert "/api/v1/missing" in result.stderr


def test_transactions_file_is_written(tmp_path: Path) -> None:
    out = tmp_path / "tx.jsonl"
    result = apispy("replay", "--quiet", "--transactions", str(out), str(PCAPS / "edge_pipelined.pcap"))
    assert (result.returncode, result.stderr) == (0, "")
    assert [json.loads(line)["uri"] for line in out.read_text().splitlines()] == ["/pipe/1", "/pipe/2", "/pipe/3"]


def test_replay_is_deterministic() -> None:
    first = apispy("replay", "--quiet", "--transactions", "-", str(PCAPS / "api_python_curl.pcap"))
    second = apispy("replay", "--quiet", "--transactions", "-", str(PCAPS / "api_python_curl.pcap"))
    assert first.stdout == second.stdout


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("does-not-exist.pcap", "no such file"),
        ("edge_not_a_capture.pcap", "not a pcap or pcapng capture"),
        ("edge_truncated_header.pcap", "truncated pcap header"),
        (".", "is a directory"),
    ],
)
def test_unreadable_capture_is_one_line_naming_the_file_and_exit_2(name: str, reason: str) -> None:
    path = str(PCAPS / name)
    result = apispy("replay", path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"apispy: error: {path}")
    assert reason in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_file_among_good_ones_fails_before_any_output() -> None:
    result = apispy(
        "replay", "--transactions", "-", str(PCAPS / "edge_pipelined.pcap"), str(PCAPS / "edge_not_a_capture.pcap")
    )
    assert (result.returncode, result.stdout) == (2, "")


def test_capture_cut_mid_packet_warns_and_exits_0() -> None:
    result = apispy("replay", "--transactions", "-", str(PCAPS / "edge_truncated_packet.pcap"))
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 2
    assert "apispy: warning:" in result.stderr and "truncated mid-packet" in result.stderr


def test_bad_config_key_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "apispy.toml"
    config.write_text("[flows]\nmax_flowz = 3\n")
    result = apispy("replay", "--config", str(config), str(PCAPS / "edge_pipelined.pcap"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "apispy: error: unknown config key flows.max_flowz"
        " (known: idle_timeout_s, max_buffered_bytes, max_flows, max_pending_requests, max_total_buffered_bytes)"
    )


def test_missing_file_argument_is_a_usage_error() -> None:
    result = apispy("replay")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_endpoints_are_templated_in_the_transaction_log() -> None:
    result = apispy("replay", "--quiet", "--transactions", "-", str(PCAPS / "api_python_curl.pcap"))
    endpoints = {(record["method"], record["endpoint"]) for record in map(json.loads, result.stdout.splitlines())}
    assert {
        ("GET", "/api/v1/users/{id}"),
        ("GET", "/api/v1/orders/{uuid}"),
        ("PUT", "/api/v1/users/{id}"),
        ("DELETE", "/api/v1/users/{id}"),
        ("POST", "/api/v1/users"),
    } <= endpoints


def test_progress_bar_runs_on_a_terminal() -> None:
    import os
    import pty

    pid, terminal = pty.fork()
    if pid == 0:
        os.execv(APISPY, [APISPY, "replay", str(PCAPS / "api_nginx_wrk.pcap")])
    output = b""
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"reading" in output and b"100%" in output
    assert b"transactions=1203" in output


def test_capture_from_standard_input() -> None:
    data = (PCAPS / "edge_pipelined.pcap").read_bytes()
    result = subprocess.run(
        [APISPY, "replay", "--quiet", "--transactions", "-", "-"], input=data, capture_output=True, timeout=60
    )
    assert result.returncode == 0
    assert [json.loads(line)["uri"] for line in result.stdout.splitlines()] == ["/pipe/1", "/pipe/2", "/pipe/3"]


def test_line_protocol_without_influxdb(tmp_path: Path) -> None:
    out = tmp_path / "points.lp"
    result = apispy(
        "replay", "--quiet", "--interval", "1", "--line-protocol", str(out), str(PCAPS / "edge_pipelined.pcap")
    )
    assert result.returncode == 0
    lines = out.read_text().splitlines()
    assert sum(int(line.split("count=")[1].split("i")[0]) for line in lines if line.startswith("api_requests,")) == 3
    assert any(line.startswith("apispy_capture,source=edge_pipelined.pcap ") for line in lines)


def test_bad_influx_url_is_one_line() -> None:
    result = apispy("replay", "--influx-url", "localhost:8086", str(PCAPS / "edge_pipelined.pcap"))
    assert result.returncode == 2
    assert (
        result.stderr
        == "apispy: error: config key influx.url must be an http:// or https:// URL, not 'localhost:8086'\n"
    )


def test_secrets_in_headers_and_query_never_reach_the_transaction_log(tmp_path: Path) -> None:
    sys.path.insert(0, str(PCAPS))
    from scapy.utils import wrpcap
    from tcpconv import Conversation, Endpoint

    conversation = Conversation(Endpoint("10.0.0.1", 40000), Endpoint("10.0.0.2", 80), client_isn=1, server_isn=9)
    request = (
        b"GET /login?user=alice&password=hunter2&api_key=AKIAQWERTY HTTP/1.1\r\nHost: api\r\n"
        b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig\r\nCookie: session=c00k1e\r\n"
        b"X-Api-Key: k3y-v4lue\r\n\r\n"
    )
    packets = conversation.handshake() + conversation.exchange(request, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    capture = tmp_path / "secrets.pcap"
    wrpcap(str(capture), packets)
    result = apispy("replay", "--transactions", "-", "--line-protocol", str(tmp_path / "p.lp"), str(capture))
    record = json.loads(result.stdout)
    assert record["uri"] == "/login?user=alice&password=REDACTED&api_key=REDACTED"
    assert record["api_key_hash"] and len(record["api_key_hash"]) == 16
    everything = result.stdout + result.stderr + (tmp_path / "p.lp").read_text()
    for secret in ("hunter2", "AKIAQWERTY", "eyJhbGciOiJIUzI1NiJ9", "c00k1e", "k3y-v4lue"):
        assert secret not in everything


def test_strict_reads_with_h11_and_writes_the_same_transactions() -> None:
    fast = apispy("replay", "--transactions", "-", str(PCAPS / "api_python_curl.pcap"))
    strict = apispy("replay", "--strict", "--transactions", "-", str(PCAPS / "api_python_curl.pcap"))
    assert fast.returncode == strict.returncode == 0
    assert strict.stdout == fast.stdout
    assert len(strict.stdout.splitlines()) == 94


def test_workers_option_is_bounded_and_counted_in_the_summary() -> None:
    result = apispy("replay", "--workers", "0", str(PCAPS / "api_python_curl.pcap"))
    assert result.returncode == 2
    result = apispy("replay", "--workers", "2", str(PCAPS / "api_python_curl.pcap"))
    assert result.returncode == 0
    assert "workers=2" in result.stderr and "transactions=94" in result.stderr


def test_requests_with_the_same_header_lines_keep_their_own_client_and_credential(tmp_path: Path) -> None:
    """Requests whose header lines are identical share one parsed header list and what it says (user agent, API
    key digest); the client address stays each connection's own, and other header lines give other facts."""
    sys.path.insert(0, str(PCAPS))
    from scapy.utils import wrpcap
    from tcpconv import Conversation, Endpoint

    lines = b"Host: api\r\nUser-Agent: poller/2\r\nAuthorization: Bearer t0ken-one\r\n\r\n"
    other = b"Host: api\r\nUser-Agent: poller/3\r\nAuthorization: Bearer t0ken-two\r\n\r\n"
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    packets = []
    for number, (client, head) in enumerate([("10.0.0.1", lines), ("10.0.0.2", lines), ("10.0.0.3", other)]):
        conversation = Conversation(Endpoint(client, 40000), Endpoint("10.0.0.9", 80), client_isn=1, server_isn=9)
        packets += conversation.handshake()
        for item in range(2):
            packets += conversation.exchange(b"GET /items/%d HTTP/1.1\r\n" % (10 * number + item) + head, answer)
    capture = tmp_path / "same_heads.pcap"
    wrpcap(str(capture), packets)
    records = [json.loads(line) for line in apispy("replay", "--transactions", "-", str(capture)).stdout.splitlines()]
    seen = [(r["client_id"], r["user_agent"], r["api_key_hash"], r["uri"]) for r in records]
    digest_one, digest_two = records[0]["api_key_hash"], records[-1]["api_key_hash"]
    assert digest_one != digest_two and None not in (digest_one, digest_two)
    assert seen == [
        ("10.0.0.1", "poller/2", digest_one, "/items/0"), ("10.0.0.1", "poller/2", digest_one, "/items/1"),
        ("10.0.0.2", "poller/2", digest_one, "/items/10"), ("10.0.0.2", "poller/2", digest_one, "/items/11"),
        ("10.0.0.3", "poller/3", digest_two, "/items/20"), ("10.0.0.3", "poller/3", digest_two, "/items/21"),
    ]  # fmt: skip


def test_version_says_whether_apispy_runs_compiled() -> None:
    """The suite's editable install is plain Python (tests/test_compiled.py checks a compiled one says so)."""
    result = apispy("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"apispy \S+ \(plain Python\)\n", result.stdout)
