"""Entry point: ``python3 -m pgstack_drill``."""

from pgstack_drill.cli import main

raise SystemExit(main())
