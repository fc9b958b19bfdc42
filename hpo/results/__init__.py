"""What a study produced: the trial table (best, top-k, counts), export, retrain, artifacts and dashboard notes."""

from hpo import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "_artifacts": ["upload_confusion_matrix", "upload_learning_curves"],
    "_dashboard_content": ["CONFUSION_KEY", "HISTORY_KEY", "confusion_matrix_figure", "current_best", "curve_trials",
        "describe_study", "describes_itself", "has_study_figures", "learning_curves_figure", "name_objective",
        "record_confusion_matrix", "record_trial_history", "refresh_after_trial", "refresh_study_figures",
        "refresh_study_note", "run_again_command", "top_confusions"],
    "_final_model": ["record_final_model", "retrain_step_logger"],
    "_headline": ["FINAL_MODEL_ATTR", "IMPORTANCE_MIN_TRIALS", "Headline", "compute_headline", "fmt",
        "study_headline"],
    "_selection": ["Selection", "VAL_SAMPLES_ATTR", "fold_noise", "select", "selected_trial", "selection_of",
        "study_selection", "validation_noise"],
    "_standings": ["Standings", "StandingsTracker", "standings_of"],
    "_export": ["ExportError", "export_trial", "read_config", "reference_gain", "reference_gain_text",
        "write_config"],
    "_provenance": ["package_versions", "worker_id"],
    "_retrain": ["FOLD_AVERAGE", "FOLD_AVERAGE_TASKS", "METRICS_FILE", "MODEL_SUBDIRECTORY", "REFERENCE_SUBDIRECTORY",
        "REPRODUCTION_TOLERANCE", "RETRAIN_MODES", "SCHEDULE", "RetrainResult", "TrainReport", "copy_config", "cross_validated_trial",
        "resolve_retrain_mode", "retrain", "retrain_params", "train_and_report"],
    "_trials": ["REFERENCE_ATTR", "TIE_BREAK_ATTR", "Counts", "all_trials", "best_trial", "failure_stop_message", "find_studies",
        "is_new_best", "list_studies", "load_study", "mean_trial_seconds", "ranked_trials", "study_row",
        "top_trials", "trials_with_user_attr"],
})
