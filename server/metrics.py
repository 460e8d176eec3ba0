"""Prometheus metrics of a hosted deployment, at `/metrics`: tool calls, errors and latency by tool, jobs by
state, and NemoVideo's answers by HTTP status.

Counting is off until `enable()` (hosted mode): a local server, started by a host at every launch, never
imports the client library and its counting calls cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from .store import Store

_metrics: dict[str, Any] = {}


def enable() -> None:
    """Make the metrics (once per process: they live in prometheus_client's registry)."""
    if _metrics:
        return
    from prometheus_client import Counter, Gauge, Histogram

    _metrics.update(
        calls=Counter("nemovideo_tool_calls", "Tool calls, by tool and outcome (ok, error).", ["tool", "outcome"]),
        seconds=Histogram("nemovideo_tool_seconds", "Time to answer a tool call, by tool.", ["tool"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)),
        backend=Counter("nemovideo_backend_responses", "NemoVideo's answers, by HTTP status.", ["status"]),
        jobs=Gauge("nemovideo_jobs", "Jobs in the store, by kind and state, all replicas together.",
                   ["kind", "state"]),
    )


def tool_call(tool: str, seconds: float, failed: bool) -> None:
    if _metrics:
        _metrics["calls"].labels(tool, "error" if failed else "ok").inc()
        _metrics["seconds"].labels(tool).observe(seconds)


def backend_response(status: int) -> None:
    if _metrics:
        _metrics["backend"].labels(str(status)).inc()


def add_route(server: MCPServer, store: Callable[[], Store]) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.requests import Request
    from starlette.responses import Response

    from .errors import NemoError

    @server.custom_route("/metrics", methods=["GET"])
    async def metrics(_: Request) -> Response:
        jobs = _metrics["jobs"]
        try:
            counts = await store().job_counts()
        except NemoError:
            counts = None  # the store is down: /readyz says so; the other metrics are still served
        if counts is not None:
            jobs.clear()  # a state with no job any more reads as absent, not as its last count
            for (kind, state), count in counts.items():
                jobs.labels(kind, state).set(count)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
