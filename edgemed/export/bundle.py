"""Deployment bundles: a folder of model files plus `edgemed.json`, the manifest that says how to
feed them (PreprocessSpec, input name/shape/layout), what they are (format, precision, sha256,
size, parity with the FP32 reference) and where they came from. Reading needs only the standard
library and NumPy, so devices with `edgemed[runtime]` load bundles. Loading verifies every hash
first: a tampered or truncated file is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from edgemed.data.preprocess import PreprocessSpec
from edgemed.errors import BundleError, EdgemedError
from edgemed.fileio import atomic_write_json, confined, read_json, sha256_file

MANIFEST = "edgemed.json"
SCHEMA = "edgemed-bundle"
SCHEMA_VERSION = 1
PRECISIONS = ("fp32", "fp16", "int8", "mixed")
REQUIRED = ("schema", "schema_version", "edgemed_version", "class_names", "preprocess", "input", "artifacts", "provenance")
ARTIFACT_REQUIRED = ("id", "format", "precision", "file", "files", "input_layout")
# bounds on what a manifest from elsewhere may declare
MAX_MANIFEST_BYTES = 16 << 20
MAX_ARTIFACTS, MAX_FILES, MAX_CLASSES = 256, 64, 10_000
REEXPORT = "export the bundle again"


@dataclass
class Artifact:
    """One model file (or file set, for OpenVINO's .xml + .bin) inside a bundle."""

    id: str
    format: str
    precision: str
    file: str  # primary file, relative to the bundle (POSIX)
    files: list[dict]  # [{path, sha256, size}] — every file the artifact needs
    input_layout: str = "NCHW"
    static_batch: int | None = None
    parity: dict | None = None
    details: dict = field(default_factory=dict)
    root: Path | None = None  # bundle folder, set when loaded
    num_classes: int | None = None  # the bundle's class count: a session checks its outputs against it

    @property
    def path(self) -> Path:
        if self.root is None:
            raise BundleError(f"artifact {self.id} is not attached to a bundle folder")
        return self.root / self.file

    @property
    def size(self) -> int:
        return sum(f["size"] for f in self.files)

    def to_dict(self) -> dict:
        return {"id": self.id, "format": self.format, "precision": self.precision,
                "file": self.file, "files": self.files, "size": self.size,
                "input_layout": self.input_layout, "static_batch": self.static_batch,
                "parity": self.parity, "details": self.details}

    @classmethod
    def from_dict(cls, d: dict, root: Path) -> Artifact:
        where = root / MANIFEST
        if not isinstance(d, dict):
            raise BundleError(f"{where}: an artifact entry is not a JSON object; {REEXPORT}")
        missing = [k for k in ARTIFACT_REQUIRED if k not in d]
        if missing:
            raise BundleError(f"{where}: artifact {str(d.get('id', '?'))[:80]!r} lacks {', '.join(missing)}; {REEXPORT}")
        aid = d["id"]
        problem = None
        if not isinstance(aid, str) or not aid or len(aid) > 200:
            problem = "an id that is not a short string"
        elif not isinstance(d["format"], str) or d["precision"] not in PRECISIONS:
            problem = f"format {d['format']!r} / precision {d['precision']!r} (precisions: {', '.join(PRECISIONS)})"
        elif d["input_layout"] not in ("NCHW", "NHWC"):
            problem = f"input layout {d['input_layout']!r} (NCHW or NHWC)"
        elif d.get("static_batch") is not None and not (type(d["static_batch"]) is int and 1 <= d["static_batch"] <= 4096):
            problem = f"static batch {d['static_batch']!r}"
        elif not isinstance(d["files"], list) or not 1 <= len(d["files"]) <= MAX_FILES or not all(
                isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("sha256"), str)
                and type(f.get("size")) is int and f["size"] >= 0 for f in d["files"]):
            problem = f"a file list that is not 1..{MAX_FILES} entries of path, sha256 and size"
        elif not all(_inside(root, f["path"]) for f in d["files"]):
            problem = f"a file outside the bundle ({next(f['path'] for f in d['files'] if not _inside(root, f['path']))[:80]!r}: absolute, `..` or a symbolic link)"
        elif d["file"] not in [f["path"] for f in d["files"]]:
            problem = f"a primary file {str(d['file'])[:80]!r} that is not among its hashed files"
        elif not isinstance(d.get("details", {}), dict) or not isinstance(d.get("parity") or {}, dict):
            problem = "details or parity that are not JSON objects"
        if problem:
            raise BundleError(f"{where}: artifact {str(aid)[:80]!r} has {problem}; {REEXPORT}")
        return cls(id=aid, format=d["format"], precision=d["precision"], file=d["file"],
                   files=d["files"], input_layout=d["input_layout"], static_batch=d.get("static_batch"),
                   parity=d.get("parity"), details=d.get("details", {}), root=root)


