"""Words shared by the Markdown and HTML reports: title, reading guide, method. Plain text with
**bold** marks that each writer renders its own way."""

from __future__ import annotations

from edgemed.report.merge import Merged
from edgemed.report.tables import bound_definition

PLOT_CAPTIONS = {
    "pareto": "Latency vs {metric} per device. Error bars: 95 % CI. A row on the Pareto front is "
              "not beaten by another row of the same device and batch that is both faster and at "
              "least as {good}.",
    "latency": "Distribution of the measured latencies of each row (warm-up excluded). A wide box "
               "or long whisker means unsteady response times.",
    "reliability": "Reliability diagram: in each confidence bin, how often the predicted class was right. "
                   "Points on the diagonal are calibrated; below it the model is over-confident. Compression "
                   "that moves a line away from the diagonal changes what its probabilities mean.",
    "size": "Model file size against median latency. Size decides download and storage; it does not "
            "predict speed across formats.",
}


def title(merged: Merged) -> str:
    models = list(dict.fromkeys(f"{s.model or 'model'} on {s.dataset}" if s.dataset else (s.model or "model")
                                for s in merged.sections))
    return "Edge inference benchmark: " + "; ".join(models)


def subtitle(merged: Merged, created: str, version: str) -> str:
    devices = list(dict.fromkeys(e.device for e in merged.entries))
    return (f"{len(merged.entries)} measured configurations on {len(devices)} device"
            f"{'s' if len(devices) != 1 else ''} ({', '.join(devices)}) from {len(merged.sources)} results "
            f"file{'s' if len(merged.sources) != 1 else ''}. Generated {created} by edgemed {version}.")


def reading_guide(metric: str, max_drop: float) -> list[str]:
    """Bullet points printed above the first table."""
    return [
        "**Latency** (p50 = median, p99 = 99th percentile): milliseconds per call of the model at the "
        "row's batch size, after warm-up; image decoding and preprocessing are not included.",
        "**img/s**: images per second at the row's batch (batch × 1000 / p50); **large batch**: the "
        "same at the run's large batch (– where the model has a fixed batch of 1).",
        "**Peak RAM**: peak resident memory of a fresh process that loads the model and runs it: "
        "what the device must have free. **Size**: the model file(s) on disk.",
        "**Accuracy** with a 95 % bootstrap confidence interval on the run's test images. **Δ vs ref**: "
        "change against the FP32 reference measured in the same run on the same device and images "
        "(negative = a loss), with a paired 95 % CI.",
        bound_definition(metric, max_drop),
        "**% of device peak**: the row's achieved multiply-accumulates per second (the model's MACs × batch / p50) "
        "against the same runtime's dense throughput on this device (two large 1×1 convolutions, FP32 or INT8 as the "
        "row), measured in the same run. Near 100 %: a faster model will not come from this runtime here; low: the "
        "model's layers leave the device's compute unused.",
        "**Timing** = *unstable* when a row had too few timed calls, a wide spread (p99 more than 3× "
        "p50, or a coefficient of variation above 1) or was timed while other processes or the host "
        "took more than a tenth of the cores: rerun such rows on a quiet machine before relying on them.",
    ]


def sections_warning(merged: Merged) -> str | None:
    if len(merged.sections) < 2:
        return None
    return (f"This report holds {len(merged.sections)} separate comparisons (different bundles, data "
            "sets, splits or test-set sizes). Numbers are comparable only within one comparison; they "
            "are never pooled or averaged across them.")


CARD_GUIDE = ("What the model is for and what it was validated on, from the bundle's manifest and its owner's card "
              "(`edgemed bundle card BUNDLE --card CARD.yaml`). Fields marked *not stated* are the owner's to fill "
              "in before a clinical deployment. The bundle carries the same card as MODEL_CARD.md and "
              "configs/metadata.json (MONAI bundle format).")

FLIPS_GUIDE = ("Images whose decision changed against the FP32 reference at its operating point, largest "
               "change in probability first (up to 24 per row), with the true class and the probability the "
               "compressed model gives its new decision, before → after. Counts cover every test image.")

METHOD = [
    "Each results file is one `edgemed bench` run on one machine. Within a run, all rows were timed "
    "interleaved (A B A B …) in one process, so every row saw the same background load; ratios "
    "between rows of one run are therefore more reliable than between runs.",
    "Warm-up calls are excluded. Latency statistics are over the measured calls; the distribution "
    "plot uses up to 500 evenly spaced samples of them.",
    "Load time, first inference and peak RAM come from a fresh subprocess per row (cold start).",
    "Accuracy confidence intervals are percentile bootstrap intervals; retention intervals are paired "
    "(the row and its reference are scored on the same resamples).",
]


def gate_lines(gates: list[dict]) -> list[str]:
    """The CI gate's verdict first, then each check that failed (or all of them when none did)."""
    failed = [g for g in gates if not g["passed"]]
    head = (f"CI gate failed: {len(failed)} of {len(gates)} checks missed" if failed
            else f"CI gate passed: all {len(gates)} checks met")
    shown = failed or gates
    return [head] + [f"{g['device']} · {g['row']}: {g['metric']} "
                     f"{'not measured' if g['value'] is None else format(g['value'], '.4g')} "
                     f"{'≥' if g['passed'] else '<'} {g['minimum']:g}" for g in shown[:50]]


def model_cards(merged: Merged) -> list[tuple[str, dict]]:
    """(section title, card) per section whose results carry the bundle's model card."""
    out = []
    for s in merged.sections:
        card = next((src.bundle.get("card") for src in s.sources if src.bundle.get("card")), None)
        if card:
            out.append((f"{s.id}: {s.title}", card))
    return out


def executive_summary(merged: Merged, metric: str, max_drop: float, devices=None) -> list[str]:
    """The report's first lines, in a buyer's words: per comparison and device, what to deploy,
    how fast, what it costs in accuracy and sensitivity, and whether the timing can be trusted."""
    from edgemed.report.decision import decision_rows
    from edgemed.report.tables import fmt_ms, fmt_rate, sensitivity_change

    what = "AUC" if metric == "auc" else "accuracy"
    lines = []
    for s in merged.sections:
        for r in decision_rows(s, metric, max_drop, devices):
            e = r["entry"]
            speed = (e.row.get("ratio_to_baseline") or {}).get("speedup_p50")
            text = (f"{s.id} · {r['device']} ({s.model or 'model'}): deploy {r['row']}, {fmt_ms(r['p50_ms'])} ms per "
                    f"call of batch {e.row['batch']} (p99 {fmt_ms(r['p99_ms'])} ms), up to {fmt_rate(r['img_s'])} "
                    f"images/s (batch {r['img_s_batch']})")
            if speed and speed != 1.0:
                text += f", {speed:.1f}× the speed of {e.source.results.get('baseline', 'the baseline')}"
            if r["meets_bound"] == "reference":
                text += "; it is the FP32 reference itself"
            elif r["delta"] is not None:
                ci = r["delta_ci"]
                text += (f"; {what} changes by {r['delta']:+.2f} pt" + (f" [95% CI {ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")
                         + (", within" if r["meets_bound"] == "yes" else ", outside") + f" the accepted drop of {max_drop:g} pt")
            else:
                text += f"; {what} was not measured"
            sens = sensitivity_change(e, with_rates=False)
            if sens:
                text += f"; {sens}"
            if r["img_s_per_w"] is not None:
                text += f"; {r['img_s_per_w']:.1f} images/s per watt"
            if r["timing"] == "unstable":
                text += "; its timing was unstable: rerun before deciding"
            lines.append(text + ".")
    return lines
