"""The payload detector family: injection signatures, sensitive data in responses, and learned payload baselines.

`PayloadDetector.inspect` takes batches of transactions in arrival order and returns alerts of three detectors:

- `injection` (detectors.signatures): attack signatures in the decoded request fields.
- `data_exposure` (detectors.exposure): card numbers, SSNs, keys, tokens, bulk email addresses in responses.
- `payload_anomaly` (here): request and response bodies unlike what the endpoint usually carries.

Payload baselines are per (method, endpoint). Each keeps a ring buffer of the last `window_samples` feature rows:
for the request body and for the response body, log2(1 + size), byte entropy and the fractions of letters,
digits, punctuation and other bytes (see detectors.kernels). A new row is scored with robust z-scores, (value -
median) / (1.4826 * MAD), floored per feature so that a baseline of identical bodies does not make every
difference infinite. Only responses with a 2xx status are learned and judged (an error page is a different
document), and entropy and class fractions only for bodies of at least `min_shape_bytes`. A feature is judged
once its baseline has `min_samples` samples. Transactions are judged in arrival order, each against the window
as it was just before it (then it joins the window); the medians and MADs are recomputed once a window has
changed by 1/`baseline_refresh_divisor` of its samples, not at every row, and not at all while its new rows equal
the ones they push out (an endpoint that sends the same body again and again). JSON bodies whose top level is an
object also learn their key sets, row by row: a key set that is not common in the window (seen fewer than
`json_keyset_min_count` times) is reported, unless the endpoint's window holds more than `json_max_keysets`
distinct key sets (maps keyed by data).

Memory: at most `max_endpoints` baselines, least recently used evicted; each holds window_samples x 12 float32
values (12 KiB at 256 samples) plus at most window_samples key sets per direction.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from detectors.alert import Alert, RowAlerts
from detectors.batchbodies import BatchBodies, bodies_of
from detectors.batchkeys import columns_of, group, operations_of, statuses_of
from detectors.exposure import ExposureScanner
from detectors.jsonkeys import FOUND, NOT_AN_OBJECT, object_keys
from detectors.kernels import (
    FEATURE_ENTROPY,
    FEATURE_LENGTH,
    FEATURE_LETTERS,
    N_CLASSES,
    N_ROW_FEATURES,
    RESPONSE_OFFSET,
    payload_rows,
    score_and_learn,
)
from detectors.signatures import SignatureSet, injection_alerts_batch, printable, scrub
from parsers.transaction import Transaction, carried_features

DIRECTIONS = (("request", 0), ("response", RESPONSE_OFFSET))
CLASS_NAMES = ("letters", "digits", "punctuation", "other bytes")
INITIAL_CAPACITY = 64
MAX_KEY_CHARS = 64  # objects with longer keys hold data in their keys: not judged
# A transaction's JSON key sets: its request body's, its response body's (None: not a JSON object, or not read).
KeysetPair = tuple[frozenset[str] | None, frozenset[str] | None]
NONE_ID = id(None)  # the key set id of a row without one (see AnomalyFeatures)
OPEN_BRACE = ord("{")
HTTP_OK_MIN = 200
HTTP_OK_MAX = 299


@dataclass
class PayloadSettings:
    """Every threshold of the payload family. All have defaults; `__post_init__` rejects nonsense by name."""

    max_scan_bytes: int = 65536  # read at most this much of any one field (path, parameter, header, body)
    decode_rounds: int = 3  # rounds of percent/HTML-entity decoding, to undo double encoding
    injection: bool = True
    exposure: bool = True
    anomaly: bool = True
    email_bulk_threshold: int = 10  # email_bulk fires above this many distinct addresses in one response
    jwt_expected_words: tuple[str, ...] = (
        "auth", "login", "logon", "signin", "token", "tokens", "oauth", "oauth2", "session", "sessions", "sso",
        "refresh", "jwt", "authenticate", "authorize", "callback",
    )  # fmt: skip
    window_samples: int = 256  # most recent samples per endpoint the baselines are computed from
    min_samples: int = 30  # samples a baseline feature needs before it is trusted
    max_endpoints: int = 5000  # baselines kept; least recently used evicted beyond this
    baseline_refresh_divisor: int = 16  # recompute a baseline's median/MAD after fill/16 new samples
    z_threshold: float = 6.0  # |robust z| above which payload_anomaly reports (severity low)
    z_medium: float = 12.0  # |robust z| from which the severity is medium
    min_shape_bytes: int = 16  # bodies shorter than this have no entropy or class fractions
    size_scale_floor_log2: float = 0.35  # smallest scale of log2(1 + size): z=6 needs a ~4.3x size change
    entropy_scale_floor_bits: float = 0.15
    fraction_scale_floor: float = 0.02
    json_keyset_min_count: int = 2  # a key set seen this often in the window is common
    json_max_keysets: int = 32  # more distinct key sets than this in a window: keys are data, not judged
    json_max_keys: int = 64  # objects with more top-level keys are not judged

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if value < 0 or (value == 0 and item.name not in ("min_shape_bytes", "email_bulk_threshold")):
                raise ValueError(f"payload setting {item.name} must be positive, got {value!r}")
        if self.z_medium < self.z_threshold:
            raise ValueError("payload setting z_medium must be at least z_threshold")

    def scale_floors(self) -> np.ndarray:
        floors = np.empty(N_ROW_FEATURES, dtype=np.float64)
        for _, offset in DIRECTIONS:
            floors[offset + FEATURE_LENGTH] = self.size_scale_floor_log2
            floors[offset + FEATURE_ENTROPY] = self.entropy_scale_floor_bits
            floors[offset + FEATURE_LETTERS : offset + FEATURE_LETTERS + N_CLASSES] = self.fraction_scale_floor
        return floors


class KeysetWindow:
    """The top-level JSON key sets of an endpoint's recent bodies (one direction), counted."""

    __slots__ = ("cursor", "recent", "set_counts", "size")

    def __init__(self, window: int) -> None:
        self.recent: list[frozenset[str]] = []  # a ring once full; `cursor` is its oldest entry
        self.cursor = 0
        self.size = window
        self.set_counts: dict[frozenset[str], int] = {}

    def add(self, keyset: frozenset[str]) -> None:
        recent, counts = self.recent, self.set_counts
        if len(recent) < self.size:
            recent.append(keyset)
        else:
            cursor = self.cursor
            oldest = recent[cursor]
            recent[cursor] = keyset
            self.cursor = cursor + 1 if cursor + 1 < self.size else 0
            if oldest is keyset or oldest == keyset:
                return  # the usual case: an endpoint answers with the same keys again and again
            left = counts[oldest] - 1
            if left:
                counts[oldest] = left
            else:
                del counts[oldest]
        counts[keyset] = counts.get(keyset, 0) + 1

    def add_many(self, keyset: frozenset[str], times: int) -> None:
        """`add(keyset)` `times` times, with list slices: an endpoint's rows of a batch mostly carry one key set."""
        recent, counts = self.recent, self.set_counts
        room = min(times, self.size - len(recent))
        if room:
            recent += [keyset] * room
            counts[keyset] = counts.get(keyset, 0) + room
            times -= room
        while times:
            cursor = self.cursor
            step = min(times, self.size - cursor)
            evicted = recent[cursor : cursor + step]
            recent[cursor : cursor + step] = [keyset] * step
            self.cursor = cursor + step if cursor + step < self.size else 0
            times -= step
            same = evicted.count(keyset)
            if same == step:
                continue  # the usual case, as in `add`
            counts[keyset] = counts.get(keyset, 0) + step - same
            for oldest in evicted:
                if oldest is keyset or oldest == keyset:
                    continue
                left = counts[oldest] - 1
                if left:
                    counts[oldest] = left
                else:
                    del counts[oldest]

    def judge(self, keyset: frozenset[str], settings: PayloadSettings) -> tuple[float, list[str], int] | None:
        """None if `keyset` is usual (or the window cannot tell); else (score, keys not in the window, number of
        common key sets). The score is 1 - the largest Jaccard similarity to a common key set, in 0..1."""
        if self.set_counts.get(keyset, 0) >= settings.json_keyset_min_count:
            return None
        if len(self.recent) < settings.min_samples or len(self.set_counts) > settings.json_max_keysets:
            return None
        common = [known for known, count in self.set_counts.items() if count >= settings.json_keyset_min_count]
        if not common:
            return None
        similarity = max(len(keyset & known) / max(1, len(keyset | known)) for known in common)
        seen = frozenset().union(*self.set_counts)
        return 1.0 - similarity, sorted(keyset - seen), len(common)


