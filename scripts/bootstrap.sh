#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install pyro_mm into it.
# torch==2.13.0 is installed first so that no dependency pulls a CUDA build of torch.
# Idempotent: re-installs only when setup.cfg or pyproject.toml changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PYRO_MM_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    echo "[bootstrap] creating virtual environment $venv" >&2
    "$python" -m venv "$venv"
fi
stamp="$venv/.pyro_mm-install-stamp"
want="$(cat "$root/setup.cfg" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[bootstrap] installing torch==2.13.0 and pyro_mm (editable, with test extras)" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check torch==2.13.0
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[test]"
    echo "$want" > "$stamp"
fi
