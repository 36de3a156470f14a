#!/bin/bash
# roomd — remove the room controller: `systemd/uninstall.sh [--purge] [--no-systemctl]`.
# Keeps /etc/roomd, /var/lib/roomd (the journal and reports) and the roomd user unless
# --purge. Same as `systemd/install.sh uninstall …`; DESTDIR= is honoured the same way.
set -euo pipefail
exec "$(dirname -- "${BASH_SOURCE[0]}")/install.sh" uninstall "$@"
