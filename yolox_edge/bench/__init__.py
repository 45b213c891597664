"""Latency benchmark over every artifact kind, backend, precision and thread count."""
from .compare import BenchComparison, compare_reports, comparison_table
from .report import best_by_variant, best_ratio, markdown_table, write_csv, write_plot
from .runner import SCHEMA, run_bench

__all__ = ["run_bench", "SCHEMA", "markdown_table", "best_ratio", "best_by_variant", "write_csv", "write_plot", "compare_reports",
           "comparison_table", "BenchComparison"]
