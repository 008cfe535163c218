from pgstack_bench.cli import main

raise SystemExit(main())
