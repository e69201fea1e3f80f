"""Bounds of the views (preview, gallery, walk): every size a user or an output can name is bounded here,
so the CLI can state them in its options without importing the views. No imports."""

# an image in an output is decoded only when its header says at most this many pixels (a small PNG can
# claim 12000x12000 and take gigabytes to decode); a generation output's images must also be its rows' size
MAX_IMAGE_PIXELS = 512 * 512  # 4x the largest model's (256x256)
MAX_SHEET_ITEMS = 10_000  # items on one contact sheet or gallery page
MAX_HELD_PIXELS = 2**27  # pixels of the items one sheet or page holds (~0.4 GB as RGB)
# bounds of `genart walk`: frames per step, seeds, upscaling, frame duration, and all frames' pixels together
MAX_WALK_FRAMES = 1000  # frames per step, and frames in all
MAX_WALK_SEEDS = 100
MAX_WALK_SCALE = 16
FRAME_MS = (10, 60_000)
MAX_WALK_PIXELS = 2**27  # ~134 M pixels over all upscaled frames (~0.4 GB as RGB)
MAX_SEED = 2**63 - 1
MAX_GALLERY_ITEMS = 100_000  # items on one curation page (shown PAGE at a time; see views/gallery_page.py)
