"""Looking at results: optuna-dashboard, static HTML reports, latent-space plots, plotly.js handling."""

from hpo import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "_compare_report": ["ranking_table", "write_comparison_report"],
    "_dashboard": ["browse_command", "make_dashboard_server", "serve_dashboard"],
    "_latent": ["available_methods", "trained_model_and_data", "write_latent_plots"],
    "_plotly_js": ["DEFAULT_PLOTLY_JS", "PLOTLY_JS_MODES", "SHARED_FILE", "plotly_js_tag"],
    "_report": ["render_report", "study_figures", "write_report"],
})
