"""What counts as a credential in a job config, and scrubbing credentials out of text that is kept.

`genart submit` refuses configs that carry credentials (they would travel in the Ray job's entrypoint and
working_dir, visible in the job table and the dashboard); the scheduler scrubs the errors it records.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from genart.storage.fs import redact

# Words of an option name that mark a credential (s3fs `key`/`secret`/`token`, botocore
# `aws_secret_access_key`/`aws_session_token`, sftp `password`, gcsfs `token`, adlfs `sas_token`...).
_WORDS = {
    "key",
    "secret",
    "token",
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "session",
    "credential",
    "credentials",
    "auth",
    "authorization",
    "apikey",
    "sas",
    "signature",
    "private",
    "cookie",
    "cookies",
}
# Option names that contain such a word but name no secret (the id of a KMS key is not the key).
_NOT_SECRET = {"ssekmskeyid", "sse_kms_key_id", "kms_key_id", "key_prefix", "cache_key"}
# Whole option names that hold a secret without a credential word (adlfs' `connection_string` carries
# `AccountKey=...` or `SharedAccessSignature=...`).
_SECRET_NAMES = {"connection_string", "connectionstring", "conn_str", "connstr"}
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)  # camelCase -> camel Case
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def is_credential_key(name: str) -> bool:
    """True for an option name that holds a secret (`secret`, `aws_secret_access_key`, `SessionToken`,
    `connection_string`...)."""
    if name.lower() in _NOT_SECRET:
        return False
    if name.lower().replace("-", "_") in _SECRET_NAMES:
        return True
    return any(w in _WORDS for w in _words(name))


def credential_paths(value: Any, prefix: str = "", by_name: bool = True) -> Iterator[str]:
    """Dotted key paths under `value` (nested dicts/lists) that hold a credential: a key whose name is
    credential-like (only when `by_name`), or a string that is a URL carrying a password or a signed
    query (`redact(v) != v`)."""
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if by_name and is_credential_key(str(k)) and v not in (None, "", False):
                yield path
            else:
                yield from credential_paths(v, path, by_name)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from credential_paths(v, f"{prefix}[{i}]", by_name)
    elif isinstance(value, str) and redact(value) != value:
        yield prefix


def secret_values(value: Any) -> Iterator[str]:
    """The string values stored under credential-like keys (to scrub them out of messages)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if is_credential_key(str(k)) and isinstance(v, str | int) and str(v):
                yield str(v)
            else:
                yield from secret_values(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from secret_values(v)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every URL redacted and every known secret value replaced by `***`."""
    text = _URL.sub(lambda m: redact(m.group(0)), text)
    for s in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(s, "***")
    return text


# `key: scalar` in block or flow style (`options: {secret: x}`); a `{...}`/`[...]`/anchor value is no scalar
_YAML_PAIR = re.compile(r"""["']?([A-Za-z0-9_.-]+)["']?\s*:\s+([^\s,{}\[\]#&*|>][^,}]*)""")
_SKIP_DIRS = {".git", ".venv", "venv", "out", "__pycache__", "build", "dist", "node_modules", ".local"}
_MAX_SCAN = 1 << 20  # bigger YAML files are data, not configs


def holds_credentials(text: str) -> bool:
    """True when YAML text has a credential-like key with a value, or a URL with a password in it."""
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line)  # comments
        for m in _YAML_PAIR.finditer(line):
            # `secretRef: {name: x}` / `secretKeyRef` only name a secret kept elsewhere
            if is_credential_key(m.group(1)) and "ref" not in _words(m.group(1)):
                return True
        if any(redact(u) != u for u in _URL.findall(line)):
            return True
    return False


def credential_files(root: Path) -> list[str]:
    """YAML files under `root` (paths relative to it) that hold credentials: they must not be uploaded with
    a job's working_dir. Directories that are never uploaded (.git, .venv, out, ...) are not read."""
    found = []
    for top, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(top) / name
            if path.suffix not in (".yaml", ".yml"):
                continue
            try:
                if path.stat().st_size <= _MAX_SCAN and holds_credentials(path.read_text(errors="replace")):
                    found.append(path.relative_to(root).as_posix())
            except OSError:
                continue
    return found
