"""The sample workload's schema (the applications' ``jobs`` and ``results``), the heartbeat table.

``pgstack-drill workload --print-schema`` and ``pgstack-drill heartbeat --print-schema`` print them.
"""

from __future__ import annotations

JOB_STATUSES = (
    "PENDING",
    "UPLOADING",
    "PROCESSING",
    "COMPLETE",
    "FAILED",
    "CANCELLED",
    "PARTIAL_COMPLETE",
    "RETRY_1",
    "RETRY_2",
    "RETRY_3",
)

WORKLOAD_SQL = f"""\
DO $$
BEGIN
    CREATE TYPE job_status AS ENUM ({", ".join(f"'{s}'" for s in JOB_STATUSES)});
EXCEPTION WHEN duplicate_object THEN NULL;
END
$$;

CREATE TABLE IF NOT EXISTS jobs (
    id            uuid PRIMARY KEY,
    session_id    uuid NOT NULL,
    status        job_status NOT NULL DEFAULT 'PENDING',
    input_type    text NOT NULL,
    file_name     text,
    file_size     bigint CHECK (file_size >= 0),
    error_code    text,
    error_message text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    completed_at  timestamptz
);
CREATE INDEX IF NOT EXISTS jobs_session_id_idx ON jobs (session_id);
CREATE INDEX IF NOT EXISTS jobs_status_idx ON jobs (status);
CREATE INDEX IF NOT EXISTS jobs_created_at_idx ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_session_id_created_at_idx ON jobs (session_id, created_at);

CREATE TABLE IF NOT EXISTS results (
    id           uuid PRIMARY KEY,
    job_id       uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    format_type  text NOT NULL,
    content      text NOT NULL,
    size         integer NOT NULL CHECK (size >= 0),
    generated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS results_job_id_idx ON results (job_id);
"""

HEARTBEAT_SQL = """\
-- One row, rewritten every second on the primary; after a restore, now() (or the simulated
-- disaster time) minus beat_at is the data lost: the RPO.
CREATE TABLE IF NOT EXISTS pgstack_heartbeat (
    id      smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    beat_at timestamptz NOT NULL
);
"""

# What the heartbeat timer runs every second (as a role allowed to write the table).
HEARTBEAT_BEAT = (
    "INSERT INTO pgstack_heartbeat (id, beat_at) VALUES (1, clock_timestamp()) "
    "ON CONFLICT (id) DO UPDATE SET beat_at = EXCLUDED.beat_at"
)
HEARTBEAT_EXISTS = "SELECT to_regclass('pgstack_heartbeat')"
HEARTBEAT_NEWEST = "SELECT max(beat_at) FROM pgstack_heartbeat"
