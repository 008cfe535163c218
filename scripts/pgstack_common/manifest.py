"""The dump manifest's definition, shared by the side that writes it (pgstack_backup, after each
pg_dump) and the side that checks a restore against it (pgstack_drill). docs/backup.md describes
the format; a change here changes both sides at once."""

from __future__ import annotations

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
DATA_FILE = "data.dump"
SCHEMA_FILE = "schema.dump"
GLOBALS_FILE = "globals.sql"
DUMP_FILES = (DATA_FILE, SCHEMA_FILE, GLOBALS_FILE)

# The tables a manifest summarises: ordinary tables outside the system schemas (partitions
# included; a partitioned parent holds no rows of its own).
TABLES_QUERY = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
ORDER BY 1, 2
"""
# A table's summary: its row count and an order-independent checksum, the sum of hashtext() over
# each row's text form; {} is the quoted schema.table. FROM ONLY: a parent's partitions count once.
TABLE_SUMMARY_QUERY = (
    "SELECT count(*), coalesce(sum(hashtext(t::text)::bigint), 0)::text FROM ONLY {} AS t"
)
# A row's text form depends on these session settings; the values are PostgreSQL's defaults, the
# ones the dump session uses unless the source server changed them (docs/backup.md).
TEXT_FORM_SETTINGS = {
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
}
