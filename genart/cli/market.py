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
@click.option(
    "--sign",
    is_flag=True,
    help="Give every image a signed C2PA manifest (Content Credentials: created by genart, "
    "trainedAlgorithmicMedia, the model); needs --cert and --key.",
)
@click.option(
    "--cert", default=None, help="PEM certificate chain (signing certificate first) [env GENART_C2PA_CERT]."
)
@click.option("--key", default=None, help="PEM private key of that certificate [env GENART_C2PA_KEY].")
@click.option("--overwrite", is_flag=True, help="Replace a collection already at --out.")
@_run
def collect(
    picks: tuple[str, ...],
    out: str,
    name: str,
    description: str,
    base_uri: str,
    token_suffix: str,
    sign: bool,
    cert: str | None,
    key: str | None,
    overwrite: bool,
) -> None:
    """Collect the pieces kept in each PICKS file (picks.json from `genart gallery`) into one OpenSea
    collection at --out: items renumbered 0..N-1, images copied byte-identical, tokens, collection.json and
    metadata.parquet with each piece's provenance (source output and id). A picks file whose job_id is not
    its output's current job is refused. With --sign each image gets a signed C2PA manifest (so its bytes
    differ from the source's; metadata.parquet records the signed bytes' sha256); the certificate chain and
    key are checked before any image is read, and the key is never written or logged."""
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
    signer = _signer(sign, cert, key)
    summary = run_collect(list(picks), out, market, sign=signer, overwrite=overwrite)
    click.echo(f"{summary.out}: {summary.items} pieces from {len(summary.sources)} outputs")


def _signer(sign: bool, cert: str | None, key: str | None):
    """collect's signing hook for --sign (None without it). Raises SigningError for a missing, unreadable,
    mismatched or expired certificate chain or key (genart.market.c2pa_sign.check_signer), ConfigError for
    --cert/--key without --sign."""
    from genart.errors import ConfigError, SigningError
    from genart.market import c2pa_sign

    if not sign:
        if cert or key:
            raise ConfigError(
                "--cert/--key sign the collection only with --sign; add --sign or leave them out"
            )
        return None
    paths = c2pa_sign.signer_paths(cert, key)
    if paths is None:
        raise SigningError(
            "--sign needs a certificate chain and its private key: pass --cert CHAIN.pem --key KEY.pem "
            "(or set GENART_C2PA_CERT and GENART_C2PA_KEY)"
        )
    signer = c2pa_sign.check_signer(*paths)

    def sign_piece(data: bytes, piece) -> bytes:
        return c2pa_sign.sign_image(
            data, piece.format, signer, piece.model_id, piece.model,
            item_id=piece.id, seed=piece.seed, job_id=piece.source_job_id,
        )  # fmt: skip

    return sign_piece
