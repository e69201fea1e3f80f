"""Schema of `kind: schedule` configs: run a job config on a cron schedule (`genart schedule`)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from genart.config.common import Strict

OverrideValue = str | int | float | bool | None


class ScheduleConfig(Strict):
    kind: Literal["schedule"]
    name: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="prefix of every run id (and Ray submission id); default: the config file's stem",
    )
    cron: str = Field(description="5-field cron expression, e.g. '0 2 * * *' (02:00 every day)")
    timezone: str = Field("UTC", description="IANA time zone the cron fields are read in, e.g. Europe/Berlin")
    job: str = Field(description="path of the job config (kind train, generate or synthesize) each slot runs")
    overrides: dict[str, OverrideValue] = Field(
        default_factory=dict,
        description="dotted keys of the job config; `{slot:%Y%m%d}` in strings becomes the slot's time",
    )
    concurrency_policy: Literal["forbid", "replace", "allow"] = Field(
        "forbid", description="when a slot is due while the previous run is active (Kubernetes CronJob's)"
    )
    catchup: int = Field(0, ge=0, description="missed slots to run after downtime; 0 = only the latest")
    starting_deadline_s: float | None = Field(
        None,
        gt=0,
        description="skip a slot not started within this many seconds of its time; null: no limit"
        " (set it to avoid a burst of late runs)",
    )
    max_retries: int = Field(2, ge=0, description="further attempts of a slot whose run failed")
    retry_delay_s: float = Field(60.0, ge=0, description="wait between attempts of a failed slot")
    poll_s: float = Field(30.0, gt=0, description="how often the long-running scheduler checks for due slots")
    state: str = Field(description="URI of the JSON run history (survives scheduler restarts)")
    address: str | None = Field(
        None, description="Ray dashboard URL (http://HOST:8265) to submit to; null runs each slot in-process"
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, v: str) -> str:
        from croniter import CroniterError, croniter

        if len(v.split()) != 5 or not croniter.is_valid(v):
            raise ValueError(
                f"{v!r} is not a 5-field cron expression (minute hour day-of-month month day-of-week), "
                "e.g. '0 2 * * *'"
            )
        try:  # valid syntax may still name no real date (`0 0 30 2 *`: February 30th)
            croniter(v, datetime(2000, 1, 1, tzinfo=timezone.utc)).get_next(datetime)
        except CroniterError:
            raise ValueError(
                f"{v!r} never matches a date (e.g. day 30 of February); check the day-of-month and month"
            ) from None
        return v

    @field_validator("timezone")
    @classmethod
    def _valid_tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}; use an IANA name such as UTC, Europe/Berlin"
            ) from None
        return v

    @field_validator("job")
    @classmethod
    def _job_exists(cls, v: str) -> str:
        if not Path(v).is_file():
            raise ValueError(f"no such job config file {v!r} (paths are relative to the working directory)")
        return v

    @field_validator("address")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r}: address is the Ray dashboard URL, e.g. http://127.0.0.1:8265, or null")
        return v
