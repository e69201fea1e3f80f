"""C2PA signing (genart/market/c2pa_sign.py) with a throwaway chain (tests/conftest.make_c2pa_chain), read back
with c2pa-python's Reader; every bad chain or key is refused with its exact message before any image."""

from __future__ import annotations

import datetime as dt
import io
import logging

import numpy as np
import pytest
from PIL import Image

from genart import __version__
from genart.errors import SigningError
from genart.images import encode
from genart.market.c2pa_sign import (
    MODEL_ASSERTION,
    check_signer,
    read_credentials,
    sign_image,
    signer_paths,
)
from genart.market.xmp import TRAINED_ALGORITHMIC_MEDIA, Provenance, disclosure
from tests.conftest import make_c2pa_chain

MODEL_ID = "fe" * 32
SUBJECT = "O=genart tests,CN=signer"


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    return check_signer(*make_c2pa_chain(tmp_path_factory.mktemp("c2pa")))


def _image(fmt: str) -> bytes:
    channels = 3 if fmt == "jpeg" else 4
    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, channels), dtype=np.uint8)
    return Provenance(MODEL_ID, "job-9").stamp(encode(pixels, fmt), fmt, 5, 77)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_signed_image_carries_a_valid_manifest_the_reader_finds(signer, fmt):
    data = _image(fmt)
    signed = sign_image(data, fmt, signer, MODEL_ID, "tiny-digits", item_id=5, seed=77, job_id="job-9")
    state, manifest = read_credentials(signed, fmt)
    assert state == "Valid"  # signature and hashes check out; "Trusted" needs the root in a trust list
    assert manifest["claim_generator_info"][0]["name"] == "genart"
    assert manifest["claim_generator_info"][0]["version"] == __version__
    assert manifest["title"] == "tiny-digits #5"
    assert manifest["signature_info"]["common_name"] == "signer"
    assertions = {a["label"]: a["data"] for a in manifest["assertions"]}
    (created,) = assertions["c2pa.actions.v2"]["actions"]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert created["softwareAgent"]["name"] == "genart"
    assert assertions[MODEL_ASSERTION] == {
        "model_id": MODEL_ID,
        "name": "tiny-digits",
        "id": 5,
        "seed": 77,
        "job_id": "job-9",
    }
    assert "thumbnail" not in manifest  # no ~30 KB preview in every small image
    # the pixels and genart's own XMP disclosure survive signing
    with Image.open(io.BytesIO(signed)) as a, Image.open(io.BytesIO(data)) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert disclosure(signed)["seed"] == "77"


def test_an_unsigned_image_has_no_credentials():
    assert read_credentials(_image("png"), "png") == (None, None)


def test_tampered_bytes_no_longer_validate(signer):
    signed = bytearray(sign_image(_image("png"), "png", signer, MODEL_ID, "m"))
    idat = signed.find(b"IDAT")
    signed[idat + 10] ^= 0xFF
    state, _ = read_credentials(bytes(signed), "png")
    assert state == "Invalid"


def test_signer_describes_itself_without_the_key(signer, c2pa_chain, caplog):
    assert (signer.subject, signer.alg) == (SUBJECT, "es256")
    assert "PRIVATE" not in repr(signer) and repr(signer).startswith(f"Signer(subject={SUBJECT!r}")
    key_text = open(c2pa_chain[1]).read()
    body = "".join(key_text.splitlines()[1:-1])
    with caplog.at_level(logging.DEBUG):
        check_signer(*c2pa_chain)
    assert body[:40] not in caplog.text and "PRIVATE KEY" not in caplog.text


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path):
    chain, key = make_c2pa_chain(tmp_path, other_key=True)
    with pytest.raises(SigningError) as err:
        check_signer(chain, key)
    assert str(err.value) == (
        f"the private key {key} does not match the signing certificate {SUBJECT!r} (the first in {chain}); "
        "give the key that certificate was issued for"
    )
    assert err.value.exit_code == 2


def test_an_expired_certificate_is_refused(tmp_path):
    chain, key = make_c2pa_chain(tmp_path, days=(-30, -1))
    from cryptography import x509

    with open(chain, "rb") as f:
        end = x509.load_pem_x509_certificates(f.read())[0].not_valid_after_utc
    with pytest.raises(SigningError) as err:
        check_signer(chain, key)
    assert str(err.value) == (
        f"the certificate {SUBJECT!r} in {chain} expired on {end:%Y-%m-%d %H:%M:%S} UTC; renew it (C2PA "
        "validators reject signatures made after expiry)"
    )


