"""Registry CPU per request of one item read, straight to the registry: an A/B helper.

Starts the platform as ``make bench`` does (tools/bench.py: its own databases and ports),
loads 20,000 certificates (tools/bench_data.py), then sends ``GET /certificates/{id}`` or
``GET /enterprises/{id}`` over 500 random ids with wrk and prints the registry's CPU per
request of each round and their median. Nothing is written to docs/benchmarks.md. Run it
from two checkouts, alternately, to compare a change with its base on a shared machine:

    .venv/bin/python tools/bench_item_read.py --kind certificate --rounds 3 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys

# The checkout it is run from, whatever the script's own path (and not tools/ itself, whose
# platform.py would hide the standard library's).
sys.path[0] = os.getcwd()

import asyncpg  # noqa: E402

from tools import bench  # noqa: E402

CERTIFICATES = 20_000
IDS = 500


def item_read(kind: str):
    def run(b: bench.Bench) -> str:
        from tools.bench_data import load_certificates

        asyncio.run(load_certificates(b.urls["registry"], CERTIFICATES))

        async def ids() -> list[int]:
            url = b.urls["registry"].replace("postgresql+asyncpg://", "postgresql://")
            conn = await asyncpg.connect(url)
            try:
                rows = await conn.fetch(f"SELECT id FROM {kind} ORDER BY random() LIMIT {IDS}")  # noqa: S608
            finally:
                await conn.close()
            return [r["id"] for r in rows]

        paths = [f"/api/v1/registry/{kind}s/{i}" for i in asyncio.run(ids())]
        script = bench.rotating_paths_script(paths)
        url = b.running.service_url("registry") + paths[0]
        connections = b.connections(16)
        bench.wrk(url, b.token, 3, connections, script=script)  # warm
        pids = {"registry": b.pid("registry")}
        rounds = []
        for i in range(b.args.rounds):
            r = bench.measured(b, url, connections, pids, script=script)
            rounds.append(r)
            print(f"{kind} read round {i + 1}: {r['rps']:.0f}/s p50 {r['p50']:.1f} p99 {r['p99']:.1f} ms, "
                  f"registry CPU {r['cpu_registry']:.3f} ms a request", flush=True)  # fmt: skip
        script.unlink()
        cpu = statistics.median(r["cpu_registry"] for r in rounds)
        print(f"{kind} read: median registry CPU {cpu:.3f} ms a request", flush=True)
        return ""

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("certificate", "enterprise"), default="certificate")
    ours, rest = parser.parse_known_args()
    bench.section("item-read")(item_read(ours.kind))
    bench.write_section = lambda text: None  # an A/B helper: the figures go to the terminal only
    bench.main(["--only", "item-read", *rest])


if __name__ == "__main__":
    main()
