"""The few error types genart raises; the CLI maps each to an exit status and one message."""


class GenartError(Exception):
    """Base class: a problem the user can act on. The message says what is wrong and how to fix it."""

    exit_code = 1


class ConfigError(GenartError):
    """A config file, key or value is wrong (exit status 2)."""

    exit_code = 2


class StorageError(GenartError):
    """An output or input location cannot be read or written."""


class BundleError(GenartError):
    """A model bundle is missing, corrupted, tampered with or of a foreign layout."""


class DataError(GenartError):
    """A data source yields nothing usable."""


class SigningError(GenartError):
    """A C2PA certificate chain or key cannot sign (unreadable, not matching, expired, refused by the C2PA
    SDK), found before any image is touched; or signing one image failed (exit status 2)."""

    exit_code = 2


class ClusterError(GenartError):
    """The Ray cluster cannot host or run the job (resources, unreachable address)."""


class JobFailed(GenartError):
    """A training or generation job stopped before it completed."""


class FilterExhausted(JobFailed):
    """An item found no acceptable draw within filter.max_attempts (generate's quality and
    near-duplicate filters, genart/filters/draw.py)."""


class Stopped(GenartError):
    """SIGTERM or SIGINT stopped `genart schedule`; the history was left consistent (exit status 130)."""

    exit_code = 130


class JobRecordError(StorageError):
    """A generation output's _job.json is not a complete, valid job record. `problems`: each finding, one
    message each (what `genart verify` lists)."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) or "_job.json is not a complete job record")


class ImageSkipped(Exception):
    """One image of a data source cannot be decoded (`reason`: not_an_image, corrupt, too_large, ...). Never
    reaches the user: genart.data.decode turns it into a counted skip (a per-item problem is data)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
