"""pgstack-exporter: Prometheus metrics and a /health endpoint for a pgstack host.

PostgreSQL (with WAL archiving), PgBouncer, Redis, the pg_dump and restore-drill status files,
pgBackRest's repository and the TLS certificates of every endpoint; see docs/metrics.md.
"""

__version__ = "0.1.0"
