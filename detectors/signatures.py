"""Signatures: the injection and data-exposure rule set, its Hyperscan database, and the decoding of request fields.

Every rule is a few regular expressions written in the subset that Hyperscan and Python's `re` share (classes,
alternation, bounded repeats, `\\b`, `^`/`$`; no look-around, no back-references), so one text serves both:
Hyperscan compiles the expressions into one block-mode database per direction (request rules, response rules)
and says, in one pass, which expressions occur (SINGLEMATCH: each reported at most once per scan); Python's `re`
then runs only the expressions that did occur, to find where (for the evidence) or to extract candidates that
need checks a regular expression cannot do (Luhn, a JWT header that decodes to JSON). All the decoded fields of
all the requests of a batch are scanned at once, joined by NUL bytes (no expression matches across one); only
when something occurs are the requests where it occurs located (one more scan, which reports where matches end),
and only a request where some injection expression occurs has its fields scanned one by one, to say which field
it was. Responses (headers and body) are scanned the same way.

Request fields are decoded before they are scanned, because attacks hide behind encodings: `+` as space in
queries and forms, percent escapes (repeatedly, to undo double encoding, and IIS `%uXXXX`), HTML character
references (`&lt;`, `&#x3c;`, `&#60`), JSON string escapes in JSON bodies, and Log4j lookups that only spell a
word (`${lower:j}`, `${::-j}`, `${env:X:-j}`, `${date:'j'}`). Only the decoded text is scanned; decoding never
makes a field longer, and at most `max_scan_bytes` of each field are read.

Rules are tuned so that ordinary API traffic does not match: prose words such as "select", "union" or "or",
single relative links (`../img.png`), URLs to ordinary hosts and JSON with quotes, ampersands and colons.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

import hyperscan
import numpy as np

from detectors.alert import Alert, RowAlerts
from detectors.batchkeys import columns_of
from detectors.evidence import MAX_EVIDENCE_CHARS, mask_middle
from parsers.memo import HeaderMemo
from parsers.redact import SECRET_NAME
from parsers.transaction import Transaction

REQUEST = "request"
RESPONSE = "response"


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule: what it reports, where it looks, and the expressions whose occurrence means a finding."""

    detector: str
    rule: str
    severity: str
    direction: str  # REQUEST: decoded request fields; RESPONSE: response headers and body
    title: str  # the start of the alert message, e.g. "SQL injection attempt"
    patterns: tuple[bytes, ...]
    caseless: bool = True
    in_headers: bool = True  # False: the rule does not apply to request header values


@dataclass(frozen=True, slots=True)
class Signature:
    """One expression: its Hyperscan id is its index in SignatureSet.signatures."""

    rule: Rule
    pattern: bytes

    @property
    def regex(self) -> re.Pattern[bytes]:
        """The expression for Python's re, compiled at its first use (re keeps it): only findings need it, and
        compiling every rule's took 25 ms of each start."""
        return re.compile(self.pattern, re.DOTALL | (re.IGNORECASE if self.rule.caseless else 0))


# Building blocks. Nothing here can match across a NUL byte, so fields never need separators of their own.
_SQL_GAP = rb"(?:\s|/\*[^*\x00]{0,64}\*/)"  # whitespace or an inline comment, which MySQL treats as a space
_SQL_SEP = rb"(?:\s|/\*[^*\x00]{0,64}\*/|\+|\()"  # also `+` (unconverted space) and `(` before a subquery
_SQL_LITERAL = rb"(?:'[^'\x00]{0,32}'|\"[^\"\x00]{0,32}\"|\d+(?:\.\d+)?)"
# `like`, `is` and `regexp` only where prose would not put them: `'a' or 'b' is ...` is English
_SQL_COMPARE = rb"(?:=|<>|!=|<=?|>=?|\b(?:r?like|regexp)\s*['\"]|\bis\s+(?:not\s+)?null\b)"
_DOTDOT = rb"(?:\.|\xc0\xae|\xc0\x2e|\xe0\x80\xae){2}"  # `..`, also as overlong UTF-8
_SLASH = rb"(?:[/\\]|\xc0\xaf|\xc1\x9c|\xe0\x80\xaf)"
_STEP_UP = _DOTDOT + rb";?" + _SLASH + b"+"
# A shell command separator or substitution. Not a backtick (Markdown quotes code with them): see its own rule.
_SHELL_SEP = rb"(?:[;|]|&&|\$\()"
_EOF = rb"(?:$|[\x00\"])"  # the end of a field (alone or joined by NUL bytes) or of a JSON string
_SHELL_END = rb"\s*(?:[;&\x60#)]|" + _EOF + rb")"
_JS_EVENTS = (
    rb"abort|activate|afterprint|animation[a-z]*|auxclick|before[a-z]*|begin|blur|cancel|canplay[a-z]*|change|"
    rb"click|close|contextmenu|copy|cut|dblclick|drag[a-z]*|drop|durationchange|end|ended|error|focus[a-z]*|"
    rb"formdata|hashchange|input|invalid|key(?:down|press|up)|load[a-z]*|message|mouse[a-z]+|offline|paste|pause|"
    rb"play[a-z]*|pointer[a-z]+|popstate|progress|repeat|reset|resize|scroll[a-z]*|search|seek[a-z]*|select[a-z]*|"
    rb"show|start|storage|submit|toggle|touch[a-z]+|transition[a-z]+|unload|wheel"
)
_URL_AUTHORITY = rb"(?:\b[a-z][a-z0-9+.\-]{1,15}:)?//(?:[^\x00/?#@\s]{0,128}@)?"
_HOST_END = rb"(?:[:/?#\\\s\"'&,;)\]%]|" + _EOF + rb")"
_INTERNAL_IP = (
    rb"(?:169\.254\.\d{1,3}\.\d{1,3}|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|127\.0?\.?1|0\.0\.0\.0|100\.100\.100\.200"
    rb"|2852039166|2130706433|0x0*a9fea9fe|0x0*7f000001|0251\.0376\.0251\.0376|0xa9\.0xfe\.0xa9\.0xfe"
    rb"|0177\.0{1,3}\.0{1,3}\.0{0,2}1|017700000001"
    rb"|\[[0:]{2,24}(?:1|ffff:(?:a9fe:[0-9a-f]{1,4}|7f[0-9a-f]{2}:[0-9a-f]{1,4}|169\.254\.\d{1,3}\.\d{1,3}"
    rb"|127\.\d{1,3}\.\d{1,3}\.\d{1,3}))?\]|\[fd00:ec2::254\]|\[fe80:[0-9a-z:%.]{0,40}\])"
)
_INTERNAL_NAME = rb"(?:localhost|metadata(?:\.google\.internal|\.goog)?|instance-data(?:\.ec2\.internal)?)"

