"""Runs of ``make bench`` side by side, as the Markdown tables of the README's "Benchmarks".

``python -m scripts.bench.history [N]`` reads the last N runs (all by default) from
``var/bench-history.jsonl``: each figure with its reference and their ratio, per run, and the
spread of the ratios across runs, which is what compares (README, "Benchmarks").
"""

from __future__ import annotations

import json
import sys

from scripts.bench.report import VAR


def _spread(values: list[float], digits: int = 3) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low:.{digits}f}" if low == high else f"{low:.{digits}f}-{high:.{digits}f}"


def tables(runs: list[dict]) -> str:
    head = (
        "| " + " | ".join(f"run {i + 1} ({r['started'][11:16]} UTC)" for i, r in enumerate(runs)) + " | ratio spread |"
    )
    rule = "|---" * (len(runs) + 2) + "|"
    busy = " / ".join(f"{r['machine_busy_cores_before']:.1f}" for r in runs)
    out = [f"Cores busy with other work before each run: {busy} of 2.", ""]
    out += ["Gateway: floor req/s → Herald accepted/s (ratio); p99 ms (in floor request-times)", ""]
    out += ["| connections " + head, rule]
    for c in runs[0]["gateway"]:
        cells = []
        for r in runs:
            g = r["gateway"][c]
            cells.append(
                f"{g['floor_rps']:,} → {g['accepted_per_s']:,} ({g['ratio']:.3f}); "
                f"p99 {g['p99_ms']:.0f} ({g['p99_floor_request_times']:,})"
            )
        out.append(f"| {c} | " + " | ".join(cells) + f" | {_spread([r['gateway'][c]['ratio'] for r in runs])} |")
    if all(r.get("batch") for r in runs):
        out += ["", "Batches, 4 connections: single sends/s → batch sends accepted/s (ratio)", ""]
        out += ["| sends per batch " + head, rule]
        for size in runs[0]["batch"]:
            points = [r["batch"][size] for r in runs]
            cells = [f"{b['single_per_s']:,} → {b['batch_per_s']:,} ({b['ratio']:.2f})" for b in points]
            ratios = [r["batch"][size]["ratio"] for r in runs]
            out.append(f"| {int(size):,} | " + " | ".join(cells) + f" | {_spread(ratios, 2)} |")
    out += ["", "Delivery into smtp-sink: thinnest worker mails/s → Herald mails/s (ratio)", ""]
    out += ["| workers " + head, rule]
    for w in runs[0]["delivery"]:
        cells = [
            f"{d['floor_per_s']:,.0f} → {d['herald_per_s']:,.0f} ({d['ratio']:.3f})"
            for d in (r["delivery"][w] for r in runs)
        ]
        out.append(f"| {w} | " + " | ".join(cells) + f" | {_spread([r['delivery'][w]['ratio'] for r in runs])} |")
    out += ["", "Provider latency, 2 processes: mails/s of the reference (ratio)", ""]
    out += ["| latency, workers " + head, rule]
    for key in runs[0]["latency"]:
        cells = [
            f"{p['per_s']:,.1f} of {p['reference_per_s']:,.0f} ({p['ratio']:.2f})"
            for p in (r["latency"][key] for r in runs)
        ]
        out.append(f"| {key} | " + " | ".join(cells) + f" | {_spread([r['latency'][key]['ratio'] for r in runs], 2)} |")
    out += ["", "CPU ms per accepted send (50 connections) and per mail (2 x 8), per run", ""]
    for r in runs:
        send = ", ".join(f"{k} {v:.2f}" for k, v in r["gateway_cpu_ms_per_send"].items() if v >= 0.005)
        mail = ", ".join(f"{k} {v:.2f}" for k, v in r["delivery_cpu_ms_per_mail"]["herald"].items() if v >= 0.005)
        out.append(f"- {r['started'][11:16]}: send: {send} (floor {r.get('floor_cpu_ms_per_request')}); mail: {mail}")
    return "\n".join(out)


def main() -> None:
    runs = [json.loads(line) for line in (VAR / "bench-history.jsonl").read_text().splitlines() if line.strip()]
    last = int(sys.argv[1]) if len(sys.argv) > 1 else len(runs)
    print(tables(runs[-last:]))


if __name__ == "__main__":
    main()
