"""Secrets in request-targets are redacted; everything else stays byte for byte."""

from __future__ import annotations

import pytest

from parsers.redact import redact_query, redact_target


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
