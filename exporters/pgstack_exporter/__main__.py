import sys

from pgstack_exporter.cli import main

sys.exit(main())
