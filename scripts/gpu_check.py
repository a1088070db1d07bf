"""Helpers of ``scripts/gpu_check.sh``: the 10,000-atom facet-s MD step, and the conversion of
each step's output into JSON and one markdown report for docs/benchmarks/.

    python scripts/gpu_check.py md-step --out DIR [--atoms 10000 --device cuda]
    python scripts/gpu_check.py report DIR

``md-step`` times the MD step (energy + forces, and energy + forces + stress, one model call,
eval mode) of facet-s on a rattled fcc Cu supercell with each kernel backend, after a warm-up,
and records the peak ``torch.cuda.max_memory_allocated`` of the step above the resident model
and graph. ``report`` reads the steps' logs and status files and writes summary.md and
summary.json: markdown tables found in a log become lists of rows in JSON, pytest runs become
pass/fail/skip counts, and the training comparison's per-step losses become a list.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path


def md_step(args) -> int:
    import torch
    from ase.build import bulk

    import mlip
    from mlip.data import from_ase

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("md-step: --device cuda but no CUDA device is visible")
    reps = max(1, round((args.atoms / 4) ** (1 / 3)))
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (reps, reps, reps)
    atoms.rattle(0.02, seed=0)
    graph = {k: v.to(device) for k, v in from_ase(atoms, 5.0).items()}
    n_edges = int(graph["edge_index"].shape[1])
    rows = []
    for backend in args.backends:
        row = {"backend": backend, "atoms": len(atoms), "edges": n_edges, "dtype": args.dtype}
        # Every kernel module dispatches "auto"; set_kernel_backend picks it for the model.
        torch.manual_seed(0)
        model = mlip.build_model(args.preset, elements=[29], dtype=args.dtype)
        model = model.to(device).eval().set_kernel_backend(backend)
        for label, stress in (("ef", False), ("efs", True)):
            try:
                t, peak = _time(model, graph, stress, device, args.repeats, args.warmup)
                row[f"{label}_ms"], row[f"{label}_peak_mib"] = 1e3 * t, peak / 2**20
            except Exception as err:  # a backend that fails is a result, not an abort
                row[f"{label}_error"] = f"{type(err).__name__}: {str(err)[:200]}"
        rows.append(row)
        print(json.dumps(row), flush=True)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"device": name, "torch": torch.__version__, "preset": args.preset, "rows": rows}
    (out / "md_step.json").write_text(json.dumps(result, indent=1))
    lines = [
        f"### {args.preset} MD step, {len(atoms)}-atom fcc Cu, {args.dtype}, {name}",
        "",
        f"{n_edges} edges, 5 Å cutoff; median of {args.repeats} calls after {args.warmup} "
        "warm-up calls; peak = torch.cuda.max_memory_allocated during the call above the "
        "model and graph.",
        "",
        "| backend | E+F (ms) | peak (MiB) | E+F+S (ms) | peak (MiB) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        cells = []
        for label in ("ef", "efs"):
            if f"{label}_ms" in r:
                cells += [f"{r[f'{label}_ms']:.1f}", f"{r[f'{label}_peak_mib']:.0f}"]
            else:
                cells += [f"failed: {r[f'{label}_error'][:60]}", ""]
        lines.append(f"| {r['backend']} | " + " | ".join(cells) + " |")
    (out / "md_step.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all("ef_ms" in r for r in rows) else 1


def _time(model, graph, stress, device, repeats, warmup):
    import torch

    def call():
        out = model(graph, compute_forces=True, compute_stress=stress)
        return out["forces"].sum().item()  # waits for the device

    for _ in range(warmup):  # Triton compiles and the caching allocator fills on the first call
        call()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) - base if device.type == "cuda" else 0
    return statistics.median(times), peak


# --- report -----------------------------------------------------------------------------------


def tables(text: str) -> list[dict]:
    """Markdown tables in ``text``: ``{"title", "columns", "rows"}``, title the last heading."""
    found, title, lines = [], None, text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("#"):
            title = line.lstrip("#").strip()
        if (
            line.startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\|[-|: ]+\|$", lines[i + 1].strip())
        ):
            columns = [c.strip() for c in line.strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                rows.append(dict(zip(columns, cells, strict=False)))
                i += 1
            found.append({"title": title, "columns": columns, "rows": rows})
            continue
        i += 1
    return found


def junit(path: Path) -> dict:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    counts = {
        k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")
    }
    failed = [
        f"{c.get('classname')}::{c.get('name')}"
        for s in suites
        for c in s
        if c.find("failure") is not None or c.find("error") is not None
    ]
    return {
        **counts,
        "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
        "failed_tests": failed,
    }


def verbose(text: str) -> dict | None:
    """Outcome counts from ``pytest -v`` lines (``path::test PASSED``), or None."""
    found = re.findall(r"^(\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)", text, re.M)
    if not found:
        return None
    outcomes = [o for _, o in found]
    failed = [t for t, o in found if o in ("FAILED", "ERROR")]
    return {
        "tests": len(found),
        "passed": outcomes.count("PASSED"),
        "failures": outcomes.count("FAILED"),
        "errors": outcomes.count("ERROR"),
        "skipped": outcomes.count("SKIPPED"),
        "failed_tests": failed,
    }


def losses(text: str) -> list[list[float]] | None:
    m = re.search(r"step, torch loss, triton loss:(.*)", text)
    if not m:
        return None
    return [
        [float(x) for x in t]
        for t in re.findall(r"\((\d+), ([-\d.eE+naninf]+), ([-\d.eE+naninf]+)\)", m.group(1))
    ]


def report(args) -> int:
    out = Path(args.dir)
    steps = [json.loads(p.read_text()) for p in sorted(out.glob("step_*.json"))]
    meta = json.loads((out / "meta.json").read_text()) if (out / "meta.json").exists() else {}
    summary = {**meta, "steps": []}
    md = [
        f"## GPU check: {meta.get('device', '?')}, {meta.get('date', '?')}, commit "
        f"{meta.get('commit', '?')}",
        "",
        f"`bash scripts/gpu_check.sh{' --dry-run' if meta.get('dry_run') else ''}`; torch "
        f"{meta.get('torch', '?')}, triton {meta.get('triton', '?')}.",
        "",
        "| step | status | seconds |",
        "|---|---|---|",
    ]
    for s in steps:
        md.append(f"| {s['name']} | {s['status']} | {s['seconds']:.0f} |")
    for s in steps:
        log = out / f"{s['name']}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        entry = dict(s)
        xml = out / f"{s['name']}.xml"
        if xml.exists():
            entry["pytest"] = junit(xml)
        elif verbose(text):  # killed before pytest wrote its XML: the -v lines so far
            entry["pytest"] = verbose(text)
        collected = re.search(r"(\d+)(?:/\d+)? tests? collected", text)
        if collected:
            entry["collected"] = int(collected.group(1))
        curve = losses(text)
        if curve is not None:
            entry["losses"] = curve
        data = out / f"{s['name'].split('_', 1)[-1]}.json"  # md_step.json, bench_inference.json
        if data.exists():
            try:
                entry["data"] = json.loads(data.read_text())
            except ValueError:
                entry["data"] = None
        found = tables(text)
        if (out / f"{s['name']}.md").exists():
            found = tables((out / f"{s['name']}.md").read_text())
        entry["tables"] = found
        summary["steps"].append(entry)
        md += ["", f"### {s['name']}: {s['status']}", "", f"`{s['command']}`", ""]
        if "pytest" in entry:
            p = entry["pytest"]
            md.append(
                f"pytest: {p['passed']} passed, {p['failures'] + p['errors']} failed, "
                f"{p['skipped']} skipped"
                + (f" ({', '.join(p['failed_tests'])})" if p["failed_tests"] else "")
            )
        if "collected" in entry and "pytest" not in entry:
            md.append(f"{entry['collected']} tests collected")
        if curve:
            md += [
                "",
                "| step | torch loss | triton loss | relative difference |",
                "|---|---|---|---|",
            ]
            md += [
                f"| {int(i)} | {a:.6g} | {b:.6g} | {abs(b - a) / max(abs(a), 1e-30):.2e} |"
                for i, a, b in curve
            ]
        for t in found:
            md += [
                "",
                f"**{t['title']}**" if t["title"] else "",
                "",
                "| " + " | ".join(t["columns"]) + " |",
                "|" + "---|" * len(t["columns"]),
            ]
            md += ["| " + " | ".join(r.get(c, "") for c in t["columns"]) + " |" for r in t["rows"]]
        if s["status"] != "ok":
            tail = "\n".join(text.splitlines()[-15:])
            md += ["", "```", tail, "```"]
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "summary.md").write_text("\n".join(md) + "\n")
    print(f"wrote {out / 'summary.md'} and {out / 'summary.json'}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("md-step", help="facet-s MD step with each kernel backend")
    m.add_argument("--out", required=True)
    m.add_argument("--atoms", type=int, default=10000)
    m.add_argument("--preset", default="facet-s")
    m.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    m.add_argument("--device", default="cuda")
    m.add_argument("--backends", nargs="+", default=["torch", "triton"])
    m.add_argument("--repeats", type=int, default=5)
    m.add_argument("--warmup", type=int, default=2)
    r = sub.add_parser("report", help="summary.md and summary.json from the steps' output")
    r.add_argument("dir")
    args = p.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return md_step(args) if args.cmd == "md-step" else report(args)


if __name__ == "__main__":
    sys.exit(main())
