"""Bulk sync benchmark (``make bench BENCH_ARGS="--only import"``).

One million valid certificate rows (16-digit CCC numbers of one body, 1,000
holders registered first by an enterprise import) are written to an NDJSON file
on disk and uploaded to ``POST /api/v1/registry/imports?kind=certificates``,
streamed from the file, straight to the registry and through the gateway; in the
same run the same rows, already resolved to ids, are written with a raw
``COPY … FROM STDIN`` into the same table. The certificate tables are truncated
before each write. Rows per second for each, their ratio (goal ≥ 0.5×), medians
over the rounds, and the registry's resident memory while it imports.
"""

from __future__ import annotations

import asyncio
import csv
import os
import platform as host
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
from stdnum.cn import uscc

from gateway.config import GatewaySettings
from gateway.keys import active_signing_pem, ensure_keys
from services.common.auth import Principal, PrincipalKind, Role, TokenSigner
from services.registry.certification.identifiers import org_code_check_character
from tools.bench import BENCH_DIR, ENV, PARTS, cpu_seconds
from tools.platform import Platform, create_databases, database_urls, drop_databases, free_port, migrate

IMPORTS = "/api/v1/registry/imports"
DATA_DIR = BENCH_DIR / "import"
HOLDERS = 1000
BODY_APPROVAL = "CNCA-R-2024-901"  # apart from the demo bodies `make run` seeds
BODY_CODE = "88"
# The columns the import sets on a new certificate, in the raw COPY's order.
COPY_COLUMNS = (
    "number", "scheme", "body_id", "holder_id", "holder_name", "division_code", "scope", "issued_on",
    "expires_on", "status", "status_changed_at", "bureau_id", "bureau_path", "version", "created_at",
    "updated_at",
)  # fmt: skip
CERTIFICATE_TABLES = "certificate, certificate_product, certificate_status_change"


# Databases of its own: the other sections' platform keeps running beside this one.
IMPORT_ENV = {
    **ENV,
    **{
        f"{p.upper()}_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_bench_import_{p}"
        for p in PARTS
    },
}


def dsn(url: str) -> str:
    return url.replace("+asyncpg", "")


def credit_code(n: int) -> str:
    org = f"{n:08d}"
    org += org_code_check_character(org)
    base = "91330100" + org
    return base + uscc.calc_check_digit(base)


def certificate_rows(count: int):
    """The benchmark's certificates: (number, holder index, issued_on, expires_on)."""
    first = date(2021, 1, 4)
    for serial in range(count):
        issued = first + timedelta(days=serial % 365)
        yield f"2021{BODY_CODE}0201{serial:06d}", serial % HOLDERS, issued, issued + timedelta(days=5 * 365)


