"""Each table's SQL lives in one module: an architectural guard over the source.

Every string literal in ``appliance/`` and ``web_ui/`` that reads or writes a
table (``FROM``, ``INTO``, ``UPDATE``, ``JOIN``) is attributed to that table;
a table named outside its owner module fails the test, as does a table
without an owner. The schema itself (``storage.MIGRATIONS``) is exempt.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from types import ModuleType

from appliance.access import audit, failures, keys, logins
from appliance.store import backups, clients, db, formulations, process_notes, transcripts, voices
from appliance.transcription import checkpoints

ROOT = Path(__file__).resolve().parent.parent

OWNERS: dict[str, ModuleType] = {
    "sessions": db,
    "session_shares": db,
    "transcripts": transcripts,
    "transcript_versions": transcripts,
    "notes": db,
    "addenda": db,
    "settings": db,
    "users": keys,
    "key_slots": keys,
    "login_failures": failures,
    "web_logins": logins,
    "audit": audit,
    "checkpoints": checkpoints,
    "voice_profiles": voices,
    "backups": backups,
    "clients": clients,
    "client_consents": clients,
    "formulations": formulations,
    "process_notes": process_notes,
}

# Upper-case SQL keywords followed by a table name: how this code base writes SQL.
TABLE_REFERENCE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE)\s+([a-z_][a-z0-9_]*)\b")


def tables_in(source: str) -> set[str]:
    """The tables named by SQL in the string literals of ``source`` (f-string parts too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and node.value not in db.MIGRATIONS):
            found |= set(TABLE_REFERENCE.findall(node.value))
    return found


def source_files() -> list[Path]:
    return sorted(p for d in ("appliance", "web_ui") for p in (ROOT / d).rglob("*.py"))


def owner_path(table: str) -> Path:
    return Path(inspect.getsourcefile(OWNERS[table]) or "").resolve()


def test_the_guard_finds_table_names_in_sql():
    assert tables_in('conn.execute("SELECT id FROM users WHERE username = ?")') == {"users"}
    assert tables_in('f"UPDATE sessions SET {x} = ? WHERE id = ?"') == {"sessions"}
    assert tables_in('q = ("SELECT a.v FROM notes n "\n     "LEFT JOIN addenda a ON 1")') == {
        "notes", "addenda"}
    assert tables_in('"""Sessions from the users of the device."""') == set()


def test_every_table_of_the_schema_has_an_owner():
    created = {name for script in db.MIGRATIONS
               for name in re.findall(r"CREATE TABLE (\w+)", script)}
    assert created == set(OWNERS)


def test_the_storage_docstring_names_every_table():
    missing = [t for t in OWNERS if f"``{t}``" not in (db.__doc__ or "")]
    assert missing == [], "add these tables to the owner map in appliance/store/db.py's docstring"


def test_each_table_is_touched_only_by_its_owner():
    strays = []
    for path in source_files():
        for table in sorted(tables_in(path.read_text(encoding="utf-8"))):
            if table not in OWNERS:
                strays.append(f"{path.relative_to(ROOT)}: {table} has no owner in {__name__}")
            elif path.resolve() != owner_path(table):
                strays.append(f"{path.relative_to(ROOT)}: {table} belongs to "
                              f"{OWNERS[table].__name__}; call its functions instead")
    assert strays == []
