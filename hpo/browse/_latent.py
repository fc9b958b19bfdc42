"""Latent-space pictures: a trained model's embeddings in 2-D, coloured by tissue.

The embeddings are the autoencoder's latent codes or a classifier's penultimate layer
(``model.embed(X)``). They are projected to 2-D with PCA (fitted on the training split, so
validation and test rows fall where the model puts unseen samples), t-SNE (scikit-learn,
all rows at once, after PCA to at most 50 dimensions) or UMAP when ``umap-learn`` is
installed. Each figure is an interactive plotly scatter: colour = tissue (one legend entry each, 40
colours that stay apart), marker = split, hover = sample ID, tissue, primary disease (and the
predicted tissue for classifiers, whose misclassified samples are ringed by a trace of their own).
A PNG comes beside each page where plotly's exporter (kaleido, with a Chrome or Chromium) works.

The core functions take plain inputs (:func:`latent_points` -> :func:`project` ->
:func:`latent_figure`); :func:`write_latent_plots` runs them for a model and a prepared data set.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from data_pipeline.dataset import SPLITS, PreparedDataset

if TYPE_CHECKING:
    from models import TissueModel

logger = logging.getLogger(__package__)

METHODS = ("pca", "tsne", "umap")
DISEASE_COLUMN = "OncotreePrimaryDisease"
SPLIT_SYMBOLS = {"train": "circle", "val": "diamond", "test": "x"}
PCA_BEFORE_TSNE = 50


def available_methods() -> tuple[str, ...]:
    """The projections usable here: PCA and t-SNE always, UMAP when ``umap-learn`` is installed."""
    return tuple(m for m in METHODS if m != "umap" or importlib.util.find_spec("umap") is not None)


def latent_points(model: Any, data: PreparedDataset, splits: Sequence[str] = SPLITS) -> tuple[np.ndarray, pd.DataFrame]:
    """Embeddings of every row of ``splits`` and one metadata row per sample.

    Metadata columns: ``sample_id``, ``tissue``, ``disease``, ``split`` and, when the model
    predicts tissues, ``predicted``.
    """
    if not model.has_embedding:
        raise ValueError(f"{model.name} has no embedding: only autoencoders and deep classifiers have a latent space")
    blocks, frames = [], []
    for split in splits:
        X, y = data.split(split)
        n = len(y)
        if n == 0:
            continue
        embedding = np.asarray(model.embed(X), dtype=np.float64)
        if embedding.ndim != 2 or embedding.shape[0] != n:
            raise ValueError(f"{split}: embed() returned shape {embedding.shape} for {n} rows")
        info = data.sample_info.get(split, {})
        frame = pd.DataFrame({
            "sample_id": list(data.sample_ids[split]),
            "tissue": [data.tissues[int(index)] for index in y],
            "disease": [str(v) for v in info.get(DISEASE_COLUMN, ["unknown"] * n)],
            "split": split,
        })
        if model.task == "classification":
            frame["predicted"] = [data.tissues[int(index)] for index in model.predict(X)]
        blocks.append(embedding)
        frames.append(frame)
    if not blocks:
        raise ValueError(f"no rows in splits {list(splits)}")
    return np.vstack(blocks), pd.concat(frames, ignore_index=True)


def project(embeddings: np.ndarray, method: str, *, fit_rows: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """2-D coordinates of ``embeddings`` (``n x d``) by ``pca``, ``tsne`` or ``umap``.

    PCA is fitted on ``fit_rows`` (a boolean mask, e.g. the training split) and applied to all rows;
    t-SNE and UMAP embed all rows together.
    """
    from sklearn.decomposition import PCA

    embeddings = np.asarray(embeddings, dtype=np.float64)
    n, dims = embeddings.shape
    if n < 3:
        raise ValueError(f"need at least 3 samples to project, got {n}")
    if not np.all(np.isfinite(embeddings)):
        raise ValueError("the embeddings hold NaN or infinite values: the model diverged")
    if dims == 1:
        embeddings = np.hstack([embeddings, np.zeros_like(embeddings)])
        dims = 2
    if method == "pca":
        rows = embeddings if fit_rows is None else embeddings[np.asarray(fit_rows, dtype=bool)]
        return PCA(n_components=2, random_state=seed).fit(rows).transform(embeddings)
    if method == "tsne":
        from sklearn.manifold import TSNE

        reduced = embeddings
        if dims > PCA_BEFORE_TSNE and n > PCA_BEFORE_TSNE:
            reduced = PCA(n_components=PCA_BEFORE_TSNE, random_state=seed).fit_transform(embeddings)
        from threadpoolctl import threadpool_limits

        perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
        # One OpenMP thread: on a busy machine scikit-learn's Barnes-Hut threads spin against each
        # other (measured 5x slower for 1,400 samples on 2 shared cores).
        with threadpool_limits(limits=1, user_api="openmp"):
            return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    if method == "umap":
        if importlib.util.find_spec("umap") is None:
            raise ValueError("method 'umap' needs the umap-learn package: pip install umap-learn")
        import umap

        neighbours = int(min(15, n - 1))
        return umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed).fit_transform(embeddings)
    raise ValueError(f"unknown projection {method!r}; expected one of {METHODS}")


TISSUE_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#0000ff", "#ff33cc", "#ddccaa", "#334422", "#ddcc00", "#772255",
    "#ffbbff", "#6655dd", "#00dddd", "#00ee00", "#885500", "#ff6699", "#cc11ff", "#ff9977", "#00eeaa", "#aaccee",
    "#bbdd77", "#997788", "#008866", "#667700", "#99dd11", "#880088", "#004455", "#9999ff", "#ffbb55", "#882222",
    "#223388", "#dd77ff", "#4400bb", "#553333", "#3399aa", "#55ee66", "#997755", "#9966aa", "#005500", "#88cc99",
)
"""40 colours that stay apart (every pair at least 28 CIE76 units apart; plotly's Dark24 + Light24 have pairs
2.4 apart), all readable on white: plotly's first four, then each the farthest in CIELAB from those before it."""

