"""_job.json's identity of a job: outputs written by earlier genart versions keep resuming."""

from __future__ import annotations

from genart.config.generate import GenerateConfig
from genart.config.synthesize import SynthesizeConfig
from genart.generation.runner import job_record

# config_hash of these configs as genart 0.1.0 (commit ce102fb, before filters and inference existed) wrote it
GENERATE_0_1 = "884158dbcac05261cfce55598fd0be1fb2244147cdcf3d70b04dc0b1426577cf"
SYNTHESIZE_0_1 = "ce959cf2e17a95146d90072a4467e494bc850ed60069294b91ba9aecdde36bea"


def _gen(**kw) -> GenerateConfig:
    return GenerateConfig(kind="generate", model="m", output="o", **kw)


def test_new_keys_at_their_defaults_keep_the_old_hash():
    rec = job_record(_gen(), {"model_id": "x"}, "j")
    assert rec["config_hash"] == GENERATE_0_1
    assert not {"filter", "dedupe", "inference", "storage", "address"} & set(rec["config"])


def test_filters_are_part_of_the_job_but_max_attempts_is_not():
    base = job_record(_gen(filter={"min_score": 0.5}), {"model_id": "x"}, "j")
    assert base["config_hash"] != GENERATE_0_1
    assert base["config"]["filter"]["max_attempts"] == 100  # recorded, but not part of the identity
    more = job_record(_gen(filter={"min_score": 0.5, "max_attempts": 500}), {"model_id": "x"}, "j")
    assert more["config_hash"] == base["config_hash"]
    stricter = job_record(_gen(filter={"min_score": 0.6}), {"model_id": "x"}, "j")
    assert stricter["config_hash"] != base["config_hash"]
    dedupe = job_record(_gen(dedupe={"max_distance": 4}), {"model_id": "x"}, "j")
    assert dedupe["config"]["dedupe"] == {"max_distance": 4} and dedupe["config_hash"] != GENERATE_0_1
    bf16 = job_record(_gen(inference={"precision": "bf16"}), {"model_id": "x"}, "j")
    assert bf16["config_hash"] != GENERATE_0_1
    threads = job_record(_gen(inference={"encode_workers": 3}), {"model_id": "x"}, "j")
    assert threads["config_hash"] == GENERATE_0_1


def test_synthesize_default_scorer_keeps_the_old_hash():
    from genart.config.identity import dataset_digest

    cfg = SynthesizeConfig(kind="synthesize", model="m", output="o")
    assert dataset_digest(cfg) == SYNTHESIZE_0_1
    assert dataset_digest(cfg.model_copy(update={"replicas": 7})) == SYNTHESIZE_0_1
    other = SynthesizeConfig(kind="synthesize", model="m", output="o", filter={"scorer": "discriminator"})
    assert dataset_digest(other) != SYNTHESIZE_0_1


def test_the_record_names_the_models_class_count_for_verify():
    rec = job_record(_gen(), {"model_id": "x", "num_classes": 10}, "j")
    assert rec["num_classes"] == 10 and rec["config_hash"] == GENERATE_0_1
    assert "num_classes" not in job_record(_gen(), {"model_id": "x"}, "j")
