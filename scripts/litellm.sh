#!/usr/bin/env bash
# The real LiteLLM proxy the proxy tests run against, in its own virtualenv (.litellm-venv).
# 1.106.2 is pinned: newer releases need a certifi this machine's package index does not have.
# prisma is needed even without a database: LiteLLM's auth error handler imports it (else a
# request without a key gets a plain-text 500 instead of its JSON 401).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LITELLM_VENV:-.litellm-venv}
VERSION=1.106.2
PRISMA_VERSION=0.15.0
STAMP="$VERSION prisma-$PRISMA_VERSION"
if [ -x "$VENV/bin/litellm" ] && [ "$(cat "$VENV/.version" 2>/dev/null)" = "$STAMP" ]; then
  exit 0
fi
echo "Installing litellm[proxy]==$VERSION into $VENV (about 80 s, once) …"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "litellm[proxy]==$VERSION" \
  "prisma==$PRISMA_VERSION" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
echo "$STAMP" > "$VENV/.version"
