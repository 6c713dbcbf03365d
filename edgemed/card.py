"""Model card and MONAI-bundle metadata of a bundle, from what its manifest already records
(model, classes, input, data set with sha256 and split method, metrics, pruning, INT8 routes and
float layers, library versions) plus an optional user YAML for what only the owner knows
(intended use and users, out-of-scope uses, limitations, contact).

Every bundle carries both, written with its manifest: MODEL_CARD.md for people and
configs/metadata.json in the shape of a MONAI bundle's metadata (`network_data_format`), so
tools of the medical-imaging ecosystem can read the bundle's inputs and outputs.
"""

from __future__ import annotations

from pathlib import Path

from edgemed.errors import EdgemedError

CARD_MD = "MODEL_CARD.md"
MONAI_METADATA = "configs/metadata.json"
DOCUMENTS = (CARD_MD, MONAI_METADATA)

# what the owner writes (YAML: key → text or list of texts); nothing else is read from it
USER_FIELDS = {
    "intended_use": "Intended use",
    "intended_users": "Intended users",
    "out_of_scope": "Out-of-scope uses",
    "limitations": "Limitations",
    "training_data": "Training data (owner's description)",
    "evaluation_data": "Evaluation data (owner's description)",
    "split_method": "How the data was split",
    "ethical_considerations": "Ethical considerations",
    "authors": "Authors",
    "contact": "Contact",
    "license": "Licence",
    "references": "References",
    "version": "Model version",
}
MAX_TEXT = 4000
MAX_ITEMS = 50
MAX_VALUE = 16_000  # one rendered field (a results file refuses longer ones)
NOT_STATED = "not stated by the model's owner (add it with `edgemed bundle card BUNDLE --card CARD.yaml`)"
CARD_FIX = "write it as YAML with keys among " + ", ".join(USER_FIELDS) + ", each a text or a list of texts"