# APIs send the same small bodies again and again (health checks, list pages, fixed answers): their key sets
# are remembered, at most KEYSET_CACHE_ENTRIES of them, bodies up to KEYSET_CACHE_MAX_BYTES.
KEYSET_CACHE_ENTRIES = 4096
KEYSET_CACHE_MAX_BYTES = 4096
RECENT_KEYSET_ENTRIES = 4096
MAX_INTERNED_KEYSETS = 4096  # key sets the parent of --workers keeps one copy of (AnomalyJudge)
_keyset_cache: dict[tuple[bytes, int], frozenset[str] | None] = {}


def json_keyset(
    body: bytes, content_type: str, max_keys: int, read_keys: bytes | None = None
) -> frozenset[str] | None:  # fmt: skip
    """The top-level keys of a JSON object body, or None (not JSON, not an object, too many keys or a key longer
    than MAX_KEY_CHARS). `read_keys`: the keys detectors.jsonkeys read from this very body (each followed by a
    NUL byte), where it was sure of them; json.loads reads the others."""
    if not body or ("json" not in content_type.lower() and body[:1] != b"{"):
        return None
    if len(body) > KEYSET_CACHE_MAX_BYTES:
        return _parse_keyset(body, max_keys, read_keys)
    key = (body, max_keys)
    if key in _keyset_cache:
        return _keyset_cache[key]
    if len(_keyset_cache) >= KEYSET_CACHE_ENTRIES:
        _keyset_cache.clear()
    keyset = _keyset_cache[key] = _parse_keyset(body, max_keys, read_keys)
    return keyset


