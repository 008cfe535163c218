"""The seven dashboards. Every pgstack_* metric is in docs/metrics.md (the Hosts board reads the
node exporter's node_* metrics, the Cluster board Patroni's and etcd's too); thresholds are the
alert rules' own (alerts/*.rules.yml), or the exporter's deadlines where no rule exists."""

from __future__ import annotations

from pgstack_dashboards.model import (
    BLUE,
    GREEN,
    OK_MAPPINGS,
    ORANGE,
    RED,
    UP_MAPPINGS,
    UP_STEPS,
    Board,
    Kind,
    Panel,
    Query,
    Row,
    Step,
    Variable,
    above,
    below,
)

RATE = "$__rate_interval"
# alerts/backup.rules.yml: PgDumpTooOld and PgbackrestDiffBackupTooOld (26 h),
# PgbackrestFullBackupTooOld (8 d).
DUMP_MAX_AGE = 93600
DIFF_MAX_AGE = 93600
FULL_MAX_AGE = 691200
PGBACKREST_INFO_MAX_AGE = 1800
# alerts/drill.rules.yml: RestoreDrillOverdue (99 d).
DRILL_MAX_AGE = 8553600
# alerts/archiving.rules.yml: PostgresqlArchiveStale (1 h), PostgresqlArchiveBacklog (10 segments).
ARCHIVE_MAX_AGE = 3600
ARCHIVE_BACKLOG = 10
# The exporter's deadline per target (3 s) and its statement_timeout (half of it): docs/exporter.md.
SCRAPE_SLOW = 1.5
SCRAPE_DEADLINE = 3
# /health's Redis latencyStatus: good under 10 ms, slow under 100 ms.
PING_SLOW = 0.01
PING_TIMEOUT = 0.1

NO_FAILURE_MAPPINGS = (("0", "no", GREEN), ("1", "failed", RED))


def stat(title: str, description: str, expr: str, legend: str = "", **kw: object) -> Panel:
    return Panel(title, description, (Query(expr, legend),), Kind.STAT, **kw)  # type: ignore[arg-type]


def series(title: str, description: str, *queries: Query, **kw: object) -> Panel:
    return Panel(title, description, queries, Kind.TIMESERIES, **kw)  # type: ignore[arg-type]


def up(kind: str, selector: str) -> str:
    return f'min by (target) (pgstack_up{{kind="{kind}", {selector}}})'


INSTANCE = 'instance=~"$instance"'
TARGET = 'instance=~"$instance", target=~"$target"'


def instance_variable(metric: str) -> Variable:
    return Variable("instance", "Host", f"label_values({metric}, instance)")


def target_variable(metric: str) -> Variable:
    return Variable("target", "Target", f'label_values({metric}{{instance=~"$instance"}}, target)')


# --- overview

OVERVIEW = Board(
    uid="pgstack-overview",
    title="pgstack / Overview",
    description="Is the stack healthy: services up and answering, backups fresh, drills on record.",
    tags=("pgstack",),
    variables=(instance_variable('up{job="pgstack"}'),),
    rows=(
        Row(
            "Services",
            (
                stat(
                    "PostgreSQL up",
                    "Does every PostgreSQL answer the exporter within its deadline?",
                    up("postgresql", INSTANCE),
                    "{{target}}",
                    steps=UP_STEPS,
                    mappings=UP_MAPPINGS,
                ),
                stat(
                    "PostgreSQL query time",
                    "How long the exporter's PostgreSQL queries took in the last scrape "
                    "(orange past statement_timeout, red at the 3 s deadline).",
                    'max by (target) (pgstack_collector_duration_seconds{collector="postgresql", '
                    f"{INSTANCE}}})",
                    "{{target}}",
                    unit="s",
                    steps=above(SCRAPE_SLOW, SCRAPE_DEADLINE),
                ),
                stat(
                    "PgBouncer up",
                    "Does every PgBouncer admin console answer the exporter within its deadline?",
                    up("pgbouncer", INSTANCE),
                    "{{target}}",
                    steps=UP_STEPS,
                    mappings=UP_MAPPINGS,
                ),
                stat(
                    "PgBouncer query time",
                    "How long the exporter's PgBouncer SHOW commands took in the last scrape.",
                    'max by (target) (pgstack_collector_duration_seconds{collector="pgbouncer", '
                    f"{INSTANCE}}})",
                    "{{target}}",
                    unit="s",
                    steps=above(SCRAPE_SLOW, SCRAPE_DEADLINE),
                ),
                stat(
                    "Redis up",
                    "Does every Redis answer the exporter within its deadline?",
                    up("redis", INSTANCE),
                    "{{target}}",
                    steps=UP_STEPS,
                    mappings=UP_MAPPINGS,
                ),
                stat(
                    "Redis PING",
                    "Round trip of a PING to Redis (orange: /health says slow, red: past 100 ms).",
                    f"max by (target) (pgstack_redis_ping_seconds{{{INSTANCE}}})",
                    "{{target}}",
                    unit="s",
                    steps=above(PING_SLOW, PING_TIMEOUT),
                ),
            ),
        ),
        Row(
            "Backups and drills",
            (
                stat(
                    "Newest pg_dump",
                    "How long ago the last successful pg_dump of each database finished "
                    "(red past 26 h: PgDumpTooOld).",
                    "time() - max by (cluster, database) "
                    f"(pgstack_dump_last_success_timestamp_seconds{{{INSTANCE}}})",
                    "{{cluster}}/{{database}}",
                    unit="s",
                    steps=(Step(None, GREEN), Step(DUMP_MAX_AGE, RED)),
                    width=6,
                ),
                stat(
                    "Newest full backup",
                    "How long ago pgBackRest's newest full backup of each stanza finished "
                    "(red past 8 days: PgbackrestFullBackupTooOld).",
                    "time() - max by (stanza) (pgstack_pgbackrest_last_backup_completion_timestamp_"
                    f'seconds{{type="full", {INSTANCE}}})',
                    "{{stanza}}",
                    unit="s",
                    steps=(Step(None, GREEN), Step(FULL_MAX_AGE, RED)),
                    width=6,
                ),
                stat(
                    "Last WAL archived",
                    "How long ago PostgreSQL last archived a WAL file "
                    "(red past 1 h: PostgresqlArchiveStale when WAL was written meanwhile).",
                    "time() - max by (target) "
                    f"(pgstack_postgresql_archiver_last_archived_timestamp_seconds{{{INSTANCE}}})",
                    "{{target}}",
                    unit="s",
                    steps=(Step(None, GREEN), Step(ARCHIVE_MAX_AGE, RED)),
                    width=6,
                ),
                stat(
                    "Restore drills on record",
                    "How many restore drills (cluster, kind, database) the exporters report; 0 "
                    "while the status directories hold no drill status file.",
                    f"count(pgstack_drill_last_run_timestamp_seconds{{{INSTANCE}}}) or on () "
                    f'(0 * count(pgstack_up{{kind="status_files", {INSTANCE}}} == 1))',
                    steps=(Step(None, ORANGE), Step(1, GREEN)),
                    width=6,
                ),
            ),
        ),
        Row(
            "Monitoring",
            (
                stat(
                    "Exporters scraped",
                    "Can Prometheus scrape pgstack-exporter on every host (PgstackExporterDown)?",
                    f'up{{job="pgstack", {INSTANCE}}}',
                    "{{instance}}",
                    steps=UP_STEPS,
                    mappings=UP_MAPPINGS,
                    width=12,
                ),
                stat(
                    "Alerts firing",
                    "How many alerts Prometheus has firing now (Alertmanager routes them).",
                    'count(ALERTS{alertstate="firing"}) or vector(0)',
                    steps=(Step(None, GREEN), Step(1, RED)),
                    width=12,
                ),
            ),
        ),
    ),
)

