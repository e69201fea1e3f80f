"""URI -> (fsspec filesystem, path). Every location in genart is a URI: a local path, file://, s3://, memory://."""

from __future__ import annotations

import copy
import os
import posixpath
import re
import urllib.parse

import fsspec

from genart.errors import StorageError


def storage_options_for(uri: str, storage_options: dict | None = None) -> dict:
    """fsspec options for `uri`: the config's options, plus AWS_ENDPOINT_URL for s3:// when set.

    Credentials stay in the environment (AWS_ACCESS_KEY_ID, ...) where botocore finds them; they are
    never copied into configs, outputs or logs.
    """
    opts = copy.deepcopy(
        dict(storage_options or {})
    )  # nested options (client_kwargs) are the config's: never mutated
    if uri.startswith(("s3://", "s3a://")):
        endpoint = opts.pop("endpoint_url", None) or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            opts.setdefault("client_kwargs", {})["endpoint_url"] = endpoint
    return opts


def get_fs(uri: str, storage_options: dict | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        fs, path = fsspec.core.url_to_fs(uri, **storage_options_for(uri, storage_options))
    except (ImportError, ValueError) as exc:
        raise StorageError(f"{uri}: cannot open this location ({exc})") from exc
    return fs, path.rstrip("/") or path


def join(*parts: str) -> str:
    return posixpath.join(*parts)


# `::` joins fsspec chain links only where a protocol follows (`zip://a::https://...`, `simplecache::s3://`)
_CHAIN = re.compile(r"::(?=[A-Za-z][A-Za-z0-9+.\-]*(?:://|::|$))")
_SECRET_NAME = re.compile(r"(?i)key|secret|token|passw|pwd|sig|credential|session|auth")
_PARAM_SEP = re.compile(r"([?&;])")


def redact(uri: str) -> str:
    """A URI safe to print or store: drops every `user:password@` part and masks credential query values.

    Holds for passwords containing `/`, `@` or `::` (everything up to the last `@` of a URI whose first
    segment has a `:` or `@` is dropped), for fsspec chains (`zip://a.zip::https://u:pw@h/x`: each link on
    its own; a chain splits only where a protocol follows `::`), for signed URLs (`?X-Amz-Signature=...`,
    `&token=...` become `=***`, also with a percent-encoded name such as `%74oken`), for `;token=...` path
    parameters and for tokens in the #fragment (`#access_token=...`). Never raises.
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
    if sep:  # `;name=value` path parameters (RFC 3986) in any segment of a URI's path
        base = "/".join(_mask_params(segment) for segment in base.split("/"))
    return f"{scheme}{sep}{base}{qmark}{_mask_params(query)}{hsep}{_mask_params(fragment)}"


def _is_secret_name(name: str) -> bool:
    """Whether a parameter name looks like a credential, also when percent-encoded (`%74oken`), even twice."""
    for _ in range(3):
        if _SECRET_NAME.search(name):
            return True
        decoded = urllib.parse.unquote_plus(name)
        if decoded == name:
            return False
        name = decoded
    return bool(_SECRET_NAME.search(name))


def _mask_params(text: str) -> str:
    """`text` with the value of every `name=value` (split at `?`, `&`, `;`) whose name is credential-like
    replaced by `***`."""
    parts = _PARAM_SEP.split(text)
    for i in range(0, len(parts), 2):  # even indexes are the pieces between separators
        name, eq, _ = parts[i].partition("=")
        if eq and _is_secret_name(name):
            parts[i] = f"{name}=***"
    return "".join(parts)


def check_writable(uri: str, storage_options: dict | None = None) -> None:
    """Fail early (before any training or generation) when `uri` cannot be written: StorageError."""
    fs, path = get_fs(uri, storage_options)
    probe_writable(fs, path, redact(uri))


def probe_writable(fs, path: str, name: str) -> None:
    """Write and remove a probe file under `path`; StorageError naming `name` (a redacted URI) when that fails."""
    probe = join(path, ".genart-write-check")
    try:
        fs.makedirs(path, exist_ok=True)
        with fs.open(probe, "wb") as f:
            f.write(b"ok")
        fs.rm_file(probe)  # rm would read `[ ] * ?` in the path as a pattern
    except Exception as exc:  # noqa: BLE001 - any backend error means "not writable"; re-raised typed
        raise StorageError(
            f"output {name} is not writable ({type(exc).__name__}: {exc}); "
            "choose a writable location or fix its permissions/credentials"
        ) from exc


# ---- literal operations ------------------------------------------------------------------------------
# fsspec's rm, cat (of a list), copy, get, put, du and expand_path read `[ ] * ?` in a path as a glob
# pattern (local, memory:// and s3fs alike): `rm("out/col[1]", recursive=True)` deletes `out/col1`. The
# functions below take every path literally: they only use info, find (a prefix listing), ls, cat_file,
# rm_file and rmdir, none of which expands patterns. genart calls these instead of the pattern-expanding ones.


def exists(fs, path: str) -> bool:
    """Whether a file or folder exists at exactly `path` (info, never a glob)."""
    try:
        fs.info(path)
    except FileNotFoundError:
        return False
    return True


def list_dir(fs, path: str, detail: bool = False) -> list:
    """The entries directly under `path` (one listing; [] when it does not exist). Never a glob."""
    fs.invalidate_cache(path)  # object-store listings are cached per filesystem instance
    try:
        return fs.ls(path, detail=detail)
    except FileNotFoundError:
        return []


def files_under(fs, path: str) -> list[str]:
    """Every file at or below exactly `path` (a prefix listing: `a/col[1]` never matches `a/col1`)."""
    fs.invalidate_cache(path)
    try:
        found = fs.find(path)
    except FileNotFoundError:
        return []
    prefix = path.rstrip("/") + "/"
    strip = fs._strip_protocol(path).rstrip("/")
    return sorted(p for p in found if p == strip or p.startswith(prefix) or p.startswith(strip + "/"))


def cat_files(fs, paths: list[str]) -> dict[str, bytes | Exception]:
    """{path: bytes, or the exception reading it raised}, one cat_file per path (`fs.cat` of a list globs)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(p: str):
        try:
            return fs.cat_file(p)
        except Exception as exc:  # noqa: BLE001 - returned to the caller, like fs.cat(on_error="return")
            return exc

    with ThreadPoolExecutor(max_workers=min(32, max(1, len(paths)))) as pool:
        return dict(zip(paths, pool.map(one, paths), strict=True))


def write_atomic(fs, path: str, tmp: str, data: bytes) -> None:
    """Write `data` to `path` whole: locally to `tmp` then a rename (never half a file); on object stores one
    PUT, which is atomic there. Never a pattern: fsspec's generic mv copies through expand_path (glob)."""
    if "file" in _protocols(fs) or "local" in _protocols(fs):
        fs.pipe_file(tmp, data)
        fs.mv(tmp, path)
    else:
        fs.pipe_file(path, data)


def _delete_files(fs, files: list[str]) -> None:
    """Delete exactly these files: s3fs's one-request-per-1000-keys delete, else rm_file per file."""
    bulk = getattr(fs, "_bulk_delete", None)
    if bulk is not None and getattr(fs, "asynchronous", None) is False:
        from fsspec.asyn import sync

        by_bucket: dict[str, list[str]] = {}
        for f in files:
            by_bucket.setdefault(fs.split_path(f)[0], []).append(f)
        for keys in by_bucket.values():
            for i in range(0, len(keys), 1000):
                sync(fs.loop, bulk, keys[i : i + 1000])
        return
    for f in files:
        try:
            fs.rm_file(f)
        except FileNotFoundError:
            pass


def _protocols(fs) -> set[str]:
    return set(fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def _remove_local(fs, path: str) -> None:
    """A local file or folder, without following symlinks out of it (shutil.rmtree)."""
    import shutil

    p = fs._strip_protocol(path)
    if os.path.isdir(p) and not os.path.islink(p):
        shutil.rmtree(p)
    elif os.path.lexists(p):
        os.remove(p)


def _remove_memory_dirs(fs, path: str) -> None:
    """memory:// folders made by makedirs, left once their files are gone, deepest first."""
    strip = fs._strip_protocol(path).rstrip("/")
    dirs = [d for d in fs.pseudo_dirs if d == strip or d.startswith(strip + "/")]
    for d in sorted(dirs, key=lambda n: -n.count("/")):
        try:
            fs.rmdir(d)
        except (FileNotFoundError, OSError):
            pass


def _left(fs, path: str) -> str:
    """What is still at `path`, in words (for a deletion error)."""
    try:
        left = files_under(fs, path)
    except Exception as exc:  # noqa: BLE001 - only describes the state for the message
        return f"what is left there could not be listed ({type(exc).__name__})"
    if not left:
        return "no file is left there"
    return f"{len(left)} file(s) are left there (first: {redact(left[0])})"


def remove_parts(fs, root: str, rels, where: str) -> None:
    """--overwrite: delete each of `rels` (paths relative to `root`) that exists, literally and in order.
    Raises StorageError naming the part, `where` (the redacted output) and what was already deleted."""
    deleted: list[str] = []
    for rel in rels:
        path = join(root, rel)
        if exists(fs, path):
            done = f"; already deleted: {', '.join(deleted)}" if deleted else "; nothing else was deleted"
            remove(fs, path, f"{where}/{rel} for --overwrite{done}")
            deleted.append(rel)


def remove(fs, path: str, what: str) -> None:
    """Delete the file or folder at exactly `path` and everything under it, never a pattern's matches.

    Raises StorageError naming `what` and saying how many files are left when anything is not deleted."""
    try:
        if _protocols(fs) & {"file", "local"}:
            _remove_local(fs, path)
        else:
            _delete_files(fs, files_under(fs, path))
            if "memory" in _protocols(fs):
                _remove_memory_dirs(fs, path)
        fs.invalidate_cache(path)
    except Exception as exc:  # noqa: BLE001 - any backend error; re-raised typed with what is left
        raise StorageError(
            f"deleting {what} failed ({type(exc).__name__}: {exc}); {_left(fs, path)}; "
            "check the location's permissions, then delete it by hand or re-run"
        ) from exc
    left = files_under(fs, path)
    if left:
        raise StorageError(
            f"deleting {what} failed: {_left(fs, path)}; "
            "check the location's permissions, then delete them by hand or re-run"
        )
