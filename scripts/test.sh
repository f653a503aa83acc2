#!/usr/bin/env bash
# README command 2: run the whole test suite. Extra arguments go to pytest.
# With DATABASE_URL / REDIS_URL set, the PostgreSQL and Redis tests run too (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/litellm.sh
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here." >&2
  exit 1
fi
exit "$status"