# Key sets are interned: bodies that differ in their values share one key set object, so the windows that count
# key sets compare and look them up by identity first. Bounded like the memo above; so is the memo of the key
# sets of the keys the kernel read.
_interned_keysets: dict[frozenset[str], frozenset[str]] = {}
_keysets_of_read_keys: dict[bytes, frozenset[str]] = {}


def _parse_keyset(body: bytes, max_keys: int, read_keys: bytes | None = None) -> frozenset[str] | None:
    if read_keys is not None:
        return keyset_of_read_keys(read_keys)
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or len(document) > max_keys:
        return None
    if document and max(map(len, document)) > MAX_KEY_CHARS:
        return None
    return _interned(frozenset(document))


def keyset_of_read_keys(read_keys: bytes) -> frozenset[str]:
    """The key set of keys detectors.jsonkeys read (each followed by a NUL byte), interned."""
    keyset = _keysets_of_read_keys.get(read_keys)
    if keyset is None:
        if len(_keysets_of_read_keys) >= KEYSET_CACHE_ENTRIES:
            _keysets_of_read_keys.clear()
        keyset = _keysets_of_read_keys[read_keys] = _interned(frozenset(read_keys.decode("ascii").split("\0")[:-1]))
    return keyset


def _interned(keyset: frozenset[str]) -> frozenset[str]:
    interned = _interned_keysets.get(keyset)
    if interned is None:
        if len(_interned_keysets) >= KEYSET_CACHE_ENTRIES:
            _interned_keysets.clear()
        interned = _interned_keysets[keyset] = keyset
    return interned


