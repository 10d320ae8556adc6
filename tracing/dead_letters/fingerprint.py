"""One cause, one group: a dead letter's fingerprint ignores the numbers and IDs in its message."""

import hashlib
import re

_MASKS = [
    # Order matters: the most specific shapes first, so a UUID is not eaten as numbers.
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
        ),
        "<time>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\b"), "<time>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b[0-9a-f]{16,}\b", re.I), "<hex>"),
    # Identifiers that carry digits: R-4712-02, FG-4712, L-24-5531, HU-00045512, 1000124.
    (re.compile(r"\b[A-Za-z]*[-_]?\d[\w.-]*\b"), "<id>"),
]


def normalise_message(message):
    text = message or ""
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return re.sub(r"\s+", " ", text).strip()


def fingerprint(*, flow, target, error_class, error_code, message):
    """A stable hex id for (flow, target, error class, code, normalised message)."""
    parts = [
        flow or "",
        target or "",
        error_class or "",
        error_code or "",
        normalise_message(message),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
