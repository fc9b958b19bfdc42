"""Running studies: the objective, the worker loop with its admission lock, the launcher of ``hpo run``."""

from hpo import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "_abandon": ["abandon_trials"],
    "_admission": ["AdmissionLock", "TrialBudget"],
    "_demo": ["DemoObserver", "DemoResult", "run_demo"],
    "_fidelity": ["announce_fidelity", "announce_folds", "fidelity_choice", "fold_choice", "with_fold_count"],
    "_finished": ["Finished", "finished_study"],
    "_launcher": ["LaunchResult", "Progress", "launch"],
    "_objective": ["build_objective"],
    "_parent": ["die_with_parent", "parent_environment"],
    "_setup": ["open_study", "study_attributes"],
    "_worker": ["WorkerReport", "run_worker", "trial_loop"],
})
