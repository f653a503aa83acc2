#!/bin/sh
# The production web server: uvicorn serving solaris.asgi:application; arguments go to uvicorn
# (e.g. --host 0.0.0.0 --port 8000 --workers 2). PYTHON picks the interpreter (default: python).
# solaris.serving's protocol turns Nagle's algorithm off on every connection (docs/performance.md).
# With PROMETHEUS_MULTIPROC_DIR set, every worker keeps its metrics in a file of that directory and
# /metrics adds them up. Files of an earlier run are removed first: a new process must not take over
# an old one's numbers (its pid may be the same), and counters restart at zero with the server.
# uvicorn's own X-Forwarded-* handling is off: Solaris believes them only from the proxies that
# SOLARIS_TRUSTED_PROXIES and SOLARIS_PROXY_SSL_HEADER name (docs/security.md). Production passes
# --no-access-log: paths can hold sign-in tokens (redacted if the access log is turned on).
set -eu
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -maxdepth 1 -name '*.db' -delete
fi
exec "${PYTHON:-python}" -m uvicorn solaris.asgi:application --http solaris.serving:HTTPProtocol --no-proxy-headers "$@"