# --- PostgreSQL

PG_CONN_RATIO = (
    'sum by (target) (pgstack_postgresql_connections{backend_type="client backend", '
    f"{TARGET}}}) / on (target) (pgstack_postgresql_max_connections{{{TARGET}}} "
    f"- pgstack_postgresql_reserved_connections{{{TARGET}}})"
)

POSTGRESQL = Board(
    uid="pgstack-postgresql",
    title="pgstack / PostgreSQL",
    description="PostgreSQL servers as pgstack-exporter sees them: load, sessions, storage, WAL.",
    tags=("pgstack", "postgresql"),
    variables=(
        instance_variable("pgstack_postgresql_max_connections"),
        target_variable("pgstack_postgresql_max_connections"),
    ),
    rows=(
        Row(
            "Server",
            (
                stat(
                    "Up",
                    "Does the server answer the exporter within its deadline (PostgresqlDown)?",
                    up("postgresql", TARGET),
                    "{{target}}",
                    steps=UP_STEPS,
                    mappings=UP_MAPPINGS,
                ),
                stat(
                    "Role",
                    "Primary or standby (in recovery)?",
                    f"max by (target) (pgstack_postgresql_in_recovery{{{TARGET}}})",
                    "{{target}}",
                    mappings=(("0", "primary", BLUE), ("1", "standby", BLUE)),
                    steps=(Step(None, BLUE),),
                ),
                stat(
                    "Uptime",
                    "Time since the server started.",
                    f"time() - max by (target) (pgstack_postgresql_start_time_seconds{{{TARGET}}})",
                    "{{target}}",
                    unit="s",
                    steps=(Step(None, BLUE),),
                ),
                stat(
                    "Settings pending restart",
                    "Settings changed in the configuration that need a restart to apply.",
                    f"max by (target) (pgstack_postgresql_settings_pending_restart{{{TARGET}}})",
                    "{{target}}",
                    steps=above(1),
                ),
                stat(
                    "Data filesystem free",
                    "Free share of the data directory's filesystem "
                    "(orange under 10 %, red under 5 %: PostgresqlDataFilesystemFull).",
                    f"pgstack_postgresql_data_directory_free_bytes{{{TARGET}}} / "
                    f"pgstack_postgresql_data_directory_size_bytes{{{TARGET}}}",
                    "{{target}}",
                    unit="percentunit",
                    steps=below(0.05, 0.10),
                ),
                stat(
                    "Collectors failing",
                    "PostgreSQL and archiver collectors whose queries failed in the last scrape "
                    "(PgstackCollectorFailing).",
                    "count by (target) (pgstack_collector_success"
                    f'{{collector=~"postgresql|archiver", {TARGET}}} == 0) or on () vector(0)',
                    steps=above(1),
                ),
            ),
        ),
        Row(
            "Sessions",
            (
                series(
                    "Connections used",
                    "Client backends over the connections left to them (max_connections minus "
                    "reserved): orange at 80 %, red at 95 % (PostgresqlConnectionsSaturated).",
                    Query(PG_CONN_RATIO, "{{target}}"),
                    unit="percentunit",
                    steps=above(0.80, 0.95),
                    min_value=0,
                ),
                series(
                    "Client backends by state",
                    "What the client sessions are doing: active, idle, idle in transaction.",
                    Query(
                        "sum by (target, state) (pgstack_postgresql_connections"
                        f'{{backend_type="client backend", {TARGET}}})',
                        "{{target}} {{state}}",
                    ),
                ),
                stat(
                    "Oldest transaction",
                    "Age of the oldest open transaction (orange past 5 min: "
                    "PostgresqlLongTransaction).",
                    f"max by (target) (pgstack_postgresql_oldest_transaction_seconds{{{TARGET}}})",
                    "{{target}}",
                    unit="s",
                    steps=above(300),
                    width=6,
                ),
                stat(
                    "Longest query",
                    "Run time of the longest active query (orange past 5 min: "
                    "PostgresqlLongQuery).",
                    f"max by (target) (pgstack_postgresql_longest_query_seconds{{{TARGET}}})",
                    "{{target}}",
                    unit="s",
                    steps=above(300),
                    width=6,
                ),
                stat(
                    "Longest idle in transaction",
                    "Time a session has sat idle in a transaction (orange past 2 min: "
                    "PostgresqlIdleInTransaction).",
                    "max by (target) "
                    f"(pgstack_postgresql_longest_idle_in_transaction_seconds{{{TARGET}}})",
                    "{{target}}",
                    unit="s",
                    steps=above(120),
                    width=6,
                ),
                stat(
                    "Blocked backends",
                    "Client backends waiting for a lock another backend holds.",
                    f"max by (target) (pgstack_postgresql_blocked_backends{{{TARGET}}})",
                    "{{target}}",
                    steps=above(1),
                    width=6,
                ),
            ),
        ),
        Row(
            "Throughput",
            (
                series(
                    "Transactions",
                    "Commits and rollbacks per second, by database.",
                    Query(
                        "sum by (target, database) "
                        f"(rate(pgstack_postgresql_commits_total{{{TARGET}}}[{RATE}]))",
                        "{{target}}/{{database}} commits",
                    ),
                    Query(
                        "sum by (target, database) "
                        f"(rate(pgstack_postgresql_rollbacks_total{{{TARGET}}}[{RATE}]))",
                        "{{target}}/{{database}} rollbacks",
                    ),
                    unit="ops",
                ),
                series(
                    "Cache hit ratio",
                    "Share of block reads served from shared buffers (red under 95 %: "
                    "PostgresqlCacheHitRatioLow, on busy databases).",
                    Query(
                        "sum by (target, database) "
                        f"(rate(pgstack_postgresql_blocks_hit_total{{{TARGET}}}[{RATE}])) / "
                        "sum by (target, database) "
                        f"(rate(pgstack_postgresql_blocks_hit_total{{{TARGET}}}[{RATE}]) + "
                        f"rate(pgstack_postgresql_blocks_read_total{{{TARGET}}}[{RATE}]))",
                        "{{target}}/{{database}}",
                    ),
                    unit="percentunit",
                    steps=below(0.95),
                    max_value=1,
                ),
                series(
                    "Deadlocks",
                    "Deadlocks detected over 10 minutes (any: PostgresqlDeadlocks).",
                    Query(
                        "sum by (target, database) "
                        f"(increase(pgstack_postgresql_deadlocks_total{{{TARGET}}}[10m]))",
                        "{{target}}/{{database}}",
                    ),
                    steps=above(1),
                    min_value=0,
                ),
                series(
                    "Temporary files",
                    "Bytes per second written to temporary files (sorts and hashes past work_mem).",
                    Query(
                        "sum by (target, database) "
                        f"(rate(pgstack_postgresql_temp_bytes_total{{{TARGET}}}[{RATE}]))",
                        "{{target}}/{{database}}",
                    ),
                    unit="Bps",
                ),
            ),
        ),
        Row(
            "Storage and WAL",
            (
                series(
                    "Database sizes",
                    "Size of each database (refreshed every 5 minutes).",
                    Query(
                        f"pgstack_postgresql_database_size_bytes{{{TARGET}}}",
                        "{{target}}/{{database}}",
                    ),
                    unit="bytes",
                ),
                series(
                    "WAL written",
                    "WAL bytes per second (written on a primary, replayed on a standby).",
                    Query(
                        f"rate(pgstack_postgresql_wal_bytes_total{{{TARGET}}}[{RATE}])",
                        "{{target}}",
                    ),
                    unit="Bps",
                ),
                series(
                    "Transaction ID age",
                    "Transactions since each database's datfrozenxid: orange at 1 billion, red at "
                    "1.5 billion (PostgresqlXidAge); wraparound is at 2.1 billion.",
                    Query(f"pgstack_postgresql_xid_age{{{TARGET}}}", "{{target}}/{{database}}"),
                    steps=above(1e9, 1.5e9),
                    min_value=0,
                ),
                series(
                    "Standbys and slots",
                    "Standbys streaming from the server and replication slots on it.",
                    Query(
                        f"pgstack_postgresql_replication_standbys{{{TARGET}}}",
                        "{{target}} standbys",
                    ),
                    Query(f"pgstack_postgresql_replication_slots{{{TARGET}}}", "{{target}} slots"),
                    min_value=0,
                ),
            ),
        ),
        Row(
            "WAL archiving",
            (
                stat(
                    "Last WAL archived",
                    "How long ago the last WAL file was archived (red past 1 h: "
                    "PostgresqlArchiveStale when WAL was written meanwhile).",
                    "time() - max by (target) "
                    f"(pgstack_postgresql_archiver_last_archived_timestamp_seconds{{{TARGET}}})",
                    "{{target}}",
                    unit="s",
                    steps=(Step(None, GREEN), Step(ARCHIVE_MAX_AGE, RED)),
                    width=8,
                ),
                stat(
                    "Segments waiting",
                    "WAL segments waiting to be archived (orange past 10: "
                    "PostgresqlArchiveBacklog).",
                    f"max by (target) (pgstack_postgresql_archiver_ready_segments{{{TARGET}}})",
                    "{{target}}",
                    steps=above(ARCHIVE_BACKLOG + 1),
                    width=8,
                ),
                series(
                    "Archiver",
                    "WAL files archived and failed attempts per second.",
                    Query(
                        f"rate(pgstack_postgresql_archiver_archived_total{{{TARGET}}}[{RATE}])",
                        "{{target}} archived",
                    ),
                    Query(
                        f"rate(pgstack_postgresql_archiver_failed_total{{{TARGET}}}[{RATE}])",
                        "{{target}} failed",
                    ),
                    unit="ops",
                    width=8,
                    height=4,
                ),
            ),
        ),
    ),
)

