"""Study files: parsing and validating the TOML, search spaces, and the one ``--set`` grammar."""

from hpo import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "_overrides": ["format_overrides", "parse_assignment", "parse_overrides"],
    "_space": ["SearchSpace", "decode_trial_params", "parse_space"],
    "_studyfile": ["StudyFileError", "StudySpec", "apply_overrides", "check_study_name", "deep_nesting",
        "load_study_file", "parse_study"],
    "_val_split": ["small_cv_warning", "small_val_split_warning"],
})
