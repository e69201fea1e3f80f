"""`genart synthesize`: labelled datasets from a conditional bundle (candidates -> score, dedupe -> splits -> Parquet)."""
