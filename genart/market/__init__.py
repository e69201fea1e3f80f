"""Collections for digital-art markets: OpenSea / ERC-721 token metadata and the collection's rarity table.

Plain Python (no Ray). With `market.standard: opensea` a generation output also holds

    tokens/{id}.json    one per item (tokens/{id} with `market.token_suffix: ""`, as a stock ERC-721
                        contract's tokenURI = baseURI + tokenId names it; application/json on S3/GCS) (name, description, image = base_uri + path, attributes); a replica
                        writes a shard's tokens before that shard's metadata commit, so every committed
                        item has its token, and a retried shard rewrites the same keys with the same bytes
    tokens/_traits/part-NNNNN.json
                        per shard: its item count and {trait_type: {value: count}} of the ranked traits,
                        written with the shard's last tokens (before its commit; same bytes on a retry)
    collection.json     name, description, item count and the trait rarity table; the driver sums the
                        shard summaries (one listing, one small read per shard), before _SUCCESS. Shards of
                        older outputs without a summary are counted from their tokens instead

Computed traits depend only on an item's pixels: Background (the named palette colour most common on the
image border), Dominant colour (the most common palette colour among the other pixels: the subject's
colour) and Brightness (a bucket of the mean Rec. 601 luminance). The Seed attribute is a string: seeds
are 63-bit and JavaScript numbers would round them, and the seed regenerates the item exactly.
"""

from genart.market.collection import (
    collection_record,
    rarity,
    rarity_table,
    trait_counts,
    write_collection,
)
from genart.market.tokens import (
    NOT_RANKED,
    OPENSEA,
    READ_CHUNK,
    TOKEN_SUFFIXES,
    Collection,
    TokenWriter,
    flat_traits,
    has_tokens,
    item_url,
    json_put_options,
    read_tokens,
    recorded_suffix,
    token_bytes,
    token_name,
    token_path,
)
from genart.market.traits import BRIGHTNESS, PALETTE, pixel_traits, trait_key, traits_match

__all__ = [
    "BRIGHTNESS",
    "NOT_RANKED",
    "OPENSEA",
    "PALETTE",
    "READ_CHUNK",
    "TOKEN_SUFFIXES",
    "Collection",
    "TokenWriter",
    "collection_record",
    "flat_traits",
    "has_tokens",
    "item_url",
    "json_put_options",
    "pixel_traits",
    "rarity",
    "rarity_table",
    "read_tokens",
    "recorded_suffix",
    "token_bytes",
    "token_name",
    "token_path",
    "trait_counts",
    "trait_key",
    "traits_match",
    "write_collection",
]
