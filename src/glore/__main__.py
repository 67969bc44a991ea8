"""``python -m glore`` (and ``torchrun -m glore``) runs the ``glore`` command."""

from glore.cli import main

raise SystemExit(main())
