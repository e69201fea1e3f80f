"""An output location resolved once: the URI, its fsspec filesystem, the root path on it and the name to
print (Ray Data's `_FileDatasink` idiom: path + filesystem become one object, passed down to every write).

A job opens its Output once (`Output.open(cfg.output, cfg.storage.options)`) and hands it to the job record,
the byte ledger, the scheduler, tokens and collection.json; a replica, in another process, opens its own
once in `__init__`. `name` is the redacted URI: the only spelling of the location that logs, errors and
files may hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import fsspec

from genart.storage.fs import get_fs, join, probe_writable, redact


@dataclass(frozen=True)
class Output:
    uri: str = field(repr=False)  # as configured: may hold credentials, never print it (use `name`)
    fs: fsspec.AbstractFileSystem = field(repr=False)
    root: str = field(repr=False)  # the path on `fs`, no trailing slash (memory:// keeps user:pw@ in it)
    name: str  # redact(uri)

    @classmethod
    def open(cls, uri: str, storage_options: dict | None = None) -> Output:
        """Resolve `uri` (a local path, file://, s3://, memory://) with the config's storage options.
        Raises StorageError when no filesystem serves it."""
        fs, root = get_fs(uri, storage_options)
        return cls(uri, fs, root, redact(uri))

    @classmethod
    def at(cls, fs: fsspec.AbstractFileSystem, root: str) -> Output:
        """The folder `root` on an already open filesystem (a job's sub-folder, a test's own filesystem)."""
        root = root.rstrip("/") or root
        return cls(root, fs, root, redact(root))

    def path(self, *parts: str) -> str:
        """The full path of `parts` (relative, '/'-separated) under the root, on `fs`."""
        return join(self.root, *parts)

    def check_writable(self) -> None:
        """Fail early when the output cannot be written: StorageError naming it and the backend's error."""
        probe_writable(self.fs, self.root, self.name)