def check_user_card(doc, where: str) -> dict:
    """The owner's fields, checked: known keys, text or a list of texts, bounded."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise EdgemedError(f"{where} is not a mapping of fields: {CARD_FIX}")
    unknown = sorted(str(k) for k in doc if k not in USER_FIELDS)
    if unknown:
        raise EdgemedError(f"{where} has unknown fields {', '.join(unknown[:5])}: {CARD_FIX}")
    out = {}
    for key, value in doc.items():
        items = value if isinstance(value, list) else [value]
        if len(items) > MAX_ITEMS or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                             and len(str(v)) <= MAX_TEXT for v in items):
            raise EdgemedError(f"{where}: {key} must be a text (at most {MAX_TEXT} characters) or a list of at "
                               f"most {MAX_ITEMS} texts")
        out[key] = [str(v) for v in items] if isinstance(value, list) else str(value)
    return out


def read_user_card(path: str | Path) -> dict:
    from edgemed.fileio import read_yaml

    return check_user_card(read_yaml(path, "model card file", max_bytes=256 << 10, fix=CARD_FIX),
                           f"model card file {path}")


def _dict(v) -> dict:
    """A manifest field as a dict (a hand-edited manifest may hold anything there)."""
    return v if isinstance(v, dict) else {}


def _list(v) -> list:
    return v if isinstance(v, list) else []


def _text(v) -> str:
    return "; ".join(v) if isinstance(v, list) else str(v)


def _estimate(m: dict | None, percent: bool = True) -> str | None:
    """`88.5 % [95 % CI 86.1, 90.9]`, or for AUC (not a percentage) `0.962 [95 % CI 0.946, 0.976]`."""
    if not isinstance(m, dict) or not isinstance(m.get("value"), (int, float)):
        return None
    ci = m.get("ci") if isinstance(m.get("ci"), list) and len(m["ci"]) == 2 else None
    if percent:
        return f"{100 * m['value']:.1f} %" + (f" [95 % CI {100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")
    return f"{m['value']:.3f}" + (f" [95 % CI {ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _compression(manifest: dict) -> list[tuple[str, str]]:
    items = []
    prov = _dict(manifest.get("provenance"))
    for step in _list(prov.get("lineage"))[:20]:
        if isinstance(step, dict) and step.get("op") == "train" and step.get("teacher"):
            items.append(("Knowledge distillation", f"trained to match the outputs of {step.get('teacher_model', 'a model')} "
                          f"{step['teacher']} (sha256 {step.get('teacher_sha256', '?')}) as well as the labels"))
        if isinstance(step, dict) and step.get("op") == "prune":
            before, after = _dict(step.get("before")), _dict(step.get("after"))
            detail = ", ".join(f"{k} {before.get(k):,} → {after.get(k):,}" for k in ("macs", "params")
                               if isinstance(before.get(k), int) and isinstance(after.get(k), int))
            tuned = (f"; fine-tuned {step['finetune_epochs']} epochs" + (" with distillation from the unpruned model"
                     if step.get("distill") else "")) if step.get("finetune_epochs") else ""
            acc = ""
            if isinstance(before.get("val_accuracy"), float) and isinstance(after.get("val_accuracy"), float):
                acc = f"; validation accuracy {100 * before['val_accuracy']:.1f} % → {100 * after['val_accuracy']:.1f} %"
            items.append(("Pruning", f"structured pruning ({step.get('importance', '?')} importance) of "
                          f"{step.get('parent', 'the parent checkpoint')}" + (f" ({detail})" if detail else "") + tuned + acc))
    q = _dict(manifest.get("quantization")) or _dict(prov.get("quantize"))
    if q:
        routes = ", ".join(f"{f}: {r}" for f, r in list(_dict(q.get("routes")).items())[:20])
        calib = _dict(q.get("calibration"))
        control = (f"{q.get('metric', 'accuracy')} drop ≤ {q.get('max_drop_points', '?')} pt on "
                   f"{q.get('validation_images', '?')} validation images" if q.get("max_drop_points", "?") is not None
                   else f"none (no bound was given; each build's drop on {q.get('validation_images', '?')} "
                        "validation images is in the manifest)")
        items.append(("INT8 quantization", f"post-training, routes {routes or 'default'}; calibration "
                      f"{calib.get('used', calib.get('size', '?'))} images of {calib.get('dataset', '?')}; accuracy "
                      f"control: {control}"))
        if isinstance(q.get("note"), str):  # on the recommendation: its CI past the bound, or slower than FP32
            items.append(("INT8 note", q["note"][:500]))
    for a in _list(manifest.get("artifacts")):
        d = _dict(a.get("details")) if isinstance(a, dict) else {}
        floats = _list(d.get("float_layers")) or _list(d.get("ignored_layers")) or _list(d.get("reverted_layers"))
        if isinstance(a, dict) and a.get("precision") in ("int8", "mixed") and floats:
            items.append((f"Float layers in {a.get('id')}", ", ".join(map(str, floats[:20]))
                          + (f" and {len(floats) - 20} more" if len(floats) > 20 else "")))
    if not items:
        items.append(("Compression", "none: the artifacts are conversions of the trained weights"))
    return items[:60]  # a results file holds at most 100 items a section


def model_card(manifest: dict, user: dict | None = None, split_counts: dict | None = None) -> dict:
    """The card as sections of (label, text) items, ready for Markdown, HTML or a results file.
    `split_counts`: {split: [images per class]} where the data set was at hand."""
    from edgemed.data.catalog import CATALOG

    user = check_user_card(user if user is not None else manifest.get("card"), "the bundle's model card")
    model = _dict(manifest.get("model"))
    prov = _dict(manifest.get("provenance"))
    data = _dict(prov.get("dataset"))
    info = CATALOG.get(data.get("name")) if isinstance(data.get("name"), str) else None
    names = _list(manifest.get("class_names"))
    spec = _dict(manifest.get("preprocess"))

    def owner(key, default=NOT_STATED):
        return _text(user[key]) if key in user else default

    sections = [
        ("Model", [("Architecture", str(model.get("name", "?"))), ("Task", str(model.get("task", "classification"))),
                   ("Classes (output order)", ", ".join(map(str, names))),
                   ("Input", f"{spec.get('channels', '?')}-channel image resized to "
                             f"{'×'.join(map(str, spec.get('size') or []))}, normalised with mean "
                             f"{spec.get('mean')} and std {spec.get('std')}"),
                   ("Output", "class scores (logits); softmax gives probabilities"),
                   ("Version", owner("version", manifest.get("created", "?")))]),
        ("Intended use", [("Intended use", owner("intended_use")), ("Intended users", owner("intended_users")),
                          ("Out-of-scope uses", owner("out_of_scope"))]),
        ("Data", [("Data set", f"{data.get('name', 'not recorded')}" + (f" ({info.license})" if info else "")),
                  ("Data file sha256", str(data.get("sha256") or "not recorded")),
                  ("Split method", owner("split_method", info.split_method if info else NOT_STATED)),
                  ("Source", info.citation if info else owner("training_data"))]
         + ([("Training data (owner)", owner("training_data"))] if "training_data" in user and info else [])
         + ([("Evaluation data (owner)", owner("evaluation_data"))] if "evaluation_data" in user else [])
         + [(f"Images per class, {split}", ", ".join(f"{n} {c}" for c, n in zip(names, counts, strict=False)))
            for split, counts in (split_counts or {}).items()]),
        ("Measured performance (PyTorch FP32, at training time)",
         [(f"{split} {metric}", text) for split in ("val", "test") for metric in ("accuracy", "auc")
          if (text := _estimate(_dict(_dict(model.get("metrics")).get(split)).get(metric), metric != "auc"))]
         or [("Metrics", "not recorded in the checkpoint")]),
        ("Compression applied", _compression(manifest)),
        ("Limitations and considerations", [("Limitations", owner("limitations")),
                                            ("Ethical considerations", owner("ethical_considerations", "–"))]),
        ("Provenance", [("Checkpoint", f"{_dict(prov.get('checkpoint')).get('file', '?')} sha256 "
                                       f"{_dict(prov.get('checkpoint')).get('sha256', '?')}"),
                        ("Library versions", ", ".join(f"{k} {v}" for k, v in list(_dict(prov.get("libraries")).items())[:60])),
                        ("Authors", owner("authors", "–")), ("Contact", owner("contact", "–")),
                        ("Licence", owner("license", "–")), ("References", owner("references", "–"))]),
    ]
    return {"sections": [{"title": t, "items": [{"label": _printable(k[:200]), "value": _printable(str(v)[:MAX_VALUE])}
                                                for k, v in items]}
                         for t, items in sections]}


BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _printable(text: str) -> str:
    """Card text without control or bidi-control characters (manifest fields may hold anything: an
    escape sequence or U+202E would restyle a terminal or reorder what a reader sees). Joiners, soft
    hyphens and other format characters that scripts and names need stay."""
    import unicodedata

    return "".join(" " if c in BIDI_CONTROLS or unicodedata.category(c) == "Cc" else c for c in text)


def card_markdown(card: dict, title: str) -> str:
    from edgemed.report.markdown import md_text

    out = [f"# Model card: {md_text(title)}", "",
           "Generated by edgemed from the bundle's manifest and the owner's card file; "
           "fields marked *not stated* are for the model's owner to fill in.", ""]
    for s in card["sections"]:
        out += [f"## {md_text(s['title'])}", ""] + [f"- **{md_text(i['label'])}**: {md_text(i['value'])}"
                                                     for i in s["items"]] + [""]
    return "\n".join(out)


def monai_metadata(manifest: dict, card: dict) -> dict:
    """A MONAI bundle's configs/metadata.json for this model (its `network_data_format`
    describes the input image and the output class scores)."""
    model = _dict(manifest.get("model"))
    spec = _dict(manifest.get("preprocess"))
    names = _list(manifest.get("class_names"))
    libs = {str(k): str(v) for k, v in list(_dict(_dict(manifest.get("provenance")).get("libraries")).items())[:60]}
    user = _dict(manifest.get("card"))
    items = {i["label"]: i["value"] for s in card["sections"] for i in s["items"]}
    data = _dict(_dict(manifest.get("provenance")).get("dataset"))
    return {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json",
        "version": _text(user.get("version", "0.1.0")),
        "changelog": {_text(user.get("version", "0.1.0")): f"exported by edgemed {manifest.get('edgemed_version', '?')}"},
        "monai_version": libs.get("monai", "not used"),
        "pytorch_version": libs.get("torch", "not recorded"),
        "numpy_version": libs.get("numpy", "not recorded"),
        "optional_packages_version": {k: v for k, v in libs.items() if k not in ("torch", "numpy", "monai", "python")},
        "name": f"{model.get('name', 'model')} ({data.get('name', 'unknown data')})",
        "task": f"{model.get('task', 'classification')} image classification",
        "description": items.get("Intended use", NOT_STATED),
        "authors": items.get("Authors", "–"),
        "copyright": items.get("Licence", "–"),
        "data_source": f"{data.get('name', 'not recorded')} (sha256 {data.get('sha256', 'not recorded')})",
        "data_type": "numpy uint8 images",
        "image_classes": f"{spec.get('channels', '?')}-channel image, {'×'.join(map(str, spec.get('size') or []))}",
        "label_classes": ", ".join(f"{i}: {n}" for i, n in enumerate(names)),
        "pred_classes": ", ".join(f"{i}: {n}" for i, n in enumerate(names)),
        "eval_metrics": {k: v for k, v in items.items() if k.startswith(("val ", "test "))},
        "intended_use": items.get("Intended use", NOT_STATED),
        "references": [items.get("Source", "")],
        "network_data_format": {
            "inputs": {"image": {
                "type": "image", "format": "magnitude", "modality": "unknown",
                "num_channels": spec.get("channels"), "spatial_shape": list(spec.get("size") or []),
                "dtype": "float32", "value_range": [], "is_patch_data": False,
                "channel_def": {str(i): "intensity" for i in range(int(spec.get("channels") or 1))},
                "normalization": {"mean": spec.get("mean"), "std": spec.get("std"), "layout": spec.get("layout", "NCHW")},
            }},
            "outputs": {"pred": {
                "type": "probabilities", "format": "classes", "num_channels": len(names), "spatial_shape": [1],
                "dtype": "float32", "value_range": [], "is_patch_data": False,
                "channel_def": {str(i): n for i, n in enumerate(names)},
                "note": "the artifacts return logits: apply softmax for probabilities",
            }},
        },
    }


def write_documents(root: Path, manifest: dict) -> list[dict]:
    """Write MODEL_CARD.md and configs/metadata.json beside the manifest; returns their
    manifest entries (path, sha256, size) so a bundle's verification covers them too."""
    import json

    from edgemed.fileio import atomic_write_bytes, sha256_file

    card = model_card(manifest)
    title = f"{(manifest.get('model') or {}).get('name', 'model')} on " \
            f"{((manifest.get('provenance') or {}).get('dataset') or {}).get('name', 'unknown data')}"
    texts = {CARD_MD: card_markdown(card, title),
             MONAI_METADATA: json.dumps(monai_metadata(manifest, card), indent=2, ensure_ascii=False) + "\n"}
    from edgemed.fileio import confined

    entries = []
    for rel, text in texts.items():
        path = confined(root, rel, f"bundle {root}")  # no symlink on the way out of the bundle
        path.parent.mkdir(parents=True, exist_ok=True)
        path = confined(root, rel, f"bundle {root}")  # and none made in between
        atomic_write_bytes(path, text.encode("utf-8"))
        entries.append({"path": rel, "sha256": sha256_file(path), "size": path.stat().st_size})
    return entries


def card(bundle: str | Path, card_file: str | Path, *, force: bool = False) -> dict:
    """Add the owner's fields (intended use, users, out-of-scope uses, limitations, ...) from a
    YAML file to a bundle's model card; rewrites MODEL_CARD.md, configs/metadata.json and the
    manifest (so the bundle's sha256 changes). Returns the card.

    Example: `card("bundle/", "card.yaml")`.
    """
    from edgemed.export.bundle import BundleWriter, load_bundle

    user = read_user_card(card_file)  # a bad card file fails before the bundle's hashes are read
    b = load_bundle(bundle)  # verified: a damaged bundle is not signed off with a card
    if b.manifest.get("card") and not force:
        raise EdgemedError(f"{bundle} already has an owner's model card: pass --force to replace it")
    writer = BundleWriter.over(b.root, {**b.manifest, "card": user})
    writer.write()
    return model_card(writer.manifest)
