"""YAML file -> dict -> `--set` overrides -> validated pydantic job config (the only place YAML is read)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from genart.errors import ConfigError


def _kinds() -> dict[str, type[BaseModel]]:
    from genart.config.generate import GenerateConfig
    from genart.config.schedule import ScheduleConfig
    from genart.config.synthesize import SynthesizeConfig
    from genart.config.train import TrainConfig

    return {
        "train": TrainConfig,
        "generate": GenerateConfig,
        "synthesize": SynthesizeConfig,
        "schedule": ScheduleConfig,
    }


def parse_override(item: str) -> tuple[list[str], Any]:
    """`a.b.c=VALUE` -> (['a','b','c'], VALUE parsed as a YAML scalar or flow value)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. --set train.steps=100")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: value {raw!r} is not a YAML scalar or flow value ({exc})") from None
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: Iterable[str]) -> dict:
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {'.'.join(path)}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return data


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        # discriminated unions insert the tag (e.g. `dcgan`) into the path: drop it for the user
        loc = loc.replace(".dcgan.", ".").replace(".vae.", ".")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling; `genart <command> --help` names the config docs)"
        elif err["type"] == "union_tag_invalid" or err["type"] == "literal_error":
            msg = f"{msg}"
        given = err.get("input")
        shown = (
            ""
            if err["type"] in ("missing", "extra_forbidden") or isinstance(given, dict)
            else f" (got {given!r})"
        )
        lines.append(f"{loc or '<top>'}: {msg}{shown}")
    return f"{source}: invalid config\n  " + "\n  ".join(lines)


def validate(data: dict, source: str, expect_kind: str | None = None) -> BaseModel:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config is a YAML mapping with `kind:` at the top")
    kind = data.get("kind")
    kinds = _kinds()
    if kind not in kinds:
        allowed = ", ".join(sorted(kinds))
        raise ConfigError(
            f"{source}: kind: {kind!r} is not one of {allowed}; set `kind:` at the top of the file"
        )
    if expect_kind and kind != expect_kind:
        raise ConfigError(f"{source}: kind is {kind!r}, but this command runs `kind: {expect_kind}` configs")
    try:
        return kinds[kind].model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_config(path: str | Path, overrides: Iterable[str] = (), expect_kind: str | None = None) -> BaseModel:
    """Read a YAML config, apply `--set` overrides and validate it into its `kind`'s model."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a YAML mapping with `kind:` at the top")
    apply_overrides(data, overrides)
    return validate(data, str(path), expect_kind)


def config_hash(config: BaseModel, exclude: set[str] | dict | None = None) -> str:
    """sha256 of the config's canonical JSON (keys sorted), for refusing a different config on an output.
    `exclude`: top-level keys, or pydantic's nested form ({"filter": {"max_attempts": True}, "storage": True})."""
    import hashlib

    payload = json.dumps(config.model_dump(mode="json", exclude=exclude), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()
