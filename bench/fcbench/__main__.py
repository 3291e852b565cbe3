from fcbench.runner import main

raise SystemExit(main())
