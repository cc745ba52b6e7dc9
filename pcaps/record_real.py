"""Record the real-traffic sample captures in pcaps/ (`api_*`) with tcpdump on the loopback interface.

Usage, as root from the project root (tcpdump, curl, nginx and wrk on PATH):

    /work/venv/bin/python pcaps/record_real.py [OUTPUT_DIR]

What it records (each file under 1 MB, checked at the end):
- api_python_curl.pcap: a JSON REST API written with http.server (ThreadingHTTPServer, HTTP/1.1 keep-alive)
  on 127.0.0.1:18081, driven by curl from 127.0.0.1 to 127.0.0.4 (`--interface`): CRUD on /api/v1/users,
  /api/v1/orders/<uuid> with and without an X-Api-Key (200 / 401), Bearer tokens, X-Forwarded-For, a 404,
  a 500, HEAD, 204, 304 (If-None-Match), a chunked response, a gzip-encoded response, and a 20 kB POST with
  `Expect: 100-continue` (interim 100, then 201). Several URLs share one keep-alive connection
  (`curl URL URL ...` and `--next`).
- api_nginx_wrk.pcap: nginx (own prefix and config in a temporary directory, single process) on
  127.0.0.1:18082 serving static JSON files, `return 200 '{...}'` locations and a 404, loaded by
  `wrk -t1 -c4` whose Lua script cycles through the paths and stops the run after WRK_RESPONSES responses.
- api_any_sll.pcap / api_any_sll1.pcap: `tcpdump -i any` (Linux cooked capture: the default, SLL2 with
  libpcap >= 1.10, and forced `-y LINUX_SLL`) of a few curl requests to the same API on 127.0.0.1:18083
  and [::1]:18083.

How: each capture starts tcpdump (`-i lo|any -s 0 -U -w FILE` with a BPF filter on the server's port, so
other loopback traffic on the machine stays out) and waits for its "listening on" line; starts the server
(nginx before tcpdump, so its readiness probes stay out); runs the clients; waits SETTLE_S, longer than
libpcap's 1 s buffer timeout (otherwise the last packets, such as the FINs sent when wrk exits, never reach
the file); stops tcpdump with SIGINT and waits for it to exit. Files are written in a temporary directory
and moved to OUTPUT_DIR (default: this script's directory) only when every capture succeeded. The ports are
fixed because pcaps/MANIFEST.md gives tshark `-d tcp.port==N,http` for them; the script stops with a clear
error if one is taken.

Rerunnable. Real traffic is not byte-identical between runs and the wrk count moves by a few requests:
after re-recording, copy the packet and tshark counts into pcaps/MANIFEST.md (the script prints tshark's
request and response counts at the end).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PYTHON_API_PORT = 18081
NGINX_PORT = 18082
ANY_DEVICE_PORT = 18083
MAX_CAPTURE_BYTES = 1_000_000
WRK_RESPONSES = 1200
TCPDUMP_READY_TIMEOUT_S = 10.0
CAPTURE_BUFFER_KIB = 32768
SETTLE_S = 2.0

BEARER_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhcGlzcHkifQ.c2FtcGxlLXNpZ25hdHVyZQ"
API_KEY = "sample-api-key-0123456789abcdef"
CONFIG_ETAG = '"cfg-v1"'
ORDER_IDS = [str(uuid.UUID(int=0x1234_5678_9ABC_4DEF_8000_0000_0000_0000 + index)) for index in range(6)]


class ApiHandler(BaseHTTPRequestHandler):
    """A small JSON API; state lives on the server object (`server.users`, guarded by `server.lock`)."""

    protocol_version = "HTTP/1.1"
    server_version = "SampleApi/1.0"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the capture is the log."""

    def send_json(self, status: int, payload: object, *, extra_headers: tuple[tuple[str, str], ...] = (),
                  body: bool = True) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        gzip_it = "gzip" in self.headers.get("Accept-Encoding", "") and len(data) > 256
        if gzip_it:
            data = gzip.compress(data, mtime=0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if gzip_it:
            self.send_header("Content-Encoding", "gzip")
        for name, value in extra_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def send_empty(self, status: int, extra_headers: tuple[tuple[str, str], ...] = ()) -> None:
        """A response without content (204, 304): no Content-Length, no body."""
        self.send_response(status)
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()

    def read_json(self) -> object:
        length = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(length) or b"{}")

    def route(self) -> tuple[str, str]:
        path = self.path.split("?", 1)[0].rstrip("/")
        parts = path.split("/")
        if path.startswith("/api/v1/users/") and len(parts) == 5:
            return "user", parts[4]
        if path.startswith("/api/v1/orders/") and len(parts) == 5:
            return "order", parts[4]
        return path, ""

    def do_GET(self, body: bool = True) -> None:
        route, item = self.route()
        users = self.server.users
        if route == "/api/v1/users":
            with self.server.lock:
                listing = sorted(users.values(), key=lambda user: user["id"])
            self.send_json(200, {"users": listing, "count": len(listing)}, body=body)
        elif route == "user":
            with self.server.lock:
                user = users.get(int(item)) if item.isdigit() else None
            if user is None:
                self.send_json(404, {"error": "user not found", "id": item}, body=body)
            else:
                self.send_json(200, user, body=body)
        elif route == "order":
            if self.headers.get("X-Api-Key") != API_KEY:
                self.send_json(401, {"error": "missing or bad X-Api-Key"}, body=body,
                               extra_headers=(("WWW-Authenticate", "ApiKey"),))
            else:
                self.send_json(200, {"id": item, "status": "shipped", "total_cents": 4200 + len(item)}, body=body)
        elif route == "/api/v1/config":
            if self.headers.get("If-None-Match") == CONFIG_ETAG:
                self.send_empty(304, (("ETag", CONFIG_ETAG),))
            else:
                self.send_json(200, {"feature_flags": {"beta": True}, "page_size": 20}, body=body,
                               extra_headers=(("ETag", CONFIG_ETAG),))
        elif route == "/api/v1/events":
            self.send_chunked_events()
        elif route == "/api/v1/report":
            rows = [{"day": day, "requests": 1000 + 37 * day, "errors": day % 3} for day in range(1, 31)]
            self.send_json(200, {"report": rows}, body=body)
        elif route == "/api/v1/boom":
            self.send_json(500, {"error": "internal error", "trace_id": "0af7651916cd43dd"}, body=body)
        else:
            self.send_json(404, {"error": "no such endpoint", "path": self.path}, body=body)

    def do_HEAD(self) -> None:
        self.do_GET(body=False)

    def send_chunked_events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index in range(5):
            line = json.dumps({"event": index, "kind": "tick"}).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def do_POST(self) -> None:
        route, _ = self.route()
        if route != "/api/v1/users":
            self.send_json(404, {"error": "no such endpoint", "path": self.path})
            return
        payload = self.read_json()
        with self.server.lock:
            user_id = max(self.server.users, default=0) + 1
            user = {"id": user_id, "name": payload.get("name", ""), "email": payload.get("email", "")}
            self.server.users[user_id] = user
        self.send_json(201, user, extra_headers=(("Location", f"/api/v1/users/{user_id}"),))

    def do_PUT(self) -> None:
        route, item = self.route()
        payload = self.read_json()
        with self.server.lock:
            user = self.server.users.get(int(item)) if route == "user" and item.isdigit() else None
            if user is not None:
                user.update({key: payload[key] for key in ("name", "email") if key in payload})
        if user is None:
            self.send_json(404, {"error": "user not found", "id": item})
        else:
            self.send_json(200, user)

    def do_DELETE(self) -> None:
        route, item = self.route()
        with self.server.lock:
            removed = self.server.users.pop(int(item), None) if route == "user" and item.isdigit() else None
        if removed is None:
            self.send_json(404, {"error": "user not found", "id": item})
        else:
            self.send_empty(204)


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.lock = threading.Lock()
        self.users = {index: {"id": index, "name": f"user{index}", "email": f"user{index}@example.com"}
                      for index in range(1, 13)}
        super().__init__((host, port), ApiHandler)