class EndpointBaselines:
    """Per (method, endpoint) payload baselines in numpy arrays, with LRU eviction (see the module docstring)."""

    def __init__(self, settings: PayloadSettings) -> None:
        self.settings = settings
        self.floors = settings.scale_floors()
        capacity = min(INITIAL_CAPACITY, settings.max_endpoints)
        self.windows = np.full((capacity, settings.window_samples, N_ROW_FEATURES), np.nan, dtype=np.float32)
        self.fills = np.zeros(capacity, dtype=np.int64)
        self.cursors = np.zeros(capacity, dtype=np.int64)
        self.medians = np.full((capacity, N_ROW_FEATURES), np.nan, dtype=np.float64)
        self.scales = np.full((capacity, N_ROW_FEATURES), np.nan, dtype=np.float64)
        self.pending = np.zeros(capacity, dtype=np.int64)
        self.changed = np.zeros(capacity, dtype=np.bool_)  # samples changed since their stats were computed
        self.keysets: list[tuple[KeysetWindow, KeysetWindow] | None] = [None] * capacity
        self.slot_of: OrderedDict[tuple[str, str], int] = OrderedDict()
        self.batch_of_slot = [-1] * capacity  # the last batch that used each slot
        self.batch_number = 0
        self.used = 0
        # Per (endpoint, direction): the last body's key set, with that body and its content type. An endpoint
        # often sends the very same body again (a health check, a fixed answer, an error); comparing it with the
        # last one is cheaper than hashing it for json_keyset's memo. At most RECENT_KEYSET_ENTRIES entries of
        # bodies up to KEYSET_CACHE_MAX_BYTES.
        self.recent_keysets: dict[tuple[str, int], tuple[bytes, str, frozenset[str] | None]] = {}

    def __len__(self) -> int:
        return len(self.slot_of)

    def _keyset(
        self, endpoint: str, direction: int, body: bytes, content_type: str, read_keys: bytes | None = None
    ) -> frozenset[str] | None:  # fmt: skip
        """json_keyset of the body, taken from the endpoint's last one when it is the same body."""
        key = (endpoint, direction)
        recent = self.recent_keysets.get(key)
        if recent is not None and recent[0] == body and recent[1] == content_type:
            return recent[2]
        keyset = json_keyset(body, content_type, self.settings.json_max_keys, read_keys)
        if len(body) <= KEYSET_CACHE_MAX_BYTES:
            if recent is None and len(self.recent_keysets) >= RECENT_KEYSET_ENTRIES:
                self.recent_keysets.clear()
            self.recent_keysets[key] = (body, content_type, keyset)
        return keyset

    def _grow(self) -> None:
        capacity = self.windows.shape[0]
        extra = min(capacity, self.settings.max_endpoints - capacity)
        block = np.full((extra, *self.windows.shape[1:]), np.nan, dtype=np.float32)
        self.windows = np.concatenate((self.windows, block))
        self.fills = np.concatenate((self.fills, np.zeros(extra, dtype=np.int64)))
        self.cursors = np.concatenate((self.cursors, np.zeros(extra, dtype=np.int64)))
        self.medians = np.concatenate((self.medians, np.full((extra, N_ROW_FEATURES), np.nan)))
        self.scales = np.concatenate((self.scales, np.full((extra, N_ROW_FEATURES), np.nan)))
        self.pending = np.concatenate((self.pending, np.zeros(extra, dtype=np.int64)))
        self.changed = np.concatenate((self.changed, np.zeros(extra, dtype=np.bool_)))
        self.batch_of_slot.extend([-1] * extra)
        self.keysets.extend([None] * extra)

    def slot(self, key: tuple[str, str]) -> int:
        """The slot of `key` for this batch, or -1 when every slot is in use by this very batch."""
        slot = self.slot_of.get(key)
        if slot is not None:
            self.slot_of.move_to_end(key)
        elif self.used < self.settings.max_endpoints:
            if self.used == self.windows.shape[0]:
                self._grow()
            slot = self.used
            self.used += 1
            self.slot_of[key] = slot
        else:
            oldest_key, oldest_slot = next(iter(self.slot_of.items()))
            if self.batch_of_slot[oldest_slot] == self.batch_number:
                return -1
            del self.slot_of[oldest_key]
            slot = oldest_slot
            self.fills[slot] = 0
            self.cursors[slot] = 0
            self.pending[slot] = 0
            self.changed[slot] = False
            self.medians[slot] = np.nan
            self.scales[slot] = np.nan
            self.keysets[slot] = None
            self.slot_of[key] = slot
        self.batch_of_slot[slot] = self.batch_number
        return slot

    def slots_of_rows(self, transactions: Sequence[Transaction]) -> np.ndarray:
        """Each transaction's slot (-1: none, see `slot`), as looking up every row in turn gives, with a lookup per
        distinct (method, endpoint) of the batch instead of per row.

        In the order of their first rows, the operations get their slots: a new one takes the slot of the least
        recently used baseline that no earlier row of the batch touched, as it would at its first row. Then they
        are touched in the order of their last rows, which leaves the least-recently-used order of every row.
        """
        operations, codes = operations_of(transactions)
        slots = np.fromiter(map(self.slot, operations), dtype=np.int64, count=len(operations))
        if len(operations) > 1:
            move_to_end = self.slot_of.move_to_end
            # The codes number the operations by first row, as groups are numbered.
            for operation in group((len(operations), codes)).recency_order().tolist():
                if slots[operation] >= 0:
                    move_to_end(operations[operation])
        return slots[codes]

    def inspect(self, transactions: Sequence[Transaction], alerts: RowAlerts) -> None:
        self.judge(transactions, self.features(transactions), alerts)

    def features(self, transactions: Sequence[Transaction]) -> AnomalyFeatures:
        """What the baselines compare, computed from the bodies: the part that can run where the bodies are."""
        values = self._features(transactions)
        return AnomalyFeatures(values, *self._keysets(transactions))

    def _keysets(self, transactions: Sequence[Transaction]) -> tuple[list, list, np.ndarray, np.ndarray]:
        """Each row's request and response JSON key sets: of every body within the scan limit, of responses only
        2xx ones (None otherwise); then their ids (see AnomalyFeatures). Read once per run of identical bodies
        (detectors.batchbodies), whose rows share the key set object: its id is taken once per run too."""
        count = len(transactions)
        bodies = bodies_of(transactions, self.settings.max_scan_bytes)
        wanted = (bodies.kept > 0) & (bodies.kept <= self.settings.max_scan_bytes)
        statuses = statuses_of(transactions)
        wanted[count:] &= (statuses >= HTTP_OK_MIN) & (statuses <= HTTP_OK_MAX)
        if not wanted.any():
            nones = np.full(count, NONE_ID, dtype=np.int64)
            return [None] * count, [None] * count, nones, nones.copy()
        sources = bodies.sources
        by_body = np.full(2 * count, None, dtype=object)
        ids_by_body = np.full(2 * count, NONE_ID, dtype=np.int64)
        is_needed = np.zeros(2 * count, dtype=bool)
        is_needed[sources[wanted]] = True  # a source may be a body not wanted itself (a 404's)
        needed = np.flatnonzero(is_needed)  # ascending, as np.unique gives, without its sort
        results, read = self._read_keys(bodies, needed)
        opens_object = (bodies.buffer[bodies.offsets[needed]] == OPEN_BRACE).tolist()  # needed bodies are not empty
        for body, result, read_keys, opens in zip(needed.tolist(), results, read, opens_object, strict=True):
            if result == NOT_AN_OBJECT:
                continue  # an array: no key set, whatever the content type says
            if read_keys is not None and opens:  # json_keyset would read it whatever the content type: no memo
                by_body[body] = found = keyset_of_read_keys(read_keys)
                ids_by_body[body] = id(found)
                continue
            if body < count:
                transaction = transactions[body]
                found = self._keyset(
                    transaction.endpoint, 0, transaction.req_body, transaction.req_content_type, read_keys
                )
            else:
                transaction = transactions[body - count]
                found = self._keyset(
                    transaction.endpoint, 1, transaction.resp_body, transaction.resp_content_type, read_keys
                )
            by_body[body] = found
            ids_by_body[body] = id(found)
        keysets, ids = by_body[sources], ids_by_body[sources]
        keysets[~wanted] = None
        ids[~wanted] = NONE_ID
        return keysets[:count].tolist(), keysets[count:].tolist(), ids[:count], ids[count:]

    def _read_keys(self, bodies: BatchBodies, which: np.ndarray) -> tuple[list[int], list[bytes | None]]:
        """What detectors.jsonkeys makes of bodies `which`: its results (FOUND, NOT_AN_OBJECT, UNSURE), and the
        top-level keys it read (each followed by a NUL byte), None where it found none."""
        lengths = bodies.lengths[which]
        keys = np.empty(max(1, int(lengths.sum())), dtype=np.uint8)
        key_ends = np.empty(len(which), dtype=np.int64)
        results = np.empty(len(which), dtype=np.int64)
        object_keys(
            bodies.buffer, bodies.offsets[which], lengths, self.settings.json_max_keys, MAX_KEY_CHARS, keys, key_ends,
            results,
        )  # fmt: skip
        written = keys.tobytes()
        starts, ends, results = [0, *key_ends[:-1].tolist()], key_ends.tolist(), results.tolist()
        return results, [written[start:end] if result == FOUND else None
                         for start, end, result in zip(starts, ends, results, strict=True)]  # fmt: skip

    def judge(self, transactions: Sequence[Transaction], features: AnomalyFeatures, alerts: RowAlerts) -> None:
        """Scores each transaction against its endpoint's baseline, then learns from it (needs no body)."""
        self.batch_number += 1
        settings = self.settings
        count = len(transactions)
        slots = self.slots_of_rows(transactions)
        kept = np.flatnonzero(slots >= 0)
        if kept.size < count:
            slots, transactions, features = slots[kept], [transactions[i] for i in kept], features.rows(kept)
        else:
            kept = np.arange(count)
        values = features.values
        z_scores = np.empty_like(values)
        medians = np.empty_like(values)
        largest = np.empty(len(values), dtype=np.float64)
        score_and_learn(
            self.windows, self.fills, self.cursors, self.medians, self.scales, self.pending, self.changed, slots,
            values,
            settings.min_samples, self.floors, settings.baseline_refresh_divisor, z_scores, medians, largest,
        )  # fmt: skip
        flagged = np.flatnonzero(largest > settings.z_threshold)
        for row in flagged:
            found = self._anomaly_alerts(transactions[row], z_scores[row], medians[row], values[row])
            alerts[int(kept[row])].extend(found)
        self._judge_keysets(transactions, slots, features, kept, alerts)

    def _judge_keysets(
        self,
        transactions: Sequence[Transaction],
        slots: np.ndarray,
        features: AnomalyFeatures,
        kept: np.ndarray,
        alerts: RowAlerts,
    ) -> None:
        """Judges and learns each row's JSON key sets, row by row within each endpoint (endpoints' windows are
        apart, so their rows need not interleave). An endpoint's rows mostly carry the key sets it always does:
        a run of rows with the same usual pair is learned at once (`add_many`); a usual key set stays usual while
        it is added, since adding it never lowers its own count."""
        count = len(slots)
        if not count:
            return
        requests, responses = features.requests, features.responses
        order = np.argsort(slots, kind="stable")
        # Runs of rows with one slot and the very same key set objects (interned: equal ones mostly are).
        columns = [slots[order], features.request_ids[order], features.response_ids[order]]
        new_run = np.empty(count, dtype=bool)
        new_run[0] = True
        new_run[1:] = False
        for column in columns:
            new_run[1:] |= column[1:] != column[:-1]
        starts = np.flatnonzero(new_run).tolist()
        order = order.tolist()
        common = self.settings.json_keyset_min_count
        windows_of = self.keysets
        for start, end in zip(starts, [*starts[1:], count], strict=True):
            request, response = pair = requests[order[start]], responses[order[start]]
            if request is None and response is None:
                continue
            slot = int(columns[0][start])
            for position in range(start, end):
                windows = windows_of[slot]
                if (
                    windows is not None
                    and (request is None or windows[0].set_counts.get(request, 0) >= common)
                    and (response is None or windows[1].set_counts.get(response, 0) >= common)
                ):  # the usual key sets of the endpoint: nothing to judge, only to learn
                    if request is not None:
                        windows[0].add_many(request, end - position)
                    if response is not None:
                        windows[1].add_many(response, end - position)
                    break
                row = order[position]
                alert = self._json_keys(transactions[row], slot, pair)
                if alert is not None:
                    alerts[int(kept[row])].append(alert)

    def _features(self, transactions: Sequence[Transaction]) -> np.ndarray:
        """One row of N_ROW_FEATURES per transaction; NaN where a feature is not defined (see module docstring)."""
        count = len(transactions)
        bodies = bodies_of(transactions, self.settings.max_scan_bytes)
        # Body sizes: as on the wire, or as kept when decoding made them larger.
        wire = columns_of(transactions).wire_bytes
        values = np.empty((count, N_ROW_FEATURES), dtype=np.float64)
        payload_rows(
            bodies.buffer, bodies.offsets, bodies.lengths, bodies.sources, np.log2(1.0 + np.maximum(wire, bodies.kept)),
            statuses_of(transactions), self.settings.min_shape_bytes, HTTP_OK_MIN, HTTP_OK_MAX, values,
        )  # fmt: skip
        return values

    def _anomaly_alerts(
        self, transaction: Transaction, z_scores: np.ndarray, medians: np.ndarray, values: np.ndarray
    ) -> list[Alert]:
        """At most one alert per rule: the direction (and class) with the largest |z| above the threshold."""
        threshold = self.settings.z_threshold
        found = []
        for rule, columns in (
            ("size_zscore", [offset + FEATURE_LENGTH for _, offset in DIRECTIONS]),
            ("entropy_zscore", [offset + FEATURE_ENTROPY for _, offset in DIRECTIONS]),
            ("charclass_zscore", [offset + FEATURE_LETTERS + c for _, offset in DIRECTIONS for c in range(N_CLASSES)]),
        ):
            column = max(columns, key=lambda c: -1.0 if math.isnan(z_scores[c]) else abs(z_scores[c]))
            z = float(z_scores[column])
            if math.isnan(z) or abs(z) <= threshold:
                continue
            direction = "request" if column < RESPONSE_OFFSET else "response"
            feature = column - (0 if column < RESPONSE_OFFSET else RESPONSE_OFFSET)
            usual, actual = float(medians[column]), float(values[column])
            higher = "large" if z > 0 else "small"
            if rule == "size_zscore":
                what = f"Unusually {higher} {direction} body"
                evidence = f"{round(2**actual - 1)} bytes, usual {round(2**usual - 1)} bytes"
            elif rule == "entropy_zscore":
                what = f"Unusually {'high' if z > 0 else 'low'} byte entropy of the {direction} body"
                evidence = f"entropy {actual:.2f} bits/byte, usual {usual:.2f}"
            else:
                name = CLASS_NAMES[feature - FEATURE_LETTERS]
                what = f"Unusual character mix in the {direction} body ({'more' if z > 0 else 'fewer'} {name})"
                evidence = f"{name} {actual:.0%} of bytes, usual {usual:.0%}"
            severity = "medium" if abs(z) >= self.settings.z_medium else "low"
            found.append(self._alert(transaction, rule, severity, z, what, f"{evidence}, robust z={z:.1f}"))
        return found

    def _json_keys(self, transaction: Transaction, slot: int, keysets: KeysetPair) -> Alert | None:
        settings = self.settings
        windows = self.keysets[slot]
        if windows is None:
            windows = (KeysetWindow(settings.window_samples), KeysetWindow(settings.window_samples))
            self.keysets[slot] = windows
        alert = None
        common = settings.json_keyset_min_count
        for (direction, _), window, keyset in zip(DIRECTIONS, windows, keysets, strict=True):
            if keyset is None:
                continue
            usual = window.set_counts.get(keyset, 0) >= common  # the usual case, judged without a call
            verdict = window.judge(keyset, settings) if alert is None and not usual else None
            window.add(keyset)
            if verdict is None:
                continue
            score, new_keys, n_common = verdict
            if new_keys:
                shown = ", ".join(printable(key.encode("utf-8", "replace"), 32) for key in new_keys[:8])
                evidence = scrub(f"new keys: {shown}")
            else:
                evidence = f"known keys in a new combination ({len(keyset)} keys; {n_common} usual key sets)"
            severity = "medium" if new_keys else "low"
            what = f"Unusual JSON {direction} key set"
            alert = self._alert(transaction, "json_keys", severity, score, what, evidence[:160])
        return alert

    @staticmethod
    def _alert(transaction: Transaction, rule: str, severity: str, score: float, what: str, evidence: str) -> Alert:
        endpoint = transaction.endpoint or transaction.path
        message = f"{what} on {transaction.method} {endpoint} from {transaction.src_ip}"
        return Alert.about(transaction, "payload_anomaly", rule, severity, message, evidence, score)


