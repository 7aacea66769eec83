"""``python -m actors`` is the ``actors`` command line."""

from ._cli import main

raise SystemExit(main())
