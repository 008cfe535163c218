import sys

from pgstack_lab.cli import main

sys.exit(main())
