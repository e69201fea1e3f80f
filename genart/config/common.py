"""Pieces shared by every job config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StorageOptions(Strict):
    """fsspec storage options for the job's URIs (e.g. ``endpoint_url`` for S3).

    Credentials are best left to the standard AWS variables; anything given here is passed to
    workers but never written to outputs or logs.
    """

    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
