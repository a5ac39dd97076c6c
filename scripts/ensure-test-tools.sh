#!/usr/bin/env bash
# The suite drives real programs from Debian: Chromium (the dashboard's browser test, via playwright-core),
# promtool (lints /metrics), the prometheus server (scrapes a running app) and the Prometheus reference text
# parser (python3-prometheus-client).
# Runs before `npm test`: installs what is missing when it can (root with apt-get), else says what to install.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)
/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1 || missing+=(python3-prometheus-client)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-tools: installing ${missing[*]} (Debian packages the suite runs for real)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "ensure-test-tools: the suite needs these Debian packages: ${missing[*]}" >&2
  echo "ensure-test-tools: install them (sudo apt-get install ${missing[*]}) and run npm test again" >&2
  exit 1
fi
