"""The statistics service reaches the registry and enforcement as a service, routed by prefix."""

from __future__ import annotations


async def test_the_statistics_service_reads_registry_and_enforcement(statistics, world):
    services = statistics.app.state.services
    bureau = await services.get(f"/api/v1/registry/bureaus/{world.county['id']}")
    assert bureau["path"] == world.county["path"]
    violations = await services.get("/api/v1/enforcement/violations", params={"limit": 1})
    assert len(violations["items"]) == 1