# --- PgBouncer

POOL = 'instance=~"$instance", target=~"$target", database=~"$database"'

PGBOUNCER = Board(
    uid="pgstack-pgbouncer",
    title="pgstack / PgBouncer",
    description="PgBouncer pools: clients waiting, server connections, throughput.",
    tags=("pgstack", "pgbouncer"),
    variables=(
        instance_variable("pgstack_pgbouncer_max_client_connections"),
        target_variable("pgstack_pgbouncer_max_client_connections"),
        Variable(
            "database",
            "Database",
            'label_values(pgstack_pgbouncer_database_pool_size{instance=~"$instance", '
            'target=~"$target"}, database)',
        ),
    ),
    rows=(
        Row(
            "Health",
            (
                stat(
                    "Up",
                    "Does the admin console answer the exporter within its deadline "
                    "(PgbouncerDown)?",
                    up("pgbouncer", TARGET),
                    "{{target}}",
                    steps=UP_STEPS,
                    mappings=UP_MAPPINGS,
                ),
                stat(
                    "Client connections used",
                    "Client connections over max_client_conn (orange past 80 %: "
                    "PgbouncerClientConnectionsHigh).",
                    "sum by (target) (pgstack_pgbouncer_pool_client_connections"
                    f"{{{TARGET}}}) / on (target) "
                    f"max by (target) (pgstack_pgbouncer_max_client_connections{{{TARGET}}})",
                    "{{target}}",
                    unit="percentunit",
                    steps=above(0.80),
                ),
                stat(
                    "Clients waiting",
                    "Clients waiting for a server connection, all pools (orange past 5 in a "
                    "pool: PgbouncerClientsWaiting).",
                    "sum by (target) (pgstack_pgbouncer_pool_client_connections"
                    f'{{state="waiting", {POOL}}})',
                    "{{target}}",
                    steps=above(5),
                ),
                stat(
                    "Longest wait",
                    "How long the oldest waiting client has waited (orange past 1 s, red past "
                    "5 s: PgbouncerMaxWaitHigh).",
                    f"max by (target) (pgstack_pgbouncer_pool_max_wait_seconds{{{POOL}}})",
                    "{{target}}",
                    unit="s",
                    steps=above(1, 5),
                ),
                stat(
                    "Paused databases",
                    "Databases paused with PAUSE (clients queue until RESUME).",
                    f"sum by (target) (pgstack_pgbouncer_database_paused{{{POOL}}})",
                    "{{target}}",
                    steps=above(1),
                ),
                stat(
                    "Query time",
                    "How long the exporter's SHOW commands took in the last scrape.",
                    'max by (target) (pgstack_collector_duration_seconds{collector="pgbouncer", '
                    f"{TARGET}}})",
                    "{{target}}",
                    unit="s",
                    steps=above(SCRAPE_SLOW, SCRAPE_DEADLINE),
                ),
            ),
        ),
        Row(
            "Pools",
            (
                series(
                    "Server pool used",
                    "Server connections a database holds over pool_size plus reserve_pool "
                    "(orange past 90 %: PgbouncerServerPoolSaturated).",
                    Query(
                        f"pgstack_pgbouncer_database_current_connections{{{POOL}}} / "
                        f"(pgstack_pgbouncer_database_pool_size{{{POOL}}} + "
                        f"pgstack_pgbouncer_database_reserve_pool_size{{{POOL}}} > 0)",
                        "{{target}}/{{database}}",
                    ),
                    unit="percentunit",
                    steps=above(0.90),
                    min_value=0,
                ),
                series(
                    "Client connections",
                    "Client connections by pool and state (active, waiting).",
                    Query(
                        "sum by (target, database, user, state) "
                        f"(pgstack_pgbouncer_pool_client_connections{{{POOL}}})",
                        "{{target}}/{{database}}/{{user}} {{state}}",
                    ),
                ),
                series(
                    "Server connections",
                    "Server connections by pool and state (active, idle, used, tested, login).",
                    Query(
                        "sum by (target, database, user, state) "
                        f"(pgstack_pgbouncer_pool_server_connections{{{POOL}}})",
                        "{{target}}/{{database}}/{{user}} {{state}}",
                    ),
                ),
                series(
                    "Wait time",
                    "Seconds per second clients spent waiting for a server connection.",
                    Query(
                        "sum by (target, database) "
                        f"(rate(pgstack_pgbouncer_client_wait_time_seconds_total{{{POOL}}}[{RATE}]))",
                        "{{target}}/{{database}}",
                    ),
                    unit="s",
                ),
            ),
        ),
        Row(
            "Traffic",
            (
                series(
                    "Transactions and queries",
                    "Transactions and queries pooled per second.",
                    Query(
                        "sum by (target, database) "
                        f"(rate(pgstack_pgbouncer_transactions_total{{{POOL}}}[{RATE}]))",
                        "{{target}}/{{database}} transactions",
                    ),
                    Query(
                        "sum by (target, database) "
                        f"(rate(pgstack_pgbouncer_queries_total{{{POOL}}}[{RATE}]))",
                        "{{target}}/{{database}} queries",
                    ),
                    unit="ops",
                ),
                series(
                    "Time in transactions and queries",
                    "Seconds per second server connections spent in transactions and queries.",
                    Query(
                        "sum by (target, database) (rate(pgstack_pgbouncer_transaction_time_"
                        f"seconds_total{{{POOL}}}[{RATE}]))",
                        "{{target}}/{{database}} transactions",
                    ),
                    Query(
                        "sum by (target, database) "
                        f"(rate(pgstack_pgbouncer_query_time_seconds_total{{{POOL}}}[{RATE}]))",
                        "{{target}}/{{database}} queries",
                    ),
                    unit="s",
                ),
                series(
                    "Bytes",
                    "Bytes per second received from and sent to clients.",
                    Query(
                        "sum by (target, database) "
                        f"(rate(pgstack_pgbouncer_received_bytes_total{{{POOL}}}[{RATE}]))",
                        "{{target}}/{{database}} received",
                    ),
                    Query(
                        "sum by (target, database) "
                        f"(rate(pgstack_pgbouncer_sent_bytes_total{{{POOL}}}[{RATE}]))",
                        "{{target}}/{{database}} sent",
                    ),
                    unit="Bps",
                    width=24,
                ),
            ),
        ),
    ),
)

