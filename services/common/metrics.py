"""Prometheus metrics in base units, labelled by route template (never by id)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

DB_CONNECTION_WAIT_SECONDS = Histogram(
    "db_connection_wait_seconds",
    "Time a checkout queued for a pooled database connection (only checkouts that had to wait)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DB_CONNECTION_WAIT_TIMEOUTS = Counter(
    "db_connection_wait_timeouts_total",
    "Checkouts refused (503) because no pooled database connection became free in time",
)


# The labelled children, found once per (method, route, status): ``labels()`` validates and
# locks on every call, a tenth of a hot read's own cost.
_children: dict[tuple[str, str, int], tuple] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    children = _children.get(key)
    if children is None:
        children = (REQUESTS.labels(method, route, str(status)), REQUEST_SECONDS.labels(method, route))
        _children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def render_metrics() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
