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
# Every name SECRET_NAME matches holds one of these words: a query without any of them (and without a
# percent-escape that could spell one) has nothing to redact, and skips the per-parameter work.
SECRET_WORD = re.compile(r"(?i)pass|pwd|secret|token|key|auth|session|sid|jwt|sig|credential")
PARAMETER = re.compile(r"([^&=;]*)=([^&;]*)")
USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*://[^/@?#:]*):[^/@?#]*@")


def _parameter(match: re.Match[str]) -> str:
    name = match.group(1)
    if match.group(2) and SECRET_NAME.match(unquote(name)):
        return f"{name}={REDACTED}"
    return match.group(0)


def redact_query(query: str) -> str:
    if "=" not in query or ("%" not in query and SECRET_WORD.search(query) is None):
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
