"""Redaction helpers for alert evidence: show enough to recognise a finding, never the secret itself."""

from __future__ import annotations

MAX_EVIDENCE_CHARS = 160


def mask_middle(value: str, keep_start: int = 4, keep_end: int = 4) -> str:
    """`4111********1111`: the ends of a value and its length, not the value."""
    if len(value) <= keep_start + keep_end:
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + value[-keep_end:]


def mask_card(digits: str) -> str:
    """A card number as PCI DSS allows it to be shown: at most the first six and last four digits."""
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def excerpt(text: str, start: int, end: int, context: int = 40) -> str:
    """The matched part of `text` with some context, cut to MAX_EVIDENCE_CHARS, control characters escaped."""
    left = max(0, start - context)
    right = min(len(text), end + context)
    piece = text[left:right]
    piece = "".join(character if character.isprintable() else f"\\x{ord(character):02x}" for character in piece)
    return piece[:MAX_EVIDENCE_CHARS]
