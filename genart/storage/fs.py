"""URI -> (fsspec filesystem, path). Every location in genart is a URI: a local path, file://, s3://, memory://."""

from __future__ import annotations

import os
import posixpath
import re

import fsspec

from genart.errors import StorageError


def storage_options_for(uri: str, options: dict | None = None) -> dict:
    """fsspec options for `uri`: the config's options, plus AWS_ENDPOINT_URL for s3:// when set.

    Credentials stay in the environment (AWS_ACCESS_KEY_ID, ...) where botocore finds them; they are
    never copied into configs, outputs or logs.
    """
    opts = dict(options or {})
    if uri.startswith(("s3://", "s3a://")):
        endpoint = opts.pop("endpoint_url", None) or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            opts.setdefault("client_kwargs", {})["endpoint_url"] = endpoint
    return opts


def get_fs(uri: str, options: dict | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        fs, path = fsspec.core.url_to_fs(uri, **storage_options_for(uri, options))
    except (ImportError, ValueError) as exc:
        raise StorageError(f"{uri}: cannot open this location ({exc})") from exc
    return fs, path.rstrip("/") or path


def join(*parts: str) -> str:
    return posixpath.join(*parts)


# `::` joins fsspec chain links only where a protocol follows (`zip://a::https://...`, `simplecache::s3://`)
_CHAIN = re.compile(r"::(?=[A-Za-z][A-Za-z0-9+.\-]*(?:://|::|$))")
_SECRET_PARAM = re.compile(
    r"(?i)(^|[?&;])([^=&;#]*(?:key|secret|token|passw|pwd|sig|credential|session|auth)[^=&;#]*=)[^&;#]*"
)


def redact(uri: str) -> str:
    """A URI safe to print or store: drops every `user:password@` part and masks credential query values.

    Holds for passwords containing `/`, `@` or `::` (everything up to the last `@` of a URI whose first
    segment has a `:` or `@` is dropped), for fsspec chains (`zip://a.zip::https://u:pw@h/x`: each link on
    its own; a chain splits only where a protocol follows `::`), for signed URLs (`?X-Amz-Signature=...`,
    `&token=...` become `=***`) and for tokens in the #fragment (`#access_token=...`). Never raises.
    """
    return "::".join(_redact_one(link) for link in _CHAIN.split(uri))


def _redact_one(uri: str) -> str:
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, rest = "", uri
    first = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if sep and "@" in rest and (":" in first or "@" in first):
        rest = rest.rsplit("@", 1)[1]  # a password may hold `/`, `?` or `@`: drop up to the last `@`
    rest, hsep, fragment = rest.partition("#")
    base, qmark, query = rest.partition("?")
    masked = [_SECRET_PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}***", part) for part in (query, fragment)]
    return f"{scheme}{sep}{base}{qmark}{masked[0]}{hsep}{masked[1]}"


def check_writable(uri: str, options: dict | None = None) -> None:
    """Fail early (before any training or generation) when `uri` cannot be written."""
    fs, path = get_fs(uri, options)
    probe = join(path, ".genart-write-check")
    try:
        fs.makedirs(path, exist_ok=True)
        with fs.open(probe, "wb") as f:
            f.write(b"ok")
        fs.rm(probe)
    except Exception as exc:  # noqa: BLE001 - any backend error means "not writable"; re-raised typed
        raise StorageError(
            f"output {redact(uri)} is not writable ({type(exc).__name__}: {exc}); "
            "choose a writable location or fix its permissions/credentials"
        ) from exc
