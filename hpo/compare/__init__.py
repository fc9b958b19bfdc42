"""Samplers side by side: one study per sampler and seed, and the statistics that rank them."""

from hpo import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "_functions": ["BenchmarkFunction", "FUNCTIONS", "get_function"],
    "_running": ["ComparisonPlan", "ComparisonResult", "DEFAULT_SAMPLERS", "Problem", "ProblemSource",
        "compare_samplers", "default_n_trials", "default_prefix", "resolve_problem", "run_comparison"],
    "_statistics": ["best_at", "rank_samplers", "summarize", "trials_table", "trials_to_target", "verdict"],
})