RULES: tuple[Rule, ...] = (
    Rule("injection", "sqli", "high", REQUEST, "SQL injection attempt", (
        # ' OR '1'='1   " or ""="   ') or ('a'='a   1' and 1=1
        rb"['\"\x60]\)*" + _SQL_GAP + rb"*(?:or|and|xor|\|\||&&)" + _SQL_SEP + rb"*"
        + _SQL_LITERAL + rb"\s*" + _SQL_COMPARE,
        rb"['\"]\)*" + _SQL_GAP + rb"*(?:or|and)" + _SQL_SEP + rb"+(?:true|false|not\s+false|\d+)"
        + _SQL_GAP + rb"*(?:--|#|/\*|;|" + _EOF + rb")",
        # 1 OR 1=1   5 and 2>1--
        rb"\b(?:or|and)" + _SQL_GAP + rb"+\d+\s*(?:=|<>|!=|<|>)\s*\d+" + _SQL_GAP
        + rb"*(?:--|#|/\*|;|\)|" + _EOF + rb")",
        # 1 UNION SELECT username,password FROM users--   union all select null,null
        rb"\bunion" + _SQL_SEP + rb"+(?:(?:all|distinct)" + _SQL_SEP + rb"+)?select" + _SQL_SEP
        + rb"+(?:null\b|\d|@@|['\"*(]|[\w.\x60]+\s*(?:,|\(|" + _SQL_GAP + rb"+from\b))",
        # admin'--   x' #   admin')/*
        rb"'\)*" + _SQL_GAP + rb"*;?" + _SQL_GAP + rb"*(?:--|#)[-\s]*(?:\"|" + _EOF + rb")",
        rb"\"\)*" + _SQL_GAP + rb"*;?" + _SQL_GAP + rb"*--[-\s]*" + _EOF,
        rb"'\)*" + _SQL_GAP + rb"*/\*",
        # stacked queries
        rb";" + _SQL_GAP + rb"*(?:drop|truncate)" + _SQL_GAP + rb"+(?:table|database|schema)\b",
        rb";" + _SQL_GAP + rb"*(?:delete" + _SQL_GAP + rb"+from|insert" + _SQL_GAP + rb"+into|alter"
        + _SQL_GAP + rb"+table|shutdown\b|declare" + _SQL_GAP + rb"+@|exec(?:ute)?" + _SQL_GAP
        + rb"+(?:xp_|sp_|master\.))",
        # time-based and error-based probes, file access
        rb"(?:\b(?:and|or|xor|select)|\|\||['\"])" + _SQL_GAP + rb"*\(?" + _SQL_GAP
        + rb"*(?:select" + _SQL_GAP + rb"+)?(?:pg_)?sleep\s*\(\s*\d+(?:\.\d+)?\s*\)",
        rb"\bbenchmark\s*\(\s*\d+\s*,",
        rb"\bwaitfor" + _SQL_GAP + rb"+delay" + _SQL_GAP + rb"+'\d",
        rb"\b(?:extractvalue|updatexml)\s*\(\s*(?:\d|null|rand|concat)",
        rb"\bload_file\s*\(|\binto" + _SQL_GAP + rb"+(?:out|dump)file\b|\bxp_cmdshell\b",
        rb"\binformation_schema\s*\.\s*(?:tables|columns|schemata)\b",
        rb"@@version\b|\bchar\(\d+\)\s*(?:\+|\|\||,)\s*char\(\d+\)",
    )),
    Rule("injection", "xss", "high", REQUEST, "Cross-site scripting attempt", (
        rb"<script\b|</script\s*>",
        rb"<[a-z][\w:-]*[\s/][^\x00>]{0,256}[\s/\"'\x60]on(?:" + _JS_EVENTS + rb")\s*=",
        rb"<[a-z][\w:-]*[\s/]on(?:" + _JS_EVENTS + rb")\s*=",
        rb"\b(?:java|vb)\s*script\s*:\s*(?:[\w$.]+\s*[(\x60]|//|/\*|void\b|\x60|\[|\{)",
        rb"<\s*iframe\b[^\x00>]{0,256}\bsrcdoc\s*=",
        rb"\bdata:text/html[;,]",
        rb"\bdocument\s*\.\s*(?:cookie|domain)\b|\bdocument\s*\.\s*write\s*\(",
        rb"<[a-z][\w:-]*[\s/][^\x00>]{0,256}\bstyle\s*=[^\x00>]{0,256}\bexpression\s*\(",
    )),
    Rule("injection", "path_traversal", "high", REQUEST, "Path traversal attempt", (
        _STEP_UP + _STEP_UP + _DOTDOT + rb"(?:;?" + _SLASH + rb"|" + _EOF + rb")",
        _STEP_UP + rb"(?:" + _STEP_UP + rb"){0,8}(?:(?:etc|proc|windows|winnt|root|\.ssh|\.aws|\.git|web-inf"
        rb"|meta-inf)" + _SLASH + rb"|var" + _SLASH + rb"log\b|(?:boot\.ini|win\.ini|\.env|\.htaccess"
        rb"|\.htpasswd|web\.config|wp-config\.php|id_rsa|passwd|shadow)\b)",
        rb"/etc/(?:passwd|shadow|group|sudoers)\b|/proc/self/(?:environ|cmdline|maps|mem|fd/)"
        rb"|\b[a-z]:\\+windows\\+(?:win\.ini|system32\\)|\b(?:win|boot)\.ini\b",
    )),
    Rule("injection", "cmd_injection", "critical", REQUEST, "OS command injection attempt", (
        # ;cat /etc/passwd   && cat ~/.ssh/id_rsa   $(cat /etc/hosts)
        _SHELL_SEP + rb"\s*(?:cat|head|tail|more|less|tac|nl|base64|xxd|strings)\s+(?:-[\w-]+\s+)*[/~$.]",
        # | id   ;whoami   && uname -a   & whoami
        _SHELL_SEP + rb"\s*(?:id|whoami|uname(?:\s+-[a-z]+)?|ifconfig|ipconfig|hostname|pwd|env|printenv"
        rb"|ls(?:\s+-[a-z]+)*(?:\s+/[\w/.-]*)?|ps(?:\s+-?[a-z]+)?|netstat(?:\s+-[a-z]+)?|systeminfo)" + _SHELL_END,
        rb"&\s*(?:whoami|uname\s+-a|ifconfig|ipconfig|systeminfo|net\s+user)" + _SHELL_END,
        rb"\$\(\s*(?:whoami|id|uname|cat|curl|wget|ls|pwd|env|sleep|ping|nslookup|dig|bash|sh|nc|python[23]?"
        rb"|perl|echo|hostname)\b[^\x00)]{0,128}\)",
        rb"\x60\s*(?:whoami|uname(?:\s+-a)?|ifconfig|hostname|cat\s+/[\w/.-]+|curl\s+[^\s\x60\x00]+|wget\s+[^\s\x60\x00]+"
        rb"|sleep\s+\d+|ping\s+-[cn]\s*\d+[^\x60\x00]{0,64}|nslookup\s+[^\s\x60\x00]+)\s*\x60",
        _SHELL_SEP + rb"\s*sleep\s+\d+" + _SHELL_END,
        _SHELL_SEP + rb"\s*ping\s+-[cn]\s*\d+",
        rb"[;&|\x60]\s*(?:curl|wget)\s+(?:-[\w-]+\s+)*(?:https?|ftp)://",
        rb"\b(?:curl|wget)\s+(?:-[\w-]+\s+)*(?:https?|ftp)://[^\s\x00|;]+\s*\|\s*(?:ba|z|da)?sh\b",
        rb"[;&|\x60]\s*(?:/bin/|/usr/bin/)?(?:ba|z|da|k)?sh\s+-[ic]\b|[;&|\x60]\s*/bin/(?:ba|z|da)?sh\b",
        rb"\|\s*(?:ba|z|da)?sh\s*(?:[;&#]|" + _EOF + rb")",
        rb"/dev/tcp/\d|\bnc(?:at)?\s+(?:-\w+\s+)*-e\s+/bin/|\$\{IFS\}|;\s*rm\s+-[rf]{1,2}\s+/",
    ), caseless=False),
    Rule("injection", "cmd_injection", "critical", REQUEST, "OS command injection attempt", (
        rb"\bpowershell(?:\.exe)?\s+(?:-\w+\s+)*-(?:e|enc|encodedcommand|c|command|nop|noprofile|w)\b",
        rb"[;&|]\s*cmd(?:\.exe)?\s+/[ck]\s",
    )),
    Rule("injection", "jndi", "critical", REQUEST, "JNDI lookup injection attempt (Log4Shell)", (
        rb"\$\{\s*jndi\s*:",
        rb"\$\{[^\x00}]{0,80}\$\{(?:lower|upper|::-|env:|sys:|date:|k8s:|main:|base64:|java:|ctx:|web:|bundle:"
        rb"|docker:|spring:|event:|jvmrunargs:|log4j:|marker:|sd:|map:)",
    )),
    Rule("injection", "ssrf", "high", REQUEST, "SSRF attempt towards an internal or cloud-metadata address", (
        _URL_AUTHORITY + _INTERNAL_IP + rb"(?:[.:/?#\\\s\"'&,;)\]%]|" + _EOF + rb")",
        _URL_AUTHORITY + _INTERNAL_NAME + _HOST_END,
        rb"//[^\x00/\s]{1,253}/(?:latest/(?:meta-data|user-data|api/token|dynamic/instance-identity)"
        rb"|computeMetadata/v1|metadata/(?:instance|identity)\?)",
        rb"\b(?:gopher|dict)://",
    ), in_headers=False),
    Rule("data_exposure", "credit_card", "high", RESPONSE, "Credit card number", (
        rb"(?:^|[^0-9A-Za-z.])(?:4\d|5[1-5]|2[2-7]|3[0-9]|6[0-9])\d{11,17}",
        rb"(?:^|[^0-9A-Za-z.])(?:[2-6]\d{3}[ -]\d{4}[ -]\d{4}[ -]\d{4}|3\d{3}[ -]\d{6}[ -]\d{4,5})",
    ), caseless=False),
    Rule("data_exposure", "ssn", "high", RESPONSE, "US social security number", (rb"\d{3}-\d{2}-\d{4}",),
         caseless=False),
    Rule("data_exposure", "jwt", "medium", RESPONSE, "JSON web token", (
        rb"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.",
    ), caseless=False),
    Rule("data_exposure", "aws_key", "critical", RESPONSE, "AWS access key", (rb"(?:AKIA|ASIA)[A-Z0-9]{16}",),
         caseless=False),
    Rule("data_exposure", "aws_key", "critical", RESPONSE, "AWS secret access key", (
        rb"aws_?secret_?access_?key[\"'\s:=]{1,6}[A-Za-z0-9/+]{40}",
    )),
    Rule("data_exposure", "private_key", "critical", RESPONSE, "Private key", (
        rb"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----",
    ), caseless=False),
    Rule("data_exposure", "email_bulk", "medium", RESPONSE, "Bulk email addresses", (
        rb"[a-z0-9._%+-]@[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){0,8}\.[a-z]{2,24}",
    )),
)  # fmt: skip