def write_files(
    count: int, holders: dict[int, tuple[int, str, str]], body_id: int, bureau: tuple[int, str]
) -> tuple[Path, Path]:
    """The NDJSON upload and the same rows resolved to ids for the raw COPY."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    upload, raw = DATA_DIR / f"certificates-{count}.ndjson", DATA_DIR / f"certificates-{count}.csv"
    now = datetime.now(UTC).isoformat()
    with upload.open("wb") as ndjson, raw.open("w", newline="") as copy:
        writer = csv.writer(copy)
        for number, holder, issued, expires in certificate_rows(count):
            holder_id, name, division = holders[holder]
            ndjson.write(
                orjson.dumps(
                    {
                        "scheme": "ccc",
                        "number": number,
                        "body_approval_number": BODY_APPROVAL,
                        "holder_credit_code": credit_code(holder),
                        "issued_on": issued,
                        "expires_on": expires,
                        "scope": "小型断路器 (低压成套开关设备)",
                    }
                )
                + b"\n"
            )
            writer.writerow(
                (
                    number,
                    "ccc",
                    body_id,
                    holder_id,
                    name,
                    division,
                    "小型断路器 (低压成套开关设备)",
                    issued,
                    expires,
                    "valid",
                    now,
                    bureau[0],
                    bureau[1],
                    1,
                    now,
                    now,
                )
            )
    return upload, raw


class RssSampler:
    """The resident memory of a process, sampled every 50 ms while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.rss())
            time.sleep(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def upload(url: str, token: str, path: Path, kind: str = "certificates") -> dict:
    def chunks():
        with path.open("rb") as f:
            while block := f.read(1024 * 1024):
                yield block

    with httpx.Client(timeout=httpx.Timeout(60.0, read=3600.0), trust_env=False) as client:
        response = client.post(
            url + IMPORTS,
            params={"kind": kind},
            content=chunks(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
        )
    if response.status_code != 201:
        raise SystemExit(f"the upload answered {response.status_code}: {response.text[:2000]}")
    return response.json()


async def prepare(url: str) -> tuple[tuple[int, str], int]:
    """The Zhejiang quality-supervision unit (where the rows are kept) and one CCC body."""
    conn = await asyncpg.connect(dsn(url))
    try:
        bureau = await conn.fetchrow(
            "SELECT id, path FROM bureau WHERE division_code = '330000' AND system = 'quality_supervision' "
            "AND pilot = 'provincial'"
        )
        body_id = await conn.fetchval(
            """INSERT INTO certification_body (approval_number, name, ccc_body_code, approved_on,
                   approval_expires_on, approved_schemes, ccc_designations, status, bureau_id, bureau_path,
                   version, created_at, updated_at)
               VALUES ($1, '压测认证中心', $2, '2002-05-01', '2030-04-30', '["ccc"]', '["0201"]',
                       'approved', 1, '1.', 1, now(), now()) RETURNING id""",
            BODY_APPROVAL,
            BODY_CODE,
        )
        return (bureau["id"], bureau["path"]), body_id
    finally:
        await conn.close()


async def holder_rows(url: str) -> dict:
    conn = await asyncpg.connect(dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT id, credit_code, name, division_code FROM enterprise WHERE credit_code = ANY($1)",
            [credit_code(n) for n in range(HOLDERS)],
        )
    finally:
        await conn.close()
    by_code = {r["credit_code"]: (r["id"], r["name"], r["division_code"]) for r in rows}
    return {n: by_code[credit_code(n)] for n in range(HOLDERS)}


async def truncate(url: str) -> None:
    conn = await asyncpg.connect(dsn(url))
    try:
        await conn.execute(f"TRUNCATE {CERTIFICATE_TABLES} CASCADE")
        await conn.execute("CHECKPOINT")  # each write starts from the same state of the WAL
    finally:
        await conn.close()


async def raw_copy(url: str, path: Path) -> float:
    conn = await asyncpg.connect(dsn(url))
    try:
        started = time.perf_counter()
        await conn.copy_to_table("certificate", source=path, columns=list(COPY_COLUMNS), format="csv")
        return time.perf_counter() - started
    finally:
        await conn.close()


def host_line() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        host.processor(),
    )
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu}), "
        f"Python {host.python_version()}, PostgreSQL on the same machine"
    )


