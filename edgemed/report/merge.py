"""Merge results files from many devices and runs into sections that may be compared.

A section holds the rows of one bundle (manifest sha256) evaluated on one data set, split and
subset size. Rows of different bundles or data never share a section, so no table, plot or
ranking can mix them; rows from different machines for the same bundle and data do, labelled by
device: comparing devices is the point of the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgemed.fileio import sha256_json
from edgemed.report.schema import MAX_ROWS, ResultsError, load_results


@dataclass(frozen=True)
class Source:
    """One results file: the run id used in every table (R1, R2…), its machine and settings."""

    run: str
    path: str
    results: dict = field(repr=False)
    device_label: str = ""

    @property
    def system(self) -> dict:
        return self.results["system"]

    @property
    def settings(self) -> dict:
        return self.results["settings"]

    @property
    def bundle(self) -> dict:
        return self.results["bundle"]

    @property
    def reference(self) -> str | None:
        """Name of the row the run's retention is measured against (None if it has none)."""
        for row in self.results["rows"]:
            ref = ((row.get("accuracy") or {}).get("retention") or {}).get("reference")
            if ref:
                return ref
        return None


@dataclass(frozen=True)
class Entry:
    """One result row together with the file (machine, settings) it came from."""

    source: Source
    row: dict = field(repr=False)

    @property
    def name(self) -> str:
        return self.row.get("name") or self.row["artifact"]

    @property
    def device(self) -> str:
        return self.source.device_label

    @property
    def latency(self) -> dict:
        return self.row["latency_ms"]

    @property
    def stability(self) -> dict:
        """The row's spread and timing verdict, by the one rule bench applies (recomputed, so
        files written before bench recorded it are judged the same way)."""
        from edgemed.bench.latency import stability

        return stability(self.latency, self.source.results.get("load"))

    @property
    def is_reference(self) -> bool:
        return self.name == self.source.reference and self.row.get("accuracy") is not None

    def metric(self, name: str) -> tuple[float | None, list[float] | None]:
        """(value, 95 % CI) of accuracy / auc / balanced_accuracy; (None, None) if not measured."""
        m = ((self.row.get("accuracy") or {}).get("metrics") or {}).get(name) or {}
        return m.get("value"), m.get("ci")

    def retention(self, name: str) -> dict | None:
        """The paired difference vs the run's reference ({difference, ci, flip_rate…}) or None."""
        return ((self.row.get("accuracy") or {}).get("retention") or {}).get(name)


@dataclass
class Section:
    """Rows that may be compared: one bundle, one data set, split and subset size."""

    id: str
    bundle_sha256: str
    model: str | None
    dataset: str | None
    dataset_sha256: str | None
    split: str | None
    n: int | None
    entries: list[Entry] = field(default_factory=list)

    @property
    def title(self) -> str:
        model, bundle = self.model or "model", f"bundle {self.bundle_sha256[:12]}"
        if not self.dataset:
            return f"{model} ({bundle}; accuracy not measured)"
        return f"{model} on {self.dataset} {self.split} split, n = {self.n} ({bundle})"

    @property
    def sources(self) -> list[Source]:
        seen: dict[str, Source] = {}
        for e in self.entries:
            seen.setdefault(e.source.run, e.source)
        return sorted(seen.values(), key=lambda s: int(s.run[1:]))

    @property
    def devices(self) -> list[str]:
        return list(dict.fromkeys(e.device for e in self.entries))


@dataclass
class Merged:
    sources: list[Source]
    sections: list[Section]
    notes: list[str]

    @property
    def entries(self) -> list[Entry]:
        return [e for s in self.sections for e in s.entries]


def section_key(results: dict) -> tuple:
    """What must be equal for two runs' rows to share a section."""
    split = results["settings"].get("split") or {}
    return (results["bundle"]["sha256"], split.get("name"), split.get("sha256"), split.get("split"),
            split.get("n"))


def _fingerprint(system: dict) -> tuple:
    return (system.get("cpu"), system.get("machine"), system.get("cores_logical"), system.get("os"),
            tuple(system.get("isa") or ()))


def device_labels(results: list[dict]) -> list[str]:
    """"CPU model · device" per results file; different machines that share a CPU name get #1, #2…
    so their rows are never read as one device."""
    base = [f"{r['system'].get('cpu') or r['system'].get('machine') or 'unknown CPU'} · "
            f"{r['settings'].get('device', 'cpu')}" for r in results]
    machines: dict[str, list[tuple]] = {}
    for label, r in zip(base, results, strict=True):
        fp = _fingerprint(r["system"])
        if fp not in machines.setdefault(label, []):
            machines[label].append(fp)
    out = []
    for label, r in zip(base, results, strict=True):
        fps = machines[label]
        out.append(label if len(fps) == 1 else f"{label} #{fps.index(_fingerprint(r['system'])) + 1}")
    return out


def _sort_key(e: Entry) -> tuple:
    return (e.device, e.row["batch"], e.row["threads"] or 0, e.latency["p50"])


def merge(loaded: list[tuple[str, dict]]) -> Merged:
    """Group validated results objects [(path, results)] into sections.

    Example: `merge([("a.json", load_results("a.json")), ("b.json", load_results("b.json"))])`.
    """
    notes: list[str] = []
    unique: list[tuple[str, dict]] = []
    seen: dict[str, str] = {}
    for path, results in loaded:
        digest = sha256_json(results)
        if digest in seen:  # the same run given twice would count its rows twice
            notes.append(f"{path} holds the same results as {seen[digest]}: counted once")
            continue
        seen[digest] = path
        unique.append((path, results))
    labels = device_labels([r for _, r in unique])
    sources = [Source(f"R{i + 1}", path, results, label)
               for i, ((path, results), label) in enumerate(zip(unique, labels, strict=True))]
    sections: dict[tuple, Section] = {}
    for src in sources:
        key = section_key(src.results)
        if key not in sections:
            split = src.settings.get("split") or {}
            sections[key] = Section(f"S{len(sections) + 1}", key[0], src.bundle.get("model"),
                                    split.get("name"), split.get("sha256"), split.get("split"), split.get("n"))
        sections[key].entries += [Entry(src, row) for row in src.results["rows"]]
    for s in sections.values():
        s.entries.sort(key=_sort_key)
    total = sum(len(s.entries) for s in sections.values())
    if total > MAX_ROWS:  # each row is a line of every table and a label in every plot
        raise ResultsError(f"the results files hold {total} rows in all, more than the {MAX_ROWS} one "
                           "report can show: report fewer files at a time")
    return Merged(sources, list(sections.values()), notes)


def load_all(paths: list[str | Path]) -> Merged:
    """Load, validate and merge results files. Example: `load_all(["pi.json", "nuc.json"])`."""
    return merge([(str(p), load_results(p)) for p in paths])
