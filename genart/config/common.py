"""Pieces shared by every job config."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCALARS = (str, int, float, bool)
MAX_DEPTH = 2  # s3_additional_kwargs: {...} is one level; config_kwargs: {s3: {addressing_style: path}} two


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def check_option(key: str, value: Any, depth: int = 0) -> None:
    """Raise ValueError unless `value` is a scalar or a mapping (string keys) of such, at most MAX_DEPTH deep:
    what fsspec/s3fs take from a config (s3fs passes mappings such as s3_additional_kwargs on to botocore)."""
    if isinstance(value, SCALARS):
        return
    if isinstance(value, dict) and depth < MAX_DEPTH:
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{key}: key {k!r} is not a string")
            check_option(f"{key}.{k}", v, depth + 1)
        return
    if isinstance(value, dict):
        what = "a mapping nested more than two levels deep"
    else:
        what = "null" if value is None else f"a {type(value).__name__}"
    raise ValueError(
        f"{key} is {what}; an option is a string, number or boolean, or a mapping of them "
        "up to two levels deep (e.g. s3_additional_kwargs: {ServerSideEncryption: AES256})"
    )


class StorageOptions(Strict):
    """fsspec storage options for the job's URIs (e.g. ``endpoint_url`` for S3).

    Values are scalars or mappings of scalars up to two levels deep, e.g.
    ``s3_additional_kwargs: {ServerSideEncryption: aws:kms}`` or ``config_kwargs: {s3: {addressing_style: path}}``.
    Credentials are best left to the standard AWS variables; anything given here is passed to
    workers but never written to outputs or logs.
    """

    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _fsspec_values(cls, options: dict[str, Any]) -> dict[str, Any]:
        for key, value in options.items():
            check_option(key, value)
        return options
