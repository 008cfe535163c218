"""A year of restore drills of one cluster, written by pgstack-drill's own report code: the JSON
reports (format version 1) and the HTML page of the newest, its history drawn from the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pgstack_drill import report
from pgstack_drill.timing import Phase

START = datetime(2026, 1, 6, 3, 0, tzinfo=UTC)
OBJECTIVES = {"rto_seconds": 3600.0, "rpo_seconds": 300.0}


def write_history(reports_dir: Path) -> Path:
    """Four quarters of logical and PITR drills; the newest PITR drill's HTML report."""
    page = reports_dir
    for quarter in range(4):
        for drill, rto, rpo in (
            ("logical", 240.0 + 35 * quarter, None),
            ("pitr", 780.0 - 90 * quarter, 4.0 + 2 * quarter),
        ):
            started = START + timedelta(days=91 * quarter, hours=1 if drill == "pitr" else 0)
            phases = [
                Phase("fetch", 0.0, rto * 0.12),
                Phase("data", rto * 0.12, rto * 0.58, "2.4 GiB"),
                Phase("verify", rto * 0.7, rto * 0.28),
                Phase("cleanup", rto * 0.98, rto * 0.02),
            ]
            source = (
                {"dump": "/var/lib/pgstack/dumps/db1/app/20260105T020000Z", "tables": 14}
                if drill == "logical"
                else {"stanza": "main", "backup": "20260104-010000F", "backup_type": "full"}
            )
            doc = report.build(
                drill=drill,
                cluster="db1",
                database="app" if drill == "logical" else None,
                host="backup1",
                started_at=started,
                finished_at=started + timedelta(seconds=rto),
                result="passed",
                exit_code=0,
                error=None,
                objectives=OBJECTIVES,
                phases=phases,
                facts={},
                outcome={
                    "rto_seconds": rto,
                    "rpo_seconds": rpo,
                    "rpo_note": None if rpo is None else "newest heartbeat restored",
                    "source": source,
                    "verification": {
                        "tables": [
                            {"table": "public.accounts", "rows": 120000, "ok": True},
                            {"table": "public.jobs", "rows": 48211, "ok": True},
                        ],
                        "problems": [],
                    },
                },
            )
            page = report.write_all(reports_dir, doc).with_suffix(".html")
    return page