def _cache_path(expressions: list[bytes], flags: list[int], ids: list[int]) -> Path:
    digest = hashlib.sha256(repr((expressions, flags, ids, hyperscan.__version__)).encode()).hexdigest()[:24]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "apispy" / f"hyperscan-{digest}.db"


def _compiled_database(expressions: list[bytes], flags: list[int], ids: list[int]) -> hyperscan.Database:
    """The rules' Hyperscan database, loaded from the on-disk cache when the same rules were compiled before.

    Compiling takes about 0.3 s; like numba's cache, the compiled form is kept (keyed by the expressions, their
    flags and the Hyperscan version) so that every run after the first starts at once. A cache that cannot be
    read or written is ignored.
    """
    path = _cache_path(expressions, flags, ids)
    try:
        database = hyperscan.loadb(path.read_bytes(), mode=hyperscan.HS_MODE_BLOCK)
        # A deserialised database comes without scratch space; scanning needs one.
        database.scratch = hyperscan.Scratch(database)
        return database
    except (OSError, hyperscan.error):
        pass
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(expressions=expressions, ids=ids, elements=len(expressions), flags=flags)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(hyperscan.dumpb(database))
        temporary.replace(path)
    except OSError:
        pass
    return database


UNIT_GROUP = 16  # units per group when a batch's matches are too many to locate (see SignatureSet._units_by_groups)
# Matches one locating scan may report before units are found by scanning groups instead: each costs a Python call.
LOCATE_MAX_MATCHES = 2048