@dataclass(slots=True)
class AnomalyFeatures:
    """Per transaction of a batch: its row of numeric features, its request's and its response's JSON key sets
    (None: not a JSON object, or not read), and the ids of those key set objects (of None where there is none),
    by which `_judge_keysets` finds runs of rows with the very same ones. Columns, not a pair per row: a batch's
    rows mostly share a few key sets, whose ids are taken once per run of identical bodies."""

    values: np.ndarray
    requests: list[frozenset[str] | None]
    responses: list[frozenset[str] | None]
    request_ids: np.ndarray
    response_ids: np.ndarray

    def pairs(self) -> list[KeysetPair]:
        return list(zip(self.requests, self.responses, strict=True))

    def rows(self, which: np.ndarray) -> AnomalyFeatures:
        picked = which.tolist()
        return AnomalyFeatures(
            self.values[which],
            [self.requests[row] for row in picked],
            [self.responses[row] for row in picked],
            self.request_ids[which],
            self.response_ids[which],
        )


class AnomalyFeatureTagger:
    """Where the bodies are (a worker process): computes each transaction's anomaly features and attaches them
    (`payload_features`), so that `AnomalyJudge`, which sees every connection, judges them. Raises nothing."""

    def __init__(self, settings: PayloadSettings) -> None:
        self.baselines = EndpointBaselines(settings)

    def inspect(self, transactions: Sequence[Transaction]) -> list[Alert]:
        self.tag(transactions)
        return []

    def tag(self, transactions: Sequence[Transaction]) -> np.ndarray:
        """Tags each transaction; returns their feature values, one row each (to ship in one array)."""
        features = self.baselines.features(transactions)
        values = features.values  # the rows stay in this one array: a view per row cost more than the tagging
        for row, (transaction, pair) in enumerate(zip(transactions, features.pairs(), strict=True)):
            transaction.payload_features = (values, row, pair)
        return values


