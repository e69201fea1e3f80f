"""Data sources: the built-in digits, image folders/globs and Parquet at any URI."""