class SignatureSet:
    """All rules' expressions in one Hyperscan block-mode database, with their Python twins.

    One instance is not safe to use from two threads at once (its Hyperscan scratch space is shared).
    """

    def __init__(self, rules: Sequence[Rule] = RULES) -> None:
        self.signatures: list[Signature] = []
        flags: list[int] = []
        for rule in rules:
            for pattern in rule.patterns:
                self.signatures.append(Signature(rule, pattern))
                hs_flags = hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_SINGLEMATCH
                flags.append(hs_flags | (hyperscan.HS_FLAG_CASELESS if rule.caseless else 0))
        # One database per direction: a request is never scanned for card numbers, nor a response for SQL
        # injection, and the response rules alone scan a response about twice as fast as all rules together.
        # Each direction also has a locating twin without SINGLEMATCH, which reports where every match ends
        # (see units_with_hits).
        self.databases: dict[str, hyperscan.Database] = {}
        self.locators: dict[str, hyperscan.Database] = {}
        for direction in (REQUEST, RESPONSE):
            ids = [index for index, signature in enumerate(self.signatures) if signature.rule.direction == direction]
            if ids:
                expressions = [self.signatures[index].pattern for index in ids]
                self.databases[direction] = _compiled_database(expressions, [flags[index] for index in ids], ids)
                self.locators[direction] = _compiled_database(
                    expressions, [flags[index] & ~hyperscan.HS_FLAG_SINGLEMATCH for index in ids], ids
                )
        self._hits: list[int] = []

    def scan(self, data: bytes, direction: str | None = None) -> list[int]:
        """Ids (indices into `signatures`) of the expressions of `direction` (REQUEST, RESPONSE or None for
        both) that occur in `data`, each once, in the order Hyperscan found them. The list is reused by the next
        call: copy it (or sort it) to keep it."""
        hits = self._hits
        hits.clear()
        for name, database in self.databases.items():
            if direction is None or name == direction:
                database.scan(data, match_event_handler=_collect, context=hits)
        return hits

    def texts_with_hits(self, texts: Sequence[bytes], direction: str) -> np.ndarray | None:
        """The indices (ascending) of the texts in which some expression of `direction` occurs, from one scan of
        them all joined by NUL bytes; None when they hold more than LOCATE_MAX_MATCHES matches (a body full of
        numbers, say), which are not worth a Python call each.

        The locating database reports where each match ends, which marks the text it ends in. Nothing matches
        across a NUL byte, except that an expression may take the NUL itself where it would take the end of the
        text, which marks the text before it, as scanning that text alone would.
        """
        ends: list[int] = []
        try:
            self.locators[direction].scan(b"\x00".join(texts), match_event_handler=_collect_end, context=ends)
        except hyperscan.ScanTerminated:
            return None
        if not ends:
            return np.empty(0, dtype=np.int64)
        # Text k takes the joined bytes [starts[k], starts[k + 1] - 1), then its NUL.
        starts = np.zeros(len(texts), dtype=np.int64)
        np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))[:-1] + 1, out=starts[1:])
        return sorted_distinct(np.searchsorted(starts, np.array(ends, dtype=np.int64) - 1, side="right") - 1)

    def units_with_hits(self, parts: Sequence[bytes], bounds: Sequence[int], direction: str) -> list[int]:
        """The units in which some expression of `direction` occurs, in order. Unit i is
        parts[bounds[i]:bounds[i + 1]] (a request's fields, a response's headers and body); its parts are scanned
        joined by NUL bytes. Callers first scan their whole batch once (each distinct header list once), and
        call this only when that scan hits.

        A Hyperscan call costs about 0.8 us before the first byte, more than scanning a small request, so the
        units are not scanned one by one: the parts are located in one scan (texts_with_hits), or, past its
        match limit, groups of units are scanned, then the single units of the groups that hit.
        """
        hit_parts = self.texts_with_hits(parts, direction)
        if hit_parts is None:
            return self._units_by_groups(parts, bounds, direction)
        units = np.searchsorted(np.asarray(bounds, dtype=np.int64), hit_parts, side="right") - 1
        return sorted_distinct(units).tolist()

    def _units_by_groups(self, parts: Sequence[bytes], bounds: Sequence[int], direction: str) -> list[int]:
        """units_with_hits by scanning: groups of UNIT_GROUP units as one text, then the single units of the
        groups that hit (nothing matches across a NUL byte, and SINGLEMATCH reports every expression that occurs
        anywhere)."""
        units = len(bounds) - 1
        found: list[int] = []
        for first in range(0, units, UNIT_GROUP):
            last = min(units, first + UNIT_GROUP)
            if units > UNIT_GROUP and not self.scan(b"\x00".join(parts[bounds[first] : bounds[last]]), direction):
                continue
            for unit in range(first, last):
                if self.scan(b"\x00".join(parts[bounds[unit] : bounds[unit + 1]]), direction):
                    found.append(unit)
        return found


def _collect(signature_id: int, start: int, end: int, flags: int, hits: list[int]) -> None:
    hits.append(signature_id)


def _collect_end(signature_id: int, start: int, end: int, flags: int, ends: list[int]) -> bool:
    """Keeps where a match ends; True (stop the scan) once there are too many to locate this way."""
    ends.append(end)
    return len(ends) >= LOCATE_MAX_MATCHES


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """What np.unique gives for a 1-D array, its distinct values in order. Not np.unique itself: in numpy 2.4 its
    first call imports numpy.ma (to ask whether the array is masked), 44 ms of the run that first scans a hit."""
    ordered = np.sort(values)
    keep = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


# ---------------------------------------------------------------------------------------------------------------
# Field decoding

