"""The market tests' helpers live in tests/conftest.py (the `collection` fixture is shared with tests/views);
re-exported here for `from tests.market.conftest import ...`."""

from tests.conftest import BASE_URI, COUNT, SHARD, market_cfg, run_without_ray  # noqa: F401
