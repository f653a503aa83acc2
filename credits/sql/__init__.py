"""The PostgreSQL functions of the fast path, in versioned files that migrations load.

`<set>.v<N>.pg.sql` is version N of one set of functions (`rules`, `holds`). A migration loads a
file by name and a loaded file never changes: a fresh database replays every migration, so each
must install what it installed the first time. A change is a copy to `v<N+1>`, edited, and a new
migration that loads it (`sql_install("holds.v2")`); the highest version of each set is what the
database runs, and tests/credits/test_sql_rules.py checks that it does.
"""

import re
from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent
_FILE = re.compile(r"^(?P<set>[a-z_]+)\.v(?P<version>\d+)\.pg\.sql$")
_FUNCTION = re.compile(r"CREATE OR REPLACE FUNCTION (\w+)\(", re.IGNORECASE)


def sql_text(name: str) -> str:
    return (SQL_DIR / f"{name}.pg.sql").read_text(encoding="utf-8")


def function_names(text: str) -> list[str]:
    return _FUNCTION.findall(text)


def latest() -> dict[str, str]:
    """The newest file name of each set, e.g. {"holds": "holds.v1"}."""
    newest: dict[str, tuple[int, str]] = {}
    for path in SQL_DIR.glob("*.pg.sql"):
        found = _FILE.match(path.name)
        if found is None:
            raise ValueError(f"{path.name}: SQL files are named <set>.v<N>.pg.sql")
        version = int(found["version"])
        if version > newest.get(found["set"], (0, ""))[0]:
            newest[found["set"]] = (version, path.name.removesuffix(".pg.sql"))
    return {name: file for name, (_version, file) in newest.items()}


def sql_install(*names: str) -> migrations.RunPython:
    """A migration operation that runs these files in order on PostgreSQL (other databases take
    the ORM path and need none), and drops their functions when unapplied."""

    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for name in names:
                schema_editor.execute(sql_text(name), params=None)

    def backwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for name in reversed(names):
                for function in reversed(function_names(sql_text(name))):
                    schema_editor.execute(f"DROP FUNCTION IF EXISTS {function}", params=None)

    return migrations.RunPython(forwards, backwards)
