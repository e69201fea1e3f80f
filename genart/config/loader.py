"""YAML file -> dict -> `--set` overrides -> validated pydantic job config (the only place YAML is read)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from genart.errors import ConfigError

MAX_NODES = 100_000  # values a config may hold once its aliases are expanded (shipped configs: < 200)
MAX_SHOWN = 200  # characters of a bad value that a message shows
MAX_ERRORS = 20  # validation errors a message lists
MAX_CONFIG_BYTES = 1 << 20  # a config (or schedule) file: shipped ones are < 4 KiB


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """`text` cut to `limit` characters with an ellipsis: a message never carries a whole bad value."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show(value: Any, limit: int = MAX_SHOWN) -> str:
    """A bounded repr of `value` (a huge or alias-shared structure is never expanded), cut to `limit`."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxdict, r.maxlist, r.maxtuple, r.maxset = 3, 6, 6, 6, 6
    r.maxstring, r.maxother, r.maxlong = limit, limit, limit
    try:
        return shorten(r.repr(value), limit)
    except ValueError:  # an int of more than 4300 digits has no repr (sys.get_int_max_str_digits)
        if isinstance(value, int):
            return f"<an integer of {value.bit_length()} bits>"
        return f"<a {type(value).__name__} holding a huge integer>"


def _expanded_size(node: yaml.Node, memo: dict[int, int], active: set[int]) -> int:
    """How many nodes `node` stands for once every alias is expanded (memoised; a cycle is refused)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise ValueError("a YAML alias refers to the collection that contains it (recursive alias)")
    active.add(key)
    if isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    else:
        children = []
    total = 1
    for child in children:
        total += _expanded_size(child, memo, active)
        if total > MAX_NODES:
            break
    active.discard(key)
    memo[key] = total
    return total


def safe_yaml(text: str, source: str) -> Any:
    """yaml.safe_load with alias expansion capped at MAX_NODES values ("billion laughs").

    Raises ConfigError for a document that expands further or holds an integer of more than 4300 digits
    (Python refuses to convert it), and yaml.YAMLError for invalid YAML."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            size = _expanded_size(node, {}, set())
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        if size > MAX_NODES:
            raise ConfigError(
                f"{source}: its YAML aliases expand to more than {MAX_NODES} values; "
                "write the values out or use fewer nested aliases"
            )
        try:
            return loader.construct_document(node)
        except ValueError as exc:
            if isinstance(exc, yaml.YAMLError):
                raise
            raise ConfigError(f"{source}: {shorten(str(exc).split(';')[0])}") from None
    finally:
        loader.dispose()


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
        raise ConfigError(
            f"--set {show(item)}: expected KEY=VALUE with a dotted key, e.g. --set train.steps=100"
        )
    try:
        value = safe_yaml(raw, f"--set {shorten(key)}") if raw.strip() else ""
    except RecursionError:
        raise ConfigError(f"--set {shorten(key)}: value is nested too deeply") from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--set {shorten(key)}: value {show(raw)} is not a YAML scalar or flow value "
            f"({shorten(' '.join(str(exc).split()))})"
        ) from None
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
                raise ConfigError(f"--set {shorten('.'.join(path))}: {show(part)} is a value, not a section")
            node = child
        node[path[-1]] = value
    return data


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    errors = exc.errors()
    for err in errors[:MAX_ERRORS]:
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        # discriminated unions insert the tag (e.g. `dcgan`) into the path: drop it for the user
        loc = loc.replace(".dcgan.", ".").replace(".vae.", ".")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling; `genart <command> --help` names the config docs)"
        given = err.get("input")
        shown = (
            ""
            if err["type"] in ("missing", "extra_forbidden") or isinstance(given, dict)
            else f" (got {show(given)})"
        )
        lines.append(f"{shorten(loc or '<top>')}: {shorten(msg, 2 * MAX_SHOWN)}{shown}")
    if len(errors) > MAX_ERRORS:
        lines.append(f"... and {len(errors) - MAX_ERRORS} more")
    return f"{source}: invalid config\n  " + "\n  ".join(lines)


def validate(data: dict, source: str, expect_kind: str | None = None) -> BaseModel:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config is a YAML mapping with `kind:` at the top")
    kind = data.get("kind")
    kinds = _kinds()
    if not isinstance(kind, str) or kind not in kinds:
        allowed = ", ".join(sorted(kinds))
        raise ConfigError(
            f"{source}: kind: {show(kind)} is not one of {allowed}; set `kind:` at the top of the file"
        )
    if expect_kind and kind != expect_kind:
        raise ConfigError(
            f"{source}: kind is {show(kind)}, but this command runs `kind: {expect_kind}` configs"
        )
    try:
        return kinds[kind].model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def read_yaml_mapping(path: Path) -> dict:
    """The YAML mapping in the file at `path`. Raises ConfigError (one line) for a missing file, a
    directory, a file over MAX_CONFIG_BYTES (read no further), bytes that are not UTF-8 text, invalid or
    exploding YAML, or a document that is not a mapping."""
    if path.is_dir():
        raise ConfigError(
            f"{path}: is a directory; CONFIG is a YAML file such as configs/train/cgan-digits.yaml"
        )
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)  # never more: a huge file (or /dev/zero) is not read whole
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read this config file ({exc.strerror or exc})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_CONFIG_BYTES} bytes (1 MiB), the most a config file may hold"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); CONFIG is a YAML file") from None
    try:
        data = safe_yaml(text, str(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({shorten(' '.join(str(exc).split()))})") from None
    except RecursionError:
        raise ConfigError(f"{path}: its YAML is nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a config is a YAML mapping with `kind:` at the top, not a {type(data).__name__}"
        )
    return data


def load_config(path: str | Path, overrides: Iterable[str] = (), expect_kind: str | None = None) -> BaseModel:
    """Read a YAML config, apply `--set` overrides and validate it into its `kind`'s model."""
    data = read_yaml_mapping(Path(path))
    apply_overrides(data, overrides)
    return validate(data, str(path), expect_kind)


def config_hash(config: BaseModel, exclude: set[str] | dict | None = None) -> str:
    """sha256 of the config's canonical JSON (keys sorted), for refusing a different config on an output.
    `exclude`: top-level keys, or pydantic's nested form ({"filter": {"max_attempts": True}, "storage": True})."""
    import hashlib

    payload = json.dumps(config.model_dump(mode="json", exclude=exclude), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()