# --- Redis

REDIS = Board(
    uid="pgstack-redis",
    title="pgstack / Redis",
    description="Redis servers: latency, memory against maxmemory, clients, persistence.",
    tags=("pgstack", "redis"),
    variables=(
        instance_variable("pgstack_redis_max_clients"),
        target_variable("pgstack_redis_max_clients"),
    ),
    rows=(
        Row(
            "Health",
            (
                stat(
                    "Up",
                    "Does Redis answer the exporter within its deadline (RedisDown)?",
                    up("redis", TARGET),
                    "{{target}}",
                    steps=UP_STEPS,
                    mappings=UP_MAPPINGS,
                ),
                stat(
                    "PING",
                    "Round trip of a PING (orange: /health says slow from 10 ms; red past 100 ms).",
                    f"max by (target) (pgstack_redis_ping_seconds{{{TARGET}}})",
                    "{{target}}",
                    unit="s",
                    steps=above(PING_SLOW, PING_TIMEOUT),
                ),
                stat(
                    "Memory used",
                    "used_memory over maxmemory (orange past 80 %: RedisMemoryHigh); no value "
                    "without a limit.",
                    f"pgstack_redis_memory_used_bytes{{{TARGET}}} / "
                    f"(pgstack_redis_memory_max_bytes{{{TARGET}}} > 0)",
                    "{{target}}",
                    unit="percentunit",
                    steps=above(0.80),
                    no_value="no limit",
                ),
                stat(
                    "Clients used",
                    "Client connections over maxclients (orange past 80 %: RedisClientsHigh).",
                    f"pgstack_redis_connected_clients{{{TARGET}}} / "
                    f"(pgstack_redis_max_clients{{{TARGET}}} > 0)",
                    "{{target}}",
                    unit="percentunit",
                    steps=above(0.80),
                ),
                stat(
                    "Last RDB save",
                    "Did the last background save succeed (RedisRdbSaveFailed)?",
                    f"min by (target) (pgstack_redis_rdb_last_bgsave_success{{{TARGET}}})",
                    "{{target}}",
                    steps=UP_STEPS,
                    mappings=OK_MAPPINGS,
                ),
                stat(
                    "RDB snapshot age",
                    "How long ago the last RDB snapshot was saved.",
                    "time() - max by (target) "
                    f"(pgstack_redis_rdb_last_save_timestamp_seconds{{{TARGET}}})",
                    "{{target}}",
                    unit="s",
                    steps=(Step(None, BLUE),),
                ),
            ),
        ),
        Row(
            "Memory and keys",
            (
                series(
                    "Memory",
                    "Memory Redis has allocated, and its maxmemory limit (0: none).",
                    Query(f"pgstack_redis_memory_used_bytes{{{TARGET}}}", "{{target}} used"),
                    Query(f"pgstack_redis_memory_max_bytes{{{TARGET}}}", "{{target}} maxmemory"),
                    unit="bytes",
                    min_value=0,
                ),
                series(
                    "Keys",
                    "Keys per logical database.",
                    Query(f"pgstack_redis_db_keys{{{TARGET}}}", "{{target}} {{db}}"),
                    min_value=0,
                ),
                series(
                    "Evicted and expired keys",
                    "Keys evicted because of maxmemory (any: RedisEvictions) and keys expired, "
                    "over 10 minutes.",
                    Query(
                        f"increase(pgstack_redis_evicted_keys_total{{{TARGET}}}[10m])",
                        "{{target}} evicted",
                    ),
                    Query(
                        f"increase(pgstack_redis_expired_keys_total{{{TARGET}}}[10m])",
                        "{{target}} expired",
                    ),
                    min_value=0,
                ),
                series(
                    "PING round trip",
                    "PING round trip over time (orange from 10 ms, red from 100 ms).",
                    Query(f"pgstack_redis_ping_seconds{{{TARGET}}}", "{{target}}"),
                    unit="s",
                    steps=above(PING_SLOW, PING_TIMEOUT),
                    min_value=0,
                ),
            ),
        ),
        Row(
            "Clients and commands",
            (
                series(
                    "Clients",
                    "Client connections and clients in a blocking call.",
                    Query(f"pgstack_redis_connected_clients{{{TARGET}}}", "{{target}} connected"),
                    Query(f"pgstack_redis_blocked_clients{{{TARGET}}}", "{{target}} blocked"),
                    min_value=0,
                ),
                series(
                    "Rejected connections",
                    "Connections refused because of maxclients over 10 minutes (any: "
                    "RedisRejectedConnections).",
                    Query(
                        f"increase(pgstack_redis_rejected_connections_total{{{TARGET}}}[10m])",
                        "{{target}}",
                    ),
                    steps=above(1),
                    min_value=0,
                ),
                series(
                    "Commands",
                    "Commands processed per second.",
                    Query(
                        f"rate(pgstack_redis_commands_processed_total{{{TARGET}}}[{RATE}])",
                        "{{target}}",
                    ),
                    unit="ops",
                    width=24,
                ),
            ),
        ),
    ),
)

