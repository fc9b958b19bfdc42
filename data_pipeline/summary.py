"""Describe a prepared data set: a text table and an HTML report with plotly figures."""

from __future__ import annotations

import html
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from data_pipeline.dataset import SPLITS, PreparedDataset
from data_pipeline.prepare import load_summary


def summary_rows(dataset: PreparedDataset) -> list[tuple[str, str]]:
    """(field, value) rows: source, samples, genes, sparsity, splits, tissues."""
    summary = load_summary(dataset)
    settings, provenance = dataset.settings, dataset.provenance
    if provenance.get("source") == "synthetic":
        source = f"synthetic (preset {settings.get('preset')}, seed {settings.get('synthetic_seed')}, layout {provenance.get('layout')})"
    else:
        source = f"DepMap files ({provenance.get('layout')} layout)"
    dropped = summary["dropped_tissues"]
    split_sizes = summary["split_sizes"]
    top_k = settings.get("top_k_genes")
    rows = [
        ("source", source),
        ("expression file", str(provenance.get("expression_file"))),
        ("model file", str(provenance.get("model_file"))),
        ("label column", str(provenance.get("label_column"))),
        ("expression rows", str(summary["n_expression_rows"])),
        ("unlabelled dropped", str(summary["n_unlabeled_dropped"])),
        ("labelled samples", str(summary["n_labelled"])),
        (
            "rare tissues dropped",
            f"{len(dropped)} (< {settings.get('min_samples_per_tissue')} samples, "
            f"{sum(dropped.values())} samples)" + (": " + ", ".join(dropped) if dropped else ""),
        ),
        ("samples kept", str(summary["n_samples"])),
        ("genes before filtering", str(summary["n_genes_input"])),
        (
            "genes after filtering",
            f"{summary['n_genes_kept']} (train variance >= {settings.get('min_gene_variance')}"
            + (f", top {top_k}" if top_k else "") + ")",
        ),
        ("log2(x+1) applied", "yes" if provenance.get("log_applied") else "no (input already logged)"),
        ("sparsity", f"{summary['sparsity']:.1%} exact zeros"),
        ("splits", " / ".join(f"{s} {split_sizes[s]}" for s in SPLITS)),
        ("tissues", str(dataset.n_classes)),
        ("patients", patient_line(dataset)),
        ("fingerprint", dataset.fingerprint[:20]),
        ("cache", str(dataset.directory)),
    ]
    return rows


def patient_counts(dataset: PreparedDataset) -> tuple[int, int, int] | None:
    """``(patients, patients with several models, models of those)`` from ``PatientID``; None without it."""
    patients = _all_info(dataset, "PatientID")
    if not patients:
        return None
    counts = Counter(p for p in patients if p)
    several = [n for n in counts.values() if n > 1]
    return len(counts), len(several), sum(several)


def patient_line(dataset: PreparedDataset) -> str:
    """The summary's ``patients`` row: how many patients have several models, which stay in one split."""
    counts = patient_counts(dataset)
    if counts is None:
        return "unknown (no PatientID in the model file)"
    patients, several, models = counts
    if not several:
        return f"{patients} (one model each)"
    return (f"{patients}; {several} with several models ({models} models), each patient's models "
            "kept in one split and one CV fold")


def tissue_table(dataset: PreparedDataset) -> list[tuple[str, int, int, int, int]]:
    """(tissue, total, train, val, test) per tissue, largest first."""
    per_split = {s: np.bincount(np.asarray(dataset.split(s)[1]), minlength=dataset.n_classes) for s in SPLITS}
    rows = [
        (name, int(sum(per_split[s][i] for s in SPLITS)), *(int(per_split[s][i]) for s in SPLITS))
        for i, name in enumerate(dataset.tissues)
    ]
    return sorted(rows, key=lambda row: (-row[1], row[0]))


def format_summary(dataset: PreparedDataset) -> str:
    """The summary as aligned plain text."""
    rows = summary_rows(dataset)
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    tissues = tissue_table(dataset)
    name_width = max(len("tissue"), *(len(t[0]) for t in tissues))
    lines.append("")
    lines.append(f"{'tissue':<{name_width}}  {'total':>5}  {'train':>5}  {'val':>5}  {'test':>5}")
    for name, total, train, val, test in tissues:
        lines.append(f"{name:<{name_width}}  {total:>5}  {train:>5}  {val:>5}  {test:>5}")
    return "\n".join(lines)


