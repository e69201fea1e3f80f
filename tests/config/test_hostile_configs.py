"""Hostile or broken CONFIG files and --set values: exit 2, one bounded line, never a traceback."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from genart.cli import main
from genart.config import load_config
from genart.config.loader import MAX_NODES, MAX_SHOWN, parse_override
from genart.errors import ConfigError
from tests.config.test_configs import ROOT

TRAIN = str(ROOT / "configs/train/cgan-digits.yaml")


def laughs(levels: int) -> str:
    """The 'billion laughs' config: each level is nine aliases of the one before (9**levels values)."""
    lines = [
        "kind: train",
        "output: out/x",
        'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    lines.append(f"model: *l{levels - 1}")
    return "\n".join(lines) + "\n"


def _cli(*args):
    return CliRunner().invoke(main, list(args))


def _one_line_exit_2(res, fragment):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output[:2000]
    assert fragment in lines[0], lines[0]
    return lines[0]


def test_six_levels_of_aliases_are_refused_in_one_short_line(tmp_path):
    cfg = tmp_path / "laughs.yaml"
    cfg.write_text(laughs(6))
    assert len(cfg.read_bytes()) < 400  # the 387-byte config of the report
    line = _one_line_exit_2(
        _cli("train", str(cfg)), f"its YAML aliases expand to more than {MAX_NODES} values"
    )
    assert len(line) < 300  # was 7.2 MB


def test_nine_levels_are_refused_without_expanding(tmp_path):
    cfg = tmp_path / "laughs.yaml"
    cfg.write_text(laughs(9))
    with pytest.raises(ConfigError, match="aliases expand to more than"):
        load_config(cfg)


def test_aliases_below_the_cap_still_work_and_their_messages_are_bounded(tmp_path):
    cfg = tmp_path / "five.yaml"
    cfg.write_text(laughs(4))  # 6561 values (13000 with the anchors): allowed, but `model` must be a mapping
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    message = str(err.value)
    assert "model: Input should be a valid dictionary or object to extract fields from (got [[[[" in message
    assert len(message) < 2000 and "…" in message
    ok = tmp_path / "ok.yaml"
    ok.write_text("kind: train\noutput: &o out/x\ndata: {source: *o}\n")
    assert load_config(ok).data.source == "out/x"


def test_a_recursive_alias_is_refused(tmp_path):
    cfg = tmp_path / "loop.yaml"
    cfg.write_text("kind: train\noutput: &o [*o]\n")
    with pytest.raises(ConfigError, match="recursive alias"):
        load_config(cfg)


def test_deep_nesting_is_a_config_error(tmp_path):
    cfg = tmp_path / "deep.yaml"
    cfg.write_text("kind: train\noutput: " + "[" * 5000 + "]" * 5000 + "\n")
    _one_line_exit_2(_cli("train", str(cfg)), "nested too deeply")


def test_aliases_in_a_set_value_are_capped():
    levels = ["&a [1,1,1,1,1,1,1,1,1,1]"]
    for prev, name in zip("abcd", "bcde"):
        levels.append(f"&{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    assert parse_override(f"x=[{', '.join(levels[:3])}]")[1][2][0][0] == [1] * 10  # 1000 values: fine
    with pytest.raises(ConfigError, match=r"--set output: its YAML aliases expand to more than"):
        parse_override(f"output=[{', '.join(levels)}]")  # 100000 values


def test_a_long_bad_value_is_shown_cut_with_an_ellipsis():
    res = _cli("train", TRAIN, "--set", "model.arch=" + "x" * 100_000)
    assert res.exit_code == 2
    assert len(res.output) < 2 * MAX_SHOWN + 300, len(res.output)
    assert "…" in res.output
    res = _cli("train", TRAIN, "--set", "train.steps=[" + ",".join(["1"] * 50_000) + "]")
    assert res.exit_code == 2 and "train.steps: Input should be a valid integer (got [1, 1, 1" in res.output
    assert len(res.output) < 2 * MAX_SHOWN + 300


def test_many_errors_are_listed_up_to_a_limit(tmp_path):
    cfg = tmp_path / "many.yaml"
    cfg.write_text("kind: train\noutput: o\n" + "".join(f"k{i}: 1\n" for i in range(500)))
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert str(err.value).endswith("... and 480 more")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (bytes(range(256)) * 4, "not UTF-8 text (byte 128); CONFIG is a YAML file"),
        ("kind: train\noutput: café\n".encode("latin-1"), "not UTF-8 text (byte 23)"),
        (b"\x00\x01\x02binary", "not valid YAML (unacceptable character #x0000"),
        (b"- a\n- b\n", "a config is a YAML mapping with `kind:` at the top, not a list"),
        (b"just a string\n", "not a str"),
        (b"kind: [train\n", "not valid YAML (while parsing a flow sequence"),
        (b"kind: [train]\n", "kind: ['train'] is not one of generate, schedule, synthesize, train"),
    ],
    ids=["binary", "latin-1", "nul", "list", "scalar", "broken", "unhashable-kind"],
)
def test_unreadable_config_files_exit_2_in_one_line(tmp_path, content, fragment):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(content)
    _one_line_exit_2(_cli("train", str(cfg)), fragment)


def test_a_directory_or_a_missing_file_exits_2_in_one_line(tmp_path):
    commands = (
        ["train"],
        ["generate"],
        ["synthesize"],
        ["plan"],
        ["schedule"],
        ["submit", "--address", "http://127.0.0.1:9"],
    )
    for command, *rest in commands:
        _one_line_exit_2(_cli(command, str(tmp_path), *rest), "is a directory; CONFIG is a YAML file")
        _one_line_exit_2(_cli(command, str(tmp_path / "nope.yaml"), *rest), "nope.yaml: no such config file")


def test_binary_config_exits_2_from_the_installed_command(tmp_path):
    cfg = tmp_path / "model.bin"
    cfg.write_bytes(bytes(range(256)) * 64)
    proc = subprocess.run(
        [sys.executable, "-m", "genart.cli", "train", str(cfg)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr == f"error: {cfg}: not UTF-8 text (byte 128); CONFIG is a YAML file\n"


ONE_MIB = 1 << 20  # loader.MAX_CONFIG_BYTES


def test_a_config_over_1_mib_exits_2_naming_the_file_and_the_cap(tmp_path):
    cfg = tmp_path / "big.yaml"
    cfg.write_bytes(b"kind: train\n" + b"#" * (ONE_MIB - 12) + b"\n")  # one byte over
    want = f"error: {cfg}: larger than 1048576 bytes (1 MiB), the most a config file may hold"
    for command, *rest in (
        ["train"],
        ["generate"],
        ["schedule"],
        ["submit", "--address", "http://127.0.0.1:9"],
    ):
        assert _one_line_exit_2(_cli(command, str(cfg), *rest), "larger than") == want
    with pytest.raises(ConfigError, match=r"larger than 1048576 bytes \(1 MiB\)"):
        load_config(cfg)


def test_a_config_of_exactly_1_mib_is_read(tmp_path):
    cfg = tmp_path / "padded.yaml"
    head = (ROOT / "configs/generate/digits.yaml").read_bytes() + b"\n"
    cfg.write_bytes(head + b"#" * (ONE_MIB - len(head) - 1) + b"\n")
    assert cfg.stat().st_size == ONE_MIB
    assert (
        load_config(cfg, expect_kind="generate").count
        == load_config(ROOT / "configs/generate/digits.yaml").count
    )
