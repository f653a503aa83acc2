#!/usr/bin/env bash
# README command 1: set up and start Solaris on its embedded default at http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py seed_demo
PORT=${PORT:-8000}
echo "Solaris is starting on http://127.0.0.1:$PORT (Ctrl-C stops it)"
exec .venv/bin/uvicorn solaris.asgi:application --host 127.0.0.1 --port "$PORT" \
  --http solaris.serving:HTTPProtocol --no-access-log
