#!/usr/bin/env bash
# Installs what bench/run.py needs, and skips what is already there (safe to run again):
# wrk, nginx and php-fpm from apt, serverless-offline from npm (pinned by
# bench/peers/serverless-offline/package-lock.json), matplotlib into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)

packages="wrk nginx php8.2-cli php8.2-fpm"
command -v taskset >/dev/null || packages="$packages util-linux"
command -v npm >/dev/null || packages="$packages nodejs npm"
missing=""
for package in $packages; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $package"
done
if [ -n "$missing" ]; then
    echo "bench/setup.sh: installing$missing (apt)" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

peer=bench/peers/serverless-offline
if [ ! -f $peer/node_modules/.package-lock.json ] \
    || [ $peer/package-lock.json -nt $peer/node_modules/.package-lock.json ]; then
    echo "bench/setup.sh: npm ci in $peer" >&2
    (cd $peer && npm ci --no-audit --no-fund --loglevel=error)
fi

if ! .venv/bin/python -c 'import matplotlib' 2>/dev/null; then
    echo "bench/setup.sh: installing Lamina with its bench extra into .venv" >&2
    .venv/bin/pip install --quiet --editable '.[bench]'
fi
