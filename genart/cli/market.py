"""`genart collect`: a publishable collection from the kept pieces of several outputs."""

from __future__ import annotations

import click

from genart.cli.app import _run, main


@main.command()
@click.argument("picks", nargs=-1, required=True, metavar="PICKS...")
@click.option(
    "--out", required=True, help="The collection's folder or URI (images/, tokens/, collection.json)."
)
@click.option(
    "--name", default="genart", show_default=True, help="The collection's name (tokens are NAME #id)."
)
@click.option("--description", default="", help="The collection's and every token's description.")
@click.option(
    "--base-uri", default="", help="Where the collection will be served (ipfs://CID/, https://...)."
)
@click.option(
    "--token-suffix",
    type=click.Choice([".json", "none"]),
    default=".json",
    show_default=True,
    help='Token file names: tokens/{id}.json, or "none" for tokens/{id} (ERC-721 baseURI + tokenId).',
)
@click.option("--overwrite", is_flag=True, help="Replace a collection already at --out.")
@_run
def collect(
    picks: tuple[str, ...],
    out: str,
    name: str,
    description: str,
    base_uri: str,
    token_suffix: str,
    overwrite: bool,
) -> None:
    """Collect the pieces kept in each PICKS file (picks.json from `genart gallery`) into one OpenSea
    collection at --out: items renumbered 0..N-1, images copied byte-identical, tokens, collection.json and
    metadata.parquet with each piece's provenance (source output and id). A picks file whose job_id is not
    its output's current job is refused."""
    from pydantic import ValidationError

    from genart.config.generate import MarketConfig
    from genart.errors import ConfigError
    from genart.market.collect import collect as run_collect

    try:
        market = MarketConfig(
            standard="opensea",
            name=name,
            description=description,
            base_uri=base_uri,
            token_suffix="" if token_suffix == "none" else token_suffix,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        key = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "--base-uri"
        raise ConfigError(f"{key}: {err['msg'].removeprefix('Value error, ')}") from None
    summary = run_collect(list(picks), out, market, overwrite=overwrite)
    click.echo(f"{summary.out}: {summary.items} pieces from {len(summary.sources)} outputs")
