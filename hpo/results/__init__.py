"""What a study produced: the trial table (best, top-k, counts), export, retrain, artifacts and dashboard notes."""

from hpo import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "_artifacts": ["upload_confusion_matrix", "upload_learning_curves"],
    "_dashboard_content": ["describe_study", "has_study_figures", "name_objective",
        "record_confusion_matrix", "record_trial_history", "refresh_study_figures"],
    "_export": ["ExportError", "export_trial", "read_config", "write_config"],
    "_provenance": ["package_versions", "worker_id"],
    "_retrain": ["METRICS_FILE", "MODEL_SUBDIRECTORY", "REPRODUCTION_TOLERANCE", "RetrainResult",
        "TrainReport", "copy_config", "retrain", "train_and_report"],
    "_trials": ["Counts", "best_trial", "failure_stop_message", "find_studies", "is_new_best",
        "list_studies", "load_study", "ranked_trials", "study_row", "top_trials"],
})
