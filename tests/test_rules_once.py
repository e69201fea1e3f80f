"""Issue 11: small rules written once (genart/ids.py, genart/images.py), dead code gone, names that agree.
Plain Python, no Ray."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from genart import errors, ids, images

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {p.relative_to(ROOT).as_posix(): p.read_text() for p in sorted((ROOT / "genart").rglob("*.py"))}


def _code(text: str) -> str:
    """The module's code without docstrings and comments (ast.unparse normalizes the spacing too)."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


CODE = {name: _code(text) for name, text in SOURCES.items()}


def _where(pattern: str) -> list[str]:
    return [name for name, text in CODE.items() if re.search(pattern, text)]


def test_shard_range_and_count():
    assert [ids.shard_range(k, 100, 250) for k in range(3)] == [(0, 100), (100, 200), (200, 250)]
    assert ids.shard_range(5, 100, 250) == (500, 250)  # beyond the plan: empty, not clamped
    assert [ids.num_shards(n, 100) for n in (1, 99, 100, 101, 250)] == [1, 1, 1, 2, 3]


def test_every_stage_uses_the_one_shard_rule():
    from genart.config.generate import ClassesConfig
    from genart.generation.plan import Plan

    plan = Plan(250, 100, 0, ClassesConfig(), 0)
    assert plan.num_shards == 3 and [plan.shard_range(k) for k in range(3)] == [
        (0, 100),
        (100, 200),
        (200, 250),
    ]
    assert _where(r"min\(\(k \+ 1\) \*|min\(lo \+ [\w.]*size, [\w.]+\)") == [
        "genart/ids.py"
    ]  # [k*size, min((k+1)*size, count)) spelled out
    assert _where(r"-\(-[^)]*//[^)]*shard") == []  # a shard count spelled out
    assert _where(r"def _shard_range") == []


def test_seed_mixing_lives_in_ids():
    assert _where(r"splitmix64\(") == ["genart/ids.py"]
    seeds = np.array([0, 1, 2**62, 2**63 - 1], dtype=np.int64)
    salt = np.uint64(0xA77E4D7A5EED0001)
    old = (ids.splitmix64(seeds.astype(np.uint64) ^ salt) >> np.uint64(1)).astype(np.int64)
    assert np.array_equal(ids.derived_seeds(seeds, salt), old)
    assert ids.derived_seeds(seeds, salt).dtype == np.int64 and (ids.derived_seeds(seeds, salt) >= 0).all()
    assert np.array_equal(ids.mix(seeds, salt), ids.splitmix64(seeds.astype(np.uint64) ^ salt))
    # SplitMix64 of 0: the first output of Vigna's splitmix64.c seeded with 0
    assert int(ids.splitmix64(np.array([0], dtype=np.uint64))[0]) == 0xE220A8397B1DCDAF


def test_redraw_seeds_and_class_draws_keep_their_values():
    from genart.config.generate import ClassesConfig
    from genart.filters.draw import attempt_seeds
    from genart.generation.plan import class_ids_for

    seeds = ids.item_seeds(7, np.arange(4))
    assert np.array_equal(attempt_seeds(seeds, 0), seeds)
    with np.errstate(over="ignore"):
        salt = np.uint64(3) * np.uint64(0xA77E4D7A5EED0001)
    want = (ids.splitmix64(seeds.astype(np.uint64) ^ salt) >> np.uint64(1)).astype(np.int64)
    assert np.array_equal(attempt_seeds(seeds, 3), want)
    import genart.generation.plan as plan

    weighted = ClassesConfig(mode="weighted", ids=[3, 5], weights=[1, 1])
    h = ids.splitmix64(ids.item_seeds(7, np.arange(50)).astype(np.uint64) ^ plan._CLASS_SALT)
    u = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    want_classes = np.where(u < 0.5, 3, 5).astype(np.int32)
    assert np.array_equal(class_ids_for(weighted, 10, 7, np.arange(50)), want_classes)


def test_image_bytes_are_read_in_one_module():
    # data/decode.py converts, crops and resizes for training: another behaviour, kept there
    assert _where(r"Image\.open\(") == ["genart/data/decode.py", "genart/images.py"]


def test_header_size_and_decode_errors():
    gray = np.arange(6 * 8, dtype=np.uint8).reshape(8, 6, 1)
    png = images.encode(gray)
    assert images.header_size(png) == (6, 8)
    assert images.decode(png).shape == (8, 6, 1) and np.array_equal(images.decode(png), gray)
    for junk in (b"", b"not an image", png[:20]):
        with pytest.raises(images.DECODE_ERRORS):
            images.decode(junk)
    with pytest.raises(images.DECODE_ERRORS):
        images.header_size(b"not an image")


def test_score_decodes_like_images_decode():
    from genart.filters.score import decode_images

    rgb = np.random.default_rng(0).integers(0, 256, (2, 5, 4, 3), dtype=np.uint8)
    got = decode_images([images.encode(im) for im in rgb])
    assert got.dtype == np.uint8 and np.array_equal(got, rgb)
    assert decode_images([]).shape == (0, 1, 1, 1)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("genart.filters.score", "independent_accuracy"),
        ("genart.images", "encode_batch"),
        ("genart.filters.dedupe", "greedy_unique"),
        ("genart.synthesis.splits", "split_counts"),
        ("genart.storage.commit", "committed_shards"),
    ],
)
def test_dead_code_is_gone(module, name):
    assert not hasattr(importlib.import_module(module), name)


