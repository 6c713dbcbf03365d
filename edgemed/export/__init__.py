"""Export to ONNX, OpenVINO IR and TFLite (one file per format) and deployment bundles."""

from edgemed.export.bundle import Artifact, Bundle, load_bundle, verify_bundle

__all__ = ["Artifact", "Bundle", "export", "load_bundle", "verify_bundle"]


def export(*args, **kwargs):
    """See edgemed.export.exporter.export (imported lazily: it needs torch)."""
    from edgemed.export.exporter import export as _export

    return _export(*args, **kwargs)


export.__doc__ = "Export a checkpoint to a bundle; see edgemed.export.exporter.export."

from edgemed._verbs import callable_package  # noqa: E402

callable_package(__name__, "edgemed.export.exporter:export")