_NEEDS_DECODING = re.compile(rb"[%&+$\\]").search
_PERCENT_U = re.compile(rb"%u([0-9A-Fa-f]{4})", re.IGNORECASE)
_ENTITY = re.compile(rb"&(?:#[xX]([0-9a-fA-F]{1,6})|#([0-9]{1,7})|([A-Za-z]{2,8}));?")
_NAMED_ENTITIES = {
    b"lt": b"<", b"gt": b">", b"quot": b'"', b"apos": b"'", b"amp": b"&", b"sol": b"/", b"bsol": b"\\",
    b"colon": b":", b"semi": b";", b"lpar": b"(", b"rpar": b")", b"period": b".", b"dollar": b"$", b"lcub": b"{",
    b"rcub": b"}", b"grave": b"`", b"tab": b"\t", b"newline": b"\n", b"nbsp": b" ", b"excl": b"!", b"num": b"#",
    b"percnt": b"%", b"equals": b"=", b"vert": b"|", b"verbar": b"|", b"lsqb": b"[", b"rsqb": b"]",
}  # fmt: skip
_JSON_ESCAPE = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|([\"\\/bfnrt]))")
_JSON_SIMPLE_ESCAPES = {b'"': b'"', b"\\": b"\\", b"/": b"/", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r",
                        b"t": b"\t"}  # fmt: skip
_LOOKUP_CASE = re.compile(rb"\$\{(?:lower|upper):([^${}]*)\}", re.IGNORECASE)
_LOOKUP_DEFAULT = re.compile(rb"\$\{(?!\s*jndi\s*:)[^${}]*?:-([^${}]*)\}", re.IGNORECASE)
_LOOKUP_DATE = re.compile(rb"\$\{date:'([^'${}]*)'\}", re.IGNORECASE)
MAX_LOOKUP_ROUNDS = 8
MAX_CODE_POINT = 0x10FFFF
ASCII_LIMIT = 0x80


def _code_point(code: int, original: bytes) -> bytes:
    if code < ASCII_LIMIT:
        return bytes((code,))
    if code > MAX_CODE_POINT or 0xD800 <= code <= 0xDFFF:
        return original
    return chr(code).encode("utf-8")


def _percent_u(match: re.Match[bytes]) -> bytes:
    return _code_point(int(match.group(1), 16), match.group(0))


def _entity(match: re.Match[bytes]) -> bytes:
    hex_code, decimal_code, name = match.groups()
    if name is not None:
        return _NAMED_ENTITIES.get(name.lower(), match.group(0))
    return _code_point(int(hex_code, 16) if hex_code is not None else int(decimal_code), match.group(0))


def _json_escape(match: re.Match[bytes]) -> bytes:
    if match.group(1) is not None:
        return _code_point(int(match.group(1), 16), match.group(0))
    return _JSON_SIMPLE_ESCAPES[match.group(2)]


def decode_field(data: bytes, rounds: int = 3, plus_as_space: bool = False, json_escapes: bool = False) -> bytes:
    """The text an attack in `data` would mean once the application has decoded it.

    `plus_as_space` for query and form values (only the wire `+`, not a decoded `%2B`); `json_escapes` for JSON
    bodies. Then up to `rounds` rounds of percent and HTML-entity decoding (stopping when a round changes
    nothing), then Log4j lookups that only spell a word are replaced by that word.
    """
    if _NEEDS_DECODING(data) is None:
        return data
    if json_escapes and b"\\" in data:
        data = _JSON_ESCAPE.sub(_json_escape, data)
    if plus_as_space and b"+" in data:
        data = data.replace(b"+", b" ")
    for _ in range(rounds):
        decoded = data
        if b"%" in decoded:
            decoded = unquote_to_bytes(decoded)
            if b"%u" in decoded or b"%U" in decoded:
                decoded = _PERCENT_U.sub(_percent_u, decoded)
        if b"&" in decoded:
            decoded = _ENTITY.sub(_entity, decoded)
        if decoded == data:
            break
        data = decoded
    if b"${" in data:
        data = deobfuscate_lookups(data)
    return data


def deobfuscate_lookups(data: bytes) -> bytes:
    """`${${lower:j}ndi:` -> `${jndi:`: resolve the Log4j lookups attackers use to spell words, innermost first."""
    for _ in range(MAX_LOOKUP_ROUNDS):
        resolved = _LOOKUP_CASE.sub(rb"\1", data)
        resolved = _LOOKUP_DEFAULT.sub(rb"\1", resolved)
        resolved = _LOOKUP_DATE.sub(rb"\1", resolved)
        if resolved == data:
            break
        data = resolved
    return data


# ---------------------------------------------------------------------------------------------------------------
# Evidence

_SECRET_ASSIGNMENT = re.compile(
    r"(?i)((?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|access[_-]?key|auth(?:orization)?|session(?:id)?"
    r"|credentials?|private[_-]?key)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+|basic\s+)?)([^\"'&\s,;}]+)"
)
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9+/_\-]{24,}={0,2}")
MAX_MATCH_EVIDENCE_CHARS = 100
EVIDENCE_CONTEXT_CHARS = 24


def scrub(text: str) -> str:
    """Mask what looks like a secret in an evidence excerpt: values of secret-named fields and long tokens."""
    text = _SECRET_ASSIGNMENT.sub(lambda match: match.group(1) + "***", text)
    return _TOKEN_LIKE.sub(lambda match: mask_middle(match.group(0)), text)


def printable(data: bytes, limit: int = MAX_EVIDENCE_CHARS) -> str:
    """Bytes shown safely: latin-1 so every byte survives, control characters escaped, cut to `limit`."""
    text = data[: limit * 2].decode("latin-1")
    text = "".join(character if character.isprintable() else f"\\x{ord(character):02x}" for character in text)
    return text[:limit]


def match_evidence(signature: Signature, text: bytes, sensitive: bool) -> str:
    """The matched part of `text`, with some context unless the field is sensitive (a credential's header, cookie
    or parameter), where only the matched attack substring itself is shown. Always scrubbed."""
    match = signature.regex.search(text)
    if match is None:
        return "(match position unavailable)"
    start, end = match.span()
    end = min(end, start + MAX_MATCH_EVIDENCE_CHARS)
    if not sensitive:
        start = max(0, start - EVIDENCE_CONTEXT_CHARS)
        end = min(len(text), end + EVIDENCE_CONTEXT_CHARS)
    return scrub(printable(text[start:end]))


