"""Assertions shared by the command-line tests."""

from __future__ import annotations


def assert_one_error_line(status: int, captured, expected) -> str:
    """Exit status 2 and exactly one stderr line ``walsspark: error: ...`` with the words."""
    lines = captured.err.splitlines()
    assert status == 2, captured
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert line.startswith("walsspark: error: ") and line.strip() != "walsspark: error:"
    for words in expected:
        assert words in line, line
    return line
