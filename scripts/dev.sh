#!/usr/bin/env bash
# README command 1: set up and start Solaris on its embedded default at http://127.0.0.1:8000.
# Without LITELLM_BASE_URL it also starts a demo upstream: the pinned LiteLLM serving the offline
# models of scripts/demo-litellm.yaml, so the first chat call answers and costs credits.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8000}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
mkdir -p .dev
pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM

bash scripts/setup.sh
if [ -z "${LITELLM_BASE_URL:-}" ]; then
  bash scripts/litellm.sh
  LITELLM_PORT=${LITELLM_PORT:-$(free_port)}
  export LITELLM_BASE_URL="http://127.0.0.1:$LITELLM_PORT"
  export LITELLM_API_KEY="sk-demo-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  echo "Starting the demo LiteLLM on $LITELLM_BASE_URL (offline mock models; log: .dev/litellm.log)"
  # Its own session (setsid), so stopping it stops its workers too; no provider keys, no downloads.
  env -u DATABASE_URL -u REDIS_URL -u OPENAI_API_KEY LITELLM_MASTER_KEY="$LITELLM_API_KEY" \
    LITELLM_LOCAL_MODEL_COST_MAP=True DISABLE_ADMIN_UI=True HF_HUB_OFFLINE=1 \
    setsid .litellm-venv/bin/litellm --config scripts/demo-litellm.yaml \
    --host 127.0.0.1 --port "$LITELLM_PORT" > .dev/litellm.log 2>&1 &
  pids+=($!)
  demo_upstream=1
fi

export SOLARIS_PUBLIC_URL=${SOLARIS_PUBLIC_URL:-http://127.0.0.1:$PORT}
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py seed_demo | tee .dev/seed.txt
API_KEY=$(tail -n 1 .dev/seed.txt | awk '{print $NF}')

wait_for() {  # URL SECONDS NAME
  for _ in $(seq "$(( $2 * 5 ))"); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.2
  done
  echo "$3 did not start in $2 s" >&2
  return 1
}
if [ -n "${demo_upstream:-}" ]; then
  wait_for "$LITELLM_BASE_URL/health/liveliness" 120 "The demo LiteLLM" || { tail -n 20 .dev/litellm.log >&2; exit 1; }
fi

PYTHON=.venv/bin/python setsid sh scripts/serve.sh --host 127.0.0.1 --port "$PORT" --no-access-log &
pids+=($!)
wait_for "http://127.0.0.1:$PORT/healthz" 60 "Solaris"

MODEL=$(sed -n "s/^Demo model: //p" .dev/seed.txt)
cat <<EOF

Solaris is running on http://127.0.0.1:$PORT (Ctrl-C stops it). Try a chat call:

curl -s -D - http://127.0.0.1:$PORT/v1/chat/completions \\
  -H "Authorization: Bearer $API_KEY" -H "Content-Type: application/json" \\
  -d '{"model": "$MODEL", "messages": [{"role": "user", "content": "Olá!"}]}'

.venv/bin/python - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="http://127.0.0.1:$PORT/v1", api_key="$API_KEY")
raw = client.chat.completions.with_raw_response.create(
    model="$MODEL", messages=[{"role": "user", "content": "Olá!"}])
print(raw.parse().choices[0].message.content)
print("credits left:", raw.headers["x-solaris-credits-remaining"])
PY

Every call moves the counter at http://127.0.0.1:$PORT/conta/ (sign in as the demo user above).
EOF
if [ -z "${demo_upstream:-}" ]; then
  echo "Your LiteLLM at $LITELLM_BASE_URL must serve $MODEL, or price one of its models:"
  echo "  .venv/bin/python manage.py set_model_price MODEL --input W --output W"
fi
wait "${pids[-1]}"