# --- backups and disaster recovery

DUMP = 'instance=~"$instance", cluster=~"$cluster"'
STANZA = 'instance=~"$instance", stanza=~"$stanza"'

BACKUPS = Board(
    uid="pgstack-backups",
    title="pgstack / Backups and disaster recovery",
    description="pg_dump, pgBackRest, WAL archiving and restore drills: can we restore, "
    "how fast, and how much would we lose.",
    tags=("pgstack", "backup"),
    variables=(
        instance_variable('pgstack_up{kind="status_files"}'),
        Variable(
            "cluster",
            "Cluster",
            'label_values(pgstack_dump_last_attempt_timestamp_seconds{instance=~"$instance"}, '
            "cluster)",
        ),
        Variable(
            "stanza",
            "Stanza",
            'label_values(pgstack_pgbackrest_stanza_status{instance=~"$instance"}, stanza)',
        ),
    ),
    rows=(
        Row(
            "pg_dump",
            (
                stat(
                    "Newest dump",
                    "How long ago the last successful dump of each database finished (red past "
                    "26 h: PgDumpTooOld).",
                    "time() - max by (cluster, database) "
                    f"(pgstack_dump_last_success_timestamp_seconds{{{DUMP}}})",
                    "{{cluster}}/{{database}}",
                    unit="s",
                    steps=(Step(None, GREEN), Step(DUMP_MAX_AGE, RED)),
                    width=6,
                ),
                stat(
                    "Last attempt failed",
                    "Did the last dump attempt of each database fail (PgDumpFailed)? The good dump "
                    "before it is kept.",
                    "max by (cluster, database) "
                    f'(pgstack_dump_last_attempt_status{{status="failed", {DUMP}}})',
                    "{{cluster}}/{{database}}",
                    steps=(Step(None, GREEN), Step(1, RED)),
                    mappings=NO_FAILURE_MAPPINGS,
                    width=6,
                ),
                stat(
                    "Last dump duration",
                    "Wall time of the last finished dump attempt.",
                    f"max by (cluster, database) (pgstack_dump_last_duration_seconds{{{DUMP}}})",
                    "{{cluster}}/{{database}}",
                    unit="s",
                    steps=(Step(None, BLUE),),
                    width=6,
                ),
                stat(
                    "Status files valid",
                    "Do all status files parse (PgstackStatusFileInvalid)?",
                    'min(pgstack_status_file_valid{instance=~"$instance"})',
                    steps=UP_STEPS,
                    mappings=OK_MAPPINGS,
                    width=6,
                ),
                series(
                    "Dump size",
                    "Bytes of the last successful dump (PgDumpSizeDropped: under half its 7-day "
                    "average).",
                    Query(
                        f"pgstack_dump_last_success_size_bytes{{{DUMP}}}",
                        "{{cluster}}/{{database}}",
                    ),
                    unit="bytes",
                    min_value=0,
                    width=24,
                ),
            ),
        ),
        Row(
            "pgBackRest",
            (
                stat(
                    "Newest full backup",
                    "How long ago the newest full backup finished (red past 8 days: "
                    "PgbackrestFullBackupTooOld).",
                    "time() - max by (stanza) (pgstack_pgbackrest_last_backup_completion_"
                    f'timestamp_seconds{{type="full", {STANZA}}})',
                    "{{stanza}}",
                    unit="s",
                    steps=(Step(None, GREEN), Step(FULL_MAX_AGE, RED)),
                ),
                stat(
                    "Newest full or differential",
                    "How long ago the newest full or differential backup finished (orange past "
                    "26 h: PgbackrestDiffBackupTooOld).",
                    "min by (stanza) (time() - pgstack_pgbackrest_last_backup_completion_"
                    f'timestamp_seconds{{type=~"full|diff", {STANZA}}})',
                    "{{stanza}}",
                    unit="s",
                    steps=(Step(None, GREEN), Step(DIFF_MAX_AGE, ORANGE)),
                ),
                stat(
                    "Stanza status",
                    "pgbackrest info's status code of each stanza (0 ok; else "
                    "PgbackrestStanzaError).",
                    f"max by (stanza) (pgstack_pgbackrest_stanza_status{{{STANZA}}})",
                    "{{stanza}}",
                    steps=(Step(None, GREEN), Step(1, RED)),
                    mappings=(("0", "ok", GREEN),),
                ),
                stat(
                    "pgbackrest info",
                    "Did the exporter's last pgbackrest info run succeed (PgbackrestInfoStale)?",
                    'min(pgstack_pgbackrest_info_success{instance=~"$instance"})',
                    steps=UP_STEPS,
                    mappings=OK_MAPPINGS,
                ),
                stat(
                    "Info age",
                    "Age of the pgbackrest info answer the panels show (orange past 30 min: "
                    "PgbackrestInfoStale).",
                    'max(pgstack_pgbackrest_info_age_seconds{instance=~"$instance"})',
                    unit="s",
                    steps=above(PGBACKREST_INFO_MAX_AGE),
                ),
                stat(
                    "Archived WAL range",
                    "WAL bytes between the oldest and newest archived segment: how far back "
                    "point-in-time recovery can reach within the archive.",
                    'max by (stanza) (pgstack_pgbackrest_archive_wal_position_bytes{bound="max", '
                    f"{STANZA}}}) - max by (stanza) "
                    f'(pgstack_pgbackrest_archive_wal_position_bytes{{bound="min", {STANZA}}})',
                    "{{stanza}}",
                    unit="bytes",
                    steps=(Step(None, BLUE),),
                ),
                series(
                    "Backups",
                    "Backups of each stanza in the repository, by type.",
                    Query(
                        f"pgstack_pgbackrest_backups{{{STANZA}}}",
                        "{{stanza}} {{type}}",
                    ),
                    min_value=0,
                ),
                series(
                    "Repository size",
                    "Bytes of all backups of a stanza in the repository (WAL not included) and "
                    "database size of the newest backup of each type.",
                    Query(
                        f"pgstack_pgbackrest_repository_size_bytes{{{STANZA}}}",
                        "{{stanza}} repository",
                    ),
                    Query(
                        f"pgstack_pgbackrest_last_backup_size_bytes{{{STANZA}}}",
                        "{{stanza}} newest {{type}}",
                    ),
                    unit="bytes",
                    min_value=0,
                ),
            ),
        ),
        Row(
            "WAL archiving",
            (
                stat(
                    "Last WAL archived",
                    "How long ago PostgreSQL last archived a WAL file (red past 1 h: "
                    "PostgresqlArchiveStale when WAL was written meanwhile).",
                    "time() - max by (target) "
                    "(pgstack_postgresql_archiver_last_archived_timestamp_seconds)",
                    "{{target}}",
                    unit="s",
                    steps=(Step(None, GREEN), Step(ARCHIVE_MAX_AGE, RED)),
                    width=8,
                ),
                stat(
                    "Archive failing",
                    "Did the last archive attempt fail after the last success "
                    "(PostgresqlArchivingFailing)?",
                    "max by (target) "
                    "(pgstack_postgresql_archiver_last_failed_timestamp_seconds "
                    "> bool pgstack_postgresql_archiver_last_archived_timestamp_seconds)",
                    "{{target}}",
                    steps=(Step(None, GREEN), Step(1, RED)),
                    mappings=NO_FAILURE_MAPPINGS,
                    width=8,
                ),
                stat(
                    "Segments waiting",
                    "WAL segments waiting to be archived (orange past 10: "
                    "PostgresqlArchiveBacklog).",
                    "max by (target) (pgstack_postgresql_archiver_ready_segments)",
                    "{{target}}",
                    steps=above(ARCHIVE_BACKLOG + 1),
                    width=8,
                ),
            ),
        ),
        Row(
            "Restore drills",
            (
                stat(
                    "Drills on record",
                    "How many restore drills the exporters report; 0 while the status "
                    "directories hold no drill status file.",
                    f"count(pgstack_drill_last_run_timestamp_seconds{{{DUMP}}}) or on () "
                    '(0 * count(pgstack_up{kind="status_files", instance=~"$instance"} == 1))',
                    steps=(Step(None, ORANGE), Step(1, GREEN)),
                    width=6,
                ),
                stat(
                    "Last drill passed",
                    "How long ago each drill last passed (orange past 99 days: "
                    "RestoreDrillOverdue).",
                    "time() - max by (cluster, drill, database) "
                    f"(pgstack_drill_last_success_timestamp_seconds{{{DUMP}}})",
                    "{{cluster}} {{drill}} {{database}}",
                    unit="s",
                    steps=(Step(None, GREEN), Step(DRILL_MAX_AGE, ORANGE)),
                    no_value="no drill",
                    width=6,
                ),
                stat(
                    "Last drill result",
                    "Did each drill's last attempt fail or end in error (RestoreDrillFailed)?",
                    "max by (cluster, drill, database) "
                    f'(pgstack_drill_last_result{{result=~"failed|error", {DUMP}}})',
                    "{{cluster}} {{drill}} {{database}}",
                    steps=(Step(None, GREEN), Step(1, RED)),
                    mappings=NO_FAILURE_MAPPINGS,
                    no_value="no drill",
                    width=12,
                ),
                series(
                    "RTO",
                    "Recovery time the drills measured, against their objective "
                    "(RestoreDrillRtoOverObjective; 1 h by default).",
                    Query(
                        f"pgstack_drill_rto_seconds{{{DUMP}}}",
                        "{{cluster}} {{drill}} {{database}} measured",
                    ),
                    Query(
                        f"pgstack_drill_rto_objective_seconds{{{DUMP}}}",
                        "{{cluster}} {{drill}} {{database}} objective",
                    ),
                    unit="s",
                    min_value=0,
                ),
                series(
                    "RPO",
                    "Data the drills measured as lost (heartbeat), against their objective "
                    "(RestoreDrillRpoOverObjective; 5 min by default).",
                    Query(
                        f"pgstack_drill_rpo_seconds{{{DUMP}}}",
                        "{{cluster}} {{drill}} {{database}} measured",
                    ),
                    Query(
                        f"pgstack_drill_rpo_objective_seconds{{{DUMP}}}",
                        "{{cluster}} {{drill}} {{database}} objective",
                    ),
                    unit="s",
                    min_value=0,
                ),
            ),
        ),
    ),
)

