from trtmake.cli import main

raise SystemExit(main())
