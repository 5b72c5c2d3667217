"""`make mutate`: mutation testing of the security-critical code, on demand.

mutmut (configured under ``[tool.mutmut]`` in pyproject.toml) changes the code of
the token verifier, the scope checks, account administration, the proxy and the
audit chain one small edit at a time and runs the tests that reach each edit; a
mutant the tests do not notice has survived. The score per module is written to
docs/quality.md. Mutants run one at a time on one set of test databases, which
the first test run sets up and the last one leaves for this tool to drop.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import difflib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tools.platform import drop_databases

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
REPORT = ROOT / "docs" / "quality.md"
# Another id lets a second copy of the tree run part of the mutants beside this one.
RUN_ID = os.environ.get("MUTATE_RUN_ID", "mutate")
PARTS = ("registry", "enforcement", "statistics", "gateway")
COMMAND = "make mutate"


@dataclass(frozen=True)
class Module:
    name: str
    path: str
    # Functions (mutmut's mangled names) this module counts; None: every function of the file.
    functions: tuple[str, ...] | None = None
    # Functions of the file left to another module.
    excluded: tuple[str, ...] = ()

    @property
    def dotted(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")

    def globs(self) -> list[str]:
        if self.functions is None:
            return [f"{self.dotted}.*"]
        return [f"{self.dotted}.{f}__mutmut_*" for f in self.functions]

    def owns(self, mutant: str) -> bool:
        function = mutant.removeprefix(f"{self.dotted}.").rsplit("__mutmut_", 1)[0]
        if not mutant.startswith(f"{self.dotted}."):
            return False
        if self.functions is not None:
            return function in self.functions
        return function not in self.excluded


PRINCIPAL = (
    "xǁPrincipalǁin_scope",
    "xǁPrincipalǁhas_role",
    "xǁPrincipalǁis_national",
    "xǁPrincipalǁfrom_claims",
    "xǁPrincipalǁclaims",
)
MODULES = (
    Module("token verifier (services/common/auth.py)", "services/common/auth.py", excluded=PRINCIPAL),
    Module("scope: Principal (services/common/auth.py)", "services/common/auth.py", functions=PRINCIPAL),
    Module(
        "scope: registry subtree filters (services.registry.network.repository.py)",
        "services.registry.network.repository.py",
        functions=(
            "x__subtree_rows",
            "x_list_officer_rows",
            "x_bureau_record",
            "x__subtree_query",
            "x__subtree_records",
            "x_list_bureau_records",
        ),
    ),
    Module(
        "scope: registry loaders (services/registry/network/service.py)",
        "services/registry/network/service.py",
        functions=(
            "x_read_bureau",
            "x_read_bureau_record",
            "x_list_bureau_records",
            "x__page_in_subtree",
            "x__bureau_in_scope",
            "x_list_bodies",
            "x_list_posts",
            "x_read_officer",
            "x_list_officers",
        ),
    ),
    Module("accounts (gateway/accounts.py)", "gateway/accounts.py"),
    Module("proxy (gateway/proxy.py)", "gateway/proxy.py"),
    Module("audit chain (services/common/audit.py)", "services/common/audit.py"),
)

# Survivors that cannot change behaviour, with the reason; they still count as survived
# in the raw score.
_SAME_PAGE = "without the limit the query reads more rows, but make_page cuts the same page from them"
_CONSTRAINT = "the unique constraint behind it answers the same 409 problem"
_REGISTRY_ACTIVE = "the registry's officer always carries `active`, so the default is never used"
_DUMP_MODE = "pydantic treats any mode but python as json here; roles dump to the same strings"
EQUIVALENT: dict[str, str] = {
    "services.registry.network.repository.x_list_officer_rows__mutmut_7": _SAME_PAGE,
    "gateway.accounts.x_create_officer_account__mutmut_15": _REGISTRY_ACTIVE,
    "gateway.accounts.x_create_officer_account__mutmut_17": _REGISTRY_ACTIVE,
    "gateway.accounts.x_create_officer_account__mutmut_20": _REGISTRY_ACTIVE,
    "gateway.accounts.x_create_officer_account__mutmut_28": _CONSTRAINT,
    "gateway.accounts.x_create_officer_account__mutmut_31": _CONSTRAINT,
    "gateway.accounts.x_create_officer_account__mutmut_33": _CONSTRAINT,
    "gateway.accounts.x_create_officer_account__mutmut_34": _CONSTRAINT,
    "gateway.accounts.x_create_system_account__mutmut_3": _CONSTRAINT,
    "gateway.accounts.x_create_officer_account__mutmut_91": _DUMP_MODE,
    "gateway.accounts.x_create_officer_account__mutmut_93": _DUMP_MODE,
    "gateway.accounts.x_create_officer_account__mutmut_95": _DUMP_MODE,
    "gateway.accounts.x_create_officer_account__mutmut_96": _DUMP_MODE,
}

DETECTED = {
    1: "killed",
    3: "killed",
    36: "timeout",
    24: "timeout",
    -24: "timeout",
    152: "timeout",
    255: "timeout",
}


def owned(mutant: str) -> bool:
    return any(module.owns(mutant) for module in MODULES)


def status(exit_code: int | None) -> str:
    if exit_code in DETECTED:
        return DETECTED[exit_code]
    return {0: "survived", None: "not run", 5: "no tests", 33: "no tests"}.get(exit_code, "suspicious")


def database_urls() -> dict[str, str]:
    return {p: f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_t{RUN_ID}_{p}" for p in PARTS}


def reset_test_state() -> None:
    asyncio.run(drop_databases(database_urls()))
    shutil.rmtree(MUTANTS / "var" / "test-runs" / f"t{RUN_ID}", ignore_errors=True)


def run_mutmut(names: list[str]) -> int:
    env = {**os.environ, "TEST_RUN_ID": f"t{RUN_ID}", "TEST_KEEP_DATABASES": "1"}
    mutmut = Path(sys.executable).parent / "mutmut"
    return subprocess.run([str(mutmut), "run", "--max-children", "1", *names], cwd=ROOT, env=env).returncode


def results() -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for path in sorted({m.path for m in MODULES}):
        meta = MUTANTS / f"{path}.meta"
        if meta.exists():
            out |= json.loads(meta.read_text())["exit_code_by_key"]
    return out


def show(mutant: str, sources: dict[str, dict[str, str]]) -> str:
    """The changed lines of a mutant, from the mutated copy mutmut keeps of its file."""
    module, _, function = mutant.rpartition(".")
    path = module.replace(".", "/") + ".py"
    if path not in sources:
        tree_source = (MUTANTS / path).read_text()
        sources[path] = {
            node.name: ast.get_source_segment(tree_source, node) or ""
            for node in ast.walk(ast.parse(tree_source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
    functions = sources[path]
    original = functions.get(function.rsplit("__mutmut_", 1)[0] + "__mutmut_orig", "")
    mutated = functions.get(function, "")
    changed = [
        line[0] + " " + line[1:].strip()
        for line in difflib.unified_diff(
            original.splitlines()[1:], mutated.splitlines()[1:], lineterm="", n=0
        )
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return " / ".join(changed) or "(no diff found)"


def report(codes: dict[str, int | None], started: datetime, finished: datetime) -> str:
    rows, survivors = [], []
    total_counts: Counter[str] = Counter()
    for module in MODULES:
        counts: Counter[str] = Counter()
        for mutant, code in codes.items():
            if module.owns(mutant):
                counts[status(code)] += 1
                if status(code) not in ("killed", "timeout", "not run"):
                    survivors.append((module.name, mutant, status(code)))
        total = sum(counts.values())
        detected = counts["killed"] + counts["timeout"]
        total_counts += counts
        rows.append(
            f"| {module.name} | {detected} | {total} | {percent(detected, total)} | "
            f"{counts['timeout']} | {counts['survived']} | {total - detected - counts['survived']} |"
        )
    total = sum(total_counts.values())
    detected = total_counts["killed"] + total_counts["timeout"]
    equivalent = sum(1 for _, m, _ in survivors if m in EQUIVALENT)
    lines = [
        "# Quality: mutation testing",
        "",
        f"Command: `{COMMAND}` (mutmut, configured under `[tool.mutmut]` in pyproject.toml; "
        "runs on demand, not in CI or `make test`).",
        f"Written {finished:%Y-%m-%d %H:%M} UTC from the results mutmut keeps in mutants/ "
        f"(this invocation started {started:%H:%M}).",
        "",
        "Each mutant is one small edit of the code (an operator, a constant, a condition, a "
        "dropped argument); it is killed when one of the tests that reach the edited function "
        "fails. Timeouts count as killed (the mutant made the tests hang).",
        "",
        "| module | killed | total | score | of which timeouts | survived | no tests / not run |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        f"| **overall** | **{detected}** | **{total}** | **{percent(detected, total)}** | "
        f"{total_counts['timeout']} | {total_counts['survived']} | "
        f"{total - detected - total_counts['survived']} |",
        "",
    ]
    not_run = total_counts["not run"] + total_counts["no tests"]
    if not_run:
        lines += [
            f"{not_run} mutants have no result (not run yet, or no selected test reaches them): "
            f"of the {total - not_run} that were run, {detected} were killed "
            f"({percent(detected, total - not_run)}). `make mutate MUTATE_ARGS=--untested` runs the rest.",
            "",
        ]
    if equivalent:
        lines += [
            f"{equivalent} of the survivors are equivalent mutants (they cannot change behaviour); "
            f"without them the score is {percent(detected, total - equivalent)}.",
            "",
        ]
    sources: dict[str, dict[str, str]] = {}
    lines += ["## Mutants not killed", ""]
    if not survivors:
        lines.append("None.")
    heading = None
    for module_name, mutant, state in survivors:
        if module_name != heading:
            heading = module_name
            lines += ["", f"### {module_name}", ""]
        note = f" — equivalent: {EQUIVALENT[mutant]}" if mutant in EQUIVALENT else ""
        lines.append(f"- `{mutant}` ({state}){note}: `{show(mutant, sources)}`")
    return "\n".join(lines) + "\n"


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(prog="make mutate", description=__doc__.splitlines()[0])
    parser.add_argument("--rerun-survivors", action="store_true", help="retry the last run's survivors")
    parser.add_argument("--untested", action="store_true", help="run the mutants without a result")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from the last run")
    parser.add_argument("--modules", help="comma-separated words; only modules whose name holds one")
    args = parser.parse_args()
    modules = MODULES
    if args.modules:
        words = args.modules.split(",")
        modules = tuple(m for m in MODULES if any(w in m.name for w in words))
    started = datetime.now(UTC)
    code = 0
    if not args.report_only:
        names = [g for module in modules for g in module.globs()]
        mine = [(m, c) for m, c in results().items() if any(module.owns(m) for module in modules)]
        if args.rerun_survivors or args.untested:
            retried = {"survived", "no tests", "suspicious"} if args.rerun_survivors else set()
            names = [m for m, c in mine if status(c) in retried or (args.untested and c is None)]
        if not names:
            print("no mutants to run")
        if names:
            reset_test_state()
            try:
                code = run_mutmut(names)
            finally:
                reset_test_state()
    codes = results()
    if not codes:
        print("mutmut produced no results", file=sys.stderr)
        return code or 1
    REPORT.write_text(report(codes, started, datetime.now(UTC)))
    print(f"{REPORT.relative_to(ROOT)} written")
    return code


if __name__ == "__main__":
    sys.exit(main())