# --- hosts: Debian's node exporter on every managed host (job node, alerts/host.rules.yml)

# HostFilesystemFull (10 %, 5 % available), HostMemoryLow (10 %, 5 %).
FS_WARNING = 0.10
FS_CRITICAL = 0.05
MEMORY_WARNING = 0.10
MEMORY_CRITICAL = 0.05
# The filesystems the filesystem alerts watch: not those held in memory or made of image layers.
FILESYSTEMS = (
    'fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|iso9660|autofs", instance=~"$instance"'
)
# -1: the timex collector failed, so the clock's state is unknown.
# --- cluster

# Each query must have a series on a single database host as well (tests/e2e/test_dashboards.py
# runs them on the one-host lab): the members' panels read pgstack-exporter, which runs on every
# PostgreSQL server, and Patroni's view falls back to "no Patroni" (-1) for a server without it;
# etcd's counts fall back to 0 members.
# alerts/cluster.rules.yml: EtcdFrequentLeaderChanges (more than 3 elections in 15 minutes).
ETCD_ELECTIONS = 3
# Patroni's view of a member: its REST API answering, its PostgreSQL running, the leader or not.
PATRONI_MEMBER = (
    f"max by (instance) ((patroni_primary{{{INSTANCE}}} + 1)"
    f" * patroni_postgres_running{{{INSTANCE}}})"
    f' or on (instance) (max by (instance) (up{{job="patroni", {INSTANCE}}}) * 0)'
    f" or on (instance) (max by (instance) (pgstack_postgresql_in_recovery{{{INSTANCE}}}) * 0 - 1)"
)
PATRONI_MAPPINGS = (
    ("-1", "no Patroni", BLUE),
    ("0", "down", RED),
    ("1", "replica", GREEN),
    ("2", "leader", GREEN),
)

