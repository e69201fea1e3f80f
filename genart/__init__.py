"""genart: distributed batch generation of generative art.

Python API: ``genart.load_bundle(uri).generate(seeds, class_ids=None)`` -> uint8 (N, H, W, C);
``genart.read_images(source, image_size, channels)`` -> a source's images as training sees them.
"""

__version__ = "0.1.0"


def load_bundle(
    uri: str,
    storage_options: dict | None = None,
    device: str = "cpu",
    inference=None,
    cpu_path: str = "block16",
):
    """Load a model bundle (model.safetensors + model.json) from any URI; never unpickles. `inference`: a
    `genart.config.generate.InferenceConfig` (bf16, channels_last, torch.compile) for the fast path.
    `cpu_path`: how a CPU computes items (`genart/cpu_path.py`): "block16", or "item" to regenerate the bytes
    of an output whose _job.json names no cpu_path. ValueError for another value.

    Returns a `genart.bundle.Bundle` (`meta`, `model_id`, the generator in eval mode on `device`,
    `generate(seeds, class_ids=None) -> uint8 (N, H, W, C)`); with `inference`, its `engine` is set too.

    Raises BundleError (`genart.errors`) when a bundle file is missing, over the bounds of `bundle/check.py`
    or does not match model.json's sha256; StorageError when the storage cannot be read."""
    from genart.bundle import load_bundle as _load

    bundle = _load(uri, storage_options=storage_options, device=device, cpu_path=cpu_path)
    if inference is not None:
        from genart.generation.engine import Engine

        bundle.engine = Engine(bundle.generator, device, inference, cpu_path=cpu_path)
    return bundle


def __getattr__(name: str):
    """`genart.read_images` (genart.data.read.read_images), imported on first use: `import genart` stays light."""
    if name == "read_images":
        from genart.data.read import read_images

        return read_images
    raise AttributeError(f"module 'genart' has no attribute {name!r}")


__all__ = ["__version__", "load_bundle", "read_images"]