def test_a_certificate_not_yet_valid_is_refused(tmp_path):
    chain, key = make_c2pa_chain(tmp_path, days=(2, 30))
    with pytest.raises(
        SigningError, match=r"^the certificate 'O=genart tests,CN=signer' in .* is not valid until"
    ):
        check_signer(chain, key)


def test_expiry_is_checked_at_the_time_given(c2pa_chain):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=31)
    with pytest.raises(SigningError, match="expired on"):
        check_signer(*c2pa_chain, now=later)


def test_unreadable_files_are_refused(tmp_path, c2pa_chain):
    chain, key = c2pa_chain
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(SigningError) as err:
        check_signer(missing, key)
    assert str(err.value) == f"cannot read the certificate chain {missing}: No such file or directory"
    with pytest.raises(SigningError) as err:
        check_signer(chain, missing)
    assert str(err.value) == f"cannot read the private key {missing}: No such file or directory"
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(SigningError) as err:
        check_signer(str(junk), key)
    assert str(err.value) == (
        f"{junk} holds no PEM certificate; give the signing certificate and its issuers as PEM "
        "(-----BEGIN CERTIFICATE-----), signing certificate first"
    )
    with pytest.raises(SigningError) as err:
        check_signer(chain, str(junk))
    assert str(err.value) == (
        f"{junk} holds no PEM private key (ValueError); give the signing certificate's key as PEM "
        "(-----BEGIN PRIVATE KEY-----)"
    )
    with pytest.raises(SigningError) as err:
        check_signer(chain, chain)  # the chain given as the key: no key text is ever echoed
    assert str(err.value).startswith(f"{chain} holds no PEM private key")


def test_an_encrypted_key_is_refused(tmp_path, c2pa_chain):
    from cryptography.hazmat.primitives import serialization

    chain, key = c2pa_chain
    loaded = serialization.load_pem_private_key(open(key, "rb").read(), password=None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(SigningError) as err:
        check_signer(chain, str(locked))
    assert str(err.value) == (
        f"the private key {locked} is encrypted; give an unencrypted PEM key (it is never written anywhere)"
    )


def test_a_self_signed_signing_certificate_is_refused_by_the_trial_signature(tmp_path):
    """A chain the C2PA SDK itself refuses (here: a lone CA certificate used to sign) fails in check_signer,
    before any image, with the SDK's reason."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lonely")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pkcs8, plain = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, plain))
    with pytest.raises(SigningError) as err:
        check_signer(str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
    assert str(err.value) == (
        f"{tmp_path / 'c.pem'} cannot sign C2PA manifests: C2PA signing failed: "
        "Signature: the certificate was self-signed"
    )


def test_a_signing_certificate_without_a_c2pa_key_usage_is_refused(tmp_path):
    """serverAuth (a TLS certificate) is not one of the EKUs C2PA accepts: the trial signature fails."""
    chain, key = make_c2pa_chain(tmp_path, ekus=("1.3.6.1.5.5.7.3.1",))
    with pytest.raises(SigningError) as err:
        check_signer(chain, key)
    assert str(err.value) == (
        f"{chain} cannot sign C2PA manifests: C2PA signing failed: Signature: the certificate is invalid"
    )


def test_paths_come_from_flags_then_environment(monkeypatch):
    monkeypatch.delenv("GENART_C2PA_CERT", raising=False)
    monkeypatch.delenv("GENART_C2PA_KEY", raising=False)
    assert signer_paths(None, None) is None
    assert signer_paths("c.pem", "k.pem") == ("c.pem", "k.pem")
    monkeypatch.setenv("GENART_C2PA_CERT", "env-c.pem")
    monkeypatch.setenv("GENART_C2PA_KEY", "env-k.pem")
    assert signer_paths(None, None) == ("env-c.pem", "env-k.pem")
    assert signer_paths("c.pem", None) == ("c.pem", "env-k.pem")
    monkeypatch.delenv("GENART_C2PA_KEY")
    with pytest.raises(SigningError) as err:
        signer_paths(None, None)
    assert str(err.value) == (
        "signing needs both a certificate chain and its private key; --key (or GENART_C2PA_KEY) is not set"
    )


def test_an_unknown_format_is_refused(signer):
    with pytest.raises(ValueError, match="^image format 'gif' is not one of png, jpeg, webp$"):
        sign_image(b"GIF89a", "gif", signer, MODEL_ID, "m")