CLUSTER = Board(
    uid="pgstack-cluster",
    title="pgstack / Cluster",
    description="The HA layout: the members and their role, replication lag, changes of leader, "
    "etcd's members, the Redis sentinels. A single database host shows as one member without "
    "Patroni.",
    tags=("pgstack", "postgresql", "patroni", "etcd", "redis"),
    variables=(instance_variable("pgstack_postgresql_in_recovery"),),
    rows=(
        Row(
            "Members",
            (
                stat(
                    "Patroni",
                    "What Patroni makes of each member: the leader, a replica, or down (its REST "
                    "API does not answer, or its PostgreSQL is not running: PatroniMemberDown); no "
                    "Patroni on a single database host.",
                    PATRONI_MEMBER,
                    "{{instance}}",
                    mappings=PATRONI_MAPPINGS,
                    steps=(Step(None, BLUE),),
                    width=6,
                ),
                stat(
                    "Role",
                    "The role each member's server reports to the exporter: primary, or replica "
                    "while in recovery (PatroniMultiplePrimaries when two are primaries).",
                    f"max by (target) (pgstack_postgresql_in_recovery{{{INSTANCE}}})",
                    "{{target}}",
                    mappings=(("0", "primary", BLUE), ("1", "replica", BLUE)),
                    steps=(Step(None, BLUE),),
                    width=6,
                ),
                stat(
                    "WAL receiver",
                    "Does each replica stream WAL from the primary (PostgresqlReplicaNotStreaming "
                    "when not for 2 min)? A primary receives none.",
                    f"max by (target) (pgstack_postgresql_in_recovery{{{INSTANCE}}}"
                    f" + pgstack_postgresql_wal_receiver_streaming{{{INSTANCE}}})",
                    "{{target}}",
                    mappings=(
                        ("0", "primary", BLUE),
                        ("1", "not streaming", RED),
                        ("2", "streaming", GREEN),
                    ),
                    steps=(Step(None, BLUE),),
                    width=6,
                ),
                stat(
                    "Role changes",
                    "Promotions and demotions the exporters saw in the last hour: a failover or "
                    "switchover is one of each (PatroniLeaderChanged).",
                    f"sum(changes(pgstack_postgresql_in_recovery{{{INSTANCE}}}[1h]))",
                    steps=above(1),
                    width=6,
                ),
            ),
        ),
        Row(
            "Replication",
            (
                series(
                    "Replay lag",
                    "Age of the last transaction each replica replayed while WAL it received "
                    "waits for replay (0 when caught up, and on the primary).",
                    Query(
                        "max by (target, role) (pgstack_postgresql_replay_lag_seconds"
                        f"{{{INSTANCE}}} * on (job, instance, target) group_left (role) "
                        f"pgstack_postgresql_role{{{INSTANCE}}})",
                        "{{target}} ({{role}})",
                    ),
                    unit="s",
                    min_value=0,
                    width=8,
                ),
                series(
                    "WAL received, not replayed",
                    "WAL bytes each replica has received and not replayed yet.",
                    Query(
                        f"max by (target) (pgstack_postgresql_replay_lag_bytes{{{INSTANCE}}})",
                        "{{target}}",
                    ),
                    unit="bytes",
                    min_value=0,
                    width=8,
                ),
                series(
                    "Primary over time",
                    "1 while a member runs as the primary: a step from one member to another is a "
                    "change of leader.",
                    Query(
                        f"max by (target) (1 - pgstack_postgresql_in_recovery{{{INSTANCE}}})",
                        "{{target}}",
                    ),
                    min_value=0,
                    max_value=1,
                    width=8,
                ),
            ),
        ),
        Row(
            "etcd",
            (
                Panel(
                    "etcd members",
                    "etcd's members, those Prometheus scrapes, and those that see a leader "
                    "(EtcdMemberDown, EtcdNoLeader): etcd takes writes while a majority has one; 0 "
                    "without a cluster.",
                    (
                        Query('count(up{job="etcd"}) or vector(0)', "members"),
                        Query('count(up{job="etcd"} == 1) or vector(0)', "up"),
                        Query("count(etcd_server_has_leader == 1) or vector(0)", "with a leader"),
                    ),
                    Kind.STAT,
                    steps=(Step(None, BLUE),),
                    width=8,
                ),
                series(
                    "etcd elections",
                    "Leader elections etcd saw in 15 minutes, at the member that saw most (orange "
                    "past 3: EtcdFrequentLeaderChanges); 0 without a cluster.",
                    Query(
                        "max(increase(etcd_server_leader_changes_seen_total[15m])) or vector(0)",
                        "elections in 15 min",
                    ),
                    steps=above(ETCD_ELECTIONS),
                    min_value=0,
                    width=16,
                ),
            ),
        ),
        Row(
            "Redis Sentinel",
            (
                Panel(
                    "Sentinels",
                    "The sentinels the exporters read, those that answer (RedisSentinelDown), "
                    "those that reach the quorum (RedisSentinelNoQuorum), and the most replicas "
                    "up and linked that one of them sees (RedisSentinelNoReplica); 0 without "
                    "sentinels.",
                    (
                        Query('count(pgstack_up{kind="sentinel"}) or vector(0)', "sentinels"),
                        Query('count(pgstack_up{kind="sentinel"} == 1) or vector(0)', "up"),
                        Query(
                            "count(pgstack_sentinel_quorum_reachable == 1) or vector(0)",
                            "reach the quorum",
                        ),
                        Query("max(pgstack_sentinel_replicas_up) or vector(0)", "replicas up"),
                    ),
                    Kind.STAT,
                    steps=(Step(None, BLUE),),
                    width=12,
                ),
                stat(
                    "Redis master down",
                    "Do the sentinels deem the Redis master objectively down "
                    "(RedisSentinelMasterDown after 1 min)? 0 without sentinels.",
                    "max(pgstack_sentinel_master_odown) or vector(0)",
                    mappings=(("0", "no", GREEN), ("1", "down", RED)),
                    steps=(Step(None, GREEN), Step(1, RED)),
                    width=6,
                ),
                stat(
                    "Redis masters in the last hour",
                    "Addresses the sentinels gave for the master in the last hour: 2 or more "
                    "after a failover or switchover (RedisSentinelMasterChanged); 0 without "
                    "sentinels.",
                    "count(count by (master, address) "
                    "(max_over_time(pgstack_sentinel_master_info[1h]))) or vector(0)",
                    steps=above(2),
                    width=6,
                ),
            ),
        ),
    ),
)

