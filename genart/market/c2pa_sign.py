"""C2PA Content Credentials for published images, signed with c2pa-python (the C2PA's own binding).

Signing happens where a piece is published (`genart collect --sign`), never in generate: a signature carries
the time and randomness, so generate's outputs stay unsigned and bit-exact. Two steps:

- `check_signer(cert_path, key_path)` reads a PEM certificate chain (signing certificate first, then its
  issuers) and a PEM private key, and refuses, with a message naming the file and the fix, before any image is
  touched: a file it cannot read, a key that does not match the signing certificate, a certificate outside
  its validity, a key type C2PA cannot sign with, or a chain the C2PA SDK refuses (a trial signature of a
  1x1 PNG). The key's bytes go only to the SDK: never into a message, a log line, a repr or an output.
- `sign_image(data, fmt, signer, model_id, model_name, ...)` returns the image with a manifest: a
  `c2pa.actions` assertion (`c2pa.created`, digitalSourceType trainedAlgorithmicMedia, genart as the software
  agent), genart and its version as the claim generator, and the model in an `org.genart.model` assertion
  (model_id, the bundle's model.json name, and the item's id, seed and job_id when given).

`read_credentials(data, fmt)` reads a manifest back with c2pa-python's Reader (tests, `genart verify`).
The environment variables GENART_C2PA_CERT and GENART_C2PA_KEY name the files when no flag does
(`signer_paths`).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
from dataclasses import dataclass, field

from genart import __version__
from genart.errors import SigningError
from genart.market.xmp import TRAINED_ALGORITHMIC_MEDIA

log = logging.getLogger(__name__)

CERT_ENV, KEY_ENV = "GENART_C2PA_CERT", "GENART_C2PA_KEY"
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
MODEL_ASSERTION = "org.genart.model"
# no thumbnail: the SDK would add a ~30 KB JPEG preview to every (often 32x32) image
SETTINGS = {"version": 1, "builder": {"thumbnail": {"enabled": False}}}
MAX_PEM_BYTES = 1 << 20  # a chain or key file larger than this is not a PEM file


@dataclass(frozen=True)
class Signer:
    """A checked certificate chain and key, ready to sign (from `check_signer`). `subject`: the signing
    certificate's subject (RFC 4514), `not_after`: when it expires (UTC), `alg`: the C2PA algorithm (es256,
    es384, es512, ps256, ed25519). The key is held by the C2PA SDK's signer only, never shown."""

    subject: str
    not_after: dt.datetime
    alg: str
    _sdk: object = field(repr=False, compare=False)

    def __repr__(self) -> str:
        return f"Signer(subject={self.subject!r}, alg={self.alg!r}, not_after={self.not_after.isoformat()})"


def signer_paths(cert: str | None, key: str | None) -> tuple[str, str] | None:
    """(certificate chain path, key path) from the flags, else from GENART_C2PA_CERT / GENART_C2PA_KEY; None
    when neither names anything. Raises SigningError when only one of the two is given."""
    cert = cert or os.environ.get(CERT_ENV) or None
    key = key or os.environ.get(KEY_ENV) or None
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        missing = "--cert (or GENART_C2PA_CERT)" if cert is None else "--key (or GENART_C2PA_KEY)"
        raise SigningError(
            f"signing needs both a certificate chain and its private key; {missing} is not set"
        )
    return cert, key


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PEM_BYTES + 1)
    except OSError as e:
        raise SigningError(f"cannot read the {what} {path}: {e.strerror or e}") from None
    if len(data) > MAX_PEM_BYTES:
        raise SigningError(f"the {what} {path} is over {MAX_PEM_BYTES} bytes: not a PEM file")
    return data


def _load_chain(path: str):
    from cryptography import x509

    data = _read(path, "certificate chain")
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise SigningError(
            f"{path} holds no PEM certificate; give the signing certificate and its issuers as PEM "
            "(-----BEGIN CERTIFICATE-----), signing certificate first"
        ) from None
    return chain, data


def _load_key(path: str):
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    data = _read(path, "private key")
    try:
        return load_pem_private_key(data, password=None), data
    except TypeError:
        raise SigningError(
            f"the private key {path} is encrypted; give an unencrypted PEM key (it is never written anywhere)"
        ) from None
    except (ValueError, UnsupportedAlgorithm) as e:
        raise SigningError(
            f"{path} holds no PEM private key ({type(e).__name__}); give the signing certificate's key as PEM "
            "(-----BEGIN PRIVATE KEY-----)"
        ) from None


def _algorithm(key, path: str) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in curves:
            return curves[key.curve.name]
    elif isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    kind = getattr(getattr(key, "curve", None), "name", type(key).__name__)
    raise SigningError(
        f"the private key {path} is a {kind} key; C2PA signs with EC P-256/P-384/P-521, RSA (PSS) or Ed25519"
    )


