#!/usr/bin/env bash
# The README's main job: bootstrap the environment, then `pyro-mm main` (options pass through).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
venv="${PYRO_MM_VENV:-$root/.venv}"
exec "$venv/bin/pyro-mm" main "$@"
