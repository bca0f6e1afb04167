from mobilize.cli import main

raise SystemExit(main())
