"""Samplers and pruners by the names study files give, the genetic-algorithm sampler, worker seeds."""

from hpo import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "_factory": ["SAMPLERS", "build_sampler", "sampler_class"],
    "_genetic": ["GeneticSampler"],
    "_options": ["accepted_options"],
    "_pruners": ["PRUNERS", "build_pruner", "canonical_pruner_name"],
    "_seeding": ["sampler_seed", "trials_in_study"],
    "_timing": ["SAMPLER_SECONDS_KEY", "TimedSampler"],
})