@contextlib.contextmanager
def api_server(host: str, port: int) -> Iterator[ApiServer]:
    server = ApiServer(host, port)
    thread = threading.Thread(target=server.serve_forever, name=f"api-{host}-{port}", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def tcpdump(output: Path, device: str, bpf: str, linktype: str | None = None) -> Iterator[None]:
    """Run tcpdump for the duration of the block; returns once it has exited and flushed the file."""
    command = ["tcpdump", "-i", device, "-s", "0", "-U", "-B", str(CAPTURE_BUFFER_KIB), "-n", "-Z", "root",
               "-w", str(output)]
    if linktype:
        command += ["-y", linktype]
    process = subprocess.Popen([*command, bpf], stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True)
    reader.start()
    deadline = time.monotonic() + TCPDUMP_READY_TIMEOUT_S
    seen = []
    while not any("listening on" in line for line in seen):
        try:
            seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            process.kill()
            process.wait()
            raise RuntimeError(f"tcpdump did not start: {''.join(seen)}") from None
    try:
        yield
        time.sleep(SETTLE_S)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        reader.join(timeout=5)
    while not lines.empty():
        seen.append(lines.get())
    print(f"{output.name}: " + "; ".join(line.strip() for line in seen))
    if process.returncode != 0:
        raise RuntimeError(f"tcpdump exited with {process.returncode}: {''.join(seen)}")


def curl(*arguments: str) -> None:
    """Run curl with output discarded; any failure (connection, HTTP transfer) stops the script."""
    subprocess.run(["curl", "--silent", "--show-error", "--output", "/dev/null", *arguments],
                   stdout=subprocess.DEVNULL, check=True)


def ensure_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        if probe.connect_ex((host, port)) == 0:
            raise RuntimeError(f"port {port} on {host} is already in use; stop that service first")


def drive_python_api(base: str, workdir: Path) -> None:
    """The curl traffic of api_python_curl.pcap (94 requests; 95 responses counting the interim 100)."""
    bearer = f"Authorization: Bearer {BEARER_TOKEN}"
    api_key = f"X-Api-Key: {API_KEY}"
    curl("-H", bearer, *[f"{base}/api/v1/users/{index}" for index in range(1, 11)])
    curl("--interface", "127.0.0.2", "-H", api_key, f"{base}/api/v1/users", f"{base}/api/v1/users?page=2&limit=5",
         f"{base}/api/v1/config")
    curl("--interface", "127.0.0.2", "-H", f"If-None-Match: {CONFIG_ETAG}", f"{base}/api/v1/config")
    create_args: list[str] = []
    for index in range(5):
        if create_args:
            create_args.append("--next")
        create_args += ["--interface", "127.0.0.3", "-H", "Content-Type: application/json", "-H", bearer,
                        "-H", f"X-Forwarded-For: 198.51.100.{10 + index}, 10.1.2.3",
                        "--data-raw", json.dumps({"name": f"new{index}", "email": f"new{index}@example.com"}),
                        f"{base}/api/v1/users"]
    curl(*create_args)
    curl("-H", bearer, "-X", "PUT", "-H", "Content-Type: application/json",
         "--data-raw", '{"name":"renamed","email":"renamed@example.com"}', f"{base}/api/v1/users/3",
         "--next", "-H", bearer, "-X", "DELETE", f"{base}/api/v1/users/4",
         "--next", "-H", bearer, f"{base}/api/v1/users/4")
    curl("-H", api_key, *[f"{base}/api/v1/orders/{order}" for order in ORDER_IDS[:5]])
    curl(f"{base}/api/v1/orders/{ORDER_IDS[5]}")
    curl("-H", "X-Forwarded-For: 203.0.113.7", f"{base}/api/v1/boom", f"{base}/api/v1/nope")
    curl("--head", f"{base}/api/v1/users")
    curl("--interface", "127.0.0.2", f"{base}/api/v1/events")
    curl("--compressed", "-H", bearer, f"{base}/api/v1/report")
    big_body = workdir / "big_user.json"
    big_body.write_text(json.dumps({"name": "bulk", "email": "bulk@example.com",
                                    "bio": hashlib.sha256(b"bio").hexdigest() * 320}))
    curl("-H", "Content-Type: application/json", "-H", "Expect: 100-continue", "-H", bearer,
         "--data-binary", f"@{big_body}", f"{base}/api/v1/users")
    for round_index in range(4):
        source = f"127.0.0.{2 + round_index % 3}"
        urls = []
        for index in range(15):
            position = round_index * 15 + index
            if position % 3 == 0:
                urls.append(f"{base}/api/v1/orders/{ORDER_IDS[position % 5]}")
            else:
                urls.append(f"{base}/api/v1/users/{1 + position % 14}")
        curl("--interface", source, "-H", api_key, "-H", f"X-Forwarded-For: 192.0.2.{round_index + 1}", *urls)


def drive_any_device(port: int) -> None:
    """The curl traffic of api_any_sll*.pcap: 5 requests over IPv4 and IPv6 loopback."""
    curl(f"http://127.0.0.1:{port}/api/v1/users/1", f"http://127.0.0.1:{port}/api/v1/users/99")
    curl("-H", "Content-Type: application/json", "--data-raw", '{"name":"sll","email":"sll@example.com"}',
         f"http://127.0.0.1:{port}/api/v1/users")
    curl("-g", f"http://[::1]:{port}/api/v1/users/2", f"http://[::1]:{port}/api/v1/config")


NGINX_CONFIG = """\
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ application/json json; }}
    default_type application/json;
    server {{
        listen 127.0.0.1:{port};
        root {prefix}/www;
        location /static/ {{ }}
        location = /api/v1/health {{ return 200 '{{"status":"ok"}}'; }}
        location = /api/v1/version {{ return 200 '{{"version":"1.4.2","build":"sample"}}'; }}
        location /api/v1/ {{ return 404 '{{"error":"not found"}}'; }}
    }}
}}
"""

WRK_SCRIPT = """\
local paths = {"/static/users.json", "/static/orders/1001.json", "/api/v1/health",
               "/static/products.json", "/api/v1/version", "/api/v1/missing"}
local sent = 0
local received = 0
request = function()
  sent = sent + 1
  return wrk.format("GET", paths[(sent - 1) % #paths + 1], {["Accept"] = "application/json"})
end
response = function(status, headers, body)
  received = received + 1
  if received >= RESPONSE_LIMIT then wrk.thread:stop() end
end
"""


@contextlib.contextmanager
def nginx(prefix: Path, port: int) -> Iterator[None]:
    www = prefix / "www"
    (www / "static" / "orders").mkdir(parents=True)
    (www / "static" / "users.json").write_text(json.dumps(
        [{"id": index, "name": f"user{index}"} for index in range(1, 6)]))
    (www / "static" / "orders" / "1001.json").write_text(json.dumps({"id": 1001, "status": "paid"}))
    (www / "static" / "products.json").write_text(json.dumps(
        [{"sku": f"SKU-{index:04d}", "price_cents": 199 * index} for index in range(1, 9)]))
    config = prefix / "nginx.conf"
    config.write_text(NGINX_CONFIG.format(prefix=prefix, port=port))
    process = subprocess.Popen(["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(config)])
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {(prefix / 'error.log').read_text()}")
            time.sleep(0.05)
        yield
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(timeout=10)


def drive_wrk(prefix: Path, port: int) -> None:
    script = prefix / "paths.lua"
    script.write_text(WRK_SCRIPT.replace("RESPONSE_LIMIT", str(WRK_RESPONSES)))
    subprocess.run(["wrk", "-t1", "-c4", "-d3s", "-s", str(script), f"http://127.0.0.1:{port}/"],
                   stdout=subprocess.DEVNULL, check=True)


def tshark_counts(capture: Path, port: int) -> tuple[int, int]:
    """(requests, responses) as tshark sees them, or (-1, -1) without tshark."""
    if shutil.which("tshark") is None:
        return -1, -1
    counts = []
    for display_filter, field in (("http.request", "http.request.method"), ("http.response", "http.response.code")):
        result = subprocess.run(["tshark", "-r", str(capture), "-d", f"tcp.port=={port},http", "-Y", display_filter,
                                 "-T", "fields", "-e", field, "-E", "occurrence=a"],
                                capture_output=True, text=True, check=True)
        counts.append(sum(len(line.split(",")) for line in result.stdout.splitlines() if line))
    return counts[0], counts[1]


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for tool in ("tcpdump", "curl", "nginx", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found on PATH")
    for host, port in (("127.0.0.1", PYTHON_API_PORT), ("127.0.0.1", NGINX_PORT), ("127.0.0.1", ANY_DEVICE_PORT),
                       ("::1", ANY_DEVICE_PORT)):
        ensure_port_free(host, port)
    with tempfile.TemporaryDirectory(prefix="apispy-record-") as temporary:
        workdir = Path(temporary)
        recorded = {"api_python_curl.pcap": PYTHON_API_PORT, "api_nginx_wrk.pcap": NGINX_PORT,
                    "api_any_sll.pcap": ANY_DEVICE_PORT, "api_any_sll1.pcap": ANY_DEVICE_PORT}

        with tcpdump(workdir / "api_python_curl.pcap", "lo", f"tcp port {PYTHON_API_PORT}"), \
                api_server("127.0.0.1", PYTHON_API_PORT):
            drive_python_api(f"http://127.0.0.1:{PYTHON_API_PORT}", workdir)

        prefix = workdir / "nginx"
        with nginx(prefix, NGINX_PORT), tcpdump(workdir / "api_nginx_wrk.pcap", "lo", f"tcp port {NGINX_PORT}"):
            drive_wrk(prefix, NGINX_PORT)

        for name, linktype in (("api_any_sll.pcap", None), ("api_any_sll1.pcap", "LINUX_SLL")):
            with tcpdump(workdir / name, "any", f"tcp port {ANY_DEVICE_PORT}", linktype), \
                    api_server("127.0.0.1", ANY_DEVICE_PORT), api_server("::1", ANY_DEVICE_PORT):
                drive_any_device(ANY_DEVICE_PORT)

        for name in recorded:
            size = (workdir / name).stat().st_size
            if size >= MAX_CAPTURE_BYTES:
                raise SystemExit(f"{name} is {size} bytes, over the {MAX_CAPTURE_BYTES}-byte limit")
        out.mkdir(parents=True, exist_ok=True)
        for name, port in recorded.items():
            shutil.move(workdir / name, out / name)
            requests, responses = tshark_counts(out / name, port)
            print(f"{name}: {(out / name).stat().st_size} bytes, tshark requests={requests} responses={responses}")


if __name__ == "__main__":
    main()
