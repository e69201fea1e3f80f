"""Model bundles: `store.py` writes and loads them (safetensors + model.json, sha256-checked, never
unpickles); `meta.py` reads model.json alone, without torch; `check.py` holds an untrusted model.json and
safetensors header to the training bounds before anything is allocated.

Names are imported on first use (PEP 562), so `from genart.bundle import read_meta` does not import torch."""

_FROM = {
    "Bundle": "store",
    "load_bundle": "store",
    "load_discriminator": "store",
    "save_bundle": "store",
    "save_untrained_bundle": "store",
    "read_meta": "meta",
}


def __getattr__(name: str):
    if name in _FROM:
        import importlib

        return getattr(importlib.import_module(f"genart.bundle.{_FROM[name]}"), name)
    raise AttributeError(f"module 'genart.bundle' has no attribute {name!r}")


__all__ = ["Bundle", "load_bundle", "load_discriminator", "read_meta", "save_bundle", "save_untrained_bundle"]
