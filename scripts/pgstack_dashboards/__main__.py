"""Entry point: ``python3 -m pgstack_dashboards``."""

from pgstack_dashboards.cli import main

raise SystemExit(main())
