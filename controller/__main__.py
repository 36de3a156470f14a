"""``python -m controller`` runs the room daemon."""

from controller.daemon import main

raise SystemExit(main())
