"""Nested storage options (s3fs's s3_additional_kwargs, client_kwargs, config_kwargs) for every config kind."""

import boto3
import pytest

import genart
from genart.bundle import save_untrained_bundle
from genart.config import load_config
from genart.errors import ConfigError
from tests.config.test_configs import ROOT

CONFIGS = {
    "train": ROOT / "configs/train/cgan-digits.yaml",
    "generate": ROOT / "configs/generate/digits.yaml",
    "synthesize": ROOT / "configs/synthesize/digits.yaml",
}
SSE_KMS = "storage.options.s3_additional_kwargs={ServerSideEncryption: aws:kms, SSEKMSKeyId: alias/art}"


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_nested_options_are_accepted_for_every_kind(kind):
    cfg = load_config(
        CONFIGS[kind], [SSE_KMS, "storage.options.config_kwargs={s3: {addressing_style: path}}"]
    )
    assert cfg.storage.options == {
        "s3_additional_kwargs": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/art"},
        "config_kwargs": {"s3": {"addressing_style": "path"}},
    }


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        (
            "storage.options.x=[1, 2]",
            "storage.options: x is a list; an option is a string, number or boolean",
        ),
        ("storage.options.x={a: [1]}", "storage.options: x.a is a list;"),
        (
            "storage.options.x={a: {b: {c: 1}}}",
            "storage.options: x.a.b is a mapping nested more than two levels",
        ),
        ("storage.options.x=null", "storage.options: x is null;"),
        ("storage.options.x={1: a}", "storage.options: x: key 1 is not a string"),
    ],
)
@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_what_s3fs_cannot_take_is_still_refused(kind, override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(CONFIGS[kind], [override])
    assert fragment in str(err.value)


def test_sse_option_reaches_s3fs_and_the_object_is_encrypted(s3_server, s3_bucket):
    cfg = load_config(
        CONFIGS["train"], ["storage.options.s3_additional_kwargs={ServerSideEncryption: AES256}"]
    )
    uri = f"{s3_bucket}/models/sse"
    save_untrained_bundle(uri, storage_options=cfg.storage.options)
    s3 = boto3.client("s3", endpoint_url=s3_server)
    bucket = s3_bucket.removeprefix("s3://")
    for name in ("model.safetensors", "model.json"):
        head = s3.head_object(Bucket=bucket, Key=f"models/sse/{name}")
        assert head["ServerSideEncryption"] == "AES256", name
    plain = f"{s3_bucket}/models/plain"
    save_untrained_bundle(plain)
    assert "ServerSideEncryption" not in s3.head_object(Bucket=bucket, Key="models/plain/model.json")
    bundle = genart.load_bundle(uri, cfg.storage.options)
    assert bundle.generate([1], [2]).shape == (1, 32, 32, 1)
