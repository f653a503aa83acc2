#!/usr/bin/env bash
# Build (or refresh) the project's virtualenv in .venv; quiet and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
stamp=.venv/.solaris-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing Python dependencies into .venv …"
  # This machine's pip config names local indexes that may be absent: drop those warnings only.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$want" > "$stamp"
fi
