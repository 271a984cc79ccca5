"""Reading SPL Memo texts back from a landed transaction's program logs: the one log decoder the tests and the demo
share. The Memo program logs ``Program log: Memo (len N)`` and then the text as the next log line (older versions
logged it on the same line in Rust's debug quoting, ``Program log: Memo (len N): "<text>"``; both are read)."""

from __future__ import annotations

import re
from collections.abc import Iterable

LOG = "Program log: "
_HEADER = re.compile(r'^Program log: Memo \(len (\d+)\)(?:: "(.*)")?$', re.DOTALL)
_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]{1,6}\}|.)", re.DOTALL)
_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code.startswith("u{"):
        return chr(int(code[2:-1], 16))
    return _SIMPLE.get(code, code)


def memo_texts(logs: Iterable[object]) -> list[str]:
    """The memo texts among ``logs`` (lines of a transaction's ``logMessages``), in order."""
    out: list[str] = []
    lines = [str(line) for line in logs]
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if m is None:
            continue
        if m.group(2) is not None:
            out.append(_ESCAPE.sub(_unescape, m.group(2)))
        elif i + 1 < len(lines) and lines[i + 1].startswith(LOG):
            out.append(lines[i + 1][len(LOG):])
    return out
