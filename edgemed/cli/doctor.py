"""`edgemed doctor`: installed extras and runtimes, CPU ISA, GPUs, data; the fix for each gap."""

from __future__ import annotations

from pathlib import Path

import typer

from edgemed.cli.common import out, print_json


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(data_dir: str = typer.Option(None, "--data-dir"),
               json_out: bool = typer.Option(False, "--json", help="Print the report as JSON.")):
        """What this machine can do with edgemed, and how to install what is missing."""
        from edgemed.doctor import doctor as doctor_api

        r = doctor_api(data_dir)
        if json_out:
            return print_json(r)
        c = r["cpu"]
        lines = [f"edgemed {r['edgemed']}, Python {r['python']}",
                 f"CPU: {c['model']}, {c['cores']} cores; ISA {', '.join(c['isa']) or 'none of note'}"
                 + (f"; INT8 instructions: {', '.join(c['int8_acceleration'])}" if c["int8_acceleration"] else f"; {c['note']}"),
                 "GPUs: " + ("; ".join(f"{g['name']} ({g['memory']}, driver {g['driver']}, {g['seen_by']})" for g in r["gpus"])
                             or "none found (nvidia-smi / torch.cuda)"), "", "runtimes:"]
        for rt in r["runtimes"]:
            state = f"{rt['version']}: {', '.join(rt['devices'])}" if rt["devices"] else \
                f"not usable here ({rt['error'] or 'not installed'}): {rt['install']}"
            lines.append(f"  {rt['runtime']:<12} {state}")
        lines += ["", "extras:"]
        for e in r["extras"]:
            lines.append(f"  {e['extra']:<10} " + ("installed" if e["complete"] else
                                                    f"missing {', '.join(e['missing'])}: {e['install']}"))
        lines += ["", f"data (searched: {', '.join(r['data']['search'])}):"]
        for folder in r["data"].get("missing_folders", []):
            what = "is not a folder" if Path(folder).exists() else "does not exist"
            lines.append(f"  {folder} {what}: check --data-dir / EDGEMED_DATA_DIR")
        for s in r["data"]["sets"]:
            lines.append(f"  {s['name']:<16} {s['found'] or s['fix']}")
        for line in lines:  # plain lines: readable in a log of any width
            out.print(line, soft_wrap=True, highlight=False, markup=False)