def _all_info(dataset: PreparedDataset, column: str) -> list[Any]:
    return [v for s in SPLITS for v in dataset.sample_info.get(s, {}).get(column, [])]


def summary_figures(dataset: PreparedDataset) -> list[Any]:
    """Plotly figures: samples per tissue, age, primary disease, per-gene sparsity, Jaccard heat map."""
    import plotly.graph_objects as go

    summary = load_summary(dataset)
    counts = summary["tissue_counts_input"]
    dropped = summary["dropped_tissues"]
    order = sorted(counts, key=lambda t: -counts[t])
    tissue_fig = go.Figure(
        go.Bar(
            x=order,
            y=[counts[t] for t in order],
            marker_color=["#bbbbbb" if t in dropped else "#1f77b4" for t in order],
            hovertext=["dropped (too few samples)" if t in dropped else "kept" for t in order],
        )
    )
    tissue_fig.update_layout(title="Labelled samples per tissue (grey: dropped as too rare)",
                             xaxis_title="tissue", yaxis_title="samples")

    ages = [a for a in _all_info(dataset, "Age") if a is not None]
    age_fig = go.Figure(go.Histogram(x=ages, nbinsx=30))
    age_fig.update_layout(title=f"Age at sampling ({len(ages)} samples with an age)", xaxis_title="age",
                          yaxis_title="samples")

    diseases = Counter(d for d in _all_info(dataset, "OncotreePrimaryDisease") if d)
    top = diseases.most_common(30)
    disease_fig = go.Figure(go.Bar(x=[n for _, n in top][::-1], y=[d for d, _ in top][::-1], orientation="h"))
    disease_fig.update_layout(title=f"Primary disease (top {len(top)} of {len(diseases)})",
                              xaxis_title="samples", height=max(400, 22 * len(top)))

    zero_fraction = np.load(Path(dataset.directory) / "gene_zero_fraction.npy")
    sparsity_fig = go.Figure(go.Histogram(x=zero_fraction, nbinsx=50))
    sparsity_fig.update_layout(
        title=f"Sparsity per gene (fraction of samples with exactly 0; overall {summary['sparsity']:.1%})",
        xaxis_title="fraction of zero values", yaxis_title="genes",
    )

    jaccard = summary["jaccard"]
    jaccard_fig = go.Figure(
        go.Heatmap(z=jaccard["matrix"], x=jaccard["genes"], y=jaccard["genes"], zmin=0, zmax=1,
                   colorscale="Viridis", colorbar={"title": "Jaccard"})
    )
    jaccard_fig.update_layout(
        title=f"Jaccard similarity of expression presence (value > 0), {len(jaccard['genes'])} sampled genes",
        height=750, width=850,
    )
    return [tissue_fig, age_fig, disease_fig, sparsity_fig, jaccard_fig]


def write_report(
    dataset: PreparedDataset, path: str | os.PathLike[str], *, plotly_js_tag: str | None = None
) -> Path:
    """Write the HTML report to ``path``.

    ``plotly_js_tag``: the ``<script>`` markup that loads plotly.js in the page's head (``hpo data summary``
    passes :func:`hpo.plotly_js.plotly_js_tag`'s); by default plotly.js is embedded once, so the file is
    self-contained and works offline.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>" for name, value in summary_rows(dataset)
    )
    tissues = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{total}</td><td>{train}</td><td>{val}</td><td>{test}</td></tr>"
        for name, total, train, val, test in tissue_table(dataset)
    )
    figures = "".join(
        f"<div>{figure.to_html(full_html=False, include_plotlyjs=plotly_js_tag is None and index == 0)}</div>"
        for index, figure in enumerate(summary_figures(dataset))
    )
    document = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>tissue-hpo data summary</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin-bottom:1.5em}}
th,td{{border:1px solid #ccc;padding:3px 8px;text-align:left}}</style>{plotly_js_tag or ""}</head>
<body><h1>Data summary</h1>
<table>{rows}</table>
<h2>Tissues and splits</h2>
<table><tr><th>tissue</th><th>total</th><th>train</th><th>val</th><th>test</th></tr>{tissues}</table>
{figures}
</body></html>
"""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(document, encoding="utf-8")
    os.replace(temporary, path)
    return path