def run(args) -> str:
    count = args.import_rows
    urls = database_urls(IMPORT_ENV)
    ensure_keys(GatewaySettings())
    asyncio.run(drop_databases(urls))
    asyncio.run(create_databases(urls))
    migrate(urls)
    subprocess.run(
        [sys.executable, "-m", "services.registry.seed"],
        check=True,
        env={**os.environ, **IMPORT_ENV},
        stdout=subprocess.DEVNULL,
    )
    bureau, body_id = asyncio.run(prepare(urls["registry"]))
    settings = GatewaySettings()
    signer = TokenSigner(
        active_signing_pem(settings),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        lifetime_seconds=4 * 3600,
    )
    token = signer.issue(
        Principal(
            account_id="bench-zj-system",
            kind=PrincipalKind.SYSTEM,
            bureau_id=bureau[0],
            bureau_path=bureau[1],
            roles=frozenset({Role.SYSTEM}),
        )
    )
    running = Platform(
        env=IMPORT_ENV,
        gateway_port=free_port(),
        service_ports={n: free_port() for n in ("registry", "enforcement", "statistics")},
        workers=False,
        log_dir=BENCH_DIR / "logs",
    )
    results: dict[str, list[float]] = {"copy": [], "direct": [], "gateway": []}
    memory: list[tuple[int, int]] = []
    cpu: list[float] = []
    try:
        running.start_services()
        running.wait_ready([running.service_url(n) for n in running.service_ports])
        running.start_gateway()
        running.wait_ready([running.gateway_url])
        direct = running.service_url("registry")
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        holders_file = DATA_DIR / "holders.ndjson"
        holders_file.write_bytes(
            b"".join(
                orjson.dumps(
                    {
                        "credit_code": credit_code(n),
                        "name": f"浙江某某电器有限公司{n:04d}",
                        "division_code": "330100",
                    }
                )
                + b"\n"
                for n in range(HOLDERS)
            )
        )
        upload(direct, token, holders_file, kind="enterprises")
        holders = asyncio.run(holder_rows(urls["registry"]))
        print(f"writing {count} rows to {DATA_DIR}", flush=True)
        ndjson, copy_file = write_files(count, holders, body_id, bureau)
        print(f"upload file: {ndjson.stat().st_size / 1e6:.0f} MB", flush=True)
        pid = running.processes["registry"].pid
        paths = [("direct", direct)]
        if not args.skip_gateway:
            paths.append(("gateway", running.gateway_url))
        for i in range(args.import_rounds):
            asyncio.run(truncate(urls["registry"]))
            results["copy"].append(count / asyncio.run(raw_copy(urls["registry"], copy_file)))
            for name, url in paths:
                asyncio.run(truncate(urls["registry"]))
                sampler = RssSampler(pid)
                before_rss, before_cpu = sampler.rss(), cpu_seconds(pid)
                started = time.perf_counter()
                with sampler:
                    summary = upload(url, token, ndjson)
                elapsed = time.perf_counter() - started
                if summary["rows_written"] != count or summary["rows_failed"]:
                    raise SystemExit(f"the import did not write every row: {summary}")
                results[name].append(count / elapsed)
                if name == "direct":
                    memory.append((before_rss, max(sampler.samples, default=before_rss)))
                    cpu.append(cpu_seconds(pid) - before_cpu)
            print(
                f"round {i + 1}: raw COPY {results['copy'][-1]:.0f} rows/s, "
                + ", ".join(f"{name} {results[name][-1]:.0f} rows/s" for name, _ in paths),
                flush=True,
            )
    finally:
        running.stop()
        asyncio.run(drop_databases(urls))
    return write_results(args, count, results, memory, cpu)


def write_results(args, count: int, results: dict[str, list[float]], memory, cpu) -> str:
    copy = statistics.median(results["copy"])
    lines = [
        f"| raw `COPY … FROM STDIN` of the same rows (resolved ids), same table | {copy:,.0f} | 1.00× |",
    ]
    for name, label in (("direct", "straight to the registry"), ("gateway", "through the gateway")):
        if results[name]:
            rate = statistics.median(results[name])
            lines.append(f"| API upload, {label} | {rate:,.0f} | **{rate / copy:.2f}×** |")
    ratios = [d / c for d, c in zip(results["direct"], results["copy"], strict=False)]
    before = statistics.median(m[0] for m in memory) / 2**20
    peak = statistics.median(m[1] for m in memory) / 2**20
    command = (
        f'make bench BENCH_ARGS="--only import"  (python -m tools.bench --only import '
        f"--import-rows {count} --import-rounds {args.import_rounds})"
    )
    table = "\n".join(lines)
    section = f"""## Bulk import of certificates

Command: `{command}`
Run: {host_line()}.
{count:,} CCC certificate rows ({len(results["copy"])} rounds, medians; the certificate tables truncated
before each write). The upload is an NDJSON file on disk streamed to
`POST /api/v1/registry/imports?kind=certificates` by one client; the registry validates every
row, resolves its body and holder by natural key, and writes it with its first status-history
entry, in batches of 5,000 (one audit entry and one event per batch).

| write | rows/s | vs raw COPY |
| --- | ---: | ---: |
{table}

Per-round ratios (direct / COPY): {", ".join(f"{r:.2f}" for r in ratios)}. Goal: ≥ 0.5×.
Registry resident memory: {before:.0f} MiB before the upload, peak {peak:.0f} MiB during it
(the file is {count:,} rows; it is read as it arrives, never held). Registry CPU for the
upload: {statistics.median(cpu):.1f} s.
"""
    return section