# ---------------------------------------------------------------------------------------------------------------
# Request fields

KIND_PATH = "path"
KIND_QUERY = "query parameter"
KIND_QUERY_NAME = "query parameter name"
KIND_HEADER = "header"
KIND_COOKIE = "cookie"
KIND_FORM = "form field"
KIND_FORM_NAME = "form field name"
KIND_BODY = "body"
HEADER_KINDS = frozenset((KIND_HEADER, KIND_COOKIE))
_PLAIN_NAME = re.compile(rb"[A-Za-z0-9_.\-\[\]]*")
_SENSITIVE_HEADERS = frozenset((b"authorization", b"proxy-authorization", b"cookie", b"set-cookie"))
MAX_NAME_BYTES = 64
MAX_NAME_CHARS = 40

# A decoded request field: (kind, raw name, decoded text). The name is a parameter, header, cookie or form field
# name, empty for the path and the body. Plain tuples: a request has a dozen fields and most are never reported.
Field = tuple[str, bytes, bytes]


def field_location(field: Field) -> str:
    """Where a field is, for a message: "query parameter `id`", "the path", "header `user-agent`"."""
    kind, name, _ = field
    if kind == KIND_PATH:
        return "the path"
    if kind == KIND_BODY:
        return "the request body"
    return f"{kind} `{printable(name[:MAX_NAME_BYTES], MAX_NAME_CHARS)}`"


def field_sensitive(field: Field) -> bool:
    """Whether a field may carry a credential (Authorization, cookies, `password=`...): evidence then quotes only
    the matched attack substring, no context."""
    kind, name, _ = field
    if kind == KIND_COOKIE or (kind == KIND_HEADER and name in _SENSITIVE_HEADERS):
        return True
    return bool(name) and SECRET_NAME.match(name[:MAX_NAME_BYTES].decode("latin-1")) is not None


def _pairs(
    fields: list[Field], raw: bytes, separator: bytes, value_kind: str, name_kind: str, rounds: int, limit: int
) -> None:
    for part in raw[:limit].split(separator):
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        name = decode_field(raw_name, rounds, plus_as_space=True)
        if not _PLAIN_NAME.fullmatch(name):
            fields.append((name_kind, name, name))
        if raw_value:
            fields.append((value_kind, name, decode_field(raw_value, rounds, plus_as_space=True)))


def request_fields(
    target: str,
    headers: Sequence[tuple[bytes, bytes]],
    body: bytes,
    content_type: str,
    max_scan_bytes: int = 65536,
    rounds: int = 3,
) -> list[Field]:
    """The decoded fields of a request: path, query names and values, body, header values (each cookie apart).

    The path and query come from the request-target as on the wire (before redaction). A form body is split into
    fields like a query; a JSON body is one field with its string escapes decoded; any other body is one field.
    Parameter names are fields only when they hold more than letters, digits and `_.-[]`.
    """
    fields = _target_and_body_fields(target, body, content_type, max_scan_bytes, rounds)
    fields.extend(header_fields(headers, max_scan_bytes, rounds))
    return fields


def _target_and_body_fields(
    target: str, body: bytes, content_type: str, max_scan_bytes: int, rounds: int
) -> list[Field]:
    fields = _target_fields(target, max_scan_bytes, rounds)
    _add_body_fields(fields, body, content_type, max_scan_bytes, rounds)
    return fields


def _target_fields(target: str, max_scan_bytes: int, rounds: int) -> list[Field]:
    """The decoded fields of a request-target: its path, then its query's names and values."""
    path, query = _target_parts(target)
    fields = [_path_field(path, max_scan_bytes, rounds)]
    if query:
        _add_query_fields(fields, query, max_scan_bytes, rounds)
    return fields


def _target_parts(target: str) -> tuple[bytes, bytes]:
    """A request-target's path and query (without the fragment), as bytes."""
    return _raw_target_parts(target.encode("latin-1", "replace"))


def _raw_target_parts(raw: bytes) -> tuple[bytes, bytes]:
    path, _, query = raw.partition(b"#")[0].partition(b"?")
    return path, query


def _path_field(path: bytes, max_scan_bytes: int, rounds: int) -> Field:
    return KIND_PATH, b"", decode_field(path[:max_scan_bytes], rounds)


def _add_query_fields(fields: list[Field], query: bytes, max_scan_bytes: int, rounds: int) -> None:
    _pairs(fields, query, b"&", KIND_QUERY, KIND_QUERY_NAME, rounds, max_scan_bytes)


_FORM_TYPE = "x-www-form-urlencoded"


def _add_body_fields(fields: list[Field], body: bytes, content_type: str, max_scan_bytes: int, rounds: int) -> None:
    if body:
        media = content_type.lower()
        if _FORM_TYPE in media:
            _pairs(fields, body, b"&", KIND_FORM, KIND_FORM_NAME, rounds, max_scan_bytes)
        else:
            is_json = "json" in media or body[:1] in (b"{", b"[")
            fields.append((KIND_BODY, b"", decode_field(body[:max_scan_bytes], rounds, json_escapes=is_json)))


# API clients call the same targets again and again (list pages, polling, health checks), so the decoded texts
# of a target's fields are remembered for the batch scan: at most TARGET_MEMO_ENTRIES targets (forgotten all at
# once when full) of at most TARGET_MEMO_MAX_CHARS characters, per (max_scan_bytes, rounds).
TARGET_MEMO_ENTRIES = 4096
TARGET_MEMO_MAX_CHARS = 512
_target_memo: dict[tuple[int, int], dict[str, list[bytes]]] = {}
_query_memo: dict[tuple[int, int], dict[bytes, list[bytes]]] = {}  # the same for queries (see _target_texts)


# What a target needs split (query, fragment) or decoded before it is scanned.
_SPLIT_OR_DECODE = re.compile(rb"[%&+$\\?#]")
_PATH_ENDS = frozenset(b"?#")  # of those, the ones that end a path: before the first of them, nothing to decode
QUESTION_MARK, HASH = ord("?"), ord("#")
# The same bytes, to find them all in a batch's joined targets with a numpy comparison each (a generator over the
# regex's matches took some 45 us a batch of 512). Seven comparisons, each a vector loop, beat looking every byte up
# in a table of 256 (a gather, element by element): 57 us against 203 a batch of 4,096 targets, and some 35M
# instructions fewer over the bench subset (callgrind).
_SPLIT_OR_DECODE_BYTES = [byte for byte in range(256) if _SPLIT_OR_DECODE.match(bytes([byte])) is not None]


