"""Entry point: ``python3 -m pgstack_screenshots``."""

from pgstack_screenshots.cli import main

raise SystemExit(main())
