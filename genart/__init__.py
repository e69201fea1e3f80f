"""genart: distributed batch generation of generative art.

Python API: ``genart.load_bundle(uri).generate(seeds, class_ids=None)`` -> uint8 (N, H, W, C);
``genart.read_images(source, image_size, channels)`` -> a source's images as training sees them.
"""

__version__ = "0.1.0"


def load_bundle(uri: str, storage_options: dict | None = None, device: str = "cpu", inference=None):
    """Load a model bundle (model.safetensors + model.json) from any URI; never unpickles. `inference`: a
    `genart.config.generate.InferenceConfig` (bf16, channels_last, torch.compile) for the fast path.

    Returns a `genart.bundle.Bundle` (`meta`, `model_id`, the generator in eval mode on `device`,
    `generate(seeds, class_ids=None) -> uint8 (N, H, W, C)`); with `inference`, its `engine` is set too.

    Raises BundleError (`genart.errors`) when a bundle file is missing, over the bounds of `bundle/check.py`
    or does not match model.json's sha256; StorageError when the storage cannot be read."""
    from genart.bundle import load_bundle as _load

    bundle = _load(uri, storage_options=storage_options, device=device)
    if inference is not None:
        from genart.generation.engine import Engine

        bundle.engine = Engine(bundle.generator, device, inference)
    return bundle


def read_images(
    source: str,
    image_size: int,
    channels: int,
    *,
    fit: str = "crop",
    background="white",
    label_column: str | None = "label",
    image_column: str = "image",
    storage_options: dict | None = None,
    limit: int | None = None,
):
    """Read and decode every image of `source` exactly as `genart train` does, without Ray.

    source: class folders (`root/<class>/<image>`), a folder with `metadata.csv`/`metadata.jsonl` (`file_name`
    + `label_column`), a folder or glob of images (unlabelled), or Parquet (file, folder, glob) whose
    `image_column` holds the Hugging Face Image struct {bytes, path}, bytes or a path; any fsspec URI.
    Decoding: EXIF orientation applied; 16-bit, palette, LA, CMYK, I and F modes converted; the first frame
    of animations; transparency composited onto `background` (a colour name, "#rrggbb" or (r, g, b)), or kept
    as straight alpha when channels == 4 (the RGB under alpha 0 set to the background); `fit` "crop" (centred
    square) or "pad" (whole image, background margins); resized to image_size (bicubic).

    Returns a frozen ImageSet: images uint8 (N, image_size, image_size, channels); labels int64 (N,), ids into
    class_names (-1 when unlabelled); class_names tuple[str, ...] (folder names NFC and sorted, the Parquet's
    ClassLabel names, or sorted string labels) or None; report (.count, .skipped and .converted {reason: n},
    .examples {reason: up to 3 names}, .per_class {name: n}). `limit`: read at most this many listed items.

    Raises genart.errors.ConfigError for a bad image_size, channels (1, 3, 4), fit or background;
    DataError when the source does not exist, lists no image, decodes none, or has unusable labels (an empty
    class folder, a metadata path outside the folder, a label without a name); StorageError when unreachable.
    """
    from genart.data.read import read_images as _read

    return _read(
        source,
        image_size,
        channels,
        fit=fit,
        background=background,
        label_column=label_column,
        image_column=image_column,
        storage_options=storage_options,
        limit=limit,
    )


__all__ = ["__version__", "load_bundle", "read_images"]
