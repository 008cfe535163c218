"""Entry point: ``python3 -m pgstack_backup``."""

from pgstack_backup.cli import main

raise SystemExit(main())