def _split_or_decode_marks(joined: bytes) -> np.ndarray:
    """The offsets in `joined` of the bytes `_SPLIT_OR_DECODE` matches, in order."""
    text = np.frombuffer(joined, np.uint8)
    first, *others = _SPLIT_OR_DECODE_BYTES
    found = text == first
    for byte in others:
        found |= text == byte
    return np.flatnonzero(found)


def _target_texts(memo: dict[str, list[bytes]], target: str, max_scan_bytes: int, rounds: int) -> list[bytes]:
    """The texts of `_target_fields(target)`, remembered in `memo`. The list is shared: do not change it.

    Targets that differ by an id in the path often carry the same query (`/users/923?fields=name`): a query's
    texts are remembered apart, by the query, so that only the path is decoded for such a target."""
    texts = memo.get(target)
    if texts is None:
        raw = target.encode("latin-1", "replace")
        if _SPLIT_OR_DECODE.search(raw) is None:
            return [raw[:max_scan_bytes]]  # a bare path with nothing to decode (/users/42): its own only field
        path, query = _raw_target_parts(raw)
        texts = [_path_field(path, max_scan_bytes, rounds)[2]]
        if query:
            texts += _query_texts(_query_memo_of(max_scan_bytes, rounds), query, max_scan_bytes, rounds)
        if len(target) <= TARGET_MEMO_MAX_CHARS:
            if len(memo) >= TARGET_MEMO_ENTRIES:
                memo.clear()
            memo[target] = texts
    return texts


def _query_memo_of(max_scan_bytes: int, rounds: int) -> dict[bytes, list[bytes]]:
    """The query memo for these settings (see _target_texts), made at first use."""
    query_memo = _query_memo.get((max_scan_bytes, rounds))
    if query_memo is None:
        query_memo = _query_memo[max_scan_bytes, rounds] = {}
    return query_memo


def _query_texts(query_memo: dict[bytes, list[bytes]], query: bytes, max_scan_bytes: int, rounds: int) -> list[bytes]:
    """The texts of a query's fields, remembered in `query_memo` (see _target_texts). The list is shared."""
    query_texts = query_memo.get(query)
    if query_texts is None:
        fields: list[Field] = []
        _add_query_fields(fields, query, max_scan_bytes, rounds)
        query_texts = [text for _, _, text in fields]
        if len(query) <= TARGET_MEMO_MAX_CHARS:
            if len(query_memo) >= TARGET_MEMO_ENTRIES:
                query_memo.clear()
            query_memo[query] = query_texts
    return query_texts


def _marked_target_texts(
    joined: bytes, targets: list[str], memo: dict[str, list[bytes]], max_scan_bytes: int, rounds: int,
    lengths: np.ndarray | None = None,
) -> list[bytes]:  # fmt: skip
    """The texts of `_target_texts` of every target of a batch with something to split or decode, from `joined`
    (the targets as latin-1, each followed by a NUL). A target whose first such byte is "?" or "#" has a path with
    nothing to decode: its path and its query are cut from `joined` itself, which the batch has just read, rather
    than from each target, made long before; only the others go through `_target_texts`. `lengths`: the targets'
    lengths where the caller has them (the batch's columns do)."""
    if lengths is None:
        lengths = np.fromiter(map(len, targets), dtype=np.int64, count=len(targets))
    ends = np.cumsum(lengths + 1)  # each target's NUL
    marks = _split_or_decode_marks(joined)
    owners, first_marks = np.unique(np.searchsorted(ends, marks, side="right"), return_index=True)
    query_memo = _query_memo_of(max_scan_bytes, rounds)
    texts: list[bytes] = []
    for index, mark, start, end in zip(
        owners.tolist(), marks[first_marks].tolist(), (ends - lengths - 1)[owners].tolist(),
        (ends - 1)[owners].tolist(), strict=True,
    ):  # fmt: skip
        first = joined[mark]
        if first not in _PATH_ENDS:
            texts += _target_texts(memo, targets[index], max_scan_bytes, rounds)
            continue
        texts.append(joined[start:mark][:max_scan_bytes])  # as _target_texts: the path as it is
        if first == QUESTION_MARK:  # else a fragment: no query
            query = joined[mark + 1 : end]
            if HASH in query:
                query = query.partition(b"#")[0]
            if query:
                texts += query_memo.get(query) or _query_texts(query_memo, query, max_scan_bytes, rounds)
    return texts


# Clients send the same headers request after request (User-Agent, Accept, Host, a session's cookie or token), so
# the decoded header fields are remembered per exact header list, with their texts joined for scanning: at most
# HEADER_MEMO_ENTRIES lists (forgotten all at once when full), each of at most HEADER_MEMO_MAX_BYTES decoded bytes,
# a few MB in all.
HEADER_MEMO_ENTRIES = 2048
HEADER_MEMO_MAX_BYTES = 4096
_header_memo: dict[tuple[tuple[tuple[bytes, bytes], ...], int, int], tuple[list[Field], bytes]] = {}
_header_lists: HeaderMemo[tuple[int, int, tuple[list[Field], bytes]]] = HeaderMemo(HEADER_MEMO_ENTRIES)


def header_fields(headers: Sequence[tuple[bytes, bytes]], max_scan_bytes: int, rounds: int) -> list[Field]:
    """The decoded fields of a request's header values, each cookie apart. The list is shared: do not change it."""
    return _header_entry(headers, max_scan_bytes, rounds)[0]