MISCLASSIFIED = "misclassified"


def _palette(n: int) -> list[str]:
    return [TISSUE_COLOURS[index % len(TISSUE_COLOURS)] for index in range(n)]


def latent_figure(coords: np.ndarray, points: pd.DataFrame, *, title: str, tissues: Sequence[str] | None = None) -> Any:
    """Scatter of ``coords`` (``n x 2``): one trace, one legend entry, per tissue (colour); the split is the marker.

    Every sample is one point; its ``customdata`` is ``[sample_id, tissue, disease, split(, predicted)]``. The
    legend also explains the markers (train circle, val diamond, test x) and, for classifiers, holds a
    "misclassified" trace that rings every sample predicted as another tissue (click it to hide the rings).
    """
    import plotly.graph_objects as go

    if len(coords) != len(points):
        raise ValueError(f"{len(coords)} coordinates for {len(points)} samples")
    tissues = list(tissues) if tissues is not None else sorted(points["tissue"].unique())
    colours = dict(zip(tissues, _palette(len(tissues))))
    has_prediction = "predicted" in points.columns
    columns = ["sample_id", "tissue", "disease", "split"] + (["predicted"] if has_prediction else [])
    hover = (
        "<b>%{customdata[0]}</b><br>tissue: %{customdata[1]}<br>disease: %{customdata[2]}"
        "<br>split: %{customdata[3]}" + ("<br>predicted: %{customdata[4]}" if has_prediction else "")
        + "<extra></extra>"
    )
    figure = go.Figure()
    for tissue in tissues:
        mask = (points["tissue"] == tissue).to_numpy()
        if not mask.any():
            continue
        figure.add_trace(go.Scattergl(
            x=coords[mask, 0], y=coords[mask, 1], mode="markers", name=tissue, legendgroup=tissue,
            marker={"color": colours[tissue], "size": 7, "opacity": 0.85, "line": {"width": 0.5, "color": "white"},
                    "symbol": [SPLIT_SYMBOLS.get(split, "circle") for split in points.loc[mask, "split"]]},
            customdata=points.loc[mask, columns].to_numpy(dtype=object), hovertemplate=hover,
        ))
    for split in [split for split in SPLITS if split in set(points["split"])]:  # the marker key, in the legend
        figure.add_trace(go.Scattergl(
            x=[None], y=[None], mode="markers", name=f"{split} ({SPLIT_SYMBOLS.get(split, 'circle')})",
            legendgroup="split", legendgrouptitle={"text": "split (marker)"}, hoverinfo="skip",
            marker={"color": "#555555", "size": 8, "symbol": SPLIT_SYMBOLS.get(split, "circle")},
        ))
    if has_prediction:
        wrong = (points["predicted"] != points["tissue"]).to_numpy()
        figure.add_trace(go.Scattergl(
            x=coords[wrong, 0], y=coords[wrong, 1], mode="markers", name=f"{MISCLASSIFIED} ({int(wrong.sum())})",
            legendgroup=MISCLASSIFIED, legendgrouptitle={"text": "predictions"},
            marker={"symbol": "circle-open", "size": 14, "color": "black", "line": {"width": 1.5}},
            customdata=points.loc[wrong, columns].to_numpy(dtype=object), hovertemplate=hover,
        ))
    figure.update_layout(
        title=title, template="plotly_white", width=1100, height=750,
        legend={"title": "tissue (colour)", "itemsizing": "constant", "groupclick": "toggleitem"},
        xaxis_title="component 1", yaxis_title="component 2",
    )
    return figure


PNG_HINT = ("pip install kaleido (plotly's static image exporter; it drives a Chrome or Chromium installed on this "
            "machine: apt-get install chromium)")


def write_png(figure: Any, path: Path) -> Path | None:
    """The figure as a PNG when plotly's static exporter (kaleido) works here, else ``None`` (logged with the fix)."""
    if importlib.util.find_spec("kaleido") is None:
        logger.warning("no PNG for %s: %s", path.name, PNG_HINT)
        return None
    try:
        figure.write_image(str(path), scale=2)
        return path
    except Exception as error:  # kaleido present but no browser, etc.
        logger.warning("no PNG for %s: %s; %s", path.name, " ".join(str(error).split())[:200], PNG_HINT)
        return None


