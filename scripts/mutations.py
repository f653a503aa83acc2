"""Mutation experiments on the credit rules (docs/credits.md, "Guarantees and the tests that prove
them"): each breaks one rule on purpose, runs the tests that should notice, expects them to fail,
and puts the file back byte for byte, whatever happens.

    DATABASE_URL=postgres://… .venv/bin/python scripts/mutations.py [NAME …]

The SQL mutations need PostgreSQL (the fast path runs only there): each pytest run creates its test
database afresh, so the migrations install the mutated SQL file. The tests first run unmutated
and must pass, or nothing is mutated. Exit status 0 only when every mutation was caught.
"""

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULE_TESTS = (
    "tests/credits/test_holds.py",
    "tests/credits/test_grants.py",
    "tests/credits/test_properties.py",
)


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    before: str
    after: str
    breaks: str
    tests: tuple[str, ...] = RULE_TESTS


MUTATIONS = [
    Mutation(
        "sql-draw-order",
        "credits/sql/rules.v1.pg.sql",
        "ORDER BY g.expires_at ASC NULLS LAST, g.id",
        "ORDER BY g.expires_at DESC NULLS LAST, g.id",
        "the fast settlement draws from the grant that expires last first",
    ),
    Mutation(
        "sql-cost-rounding",
        "credits/sql/rules.v1.pg.sql",
        "SELECT ceil(p_prompt::numeric",
        "SELECT floor(p_prompt::numeric",
        "the fast settlement rounds the cost down",
    ),
    Mutation(
        "sql-admits-against-due-expiry",
        "credits/sql/holds.v1.pg.sql",
        "IF EXISTS (SELECT 1 FROM credits_hold h WHERE h.request_id = p_request_id)\n"
        "        OR solaris_grant_due(p_account, p_now) THEN",
        "IF EXISTS (SELECT 1 FROM credits_hold h WHERE h.request_id = p_request_id) THEN",
        "the fast admission no longer declines when a grant is due to expire",
    ),
    Mutation(
        "available-ignores-debt",
        "credits/rules.py",
        "return left + reserve - debt - held",
        "return left + reserve - held",
        "available forgets the usage booked beyond the grants",
        (*RULE_TESTS, "tests/credits/test_rules.py", "tests/credits/test_selectors.py"),
    ),
    Mutation(
        "blocked-only-at-zero",
        "credits/rules.py",
        "return available < blocked_line",
        "return available <= 0",
        "blocked means nothing left, not too little for a short call",
        (
            "tests/credits/test_rules.py",
            "tests/credits/test_selectors.py",
            "tests/notifications/test_triggers.py",
        ),
    ),
]


def pytest(tests: tuple[str, ...]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def failures(run: subprocess.CompletedProcess) -> list[str]:
    return [line.split(" ")[1] for line in run.stdout.splitlines() if line.startswith("FAILED ")]


def mutate(mutation: Mutation) -> list[str]:
    """The tests that failed with the mutation in place (empty: it survived)."""
    path = ROOT / mutation.path
    original = path.read_bytes()
    text = original.decode()
    if text.count(mutation.before) != 1:
        raise SystemExit(f"{mutation.name}: the text to mutate is not once in {mutation.path}")
    try:
        path.write_text(text.replace(mutation.before, mutation.after))
        run = pytest(mutation.tests)
    finally:
        path.write_bytes(original)
    if run.returncode not in (0, 1):
        raise SystemExit(f"{mutation.name}: pytest could not run\n{run.stdout[-3000:]}")
    return failures(run)


def main(names: list[str]) -> int:
    # A terminated run still restores the file (the finally above).
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("The SQL rules run only on PostgreSQL: set DATABASE_URL.", file=sys.stderr)
        return 2
    chosen = [m for m in MUTATIONS if not names or m.name in names]
    if not chosen:
        print(f"unknown mutation; known: {', '.join(m.name for m in MUTATIONS)}", file=sys.stderr)
        return 2
    tests = tuple(dict.fromkeys(test for m in chosen for test in m.tests))
    baseline = pytest(tests)
    if baseline.returncode != 0:
        print(f"the tests fail without any mutation:\n{baseline.stdout[-3000:]}", file=sys.stderr)
        return 1
    survived = []
    for mutation in chosen:
        failed = mutate(mutation)
        verdict = f"caught by {len(failed)} test(s)" if failed else "SURVIVED"
        print(f"{mutation.name}: {mutation.breaks} — {verdict}", flush=True)
        for test in failed:
            print(f"    {test}")
        if not failed:
            survived.append(mutation.name)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
