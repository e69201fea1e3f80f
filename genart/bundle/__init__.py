"""Model bundles: `store.py` writes and loads them (safetensors + model.json, sha256-checked, never
unpickles); `check.py` holds an untrusted model.json and safetensors header to the training bounds
before anything is allocated."""

from genart.bundle.store import (
    Bundle,
    load_bundle,
    load_discriminator,
    read_meta,
    save_bundle,
    save_untrained_bundle,
)

__all__ = ["Bundle", "load_bundle", "load_discriminator", "read_meta", "save_bundle", "save_untrained_bundle"]
