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
