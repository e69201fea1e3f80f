"""Picks files (genart/market/picks.py): the format, every way a file can be wrong, and the job check. No Ray."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from genart.cli import main
from genart.errors import ConfigError
from genart.generation.job import job_record, write_record
from genart.market.picks import PICKS, Picks, load_picks, parse_picks, picks_bytes, write_picks
from genart.storage.output import Output
from tests.conftest import make_tiny_bundle, market_cfg

JOB = "job-picks-1"


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    """A generation output's job record (60 items, job JOB): all the picks check reads."""
    root = tmp_path_factory.mktemp("picks")
    meta = make_tiny_bundle(str(root / "bundle"))
    cfg = market_cfg(str(root / "bundle"), str(root / "out"))
    (root / "out").mkdir()
    write_record(Output.open(cfg.output), job_record(cfg, meta, JOB))
    return root / "out"


def _write(tmp_path, record, name="picks.json"):
    path = tmp_path / name
    path.write_text(record if isinstance(record, str) else json.dumps(record))
    return str(path)


def test_a_valid_file_loads_sorted_and_writes_back_deterministically(output, tmp_path):
    uri = _write(tmp_path, {"output": str(output), "job_id": JOB, "keep": [9, 0, 59], "reject": [3]})
    picks = load_picks(uri)
    assert picks.model_dump() == {"output": str(output), "job_id": JOB, "keep": [0, 9, 59], "reject": [3]}
    where = write_picks(Output.open(str(output)), picks)
    assert where == f"{output}/{PICKS}"
    data = (output / PICKS).read_bytes()
    assert data == picks_bytes(picks) and json.loads(data) == picks.model_dump()
    assert load_picks(where) == picks


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "is not valid JSON (Expecting property name"),
        ("[1, 2]", 'is not a picks file: expected an object {"output", "job_id", "keep", "reject"}'),
        ('{"output": "x", "job_id": "j", "keep": []}', ": reject: Field required"),
        ('{"output": "x", "job_id": "j", "keep": [], "reject": [], "extra": 1}', ": extra: Extra inputs"),
        (
            '{"output": "x", "job_id": "j", "keep": ["3"], "reject": []}',
            ": keep.0: Input should be a valid integer",
        ),
        (
            '{"output": "x", "job_id": "j", "keep": [true], "reject": []}',
            ": keep.0: Input should be a valid integer",
        ),
        (
            '{"output": "x", "job_id": "j", "keep": [1.5], "reject": []}',
            ": keep.0: Input should be a valid integer",
        ),
        (
            '{"output": "x", "job_id": "j", "keep": [-1], "reject": []}',
            ": keep: ids are integers 0..2**63-1, got -1",
        ),
        ('{"output": "x", "job_id": "j", "keep": [4, 2, 4], "reject": []}', ": keep: id 4 is listed twice"),
        (
            '{"output": "x", "job_id": "j", "keep": [1, 2], "reject": [2, 1]}',
            ": id 1 is both kept and rejected (2 such",
        ),
        ('{"output": "x", "job_id": " ", "keep": [], "reject": []}', ": job_id: must not be empty"),
        (
            '{"output": "x", "job_id": 7, "keep": [], "reject": []}',
            ": job_id: Input should be a valid string",
        ),
    ],
)
def test_malformed_picks_are_refused_naming_the_file_and_the_problem(tmp_path, text, message):
    uri = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_picks(uri, check=False)
    assert str(err.value).startswith(uri) and message in str(err.value), str(err.value)


def test_a_job_id_that_no_longer_matches_the_output_is_refused_naming_both(output, tmp_path):
    uri = _write(tmp_path, {"output": str(output), "job_id": "job-old", "keep": [1], "reject": []})
    with pytest.raises(ConfigError) as err:
        load_picks(uri)
    assert str(err.value) == (
        f"{uri} was made for job job-old, but {output} now holds job {JOB} (it was regenerated or "
        "overwritten): curate the output again and export new picks"
    )
    assert load_picks(uri, check=False).job_id == "job-old"


def test_unknown_ids_and_outputs_without_a_job_are_refused(output, tmp_path):
    uri = _write(tmp_path, {"output": str(output), "job_id": JOB, "keep": [1], "reject": [60, 61, 5]})
    with pytest.raises(
        ConfigError, match=rf"reject names id 60 \(2 unknown ids\), but {output} holds ids 0..59"
    ):
        load_picks(uri)
    empty = tmp_path / "empty"
    empty.mkdir()
    uri = _write(tmp_path, {"output": str(empty), "job_id": JOB, "keep": [1], "reject": []})
    with pytest.raises(ConfigError, match=f"{empty} has no _job.json: it is not a generation output"):
        load_picks(uri)
    (empty / "_job.json").write_text("{")
    with pytest.raises(ConfigError, match="_job.json is not valid JSON"):
        load_picks(uri)
    (empty / "_job.json").write_text('{"job_id": 3}')
    with pytest.raises(ConfigError, match="_job.json has no job_id; run genart verify"):
        load_picks(uri)
    with pytest.raises(
        ConfigError, match="picks file .*nope.json does not exist; export it from `genart gallery`"
    ):
        load_picks(str(tmp_path / "nope.json"))
    with pytest.raises(ConfigError, match="bytes is not a picks file"):
        parse_picks(b" " * (64 * 2**20 + 1), "big.json")


def test_collect_refuses_bad_picks_with_exit_2_and_writes_nothing(output, tmp_path):
    uri = _write(tmp_path, {"output": str(output), "job_id": "job-old", "keep": [1], "reject": []})
    coll = tmp_path / "coll"
    res = CliRunner().invoke(main, ["collect", uri, "--out", str(coll), "--base-uri", "ipfs://cid/"])
    assert (
        res.exit_code == 2
        and f"error: {uri} was made for job job-old, but {output} now holds job {JOB}" in res.output
    )
    assert not coll.exists()
    res = CliRunner().invoke(main, ["collect", uri, "--out", str(coll), "--base-uri", "not-a-uri"])
    assert res.exit_code == 2 and "error: --base-uri: market.base_uri must be a URI" in res.output, res.output
    res = CliRunner().invoke(main, ["collect", uri, "--out", str(coll)])
    assert (
        res.exit_code == 2
        and "error: --base-uri: market.base_uri is required when market.standard" in res.output
    )
    res = CliRunner().invoke(main, ["collect", "--out", str(coll)])
    assert res.exit_code == 2 and "Missing argument 'PICKS...'" in res.output
    assert Picks(output="o", job_id="j", keep=[2, 1], reject=[]).keep == [1, 2]
