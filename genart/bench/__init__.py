"""Benchmarks (`genart bench`, `make bench`) and the GPU check (`make gpu-check`): tables of ratios measured side by side in one run."""