def _inside(root: Path, relative: str) -> bool:
    """A manifest path stays in the bundle: relative, no `..`, no symbolic link on the way."""
    try:
        confined(root, relative, "bundle")
    except EdgemedError:
        return False
    return True


@dataclass
class Bundle:
    root: Path
    manifest: dict
    artifacts: list[Artifact]

    @property
    def class_names(self) -> list[str]:
        return self.manifest["class_names"]

    @property
    def preprocess(self) -> PreprocessSpec:
        return PreprocessSpec.from_dict(self.manifest["preprocess"])

    @property
    def sha256(self) -> str:
        """Hash of the manifest, which holds every file's hash: one identity for the bundle."""
        return sha256_file(self.root / MANIFEST)

    @property
    def recommended(self) -> str | None:
        return self.manifest.get("recommended")

    def artifact(self, artifact_id: str) -> Artifact:
        for a in self.artifacts:
            if a.id == artifact_id:
                return a
        raise BundleError(f"bundle {self.root} has no artifact {artifact_id!r}: it has {', '.join(a.id for a in self.artifacts)}")

    def select(self, ids: list[str] | None = None, formats: list[str] | None = None,
               precisions: list[str] | None = None) -> list[Artifact]:
        chosen = [self.artifact(i) for i in ids] if ids else list(self.artifacts)
        if formats:
            chosen = [a for a in chosen if a.format in formats]
        if precisions:
            chosen = [a for a in chosen if a.precision in precisions]
        if not chosen:
            raise BundleError(f"no artifact in {self.root} matches the selection "
                              f"(it has {', '.join(a.id for a in self.artifacts)})")
        return chosen


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Read a bundle's manifest and (by default) check every file's sha256 and size."""
    root = Path(path)
    mpath = root / MANIFEST
    if not root.is_dir():
        raise BundleError(f"bundle folder not found: {root}: check the path (bundles are written by "
                          "`edgemed export --out` or `edgemed quantize --out`)")
    if not mpath.is_file():
        raise BundleError(f"{root} is not an edgemed bundle: {MANIFEST} is missing; give the folder that "
                          "`edgemed export --out` wrote, or export it again")
    try:
        confined(root, MANIFEST, f"bundle {root}")
        manifest = read_json(mpath, "bundle manifest", MAX_MANIFEST_BYTES, "the bundle is damaged; " + REEXPORT)
    except BundleError:
        raise
    except EdgemedError as e:
        raise BundleError(str(e)) from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise BundleError(f"{mpath} is not an edgemed bundle manifest; {REEXPORT}")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
        raise BundleError(f"{mpath}: unknown bundle schema version {version!r} (this edgemed reads up to "
                          f"{SCHEMA_VERSION}); upgrade edgemed or export the bundle again")
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise BundleError(f"{mpath}: manifest lacks {', '.join(missing)}; export the bundle again")
    try:
        PreprocessSpec.from_dict(manifest["preprocess"])
    except EdgemedError as e:
        raise BundleError(f"{mpath}: {e}; {REEXPORT}") from None
    names = manifest["class_names"]
    if not (isinstance(names, list) and 2 <= len(names) <= MAX_CLASSES
            and all(isinstance(n, str) and 0 < len(n) <= 200 for n in names)):
        raise BundleError(f"{mpath}: class_names must be a list of 2..{MAX_CLASSES} names; {REEXPORT}")
    if not isinstance(manifest["artifacts"], list) or len(manifest["artifacts"]) > MAX_ARTIFACTS:
        raise BundleError(f"{mpath}: artifacts must be a list of at most {MAX_ARTIFACTS}; {REEXPORT}")
    for key in ("input", "provenance"):
        if not isinstance(manifest[key], dict):
            raise BundleError(f"{mpath}: {key} must be a JSON object; {REEXPORT}")
    if manifest.get("card") is not None:
        from edgemed.card import check_user_card

        try:
            check_user_card(manifest["card"], f"{mpath}: card")
        except EdgemedError as e:
            raise BundleError(f"{e}; {REEXPORT}") from None
    artifacts = [Artifact.from_dict(a, root) for a in manifest["artifacts"]]
    if len({a.id for a in artifacts}) != len(artifacts):
        raise BundleError(f"{mpath}: two artifacts share an id; {REEXPORT}")
    for a in artifacts:
        a.num_classes = len(names)
    recommended = manifest.get("recommended")
    if recommended is not None and recommended not in {a.id for a in artifacts}:
        raise BundleError(f"{mpath}: recommended artifact {str(recommended)[:80]!r} is not in the bundle; {REEXPORT}")
    bundle = Bundle(root, manifest, artifacts)
    if verify:
        problems = verify_bundle(bundle)
        if problems:
            raise BundleError(f"bundle {root} failed verification: {problems[0]}"
                              + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                              + f": the bundle was altered or damaged; {REEXPORT}")
    return bundle


def verify_bundle(bundle: Bundle) -> list[str]:
    """Every problem found, as 'FILE: what is wrong' (empty when the bundle is intact)."""
    problems = []
    docs = bundle.manifest.get("documents") or []
    if not isinstance(docs, list) or len(docs) > 8:
        return ["documents: not a short list of files"]
    for d in docs:  # the model card and MONAI metadata: checked like artifact files
        if not (isinstance(d, dict) and isinstance(d.get("path"), str) and isinstance(d.get("size"), int)
                and isinstance(d.get("sha256"), str)):
            problems.append("documents: an entry lacks path, size or sha256")
            continue
        try:
            p = confined(bundle.root, d["path"], f"bundle {bundle.root} document")
        except EdgemedError as e:
            problems.append(str(e))
            continue
        if not p.is_file():
            problems.append(f"{d['path']} (document) is missing")
        elif p.stat().st_size != d["size"] or sha256_file(p) != d["sha256"]:
            problems.append(f"{d['path']} (document) was altered: size or sha256 differs from the manifest")
    for a in bundle.artifacts:
        for f in a.files:
            p = bundle.root / f["path"]
            if not p.is_file():
                problems.append(f"{f['path']} ({a.id}) is missing")
            elif p.stat().st_size != f["size"]:
                problems.append(f"{f['path']} ({a.id}) is truncated or altered: {p.stat().st_size} bytes, manifest says {f['size']}")
            elif sha256_file(p) != f["sha256"]:
                problems.append(f"{f['path']} ({a.id}) was altered: sha256 differs from the manifest")
    return problems


def file_record(root: Path, path: Path) -> dict:
    rel = path.relative_to(root).as_posix()
    return {"path": rel, "sha256": sha256_file(path), "size": path.stat().st_size}


class BundleWriter:
    """Builds a bundle folder (usually a temp folder that `atomic_dir` renames into place)."""

    def __init__(self, root: Path, *, class_names: list[str], preprocess: PreprocessSpec,
                 model: dict, provenance: dict, input_name: str = "input",
                 base_manifest: dict | None = None):
        from edgemed import __version__

        self.root = Path(root)
        self.manifest = dict(base_manifest or {})
        self.manifest.update({
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "edgemed_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": model, "class_names": list(class_names), "preprocess": preprocess.to_dict(),
            "input": {"name": input_name, "shape": list(preprocess.input_shape), "dtype": "float32",
                      "layout": "NCHW", "value_range": "normalised with preprocess mean/std"},
            "output": {"name": "logits", "shape": [1, len(class_names)], "dtype": "float32",
                       "meaning": "unnormalised class scores (apply softmax for probabilities)"},
            "provenance": provenance,
        })
        self.manifest.setdefault("artifacts", [])
        self.manifest.setdefault("failed", [])

    @property
    def artifact_ids(self) -> list[str]:
        return [a["id"] for a in self.manifest["artifacts"]]

    def add(self, artifact_id: str, fmt: str, precision: str, files: list[Path], *,
            input_layout: str = "NCHW", static_batch: int | None = None, parity: dict | None = None,
            details: dict | None = None) -> Artifact:
        if precision not in PRECISIONS:
            raise EdgemedError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
        if artifact_id in self.artifact_ids:
            self.manifest["artifacts"] = [a for a in self.manifest["artifacts"] if a["id"] != artifact_id]
        a = Artifact(id=artifact_id, format=fmt, precision=precision,
                     file=files[0].relative_to(self.root).as_posix(),
                     files=[file_record(self.root, f) for f in files], input_layout=input_layout,
                     static_batch=static_batch, parity=parity, details=details or {}, root=self.root)
        self.manifest["artifacts"].append(a.to_dict())
        return a

    def get(self, artifact_id: str) -> Artifact | None:
        entry = next((a for a in self.manifest["artifacts"] if a["id"] == artifact_id), None)
        return None if entry is None else Artifact.from_dict(entry, self.root)

    def artifacts(self, ids=None) -> list[Artifact]:
        return [Artifact.from_dict(a, self.root) for a in self.manifest["artifacts"] if ids is None or a["id"] in ids]

    def remove(self, *artifact_ids: str) -> None:
        """Forget artifacts (their files go with `remove_unreferenced`)."""
        self.manifest["artifacts"] = [a for a in self.manifest["artifacts"] if a["id"] not in artifact_ids]

    def update(self, artifact_id: str, **fields) -> None:
        """Set manifest fields of one artifact (parity, details) after it was added."""
        entry = next((a for a in self.manifest["artifacts"] if a["id"] == artifact_id), None)
        if entry is None:
            raise EdgemedError(f"no artifact {artifact_id!r} in this bundle: it has {', '.join(self.artifact_ids)}")
        entry.update(fields)

    def copy_from(self, bundle: Bundle, artifact: Artifact) -> None:
        """Copy an artifact, files and manifest entry, from another (verified) bundle."""
        import shutil

        for f in artifact.files:
            (self.root / f["path"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(bundle.root / f["path"], self.root / f["path"])
        self.remove(artifact.id)
        self.manifest["artifacts"].append(artifact.to_dict())

    @property
    def failures(self) -> list[dict]:
        return self.manifest["failed"]

    def fail(self, fmt: str, precision: str, message: str) -> None:
        self.manifest["failed"].append({"format": fmt, "precision": precision, "error": message})

    def set(self, key: str, value) -> None:
        self.manifest[key] = value

    def recommend(self, artifact_id: str, **deployment) -> None:
        """Mark the artifact `predict` and `bench` pick first; `deployment` records how it was chosen."""
        if artifact_id not in self.artifact_ids:
            raise EdgemedError(f"cannot recommend {artifact_id}: the bundle has {', '.join(self.artifact_ids)}")
        self.manifest["recommended"] = artifact_id
        if deployment:
            self.manifest["deployment"] = deployment

    @classmethod
    def over(cls, root: Path, manifest: dict) -> BundleWriter:
        """A writer for an existing manifest at `root` (an edited copy of a bundle's, or a new one's)."""
        writer = cls.__new__(cls)
        writer.root, writer.manifest = Path(root), manifest
        return writer

    @classmethod
    def subset(cls, source: Bundle, root: Path, keep: set[str]) -> BundleWriter:
        """A writer for a new bundle holding only `keep` of `source`'s artifacts (files copied)."""
        writer = cls.over(root, {**source.manifest, "artifacts": [], "failed": list(source.manifest.get("failed", []))})
        writer.manifest.pop("recommended", None)
        for a in source.artifacts:
            if a.id in keep:
                writer.copy_from(source, a)
        return writer

    def write(self) -> Path:
        """The manifest, and with it the bundle's model card and MONAI metadata (edgemed/card.py),
        whose hashes the manifest records."""
        from edgemed.card import write_documents

        self.manifest.pop("documents", None)  # written from the rest of the manifest
        self.manifest["documents"] = write_documents(self.root, self.manifest)
        return atomic_write_json(self.root / MANIFEST, self.manifest)
