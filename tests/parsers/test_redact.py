"""Secrets in request-targets are redacted; everything else stays byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.redact import PARAMETER, SECRET_WORD, _may_hold_secret_word, _parameter, redact_query, redact_target

NAMES = ["q", "page", "password", "PASS", "user_pwd", "api-key", "monkey", "p%61ss", "keyboard", "x.sig", "Sid", ""]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/login?user=alice&password=hunter2", "/login?user=alice&password=REDACTED"),
        ("/x?api_key=AKIA123&page=2", "/x?api_key=REDACTED&page=2"),
        ("/x?apiKey=1&access_token=abc&client_secret=s&sig=00ff", "/x?apiKey=REDACTED&access_token=REDACTED"
         "&client_secret=REDACTED&sig=REDACTED"),
        ("/x?user%5Fpassword=p", "/x?user%5Fpassword=REDACTED"),
        ("/x?passwordless=true&keyboard=us&monkey=1", "/x?passwordless=true&keyboard=us&monkey=1"),
        ("/x?token=", "/x?token="),
        ("/plain/path", "/plain/path"),
        ("http://bob:s3cret@api.example.com/a?q=1", "http://bob:REDACTED@api.example.com/a?q=1"),
        ("/a?b=%20c;session=xyz", "/a?b=%20c;session=REDACTED"),
    ],
)
def test_secret_values_are_redacted(target: str, expected: str) -> None:
    assert redact_target(target) == expected


def test_query_without_parameters_is_untouched() -> None:
    assert redact_query("just-a-search-term") == "just-a-search-term"


def test_a_secret_spelled_with_escapes_or_odd_case_is_still_found() -> None:
    assert redact_query("PaSsWoRd=x&%70wd=y&q=token") == "PaSsWoRd=REDACTED&%70wd=REDACTED&q=token"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES), st.text(alphabet="ab%70=Pw", max_size=5)), max_size=6),
       st.sampled_from(["&", ";"]))  # fmt: skip
def test_the_quick_check_never_skips_a_secret(parameters, separator) -> None:
    """A query without a secret word or an escape is returned as is; the result is always what the
    per-parameter redaction gives."""
    query = separator.join(f"{name}={value}" for name, value in parameters)
    assert redact_query(query) == PARAMETER.sub(_parameter, query)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("paswdPASWDkeytoKEYTOsigjSIGJ=&% _-\u017f\u212a\xe9\xc9")), max_size=24))
def test_the_word_check_is_the_expression(query: str) -> None:
    """The quick check finds a secret word exactly where SECRET_WORD's case-insensitive search does, the long s
    and the Kelvin sign (which fold to "s" and "k") and other non-ASCII letters included."""
    assert _may_hold_secret_word(query) == (SECRET_WORD.search(query) is not None)


@pytest.mark.parametrize("word", ["pass", "PWD", "Secret", "toKen", "KEY", "auth", "SESSION", "sid", "Jwt", "sig",
                                  "Credential"])  # fmt: skip
def test_each_word_is_found_in_any_case(word: str) -> None:
    assert _may_hold_secret_word(f"a=1&x{word}y=2")
    assert not _may_hold_secret_word("a=1&page=2&q=hello")