class AnomalyJudge:
    """Payload anomalies from features computed elsewhere (`AnomalyFeatureTagger`): one baseline per endpoint,
    learned from every connection, however many processes parsed them."""

    def __init__(self, settings: PayloadSettings) -> None:
        self.baselines = EndpointBaselines(settings)
        # Each key set as the first row brought it, and each copy of one already met (see carried_features); both
        # emptied when they outgrow MAX_INTERNED_KEYSETS.
        self.interned: dict[frozenset[str] | None, frozenset[str] | None] = {}
        self.aliases: dict[int, tuple[frozenset[str], frozenset[str]]] = {}

    def inspect(self, transactions: Sequence[Transaction]) -> list[Alert]:
        """A worker's rows share one object per key set, but each block it sends arrives with copies of its own,
        and each worker's differ: the baselines find runs of rows with the very same key sets (`_judge_keysets`),
        which then broke at every block and every change of worker (on the 120k-packet bench subset, the parent's
        `_judge_keysets` took 98 ms under cProfile where one process's took 7 ms). So each key set is interned,
        in the pass that gathers the rows' features (parsers.transaction.carried_features)."""
        if len(self.interned) > MAX_INTERNED_KEYSETS:
            self.interned.clear()
        if len(self.aliases) > MAX_INTERNED_KEYSETS:
            self.aliases.clear()
        rows, values, requests, responses, request_ids, response_ids = carried_features(
            transactions, self.interned, self.aliases
        )
        if values is None:
            return []
        # All of them, as nearly always (rows is None): the batch itself, whose columns the baselines' lookup reads
        # were taken once for every detector. A list of the same rows had them taken again.
        tagged = transactions if rows is None else [transactions[row] for row in rows]
        ids = np.array(request_ids, np.int64), np.array(response_ids, np.int64)
        features = AnomalyFeatures(values, requests, responses, *ids)
        alerts = RowAlerts()
        self.baselines.judge(tagged, features, alerts)
        return alerts.in_row_order()