def _header_entry(
    headers: Sequence[tuple[bytes, bytes]], max_scan_bytes: int, rounds: int
) -> tuple[list[Field], bytes]:
    """(header_fields, their texts joined by NUL bytes), remembered: by the list's identity (a head the parser
    remembered comes back as the same list), then by its content."""
    shared = _header_lists.get(headers)
    if shared is not None and shared[0] == max_scan_bytes and shared[1] == rounds:
        return shared[2]
    key = (tuple(headers), max_scan_bytes, rounds)
    entry = _header_memo.get(key)
    if entry is not None:
        return entry
    fields = []
    for name, value in headers:
        if name == b"cookie":
            for crumb in value[:max_scan_bytes].split(b";"):
                cookie_name, _, cookie_value = crumb.strip().partition(b"=")
                if cookie_value:
                    fields.append((KIND_COOKIE, cookie_name, decode_field(cookie_value, rounds)))
        else:
            value = value[:max_scan_bytes]
            fields.append((KIND_HEADER, name, value if _NEEDS_DECODING(value) is None else decode_field(value, rounds)))
    entry = (fields, b"\x00".join([text for _, _, text in fields]))
    size = sum(len(name) + len(text) for _, name, text in fields)
    if size <= HEADER_MEMO_MAX_BYTES:
        if len(_header_memo) >= HEADER_MEMO_ENTRIES:
            _header_memo.clear()
        _header_memo[key] = entry
        _header_lists.put(headers, (max_scan_bytes, rounds, entry))
    return entry


def scan_fields(signatures: SignatureSet, fields: Sequence[Field]) -> list[tuple[Signature, Field]]:
    """The first (signature, field) where each request rule occurs, in field order (each field scanned alone)."""
    reported: set[str] = set()
    findings = []
    by_id = signatures.signatures
    for field in fields:
        hits = signatures.scan(field[2], REQUEST)
        if not hits:
            continue
        for signature_id in sorted(hits):
            signature = by_id[signature_id]
            rule = signature.rule
            if rule.direction != REQUEST or rule.rule in reported:
                continue
            if field[0] in HEADER_KINDS and not rule.in_headers:
                continue
            reported.add(rule.rule)
            findings.append((signature, field))
    return findings


def injection_alerts_batch(
    signatures: SignatureSet, transactions: Sequence[Transaction], max_scan_bytes: int = 65536, rounds: int = 3
) -> RowAlerts:
    """The injection alerts of each request of a batch, at most one per rule per request.

    The batch is scanned once as a whole; only when an injection expression occurs somewhere are the requests
    scanned as units (SignatureSet.units_with_hits), and only those where one occurs have their fields scanned
    one by one, to say which field it was. The score is a confidence in 0..1; a signature match counts as
    certain (1.0).
    """
    alerts = RowAlerts()
    memo = _target_memo.setdefault((max_scan_bytes, rounds), {})
    # First, whether anything occurs at all. The targets go in as they are on the wire, all in one text: a target
    # with nothing to split or decode is its own only field; those with something (found in that one text)
    # also go in as their decoded fields. Then each distinct header list of the batch, once.
    columns = columns_of(transactions)
    targets = columns.targets
    joined = "\x00".join(targets).encode("latin-1", "replace")
    texts = [joined]
    if _SPLIT_OR_DECODE.search(joined) is not None:
        texts += _marked_target_texts(joined, targets, memo, max_scan_bytes, rounds, columns.target_lengths)
    plain_bodies: list[Transaction] = []  # bodies that are one field each (not forms): see _plain_body_texts
    for row in np.flatnonzero(columns.body_lengths[: len(targets)]).tolist():  # the first lengths: the requests'
        transaction = transactions[row]
        if _FORM_TYPE in transaction.req_content_type.lower():
            texts += _body_texts(transaction, max_scan_bytes, rounds)
        else:
            plain_bodies.append(transaction)
    for header_list in columns.distinct_req_headers:
        if header_list:
            texts.append(_header_entry(header_list, max_scan_bytes, rounds)[1])
    if plain_bodies:
        texts += _plain_body_texts(plain_bodies, max_scan_bytes, rounds)
    if not signatures.scan(b"\x00".join(texts), REQUEST):
        return alerts
    # Then which requests: each one's texts as a unit.
    parts: list[bytes] = []
    bounds = [0]
    for transaction, target, header_list in zip(transactions, targets, columns.req_headers, strict=True):
        parts += _target_texts(memo, target, max_scan_bytes, rounds)
        if transaction.req_body:
            parts += _body_texts(transaction, max_scan_bytes, rounds)
        if header_list:
            parts.append(_header_entry(header_list, max_scan_bytes, rounds)[1])
        bounds.append(len(parts))
    for index in signatures.units_with_hits(parts, bounds, REQUEST):
        transaction = transactions[index]
        fields = request_fields(
            transaction.raw_target or transaction.uri, transaction.req_headers, transaction.req_body,
            transaction.req_content_type, max_scan_bytes, rounds,
        )  # fmt: skip
        alerts[index] = _injection_alerts(transaction, scan_fields(signatures, fields))
    return alerts


def _plain_body_texts(transactions: list[Transaction], max_scan_bytes: int, rounds: int) -> list[bytes]:
    """The texts of request bodies that are not forms, for the batch scan: each is its body's only field, and
    most need no decoding, which one search over them all joined tells; decoded one by one only if some do."""
    bodies = [transaction.req_body[:max_scan_bytes] for transaction in transactions]
    joined = b"\x00".join(bodies)
    if _NEEDS_DECODING(joined) is None:
        return [joined]  # NUL-separated, as the batch's texts are joined: the same text to scan
    return [text for transaction in transactions for text in _body_texts(transaction, max_scan_bytes, rounds)]


def _body_texts(transaction: Transaction, max_scan_bytes: int, rounds: int) -> list[bytes]:
    fields: list[Field] = []
    _add_body_fields(fields, transaction.req_body, transaction.req_content_type, max_scan_bytes, rounds)
    return [text for _, _, text in fields]


def injection_alerts(
    signatures: SignatureSet, transaction: Transaction, max_scan_bytes: int = 65536, rounds: int = 3
) -> list[Alert]:
    """The injection alerts of one request, at most one per rule."""
    return injection_alerts_batch(signatures, [transaction], max_scan_bytes, rounds)[0]


def _injection_alerts(transaction: Transaction, findings: list[tuple[Signature, Field]]) -> list[Alert]:
    alerts = []
    endpoint = transaction.endpoint or transaction.path
    for signature, field in findings:
        rule = signature.rule
        where = f"{field_location(field)} of {transaction.method} {endpoint}"
        evidence = match_evidence(signature, field[2], field_sensitive(field))
        message = f"{rule.title} in {where} from {transaction.src_ip}"
        alerts.append(Alert.about(transaction, rule.detector, rule.rule, rule.severity, message, evidence, 1.0,
                                  endpoint=endpoint))
    return alerts
