"""Sensitive data in responses: card numbers, US SSNs, JWTs, AWS keys, private keys, bulk email addresses.

Hyperscan (the RESPONSE rules of detectors.signatures) finds which kinds of candidate a response's headers and
body contain; Python then extracts the candidates of those kinds only and checks what a regular expression
cannot: a card number's issuer prefix, length and Luhn digit (the Luhn check runs once per batch in a numba
kernel), an SSN's area, group and serial, a JWT header that decodes to JSON with an `alg`, the number of distinct
email addresses. Evidence is always masked (`4111********1111`, `***-**-6789`, `AKIA************MPLE`).

JWTs are expected in some places and are not reported there: in Set-Cookie headers (session cookies) and in
responses of endpoints whose path has a login or token word (`/auth/login`, `/oauth/token`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress

import numpy as np

from detectors.alert import Alert, RowAlerts
from detectors.batchbodies import bodies_of
from detectors.batchkeys import columns_of
from detectors.evidence import mask_middle
from detectors.kernels import luhn_valid
from detectors.signatures import RESPONSE, Rule, SignatureSet, printable
from parsers.memo import HeaderMemo
from parsers.transaction import Transaction

LOCATION_HEADERS = "response headers"
LOCATION_BODY = "response body"

_CARD = re.compile(
    rb"(?<![A-Za-z0-9.])(?<!\d[ -])(\d{13,19}|\d{4}([ -])\d{4}\2\d{4}\2\d{4}(?:\2\d{3})?|\d{4}([ -])\d{6}\3\d{4,5})"
    rb"(?![ -]?\d|[A-Za-z])"
)
_SSN = re.compile(rb"(?<![\w-])(?!000|666|9)(\d{3})-(?!00)\d{2}-(?!0000)(\d{4})(?![\w-])")
_JWT = re.compile(rb"(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]{4,})\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_AWS_KEY_ID = re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_AWS_SECRET = re.compile(rb"(?i)aws_?secret_?access_?key[\"'\s:=]{1,6}([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])")
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")
_EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}")
_KEY_BEFORE = re.compile(rb"([A-Za-z0-9_.\-]{1,48})[\"']?\s*[:=]\s*[\"']?\Z")
_IDENTIFIER_KEY = re.compile(
    rb"(?i)(?:id|ids|uuid|guid|order|orders|ts|timestamp|time|seq|sequence|version|nonce|hash|count|offset"
    rb"|cursor|snowflake|tracking|invoice|ref|reference)\Z"
)
KEY_LOOKBACK_BYTES = 64
_ALG = re.compile(r"[A-Za-z0-9+_.-]{1,16}")
_WORD_SPLIT = re.compile(r"[/\-_.{}]+")
ASCII_ZERO = 0x30

# (issuer, prefix ranges as (low, high) over the first len(low) digits, allowed lengths)
CARD_BRANDS: tuple[tuple[str, tuple[tuple[str, str], ...], frozenset[int]], ...] = (
    ("Visa", (("4", "4"),), frozenset((13, 16, 19))),
    ("Mastercard", (("51", "55"), ("2221", "2720")), frozenset((16,))),
    ("American Express", (("34", "34"), ("37", "37")), frozenset((15,))),
    ("Discover", (("6011", "6011"), ("644", "649"), ("65", "65")), frozenset(range(16, 20))),
    ("Diners Club", (("300", "305"), ("36", "36"), ("38", "39")), frozenset(range(14, 20))),
    ("JCB", (("3528", "3589"),), frozenset(range(16, 20))),
    ("UnionPay", (("62", "62"),), frozenset(range(16, 20))),
)


def card_brand(digits: str) -> str | None:
    """The issuer whose IIN range and card lengths fit `digits`, or None."""
    for brand, ranges, lengths in CARD_BRANDS:
        if len(digits) not in lengths:
            continue
        for low, high in ranges:
            if low <= digits[: len(low)] <= high:
                return brand
    return None


def luhn_ok(numbers: Sequence[str]) -> np.ndarray:
    """Luhn check of many digit strings in one kernel call."""
    out = np.zeros(len(numbers), dtype=np.bool_)
    if not numbers:
        return out
    digits = np.frombuffer("".join(numbers).encode("ascii"), dtype=np.uint8) - ASCII_ZERO
    lengths = np.fromiter(map(len, numbers), dtype=np.int64, count=len(numbers))
    offsets = np.zeros(len(numbers), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    luhn_valid(digits, offsets, lengths, out)
    return out


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def jwt_algorithm(header_b64: bytes) -> str | None:
    """The `alg` of a JWT header segment, or None when it is not base64url JSON with an `alg`."""
    try:
        header = json.loads(base64.urlsafe_b64decode(header_b64 + b"=" * (-len(header_b64) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        return None
    match = _ALG.match(header["alg"])
    return match.group(0) if match else "?"


@dataclass(slots=True)
class _Card:
    index: int
    location: str
    digits: str
    brand: str


class ExposureScanner:
    """Finds sensitive data in the responses of a batch of transactions; one alert per rule per transaction."""

    def __init__(
        self,
        signatures: SignatureSet,
        max_scan_bytes: int,
        email_bulk_threshold: int,
        jwt_expected_words: Sequence[str],
    ) -> None:
        self.signatures = signatures
        self.max_scan_bytes = max_scan_bytes
        self.email_bulk_threshold = email_bulk_threshold
        self.jwt_expected_words = expected_words(jwt_expected_words)
        self.header_texts: HeaderMemo[bytes] = HeaderMemo()  # per shared header list: its text

    def inspect(self, transactions: Sequence[Transaction], alerts: RowAlerts) -> None:
        """Append each transaction's findings to alerts[i].

        The batch is scanned once as a whole: each distinct header list once, and each body once per run of
        identical ones (detectors.batchbodies). Where that scan finds something (SignatureSet.texts_with_hits says
        which texts), the responses of those texts (all those sharing a header list or a body that hit) are looked
        at further, each alone.
        """
        if not transactions:
            return
        count = len(transactions)
        batch_bodies = bodies_of(transactions, self.max_scan_bytes)
        bodies = batch_bodies.bodies[count:]
        # A response body is scanned once per run of identical ones (detectors.batchbodies): the same bytes hold
        # the same matches. Each run's rows are looked at as before.
        sources = batch_bodies.sources[count:] - count
        firsts = sources == np.arange(count)
        columns = columns_of(transactions)
        header_lists = columns.resp_headers
        distinct_lists, list_numbers = columns.distinct_resp_headers, columns.resp_header_codes
        texts = [self._header_text(headers) for headers in distinct_lists]
        texts += compress(bodies, firsts.tolist())
        hit_texts = self.signatures.texts_with_hits(texts, RESPONSE)
        if hit_texts is None:  # too many matches to locate them one by one
            parts: list[bytes] = []
            for headers, body in zip(header_lists, bodies, strict=True):
                parts.append(self._header_text(headers))
                parts.append(body)
            hit_units = self.signatures.units_with_hits(parts, range(0, len(parts) + 1, 2), RESPONSE)
        elif not len(hit_texts):
            return
        else:
            # The texts are the distinct header lists' (in order of first use), then the first body of each run.
            shared = len(distinct_lists)
            hit_firsts = np.flatnonzero(firsts)[hit_texts[hit_texts >= shared] - shared]
            hit_units = np.flatnonzero(np.isin(sources, hit_firsts))
            hit_lists = hit_texts[hit_texts < shared]
            if len(hit_lists):
                hit_units = np.union1d(hit_units, np.flatnonzero(np.isin(list_numbers, hit_lists)))
            hit_units = hit_units.tolist()
        cards: list[_Card] = []
        for index in hit_units:
            header_text = self._header_text(header_lists[index])
            self._inspect_one(index, transactions[index], header_text, bodies[index], alerts[index], cards)
        if not cards:
            return
        valid = luhn_ok([card.digits for card in cards])
        reported: set[int] = set()
        for card, ok in zip(cards, valid, strict=True):
            if ok and card.index not in reported:
                reported.add(card.index)
                transaction = transactions[card.index]
                rule = _rule(self.signatures, "credit_card")
                alerts[card.index].append(
                    _alert(transaction, rule, f"{rule.title} ({card.brand})", card.location,
                           mask_middle(card.digits))
                )  # fmt: skip

    def _header_text(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        text = self.header_texts.get(headers)
        if text is None:
            text = b"\n".join(map(b": ".join, headers))[: self.max_scan_bytes]  # C-level joins, no generator
            self.header_texts.put(headers, text)
        return text

    def _inspect_one(
        self, index: int, transaction: Transaction, header_text: bytes, body: bytes, alerts: list[Alert],
        cards: list[_Card],
    ) -> None:  # fmt: skip
        hits = self.signatures.scan(header_text + b"\x00" + body, RESPONSE)
        by_id = self.signatures.signatures
        rules = {by_id[signature_id].rule.rule: by_id[signature_id].rule for signature_id in sorted(hits)}
        parts = ((LOCATION_HEADERS, header_text), (LOCATION_BODY, body))
        for name, rule in rules.items():
            if rule.direction != RESPONSE:
                continue
            if name == "credit_card":
                for location, text in parts:
                    cards.extend(_card_candidates(index, location, text))
            elif name == "email_bulk":
                self._email_bulk(transaction, rule, header_text, body, alerts)
            else:
                for location, text in parts:
                    finding = self._validate(rule, location, text, transaction)
                    if finding is not None:
                        alerts.append(_alert(transaction, rule, finding[0], location, finding[1]))
                        break

    def _email_bulk(
        self, transaction: Transaction, rule: Rule, header_text: bytes, body: bytes, alerts: list[Alert]
    ) -> None:
        if header_text.count(b"@") + body.count(b"@") <= self.email_bulk_threshold:
            return
        emails = {address.lower() for text in (header_text, body) for address in _EMAIL.findall(text)}
        if len(emails) > self.email_bulk_threshold:
            example = printable(mask_email(min(emails).decode("latin-1")).encode("latin-1"), 60)
            evidence = f"{len(emails)} distinct addresses, e.g. {example}"
            alerts.append(_alert(transaction, rule, rule.title, "response", evidence))

    def _validate(self, rule: Rule, location: str, text: bytes, transaction: Transaction) -> tuple[str, str] | None:
        """(message title, masked evidence) of the first real finding of `rule` in `text`, or None."""
        if rule.rule == "ssn":
            match = _SSN.search(text)
            return (rule.title, f"***-**-{match.group(2).decode()}") if match else None
        if rule.rule == "aws_key":
            match = _AWS_KEY_ID.search(text)
            if match:
                return "AWS access key id", mask_middle(match.group(0).decode())
            match = _AWS_SECRET.search(text)
            return ("AWS secret access key", mask_middle(match.group(1).decode())) if match else None
        if rule.rule == "private_key":
            match = _PRIVATE_KEY.search(text)
            return (rule.title, f"{match.group(0).decode()} (redacted)") if match else None
        if rule.rule == "jwt":
            if self._jwt_expected(transaction):
                return None
            for match in _JWT.finditer(text):
                if location == LOCATION_HEADERS and _line_of(text, match.start()).lower().startswith(b"set-cookie:"):
                    continue
                algorithm = jwt_algorithm(match.group(1))
                if algorithm is not None:
                    return rule.title, f"JWT alg={algorithm} (redacted)"
        return None

    def _jwt_expected(self, transaction: Transaction) -> bool:
        return jwt_expected(transaction, self.jwt_expected_words)


def expected_words(words: Sequence[str]) -> frozenset[str]:
    """The `jwt_expected_words` setting as `jwt_expected` compares it."""
    return frozenset(word.lower() for word in words)


def is_jwt_alert(alert: Alert) -> bool:
    return alert.detector == "data_exposure" and alert.rule == "jwt"


def jwt_expected(transaction: Transaction, expected_words: frozenset[str]) -> bool:
    """Whether a JWT in the transaction's response is expected: its endpoint (or path) has one of the words."""
    words = _WORD_SPLIT.split((transaction.endpoint or transaction.path).lower())
    return not expected_words.isdisjoint(words)


