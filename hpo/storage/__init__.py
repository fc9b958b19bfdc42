"""Where studies live: storage URLs and backends, heartbeats, riding out outages, batched trial writes.

``open_storage`` opens SQLite (WAL), PostgreSQL, a journal file or a gRPC proxy; :class:`StorageRetry`
waits out an unreachable database; ``_optuna.py`` is the only module touching Optuna's private API."""

from hpo import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "_backends": ["StorageUnavailable", "artifact_store", "database_reachable", "open_storage"],
    "_exposure": ["exposure_warning"],
    "_liveness": ["HeartbeatStorage"],
    "_optuna": ["StudyAttrWriter", "StudyListing", "best_trial_ids", "cached_reader", "cached_trial",
        "count_trials_by_state", "insert_study_system_attrs", "running_trial_ids", "list_study_summaries", "mean_finished_seconds",
        "pruner_setting",
        "rdb_queries_supported", "read_only_view", "read_studies", "read_study_system_attrs", "read_trials",
        "storage_url_of", "study_attr_transaction", "TrialStateCounter",
        "study_id", "study_storage", "study_system_attrs_with_prefix", "trial_id", "trial_ids_with_user_attr",
        "trial_numbers_from",
        "warm_study_cache", "warm_trial_cache", "with_system_attrs"],
    "_outage": ["DEFAULT_OUTAGE_WINDOW_S", "DISK_FULL_EXIT_CODE", "EXIT_CODE", "disk_full_reason", "OUTAGE_WINDOW_ENV",
        "StorageOutage", "StorageRetry",
        "best_effort", "is_storage_error", "quiet_optuna_disconnect_warnings", "short_reason"],
    "_proxy": ["make_proxy_server", "serve_proxy"],
    "_stale": ["NEVER_BEAT", "STALE", "SilentTrials", "fail_stale_trials"],
    "_trial_writes": ["BufferedReports", "set_user_attrs"],
    "_urls": ["SUPPORTED_URLS", "artifact_directory", "check_storage_url", "default_storage_url",
        "journal_path", "redact", "resolve_storage_url", "run_directory", "sqlite_file"],
})
