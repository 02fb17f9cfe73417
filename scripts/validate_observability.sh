#!/usr/bin/env bash
# Validate the Prometheus configuration and alert rules with promtool (CI and `make` both call it).
# promtool comes with Debian's `prometheus` package; it is installed when missing, which needs root
# (as in CI). Installing the package does not start a server where no init system runs (CI,
# containers); if one was started, it is stopped again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
    echo "validate: installing promtool (Debian package prometheus)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends prometheus >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus >/dev/null; }
    if command -v service >/dev/null 2>&1; then
        service prometheus stop >/dev/null 2>&1 || true
    fi
fi

status=0
promtool check config deploy/prometheus/prometheus.yml || status=1
promtool check rules deploy/prometheus/alerts.yml || status=1
if [ "$status" -ne 0 ]; then
    echo "validate: promtool found errors" >&2
fi
exit "$status"
