"""`edgemed trust`: the user model code this machine lets checkpoints, bundles and recipes name."""

from __future__ import annotations

import typer

from edgemed.cli.common import out

app = typer.Typer(no_args_is_help=True, help="User model code that files may name (see the Security model).")


@app.command("list")
def list_trusted():
    """Factories trusted on this machine (added by `edgemed train` of them or `trust add`)."""
    from edgemed.trust import trust_file, trusted_entries

    entries = trusted_entries()
    if not entries:
        out.print(f"no user code is trusted on this machine ({trust_file()})")
    for e in entries:  # one line each: readable in a log of any width
        key = f"sha256 {e['sha256'][:16]}…" if e["kind"] == "file" else "installed module"
        out.print(f"{e.get('spec', e.get('module', '') + ':' + e['factory'])}  ({key}, added {e.get('added', '?')})",
                  soft_wrap=True)


@app.command("add")
def add(spec: str = typer.Argument(..., help="path/to/file.py:factory or package.module:factory")):
    """Trust a factory: checkpoints that name it load without --trust-code (a file: this content only)."""
    from edgemed.trust import record_trust

    ident = record_trust(spec)
    what = f"sha256 {ident['sha256'][:16]}…" if ident["kind"] == "file" else "installed module"
    out.print(f"trusted {spec} ({what})")


@app.command("remove")
def remove(spec: str = typer.Argument(..., help="As given to `trust add`.")):
    """Stop trusting a factory."""
    from edgemed.errors import EdgemedError
    from edgemed.trust import remove_trust

    if not remove_trust(spec):
        raise EdgemedError(f"{spec} is not on the trust list: see `edgemed trust list`")
    out.print(f"no longer trusted: {spec}")