def _public(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_bytes(serialization.Encoding.DER, fmt)


def check_signer(cert_path: str, key_path: str, now: dt.datetime | None = None) -> Signer:
    """A Signer for the PEM chain at `cert_path` and the PEM key at `key_path`, checked at `now` (UTC; default
    the current time). Raises SigningError (naming the file and the fix, never showing the key) when a file
    cannot be read or parsed, the key does not match the chain's first certificate, a certificate of the
    chain is expired or not yet valid, the key type is not one C2PA signs with, or a trial signature fails."""
    import c2pa

    chain, chain_pem = _load_chain(cert_path)
    key, key_pem = _load_key(key_path)
    leaf = chain[0]
    subject = leaf.subject.rfc4514_string()
    if _public(key.public_key()) != _public(leaf.public_key()):
        raise SigningError(
            f"the private key {key_path} does not match the signing certificate {subject!r} (the first in "
            f"{cert_path}); give the key that certificate was issued for"
        )
    now = now or dt.datetime.now(dt.timezone.utc)
    for cert in chain:
        name = cert.subject.rfc4514_string()
        if cert.not_valid_after_utc < now:
            raise SigningError(
                f"the certificate {name!r} in {cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} "
                "UTC; renew it (C2PA validators reject signatures made after expiry)"
            )
        if cert.not_valid_before_utc > now:
            raise SigningError(
                f"the certificate {name!r} in {cert_path} is not valid until "
                f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC"
            )
    alg = _algorithm(key, key_path)
    try:  # the key's PEM goes to the SDK's signer and nowhere else
        sdk = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg.encode(), chain_pem, key_pem, None))
    except c2pa.C2paError as e:
        raise SigningError(f"the C2PA SDK refuses {cert_path} with {key_path}: {e}") from None
    signer = Signer(subject, leaf.not_valid_after_utc, alg, sdk)
    _trial(signer, cert_path)
    log.info("C2PA signer %s (%s), valid until %s", subject, alg, signer.not_after.date())
    return signer


def _trial(signer: Signer, cert_path: str) -> None:
    """Sign a 1x1 PNG and read it back: the SDK's own checks of the chain (extensions, key usage, EKU)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    try:
        signed = sign_image(buf.getvalue(), "png", signer, "trial", "trial")
    except SigningError as e:
        raise SigningError(f"{cert_path} cannot sign C2PA manifests: {e}") from None
    state, _ = read_credentials(signed, "png")
    if state not in ("Valid", "Trusted"):
        raise SigningError(f"{cert_path} makes manifests that do not validate (state {state})")


def manifest_definition(model_id: str, model_name: str, **item) -> dict:
    """The manifest sign_image asks the SDK for; `item`: optional id, seed, job_id (ints and strings)."""
    agent = {"name": "genart", "version": __version__}
    created = {
        "action": "c2pa.created",
        "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
        "softwareAgent": agent,
    }
    model = {"model_id": model_id, "name": model_name}
    model.update({k: v for k, v in item.items() if v is not None})
    return {
        "claim_generator_info": [agent],
        "title": f"{model_name} #{item['id']}" if item.get("id") is not None else model_name,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [created]}},
            {"label": MODEL_ASSERTION, "data": model},
        ],
    }


def sign_image(
    data: bytes,
    fmt: str,
    signer: Signer,
    model_id: str,
    model_name: str,
    *,
    item_id: int | None = None,
    seed: int | None = None,
    job_id: str | None = None,
) -> bytes:
    """`data` (PNG, JPEG or WebP file bytes, format `fmt`) with an embedded, signed C2PA manifest (see the
    module docstring); its XMP and pixels are kept. Not deterministic: every signature differs. Raises
    ValueError for another format and SigningError when the SDK cannot sign these bytes."""
    import c2pa

    if fmt not in MIME:
        raise ValueError(f"image format {fmt!r} is not one of {', '.join(MIME)}")
    definition = manifest_definition(model_id, model_name, id=item_id, seed=seed, job_id=job_id)
    out = io.BytesIO()
    try:
        context = c2pa.Context.from_json(json.dumps(SETTINGS))
        builder = c2pa.Builder(definition, context)
        builder.sign(signer._sdk, MIME[fmt], io.BytesIO(data), out)
    except c2pa.C2paError as e:
        raise SigningError(f"C2PA signing failed: {e}") from None
    return out.getvalue()


def read_credentials(data: bytes, fmt: str) -> tuple[str | None, dict | None]:
    """(validation state: "Valid", "Trusted", "Invalid"; the active manifest as a dict) of the C2PA manifest
    in `data`, or (None, None) when it holds none. Uses c2pa-python's Reader."""
    import c2pa

    try:
        reader = c2pa.Reader(MIME[fmt], io.BytesIO(data))
    except c2pa.C2paError.ManifestNotFound:
        return None, None
    with reader:
        return reader.get_validation_state(), reader.get_active_manifest()
