"""Metrics of a mailgate process: one temporalio Runtime whose Prometheus exporter carries both
the Temporal SDK's own metrics and mailgate's (recorded through the SDK's metric meter, so a
workflow records them replay-safely and a worker process exports them the same way)."""

from __future__ import annotations

import socket

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from server.settings import Settings
from workflows.metrics import APPROVAL_LATENCY

APPROVAL_BUCKETS = [1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0, 72 * 3600.0]


def free_loopback_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def metrics_runtime(address: str, process: str = "serve") -> Runtime:
    """A Runtime whose Prometheus exporter answers at ``address`` (host:port, any path); every
    series carries ``process``, so a front door can merge its worker child's series with its own."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=address,
                counters_total_suffix=True,
                durations_as_seconds=True,
                # Humans answer in minutes to days, not the milliseconds the default buckets fit.
                histogram_bucket_overrides={APPROVAL_LATENCY: APPROVAL_BUCKETS},
            ),
            global_tags={"service": "mailgate", "process": process},
        )
    )


def install_metrics_runtime(settings: Settings, process: str) -> str:
    """Make the default Runtime export Prometheus metrics; returns the exporter's host:port.

    Called once per process before its first Temporal client. Without MAILGATE_METRICS_ADDRESS the
    exporter listens on a free loopback port that only `serve`'s `/metrics` reads."""
    address = settings.metrics_address or free_loopback_address()
    Runtime.set_default(metrics_runtime(address, process), error_if_already_set=False)
    return address


def merge_exposition(bodies: list[str]) -> str:
    """Several exporters' Prometheus text as one: each metric family's HELP and TYPE once, then the
    samples of every body (their ``process`` label keeps them apart)."""
    headers: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for body in bodies:
        family = ""
        for line in body.splitlines():
            if line.startswith(("# HELP ", "# TYPE ")):
                family = line.split(maxsplit=3)[2]
                known = headers.setdefault(family, [])
                samples.setdefault(family, [])
                if line not in known:
                    known.append(line)
            elif line and not line.startswith("#"):
                samples.setdefault(family, []).append(line)
    lines = [line for family in samples for line in (*headers.get(family, []), *samples[family])]
    return "\n".join(lines) + "\n"
