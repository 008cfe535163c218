"""pgstack-backup: scheduled pg_dump runs: safe write protocol, manifests, status, retention.

Runs on the backup host with Debian's python3-psycopg and python3-yaml; see docs/backup.md.
"""
