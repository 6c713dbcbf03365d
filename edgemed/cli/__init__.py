"""The `edgemed` command: a thin skin over the Python API. Each command group lives in its
own file; errors a user can fix print one line and exit 2 (`edgemed --debug ...` shows the
traceback)."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import typer
from typer.core import TyperGroup

from edgemed.errors import EdgemedError, from_import_error

_STATE = {"debug": False}


def fail(message: str, code: int = 2):
    """Print one error line on stderr and exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


TRUST_FLAG = "--trust-code"


def _unexpected(e: BaseException):
    message = " ".join(str(e).split())[:300]  # one line, however the library formatted it
    fail(f"unexpected {e.__class__.__name__}: {message} (rerun as `edgemed --debug ...` for the traceback)", 1)


class EdgemedGroup(TyperGroup):
    """Turns EdgemedError (and unexpected crashes) into one line + exit code."""

    def parse_args(self, ctx, args):
        # `--trust-code` holds for the whole command wherever it is written
        # (`edgemed bench B --trust-code` as well as `edgemed --trust-code bench B`)
        ctx.meta["trust_code"] = TRUST_FLAG in args
        return super().parse_args(ctx, [a for a in args if a != TRUST_FLAG])

    def invoke(self, ctx):
        from edgemed.trust import set_trust_code

        try:
            set_trust_code(ctx.meta.get("trust_code", False))
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except EdgemedError as e:
            if _STATE["debug"]:
                raise
            fail(str(e), e.exit_code)
        except ImportError as e:
            hint = from_import_error(e)
            if hint is None or _STATE["debug"]:
                raise
            fail(str(hint), hint.exit_code)
        except OSError as e:
            from edgemed.fileio import write_error

            err = write_error(getattr(e, "filename", None) or "a file", e, writing=False)
            if _STATE["debug"]:
                raise
            if err is None:
                _unexpected(e)
            fail(str(err), err.exit_code)
        except KeyboardInterrupt:
            fail("interrupted; finished outputs are kept, unfinished ones were not written "
                 "(training resumes from its last finished epoch when the same command is rerun)", 130)
        except Exception as e:
            if getattr(e, "exit_code", None) is not None and e.__class__.__module__.startswith("typer"):
                raise  # Typer's own usage errors render themselves
            if _STATE["debug"]:
                raise
            _unexpected(e)
        finally:
            from edgemed.trust import set_trust_code

            set_trust_code(False)  # the flag holds for this command only


app = typer.Typer(cls=EdgemedGroup, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False,
                  help="Take trained medical image classifiers to edge devices, with numbers.")


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks and library logs."),
          version: bool = typer.Option(False, "--version", help="Print the version and exit."),
          trust_code: bool = typer.Option(False, TRUST_FLAG, help="Let checkpoints, bundles and recipes "
                                          "name user model code (path.py:factory, module:factory) that is not "
                                          "on this machine's trust list (`edgemed trust`); accepted after the "
                                          "command too.")):
    _STATE["debug"] = debug
    if debug:
        os.environ["EDGEMED_DEBUG"] = "1"
    if version:
        from edgemed import __version__

        typer.echo(f"edgemed {__version__}")
        raise typer.Exit()
    _quiet_libraries(debug)


def _quiet_libraries(debug: bool) -> None:
    """Keep library chatter (NNCF, TF/absl, OpenVINO telemetry) out of the user's terminal."""
    if debug:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "3")
    os.environ.setdefault("OPENVINO_TELEMETRY_OPT_OUT", "1")
    # torch sets its own loggers' levels when imported (after this): TORCH_LOGS is what it reads
    os.environ.setdefault("TORCH_LOGS", "-torch")
    # torchao logs each optional GPU kernel library it cannot load on a CPU-only machine
    for name in ("nncf", "torch", "torchao", "absl", "tensorflow", "jax", "onnxscript", "torch.onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|nncf|onnx|openvino|litert|jax|ai_edge).*")

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr)

    warnings.showwarning = show


def _register() -> None:
    from edgemed.cli import (
        bench,
        compress,
        data,
        doctor,
        export,
        importing,
        models,
        pipeline,
        report,
        train,
        trust,
    )

    app.add_typer(data.app, name="data")
    models.register(app)
    train.register(app)
    importing.register(app)
    doctor.register(app)
    export.register(app)
    compress.register(app)
    bench.register(app)
    report.register(app)
    pipeline.register(app)
    app.add_typer(trust.app, name="trust")


_register()


def main() -> None:
    app(prog_name="edgemed")