SYNC_MAPPINGS = (("-1", "unknown", ORANGE), ("0", "no", RED), ("1", "yes", GREEN))

HOSTS = Board(
    uid="pgstack-hosts",
    title="pgstack / Hosts",
    description="Every managed host as its node exporter sees it: up, filesystems, memory, OOM "
    "kills, clock, failed units; a row per host.",
    tags=("pgstack", "hosts"),
    variables=(instance_variable('up{job="node"}'),),
    rows=(
        Row(
            "$instance",
            (
                stat(
                    "Node exporter up",
                    "Does Prometheus scrape the host's node exporter (HostDown when not for "
                    "2 min)?",
                    'min(up{job="node", instance=~"$instance"})',
                    steps=UP_STEPS,
                    mappings=UP_MAPPINGS,
                ),
                stat(
                    "Fullest filesystem",
                    "Space available on the host's fullest watched filesystem (orange under "
                    "10 %, red under 5 %: HostFilesystemFull).",
                    f"min(node_filesystem_avail_bytes{{{FILESYSTEMS}}} "
                    f"/ node_filesystem_size_bytes{{{FILESYSTEMS}}})",
                    unit="percentunit",
                    steps=below(FS_CRITICAL, FS_WARNING),
                ),
                stat(
                    "Memory available",
                    "Share of the host's memory available to new allocations (orange under "
                    "10 %, red under 5 %: HostMemoryLow).",
                    'min(node_memory_MemAvailable_bytes{instance=~"$instance"} '
                    '/ node_memory_MemTotal_bytes{instance=~"$instance"})',
                    unit="percentunit",
                    steps=below(MEMORY_CRITICAL, MEMORY_WARNING),
                ),
                stat(
                    "OOM kills",
                    "Processes the kernel's OOM killer ended in the last hour (HostOomKill).",
                    'sum(increase(node_vmstat_oom_kill{instance=~"$instance"}[1h]))',
                    steps=above(1),
                    decimals=0,
                ),
                stat(
                    "Clock synchronised",
                    "Does the kernel report the clock synchronised by an NTP client "
                    "(HostClockNotSynchronised)? Unknown where the node exporter cannot read "
                    "the clock's state (its timex collector fails, as in containers).",
                    'min(node_timex_sync_status{instance=~"$instance"}) or -min(1 - '
                    'node_scrape_collector_success{collector="timex", instance=~"$instance"})',
                    steps=UP_STEPS,
                    mappings=SYNC_MAPPINGS,
                ),
                stat(
                    "Failed units",
                    "systemd units in the failed state (HostSystemdUnitFailed).",
                    'sum(node_systemd_unit_state{state="failed", instance=~"$instance"})',
                    steps=above(1),
                ),
                series(
                    "Filesystem space available",
                    "Space available on each watched filesystem, against its size "
                    "(HostFilesystemFull at 10 % and 5 %, HostFilesystemFillingUp when the trend "
                    "reaches 0 within a day).",
                    Query(
                        f"node_filesystem_avail_bytes{{{FILESYSTEMS}}} "
                        f"/ node_filesystem_size_bytes{{{FILESYSTEMS}}}",
                        "{{mountpoint}}",
                    ),
                    unit="percentunit",
                    steps=below(FS_CRITICAL, FS_WARNING),
                    min_value=0,
                    max_value=1,
                ),
                series(
                    "Memory",
                    "Memory available to new allocations, against the host's total.",
                    Query('node_memory_MemAvailable_bytes{instance=~"$instance"}', "available"),
                    Query('node_memory_MemTotal_bytes{instance=~"$instance"}', "total"),
                    unit="bytes",
                    min_value=0,
                ),
            ),
            repeat="instance",
        ),
    ),
)

BOARDS = (OVERVIEW, POSTGRESQL, PGBOUNCER, REDIS, BACKUPS, CLUSTER, HOSTS)