def write_latent_plots(
    model: Any,
    data: PreparedDataset,
    out_dir: str | Path,
    *,
    methods: Sequence[str] = ("pca", "tsne"),
    label: str = "",
    seed: int = 0,
    png: bool = True,
    plotly_js: str = "shared",
) -> list[Path]:
    """For each method: ``latent_<method>.html`` (works offline) and a PNG where possible.

    Also writes ``latent_points.csv`` (sample metadata and every method's coordinates).
    ``plotly_js``: how the pages load plotly.js, see :mod:`hpo.plotly_js` (``shared`` also writes
    ``plotly.min.js`` into ``out_dir``, once for all the pages). Returns the written paths.
    """
    from hpo.browse._plotly_js import figure_page

    embeddings, points = latent_points(model, data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    label = label or model.name
    what = "latent code" if model.task == "reconstruction" else "embedding"
    written = []
    table = points.copy()
    for method in methods:
        coords = project(embeddings, method, fit_rows=(points["split"] == "train").to_numpy(), seed=seed)
        table[f"{method}_1"], table[f"{method}_2"] = coords[:, 0], coords[:, 1]
        title = (f"{label}: {what} ({embeddings.shape[1]} dims) by {method.upper()}, "
                 f"{len(points)} samples, {data.n_classes} tissues")
        figure = latent_figure(coords, points, title=title, tissues=data.tissues)
        html_path = out / f"latent_{method}.html"
        html_path.write_text(figure_page(figure, plotly_js, out, title=title), encoding="utf-8")
        written.append(html_path)
        if png:
            png_path = write_png(figure, out / f"latent_{method}.png")
            if png_path is not None:
                written.append(png_path)
    csv_path = out / "latent_points.csv"
    table.to_csv(csv_path, index=False)
    written.append(csv_path)
    return written


METADATA_FILE = "model.json"


def trained_model_and_data(
    *, model_dir: str | Path | None = None, config: str | Path | None = None, data_overrides: Mapping[str, Any],
    out: str | Path, device: str = "auto",
) -> tuple[TissueModel, PreparedDataset]:
    """The model to plot and the data set it was trained on (``data_overrides`` win over the recorded settings).

    The model comes from ``hpo train --out DIR`` (``model_dir``: the folder or its ``model/``), or is
    retrained on the training split from an exported ``config`` into ``out/model``. Raises ``ValueError``
    when the data set does not fit the model (another gene count) or nothing records the training data.
    """
    from data_pipeline import DataConfig, prepare_dataset
    from hpo.results import METRICS_FILE, MODEL_SUBDIRECTORY, read_config, retrain
    from models import load_model

    overrides = dict(data_overrides)
    if config is not None:
        exported = read_config(config)
        exported["data"] = {**exported["data"], **overrides}
        retrain(exported, Path(out) / MODEL_SUBDIRECTORY, train_split="train", eval_splits=("val",), device=device)
        folder, _ = _model_folder(Path(out) / MODEL_SUBDIRECTORY)
        settings, fingerprint = dict(exported["data"]), exported.get("source", {}).get("data_fingerprint", "")
        where = f"{config} [data]"
    else:
        folder, record = _model_folder(Path(model_dir))
        settings = dict(record.get("data", {}).get("settings", {}))
        fingerprint = record.get("data", {}).get("fingerprint", "")
        where = f"{folder} training record"
        if not settings and not overrides:
            raise ValueError(f"{folder}: no {METRICS_FILE} records the training data; give the data options "
                             "(e.g. --preset tiny) the model was trained with")
    mapping = {key: value for key, value in settings.items() if value is not None} | overrides
    data = prepare_dataset(DataConfig.from_mapping(mapping, where=where))
    if fingerprint and fingerprint != data.fingerprint:
        logger.warning("data fingerprint %s differs from the model's training data %s: the plot shows other data",
                       data.fingerprint[:12], fingerprint[:12])
    expected = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8")).get("n_features")
    if expected is not None and expected != data.n_features:
        raise ValueError(f"{folder}: the model expects {expected} genes, the data set has {data.n_features}; "
                         "give the data options it was trained with")
    return load_model(folder, device=device), data


def _model_folder(directory: Path) -> tuple[Path, dict[str, Any]]:
    """The folder holding ``model.json`` and the recorded training record (``metrics.json``), if any."""
    from hpo.results import METRICS_FILE, MODEL_SUBDIRECTORY

    if (directory / MODEL_SUBDIRECTORY / METADATA_FILE).is_file():
        model_dir = directory / MODEL_SUBDIRECTORY
    elif (directory / METADATA_FILE).is_file():
        model_dir = directory
    else:
        raise FileNotFoundError(f"{directory}: no trained model here (expected {METADATA_FILE} or "
                                f"{MODEL_SUBDIRECTORY}/{METADATA_FILE}, as written by 'hpo train --out')")
    for candidate in (model_dir.parent / METRICS_FILE, model_dir / METRICS_FILE):
        if candidate.is_file():
            return model_dir, json.loads(candidate.read_text(encoding="utf-8"))
    return model_dir, {}
