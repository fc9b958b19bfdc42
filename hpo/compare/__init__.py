"""Samplers side by side: one study per sampler and seed, and the statistics that rank them."""

from hpo import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "_functions": ["BenchmarkFunction", "FUNCTIONS", "get_function"],
    "_running": ["ComparisonPlan", "Problem", "ProblemSource", "TRIAL_COLUMNS", "best_at", "best_so_far",
        "default_prefix", "rank_samplers", "resolve_problem", "run_comparison", "summarize",
        "trials_to_target", "verdict"],
})