class PayloadDetector:
    """Injection, data exposure and payload anomalies over batches of transactions (no I/O).

    Alert scores: `injection` and `data_exposure` give a confidence in 0..1 (1.0: a validated signature match);
    `payload_anomaly` gives the signed robust z-score for size_zscore, entropy_zscore and charclass_zscore, and
    1 - (largest Jaccard similarity to a common key set), in 0..1, for json_keys. One alert per rule per
    transaction; no deduplication across transactions. Not thread-safe: one instance per pipeline.
    """

    def __init__(self, settings: PayloadSettings | None = None, signatures: SignatureSet | None = None) -> None:
        self.settings = settings or PayloadSettings()
        self.signatures = signatures or SignatureSet()
        self.exposure = ExposureScanner(
            self.signatures,
            self.settings.max_scan_bytes,
            self.settings.email_bulk_threshold,
            self.settings.jwt_expected_words,
        )
        self.baselines = EndpointBaselines(self.settings)

    def inspect(self, transactions: Sequence[Transaction]) -> list[Alert]:
        """Alerts for a batch of transactions in arrival order, grouped by transaction in that order."""
        return self.inspect_rows(transactions).in_row_order()

    def inspect_rows(self, transactions: Sequence[Transaction]) -> RowAlerts:
        """The alerts each transaction of the batch raised, by row."""
        if not transactions:
            return RowAlerts()
        settings = self.settings
        if settings.injection:
            alerts = injection_alerts_batch(
                self.signatures, transactions, settings.max_scan_bytes, settings.decode_rounds
            )
        else:
            alerts = RowAlerts()
        if settings.exposure:
            self.exposure.inspect(transactions, alerts)
        if settings.anomaly:
            self.baselines.inspect(transactions, alerts)
        return alerts
