#!/usr/bin/env bash
# Make sure a headless-capable Chromium from Debian is installed; do nothing if one already is.
# Used by the tests that render the audit report in a real browser. Prints the browser's path.
set -euo pipefail

find_browser() {
  local name
  for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  return 1
}

if find_browser; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: no chromium and no apt-get to install it; install Chromium by hand" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "ensure-chromium: need root (or sudo) to apt-get install chromium" >&2
    exit 1
  fi
fi

echo "ensure-chromium: installing chromium from Debian (one time)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
find_browser
