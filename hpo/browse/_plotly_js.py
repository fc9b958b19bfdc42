"""How an HTML report loads plotly.js: a shared file beside it, embedded, or from the CDN.

``shared`` (the default) is plotly's own ``include_plotlyjs="directory"`` convention: the installed
plotly package's ``plotly.min.js`` (~4.9 MB) is written once into the report's folder and every
report there loads it by relative path, so reports stay small and still work offline.
``inline`` embeds it in the page (one self-contained file to mail around); ``cdn`` loads it from
cdn.plot.ly (smallest, needs the network when opened).
"""

from __future__ import annotations

import base64
import hashlib
import html
from pathlib import Path
from typing import Any

PLOTLY_JS_MODES = ("shared", "inline", "cdn")
DEFAULT_PLOTLY_JS = "shared"
SHARED_FILE = "plotly.min.js"
_WINDOW_CONFIG = "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>"


def plotly_js_tag(mode: str, out_dir: str | Path | None = None) -> str:
    """The ``<script>`` tag(s) that load plotly.js for ``mode``.

    ``shared`` needs ``out_dir``: it writes ``out_dir/plotly.min.js`` unless an identical copy is there.
    """
    from plotly.offline import get_plotlyjs

    if mode == "inline":
        return f"{_WINDOW_CONFIG}<script type='text/javascript'>{get_plotlyjs()}</script>"
    if mode == "cdn":
        from plotly.io._utils import plotly_cdn_url

        digest = base64.b64encode(hashlib.sha256(get_plotlyjs().encode("utf-8")).digest()).decode()
        return (f"{_WINDOW_CONFIG}<script charset='utf-8' src='{plotly_cdn_url()}' "
                f"integrity='sha256-{digest}' crossorigin='anonymous'></script>")
    if mode == "shared":
        if out_dir is None:
            raise ValueError("plotly.js mode 'shared' needs the report folder to write plotly.min.js into")
        write_shared_plotly_js(out_dir)
        return f"{_WINDOW_CONFIG}<script charset='utf-8' src='{SHARED_FILE}'></script>"
    raise ValueError(f"plotly.js mode {mode!r}: use one of {', '.join(PLOTLY_JS_MODES)}")


def write_shared_plotly_js(out_dir: str | Path) -> Path:
    """``out_dir/plotly.min.js`` from the installed plotly, written only when missing or different."""
    from plotly.offline import get_plotlyjs

    path = Path(out_dir) / SHARED_FILE
    bundle = get_plotlyjs().encode("utf-8")
    if not (path.is_file() and path.stat().st_size == len(bundle) and path.read_bytes() == bundle):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bundle)
    return path


def figure_page(figure: Any, mode: str, out_dir: str | Path, *, title: str = "") -> str:
    """A whole HTML page of one plotly ``figure`` that loads plotly.js as ``mode`` says (:func:`plotly_js_tag`)."""
    body = figure.to_html(full_html=False, include_plotlyjs=False)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"{plotly_js_tag(mode, out_dir)}</head>\n<body>{body}</body></html>\n")
