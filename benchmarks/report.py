"""Turning benchmark results into a Markdown table, a chart and the table in docs/benchmarks.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

START, END = "<!-- performance:start -->", "<!-- performance:end -->"


def _mark(met: bool) -> str:
    return "met" if met else "missed"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Measured {results['started']} on {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
        f"Python {m['python']}; mailgate and bare Temporal on the same embedded dev server "
        "(SQLite, WAL, synchronous=normal) in the same run.",
        "",
        *(
            [f"Rows of {', '.join(results['kept']['parts'])} are from the run of {results['kept']['from']}.", ""]
            if "kept" in results
            else []
        ),
        "| measure | mailgate | bare Temporal | ratio | goal | |",
        "|---|---|---|---|---|---|",
    ]
    latency = results.get("send_latency")
    if latency:
        bare = latency["bare"]
        for name, label in (("mcp_http", "streamable HTTP"), ("mcp_stdio", "stdio")):
            row = latency[name]
            lines.append(
                f"| `durable_send` over {label}, p50 / p99 ({row['n']} calls) | {row['p50_ms']} / {row['p99_ms']} ms "
                f"| {bare['p50_ms']} / {bare['p99_ms']} ms (`start_workflow`) | {row['ratio_p50']}x | <= 1.5x "
                f"| {_mark(row['ratio_p50'] <= 1.5)} |"
            )
            thin_name = name.replace("mcp", "thin")
            if thin_name in latency:
                thin = latency[thin_name]
                lines.append(
                    f"| `durable_send` over {label}, p50 / p99, against the thin MCP baseline "
                    f"| {row['p50_ms']} / {row['p99_ms']} ms | {thin['p50_ms']} / {thin['p99_ms']} ms "
                    f"(MCP tool that only starts; {thin['ratio_p50']}x bare) | {row['ratio_thin_p50']}x | <= 1.15x "
                    f"| {_mark(row['ratio_thin_p50'] <= 1.15)} |"
                )
    cycles = results.get("approval_cycles")
    by_workers = results.get("cycles_by_workers")
    if by_workers:
        lines += _cycles_rows(by_workers)
    elif cycles:
        lines.append(
            f"| approval cycles/s, send → approve → delivered ({cycles['concurrency']} concurrent, "
            f"{cycles['cycles']} cycles; lost {cycles['lost']}, duplicates {cycles['duplicates']}, "
            f"approvals refused {cycles.get('approvals_refused', cycles.get('approvals_retried_after_503', 0))}) "
            f"| {cycles['mailgate_per_s']}/s | {cycles['bare_per_s']}/s (start, signal, activity) "
            f"| {cycles['ratio']}x | >= 0.85x "
            f"| {_mark(cycles['ratio'] >= 0.85 and not cycles['lost'] and not cycles['duplicates'])} |"
        )
    scale = results.get("waiting_at_scale")
    if scale:
        for step in ("1000", "10000"):
            s = scale[step]
            n = f"{int(step):,}"
            lines += [
                f"| RSS of all mailgate processes, {n} pending | {s['worker_rss_mb']} MB "
                f"| {s['bare_worker_rss_mb']} MB (bare worker) | "
                f"{round(s['worker_rss_mb'] / s['bare_worker_rss_mb'], 2)}x | <= 300 MB "
                f"| {_mark(s['worker_rss_mb'] <= 300)} |",
                f"| first page of pending list, p50, {n} pending | {s['first_page']['p50_ms']} ms "
                f"| {s['bare_first_page']['p50_ms']} ms (visibility page) "
                f"| {round(s['first_page']['p50_ms'] / s['bare_first_page']['p50_ms'], 2)}x | <= 100 ms "
                f"| {_mark(s['first_page']['p50_ms'] <= 100)} |",
            ]
            if "bare_update" in s:
                # The approver API answers with the outcome, so it is an update: a worker must run it.
                ratio = round(s["approve_one"]["p50_ms"] / s["bare_update"]["p50_ms"], 2)
                lines.append(
                    f"| approve one, p50, {n} pending (admin token) | {s['approve_one']['p50_ms']} ms "
                    f"| {s['bare_update']['p50_ms']} ms (update) | {ratio}x | <= 1.25x | {_mark(ratio <= 1.25)} |"
                )
                if "approve_one_person" in s:
                    # A person's token: the front door first reads who may decide (describe, no worker).
                    mine = s["approve_one_person"]["p50_ms"]
                    ratio = round(mine / s["bare_update"]["p50_ms"], 2)
                    lines.append(
                        f"| approve one, p50, {n} pending (a person's API token) | {mine} ms "
                        f"| {s['bare_update']['p50_ms']} ms (update) | {ratio}x | <= 1.25x | {_mark(ratio <= 1.25)} |"
                    )
            lines.append(
                f"| approve one, p50, {n} pending, against a bare signal (reference: a signal needs no worker) "
                f"| {s['approve_one']['p50_ms']} ms | {s['bare_signal']['p50_ms']} ms (signal) "
                f"| {s['approve_ratio']}x | | |"
            )
        growth = round((scale["10000"]["worker_rss_mb"] - scale["1000"]["worker_rss_mb"]) / 9, 1)
        lines.append(
            f"| RSS growth of all mailgate processes per 1,000 pending (1,000 → 10,000) | {growth} MB | | "
            f"| <= 10 MB | {_mark(growth <= 10)} |"
        )
    layout = results.get("in_process_worker")
    if layout and latency and cycles:
        own, inside = latency["mcp_http"], layout["send_latency"]["mcp_http"]
        lines.append(
            f"| `durable_send` over streamable HTTP, p50: worker in its own process (default) vs in serve's "
            f"| {own['p50_ms']} ms | {inside['p50_ms']} ms (in serve's process; bare there "
            f"{layout['send_latency']['bare']['p50_ms']} ms) | {round(own['p50_ms'] / inside['p50_ms'], 2)}x | | |"
        )
        in_cycles = layout["approval_cycles"]
        lines.append(
            f"| approval cycles/s: worker in its own process (default) vs in serve's | {cycles['mailgate_per_s']}/s "
            f"| {in_cycles['mailgate_per_s']}/s (in serve's process; {in_cycles['ratio']}x bare there) "
            f"| {round(cycles['mailgate_per_s'] / in_cycles['mailgate_per_s'], 2)}x | | |"
        )
    reading = results.get("reading")
    if reading:
        for name, row in reading.items():
            lines.append(
                f"| `{name}`, p50 / p99 (MCP over HTTP) | {row['p50_ms']} / {row['p99_ms']} ms | (no Temporal) | "
                f"| <= 50 ms | {_mark(row['p50_ms'] <= 50)} |"
            )
    cost = results.get("agent_cost")
    if cost:
        lines.append(
            f"| `tools/list` answer ({cost['tools']} tools) | {cost['tools_list_bytes']:,} bytes | | | small | |"
        )
        for key in ("check_inbox_concise_bytes", "check_inbox_detailed_bytes"):
            if key in cost:
                label = key.removeprefix("check_inbox_").removesuffix("_bytes")
                lines.append(f"| `check_inbox` answer, {label}, 20 messages | {cost[key]:,} bytes | | | small | |")
    return "\n".join(lines) + "\n"


def _cycles_rows(by_workers: dict[str, Any]) -> list[str]:
    """Approval cycles with 1, 2 and 3 worker processes, each beside bare Temporal with as many."""
    lines = []
    for count, row in by_workers["workers"].items():
        processes = f"{count} worker process{'es' if count != '1' else ''}"
        scaled = "" if count == "1" else f" ({row['mailgate_vs_one']}x one process)"
        bare_scaled = "" if count == "1" else f"; {row['bare_vs_one']}x one process"
        ok = row["ratio"] >= 0.85 and not row["lost"] and not row["duplicates"] and not row["approvals_refused"]
        lines.append(
            f"| approval cycles/s, send → approve → delivered, {processes} ({by_workers['concurrency']} concurrent, "
            f"{by_workers['cycles']} cycles; lost {row['lost']}, duplicates {row['duplicates']}, approvals refused "
            f"{row['approvals_refused']}) | {row['mailgate_per_s']}/s{scaled} "
            f"| {row['bare_per_s']}/s (start, signal, activity{bare_scaled}) | {row['ratio']}x | >= 0.85x "
            f"| {_mark(ok)} |"
        )
    one = by_workers["workers"]["1"]
    if "cpu_ms_per_cycle" in one:
        mine, bare = one["cpu_ms_per_cycle"], one["bare_cpu_ms_per_cycle"]
        ratio = round(sum(mine.values()) / sum(bare.values()), 2)
        lines.append(
            "| CPU per approval cycle, 1 worker process: front door / workers / Temporal server / benchmark client "
            f"| {mine['front door']} / {mine['workers']} / {mine['Temporal server']} / {mine['benchmark client']} ms "
            f"| (none) / {bare['workers']} / {bare['Temporal server']} / {bare['benchmark client']} ms | {ratio}x | | |"
        )
    return lines


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    latency = results.get("send_latency")
    if latency:
        panels.append(
            (
                "send latency p50 (ms)",
                ["bare start", "thin HTTP", "MCP HTTP", "thin stdio", "MCP stdio"],
                [latency[name]["p50_ms"] for name in ("bare", "thin_http", "mcp_http", "thin_stdio", "mcp_stdio")],
            )
        )
    by_workers = results.get("cycles_by_workers")
    cycles = results.get("approval_cycles")
    if by_workers:
        rows = by_workers["workers"]
        labels, values = [], []
        for count, row in rows.items():
            labels += [f"bare {count}w", f"mailgate {count}w"]
            values += [row["bare_per_s"], row["mailgate_per_s"]]
        panels.append(("approval cycles / s by worker processes", labels, values))
    elif cycles:
        panels.append(("approval cycles / s", ["bare", "mailgate"], [cycles["bare_per_s"], cycles["mailgate_per_s"]]))
    scale = results.get("waiting_at_scale")
    if scale:
        panels.append(
            (
                "RSS, all mailgate processes vs bare worker (MB)",
                ["bare 1k", "mailgate 1k", "bare 10k", "mailgate 10k"],
                [
                    scale["1000"]["bare_worker_rss_mb"],
                    scale["1000"]["worker_rss_mb"],
                    scale["10000"]["bare_worker_rss_mb"],
                    scale["10000"]["worker_rss_mb"],
                ],
            )
        )
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for ax, (title, labels, values) in zip(axes if len(panels) > 1 else [axes], panels, strict=True):
        colors = ["#9aa5b1" if "bare" in label or "thin" in label else "#2f6fb3" for label in labels]
        ax.bar(labels, values, color=colors)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8, rotation=15)
        for x, value in enumerate(values):
            ax.annotate(f"{value:g}", (x, value), ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_page(page: Path, table: str) -> None:
    """Replace the table between the markers of ``page`` (docs/benchmarks.md; the chart sits beside it)."""
    text = page.read_text()
    section = f"{START}\n{table}\n![benchmark chart](../benchmarks/chart.png)\n{END}"
    if START in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S)
    else:
        text += f"\n## Performance\n\n{section}\n"
    page.write_text(text)
