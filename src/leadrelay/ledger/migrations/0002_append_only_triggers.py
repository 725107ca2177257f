"""The database itself refuses to change ledger rows, whatever code runs against it.

PostgreSQL refuses UPDATE and DELETE; SQLite refuses UPDATE (its test flush
deletes rows, and on SQLite the database is a single local file anyway).
TRUNCATE, an operator's deliberate reset, stays possible.
"""

from typing import Any

from django.db import migrations

TABLES = ("ledger_transaction", "ledger_entry")

PG_FORWARD = [
    """
    CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'ledger rows are append only (% on %)', TG_OP, TG_TABLE_NAME;
    END;
    $$ LANGUAGE plpgsql;
    """,
    *(
        f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
        "FOR EACH ROW EXECUTE FUNCTION ledger_append_only();"
        for t in TABLES
    ),
]
PG_BACKWARD = [
    *(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t};" for t in TABLES),
    "DROP FUNCTION IF EXISTS ledger_append_only();",
]
SQLITE_FORWARD = [
    f"CREATE TRIGGER {t}_append_only BEFORE UPDATE ON {t} "
    "BEGIN SELECT RAISE(ABORT, 'ledger rows are append only'); END;"
    for t in TABLES
]
SQLITE_BACKWARD = [f"DROP TRIGGER IF EXISTS {t}_append_only;" for t in TABLES]


def _run(statements: dict[str, list[str]]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        )
    ]
