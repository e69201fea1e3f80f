"""json.loads for files genart reads back from outputs, bundles and state (untrusted bytes).

Python's json raises ValueError for an integer of more than 4300 digits and RecursionError for deeply nested
arrays; both become json.JSONDecodeError here, so every reader's `except json.JSONDecodeError` reports the
file instead of ending in a traceback."""

from __future__ import annotations

import json
from typing import Any


def loads(data: str | bytes | bytearray) -> Any:
    """json.loads(data). Raises json.JSONDecodeError (also for huge integers and deep nesting) and
    UnicodeDecodeError for bytes that are not UTF-8."""
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", "", 0) from None
    except ValueError as exc:
        if isinstance(exc, UnicodeDecodeError):
            raise
        raise json.JSONDecodeError(str(exc).split(";")[0], "", 0) from None


def loads_lines(text: str, where: str) -> list[dict]:
    """The JSON objects of a JSON-lines text (blank lines skipped), e.g. a checkpoint's metrics.jsonl.
    Raises StorageError naming `where` and the line for a line that is not a JSON object."""
    from genart.errors import StorageError

    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = loads(line)
        except json.JSONDecodeError as exc:
            raise StorageError(f"{where} line {n} is not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise StorageError(f"{where} line {n} is not a JSON object")
        rows.append(row)
    return rows