def _card_candidates(index: int, location: str, text: bytes) -> list[_Card]:
    candidates = []
    for match in _CARD.finditer(text):
        if _identifier_value(text, match.start()):
            continue
        digits = re.sub(rb"[ -]", b"", match.group(1)).decode("ascii")
        brand = card_brand(digits)
        if brand is not None:
            candidates.append(_Card(index, location, digits, brand))
    return candidates


def _identifier_value(text: bytes, position: int) -> bool:
    """Whether the number at `position` is the value of a key that names an identifier, sequence or time.

    Long numeric ids (order numbers, snowflake ids) pass an issuer prefix and the Luhn check one time in ten or
    so; their key names give them away (`"id": 4...`, `"orderId": "5..."`, `ts=6...`).
    """
    match = _KEY_BEFORE.search(text, max(0, position - KEY_LOOKBACK_BYTES), position)
    return match is not None and _IDENTIFIER_KEY.search(match.group(1)) is not None


def _line_of(text: bytes, position: int) -> bytes:
    start = text.rfind(b"\n", 0, position) + 1
    return text[start:position]


def _rule(signatures: SignatureSet, name: str) -> Rule:
    return next(signature.rule for signature in signatures.signatures if signature.rule.rule == name)


def _alert(transaction: Transaction, rule: Rule, title: str, location: str, evidence: str) -> Alert:
    """A data_exposure alert; its score is a confidence in 0..1, 1.0 because every finding is validated."""
    endpoint = transaction.endpoint or transaction.path
    message = f"{title} in the {location} of {transaction.method} {endpoint} returned to {transaction.src_ip}"
    return Alert.about(transaction, rule.detector, rule.rule, rule.severity, message, evidence, 1.0)
