"""Redaction of secrets carried in request-targets: password-like query parameters and URL user-info.

Authorization, cookies and API-key headers never reach an output at all; a request-target does, so the values
of parameters whose names say they hold a secret (password, token, api_key, secret, signature, ...) are replaced
by `REDACTED`, as is the password of `user:password@` in an absolute-form target. Everything else stays byte for
byte as on the wire.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

REDACTED = "REDACTED"
SECRET_NAME = re.compile(
    r"(?i)^(?:.*[_\-.])?(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_\-]?key|apikey|key|access[_\-]?key|"
    r"auth|authorization|session(?:id)?|sid|jwt|signature|sig|credentials?|client[_\-]?secret|private[_\-]?key)$"
)
# Every name SECRET_NAME matches holds one of these words, in any case: a query without any of them (and without
# a percent-escape that could spell one) has nothing to redact, and skips the per-parameter work.
SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "session", "sid", "jwt", "sig", "credential")
SECRET_WORD = re.compile("(?i)" + "|".join(SECRET_WORDS))
PARAMETER = re.compile(r"([^&=;]*)=([^&;]*)")
USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*://[^/@?#:]*):[^/@?#]*@")


def _parameter(match: re.Match[str]) -> str:
    name = match.group(1)
    if match.group(2) and SECRET_NAME.match(unquote(name)):
        return f"{name}={REDACTED}"
    return match.group(0)


def _may_hold_secret_word(query: str) -> bool:
    """Whether SECRET_WORD occurs in the query. An ASCII query (every query a request-target gives, but for
    bytes >= 0x80) is lowered and searched for each word, a few C calls: the expression's case-insensitive search
    tries every word at every position, some 25,000 instructions for a query of a few dozen characters. Other text
    takes the expression, whose case folding matches more than lowering does (the long s matches "s")."""
    if not query.isascii():
        return SECRET_WORD.search(query) is not None
    lowered = query.lower()
    for word in SECRET_WORDS:
        if word in lowered:
            return True
    return False


def redact_query(query: str) -> str:
    if "=" not in query or ("%" not in query and not _may_hold_secret_word(query)):
        return query
    return PARAMETER.sub(_parameter, query)


def redact_target(target: str) -> str:
    """The request-target with secret parameter values and URL passwords replaced."""
    if "@" in target:  # user-info needs one; origin-form targets (almost all) skip the regex
        target = USERINFO.sub(rf"\1:{REDACTED}@", target)
    path, separator, query = target.partition("?")
    if not separator:
        return target
    return path + "?" + redact_query(query)