def test_replica_has_no_pid_method():
    from genart.generation.replica import GeneratorReplica

    assert not hasattr(GeneratorReplica, "pid")


def test_synthesize_candidates_are_always_parquet():
    assert "in layout.LAYOUTS" not in SOURCES["genart/synthesis/runner.py"]


def test_error_types_live_in_errors():
    from genart.cluster import schedule
    from genart.filters import draw

    assert draw.FilterExhausted is errors.FilterExhausted and issubclass(
        errors.FilterExhausted, errors.JobFailed
    )
    assert schedule.Stopped is errors.Stopped and errors.Stopped.exit_code == 130
    defined = [
        f"{name}:{m.group(1)}"
        for name, text in SOURCES.items()
        if name != "genart/errors.py"
        for m in re.finditer(r"^class (\w+)\((?:\w+Error|JobFailed|Exception)\)", text, re.M)
    ]
    assert defined == []


def test_one_scheduler_name_each():
    from genart.cluster import schedule

    assert hasattr(schedule, "SlotScheduler") and not hasattr(schedule, "Scheduler")


def test_storage_options_is_the_one_parameter_name():
    from genart.bundle import store
    from genart.generation.verify import verify
    from genart.storage import fs
    from genart.views.preview import Source

    for fn in (fs.get_fs, fs.check_writable, fs.storage_options_for, verify, Source.__init__,
               store.save_bundle, store.save_untrained_bundle):  # fmt: skip
        params = inspect.signature(fn).parameters
        assert "storage_options" in params and "options" not in params, fn.__qualname__


def test_entry_points_and_array_functions_document_returns_raises_and_shapes():
    import genart
    from genart.bundle.store import load_bundle, read_meta
    from genart.filters import dedupe, score
    from genart.generation.runner import generate
    from genart.generation.verify import verify
    from genart.models import sampling
    from genart.synthesis.runner import synthesize
    from genart.training.trainer import train
    from genart.views.evaluate import frechet_distance

    for fn in (verify, load_bundle, read_meta, generate, train, synthesize, genart.load_bundle):
        assert "Returns" in fn.__doc__ and "Raises" in fn.__doc__, fn.__name__
    for fn in (ids.splitmix64, ids.item_seeds, ids.mix, ids.derived_seeds, images.decode, images.encode,
               images.grid_png, sampling.latents, sampling.quantize, sampling.inputs, sampling.sample,
               score.phash64, score.decode_images, dedupe.HashIndex.claim):  # fmt: skip
        assert re.search(r"uint8|uint64|int64|float32|int \(N", fn.__doc__), fn.__qualname__
        assert re.search(r"\(N|\(H, W|same shape", fn.__doc__), fn.__qualname__
    assert "Steele" in ids.splitmix64.__doc__ and "Vigna" in ids.splitmix64.__doc__
    assert "Zauner" in score.phash64.__doc__
    assert "Dowson & Landau" in frechet_distance.__doc__ and "Heusel" in frechet_distance.__doc__


def test_job_outputs_are_resolved_once_through_output():
    from genart.market.collection import write_collection
    from genart.market.tokens import TokenWriter

    for fn in (TokenWriter.__init__, write_collection):
        assert inspect.signature(fn).parameters["out"].default is inspect.Parameter.empty, fn.__qualname__
    for name in ("genart/training/identity.py", "genart/training/trainer.py", "genart/generation/verify.py"):
        assert "get_fs(" not in CODE[name], name
    assert "Output.open(" in CODE["genart/views/preview.py"]
    assert (
        "gcfg.output"
        not in CODE["genart/synthesis/runner.py"].split("def kept_blobs")[0].split("def iter_round")[1]
    )


def test_array_to_pil_goes_through_images_to_pil():
    for name in ("genart/views/preview.py", "genart/views/walk.py", "genart/filters/score.py"):
        assert "Image.fromarray(" not in CODE[name] and "to_pil(" in CODE[name], name


STALE = (
    r"\b(cli_app|cli_args|cli_cluster|cli_collection|bundle_check|schedule_state)\b|\b(accel|sampler|cost|progress"
    r"|writer)\.py\b|genart/(gpu_check|benchmarks\w*)\.py|storage/(verify|writer)\b|\baccel\.|as accel\b"
    r"|`sampler\.|genart\.(benchmarks|gpu_check|accel|sampler|cost|progress)\b"
)


def test_no_comment_or_doc_names_a_module_that_is_gone():
    files = [
        *(ROOT / "genart").rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
        *(ROOT / "docs").rglob("*.md"),
    ]
    files += [ROOT / "README.md", ROOT / "ARCHITECTURE.md", ROOT / "Makefile"]
    stale = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in files
        if p.name != "test_rules_once.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(STALE, line)
    ]
    assert stale == []
