"""The runner: ``python -m benchmarks.run [--full] [--only NAME ...]``.

Each benchmark runs in a fresh interpreter (so one benchmark's threads, caches and memory never
touch the next), its results come back as JSON, and the runner prints one table of every number,
as a ratio to its target where it has one, and writes ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._common import REPO, RESULTS, scratch_root

BENCHMARKS = ["floor", "step", "replay", "suspended", "timer", "throughput", "agent", "async", "cost", "session", "startup"]
OPTIONAL = ["peers"]  # `make bench-peers`: needs .venv-peers


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version,
                            "platform": platform.platform(), "cpus": os.cpu_count(),
                            "scratch_dir": str(scratch_root())}
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        info["cpu"] = names[0] if names else None
    except OSError:
        pass
    try:
        info["loadavg_1_5_15"] = list(os.getloadavg())
    except OSError:
        pass
    try:
        out = subprocess.run(["df", "-T", str(scratch_root())], capture_output=True, text=True, timeout=5).stdout
        info["scratch_fs"] = out.splitlines()[1].split()[1]
    except Exception:
        pass
    return info


def run_one(name: str, mode: str) -> tuple[list[dict[str, Any]], float, str | None]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    cmd = [sys.executable, "-m", f"benchmarks.bench_{name}", "--json", str(out)]
    if mode == "full":
        cmd.append("--full")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    try:
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
            return [], elapsed, "\n".join(tail)
        return json.loads(out.read_text()), elapsed, None
    finally:
        out.unlink(missing_ok=True)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or value != value:  # None or NaN: not measured
        return "-"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("benchmark", "metric", "value", "target", "ratio", "status", "note")
    table = [header]
    for r in rows:
        if r.get("error"):
            table.append((r["bench"], "ERROR", "-", "-", "-", "ERROR", r["error"].splitlines()[-1][:80]))
            continue
        target = "-" if r["target"] is None else f"{r['op']} {_fmt(r['target'], r['unit'])}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        status = "info" if r["met"] is None else ("met" if r["met"] else "MISSED")
        table.append((r["bench"], r["metric"], _fmt(r["value"], r["unit"]), target, ratio, status, r.get("note", "")))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(str(cell).ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="bigger sizes and more repetitions")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS + OPTIONAL, help="run only these")
    parser.add_argument("--out", default=str(RESULTS / "latest.json"))
    args = parser.parse_args()
    mode = "full" if args.full else "quick"
    names = args.only or BENCHMARKS
    started = time.time()
    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    before = machine()
    print(f"duragent benchmarks, {mode} mode; databases in {scratch_root()} ({before.get('scratch_fs', '?')}); "
          f"load average {before.get('loadavg_1_5_15', ['?'])[0]}", flush=True)
    for name in names:
        print(f"  running {name} ...", end="", flush=True)
        results, elapsed, error = run_one(name, mode)
        timings[name] = round(elapsed, 2)
        print(f" {elapsed:.1f} s" + (" (FAILED)" if error else ""), flush=True)
        if error:
            rows.append({"bench": name, "error": error})
        rows.extend(results)
    print()
    print_table(rows)
    judged = [r for r in rows if r.get("met") is not None]
    missed = [r for r in judged if not r["met"]]
    errors = [r for r in rows if r.get("error")]
    print(f"\n{len(judged) - len(missed)}/{len(judged)} targets met" +
          (f", {len(errors)} benchmark(s) failed" if errors else "") + f"; {time.time() - started:.0f} s in all")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    after = machine()
    print(f"load average at the end {after.get('loadavg_1_5_15', ['?'])[0]} (other work on the machine skews "
          "wall-clock numbers)")
    after["loadavg_at_start"] = before.get("loadavg_1_5_15")
    text = json.dumps({"mode": mode, "started": started, "seconds": timings, "machine": after, "results": rows},
                      indent=1, default=str)
    out.write_text(text)
    by_mode = out.with_name(f"{out.stem}-{mode}{out.suffix}")  # latest-quick.json / latest-full.json
    by_mode.write_text(text)
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out} (and {by_mode.name})")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
