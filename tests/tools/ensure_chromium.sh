#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the gallery test (tests/views/test_gallery.py), if missing.
# Needs root (or sudo) and the Debian package mirrors; prints the browser's path on success.
set -euo pipefail
for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
        exit 0
    fi
done
SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium
