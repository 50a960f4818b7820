from graphrun.cli.main import main

raise SystemExit(main())
