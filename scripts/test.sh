#!/usr/bin/env bash
# The README's test command: bootstrap the environment, then run the test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
venv="${PYRO_MM_VENV:-$root/.venv}"
cd "$root"
exec "$venv/bin/python" -m pytest "$@"
