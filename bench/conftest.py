"""Shared benchmark machinery: device choice, timing with GPU sync, and a ratio table.

Every benchmark in a group measures the same work; at the end of the run a table
prints each entry's median time relative to fastgan's in its group, and the figures
are written to bench/results/<device>.json (with the CPU/GPU name) for the README.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest
import torch

from fastgan.host_memory import keep_freed_memory
from fastgan.machine import device_name

RESULTS = Path(__file__).parent / "results"
# Every entry alike: freed blocks stay mapped, so timings measure the work and not the
# page faults of re-mapping each output (which came one call in two, 5x the op's time).
KEEP_FREED_MEMORY = keep_freed_memory()


@pytest.fixture(scope="session")
def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def synchronized(fn, device: str):
    """fn, followed by a device sync so the timer sees the GPU work."""
    if device != "cuda":
        return fn

    def run():
        out = fn()
        torch.cuda.synchronize()
        return out

    return run


def interleaved_ratio(benchmark, base, other, rounds: int) -> dict:
    """Times `other` between two calls of `base`, `rounds` times, under pytest-benchmark
    (this shared machine's speed drifts between groups run one after the other, so a
    ratio of two groups' medians moves with it). Both callables include their own
    device sync. Returns the median over rounds of other's time / the mean of the two
    base calls around it, and each one's median time in ms; also recorded as the
    benchmark's `interleaved_ratio`, which the summary table prints."""
    t_base, t_other = [], []

    def one_round():
        for fn, acc in ((base, t_base), (other, t_other), (base, t_base)):
            t = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t)

    benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=0)
    ratio = statistics.median(t_other[i] / ((t_base[2 * i] + t_base[2 * i + 1]) / 2)
                              for i in range(len(t_other)))
    row = dict(ratio=ratio, base_ms=statistics.median(t_base) * 1e3,
               other_ms=statistics.median(t_other) * 1e3)
    benchmark.extra_info["interleaved_ratio"] = ratio
    return row


def report_side_by_side(request, rows: list, filename: str) -> None:
    """At the end of a module: rows of interleaved ratios (what, peer, fastgan_ms, peer_ms,
    ratio, and any extra keys; or what, peer, peak_extra_memory_x_input) written to
    results/FILENAME and printed."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not rows:
        return
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / filename
    out.write_text(json.dumps({"device": device_name(), "torch": torch.__version__,
                               "date": time.strftime("%Y-%m-%d"), "results": rows}, indent=1))
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line("side-by-side ratios (peer / fastgan, calls alternating; median of rounds)")
        for row in rows:
            if "peak_extra_memory_x_input" in row:
                reporter.write_line(f"  {row['what']:<12}{row['peer']:<20}peak extra memory "
                                    f"{row['peak_extra_memory_x_input']:.2f} x one input")
                continue
            reporter.write_line(
                f"  {row['what']:<12}{row['peer']:<20}fastgan {row['fastgan_ms']:8.2f} ms"
                f"  peer {row['peer_ms']:9.2f} ms  x{row['ratio']:7.2f}")
        reporter.write_line(f"written to {out}")


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["device"] = device_name()
    machine_info["torch"] = torch.__version__
    machine_info["keep_freed_memory"] = KEEP_FREED_MEMORY


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, list] = {}
    for bench in session.benchmarks:
        if bench.stats is not None and bench.stats.rounds:
            groups.setdefault(bench.group or "", []).append(bench)
    rows = []
    write = terminalreporter.write_line
    write("")
    write(f"ratios (median time / fastgan's median time; > 1 means fastgan is faster) on {device_name()}")
    for group, benches in sorted(groups.items()):
        ours = [b for b in benches if b.extra_info.get("impl") == "fastgan"]
        if not ours:
            continue
        base = ours[0].stats.median
        write(f"  {group}")
        for b in sorted(benches, key=lambda b: b.stats.median):
            impl = b.extra_info.get("impl", b.name)
            ratio = b.stats.median / base
            if b.extra_info.get("memory_only"):  # a memory probe: its time means nothing
                write(f"    {impl:<28}peak extra memory {b.extra_info['peak_extra_memory_x_input']:.2f}"
                      " x one input")
                rows.append({"group": group, "impl": impl, **b.extra_info})
                continue
            extra = ""
            if "bytes" in b.extra_info:
                extra = f"  {b.extra_info['bytes'] / b.stats.median / 1e9:8.1f} GB/s"
            if "interleaved_ratio" in b.extra_info:
                extra += f"  interleaved ratio {b.extra_info['interleaved_ratio']:.3f}"
            write(f"    {impl:<28}{b.stats.median * 1e3:10.3f} ms  x{ratio:6.2f}{extra}")
            rows.append({"group": group, "impl": impl, "median_s": b.stats.median,
                         "ratio_to_fastgan": ratio, **b.extra_info})
    if not rows:
        return
    RESULTS.mkdir(exist_ok=True)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    out = RESULTS / f"{dev}-latest.json"
    # Merge: a run of some groups replaces those groups and keeps the others.
    ran = {r["group"] for r in rows}
    kept = []
    if out.exists():
        try:
            kept = [r for r in json.loads(out.read_text()).get("results", []) if r.get("group") not in ran]
        except (OSError, ValueError):
            kept = []
    out.write_text(json.dumps({"device": device_name(), "torch": torch.__version__,
                               "date": time.strftime("%Y-%m-%d"), "keep_freed_memory": KEEP_FREED_MEMORY,
                               "results": kept + rows}, indent=1))
    write(f"results written to {out} ({len(rows)} rows from this run, {len(kept)} kept)")
