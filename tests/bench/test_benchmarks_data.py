"""Pure helpers of `genart bench train-data` (no Ray, no S3)."""

import pytest

from genart.bench.train_data import HEADER, RunStats, table_rows, window_rates


def test_window_rates_are_per_worker_first_window_and_median_of_the_rest():
    metrics = [{"samples_per_s": r} for r in (100.0, 600.0, 800.0, 700.0)]
    assert window_rates(metrics, 2) == (50.0, 350.0)
    assert window_rates(metrics[:1], 1) == (100.0, 100.0)  # one window: it is also the steady state
    with pytest.raises(ValueError, match="no training metrics"):
        window_rates([], 1)


def test_table_rows_compare_against_memory_with_the_same_workers():
    runs = [
        RunStats("memory", 1, 0.01, 300.0, 400.0, 20.0),
        RunStats("s3 parquet", 1, 2.5, 150.0, 380.0, 25.0),
        RunStats("memory", 2, 0.01, 200.0, 300.0, 22.0),
        RunStats("s3 image folder", 2, 6.0, 100.0, 330.0, 30.0),
        RunStats("s3 parquet", 4, 2.0, 100.0, 330.0, 30.0),  # no in-memory run with 4 workers
    ]
    rows = table_rows(runs)
    assert all(len(r) == len(HEADER) for r in rows)
    assert rows[0] == ("memory", 1, "0.0", "300", "400", "1.00", "20.0")
    assert rows[1] == ("s3 parquet", 1, "2.5", "150", "380", "0.95", "25.0")
    assert rows[3][5] == "1.10" and rows[4][5] == "-"


def test_without_moto_the_benchmark_says_how_to_install_it(monkeypatch):
    import sys

    from genart.bench.train_data import moto_s3
    from genart.errors import GenartError

    monkeypatch.setitem(sys.modules, "moto.server", None)  # import moto.server -> ImportError
    with pytest.raises(GenartError, match=r"needs moto \(a dev dependency\)"):
        with moto_s3():
            pass
