"""PostgreSQL checks, at commit, that every transaction's entries balance per currency.

A deferred constraint trigger runs after each inserted entry when the
database transaction commits (entries are written one statement after their
transaction, so a row-by-row check would fire too early). Code that wrote an
unbalanced set of entries behind the services' back has its commit refused.
SQLite has no deferred triggers: there `leadrelay ledger check` finds it.

On SQLite, adding a column with a default (0006) rebuilds the table, which
drops its triggers: the append-only ones of 0002 are made again here.
"""

from typing import Any

from django.db import migrations

TABLES = ("ledger_transaction", "ledger_entry")

PG_FORWARD = [
    """
    CREATE OR REPLACE FUNCTION ledger_entries_balance() RETURNS trigger AS $$
    DECLARE
        off record;
    BEGIN
        SELECT currency, SUM(amount_minor) AS total INTO off
          FROM ledger_entry
         WHERE transaction_id = NEW.transaction_id
         GROUP BY currency
        HAVING SUM(amount_minor) <> 0
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'ledger transaction % does not balance: % off by %',
                NEW.transaction_id, off.currency, off.total
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_entry_balanced
        AFTER INSERT ON ledger_entry
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION ledger_entries_balance();
    """,
]
PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS ledger_entry_balanced ON ledger_entry;",
    "DROP FUNCTION IF EXISTS ledger_entries_balance();",
]


SQLITE_FORWARD = [
    *(f"DROP TRIGGER IF EXISTS {t}_append_only;" for t in TABLES),
    *(
        f"CREATE TRIGGER {t}_append_only BEFORE UPDATE ON {t} "
        "BEGIN SELECT RAISE(ABORT, 'ledger rows are append only'); END;"
        for t in TABLES
    ),
]


def _run(statements: dict[str, list[str]]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("ledger", "0006_money_accounts_runs_invoices")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": PG_BACKWARD}),
        )
    ]
