"""pgstack-drill: restore drills that restore real backups, verify them and measure RTO and RPO.

Runs on the backup host with Debian's python3-psycopg, pgBackRest and PostgreSQL server packages
(the database hosts' major); every drill uses its own scratch cluster and never touches a live one.
See docs/drills.md.
"""
