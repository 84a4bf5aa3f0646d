#!/usr/bin/env bash
# Policy scan of the Bicep templates in infra/ with checkov, offline.
#
#   scripts/infra-check.sh            human-readable results; exit 1 on any failed check or parsing error
#   scripts/infra-check.sh --json     checkov's JSON report on stdout (what tests/infra/test_policy_scan.py reads)
#   scripts/infra-check.sh --install  only make sure checkov is installed
#
# checkov cannot live in .venv (it pins packaging<24; pytest needs >=24), so it gets its own virtual
# environment, var/checkov, installed from the pinned infra/requirements-checkov.txt on first use (about a
# minute from PyPI) and reinstalled only when that file changes. The scan itself needs no network:
# --skip-download (no policy or guideline downloads) and no Prisma Cloud API key.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/var/checkov"
REQUIREMENTS="$ROOT/infra/requirements-checkov.txt"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
STAMP="$VENV/.installed-$(sha256sum "$REQUIREMENTS" | cut -c1-16)"

install() {
  if [[ -e "$STAMP" ]]; then
    return
  fi
  echo "installing checkov into ${VENV#"$ROOT"/} (pinned by infra/requirements-checkov.txt)" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQUIREMENTS" >&2
  touch "$STAMP"
}

scan() {
  # BC_API_KEY unset: checkov never contacts the platform; --skip-download: no policy/guideline downloads.
  env -u BC_API_KEY -u PRISMA_API_URL CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false \
    "$VENV/bin/python" -m checkov.main --directory "$ROOT/infra" --framework bicep --skip-download "$@"
}

case "${1:-}" in
  --install)
    install
    ;;
  --json)
    install
    # checkov logs its own internal errors on stderr; the JSON report is the only thing on stdout.
    scan --output json --soft-fail 2>/dev/null
    ;;
  "")
    install
    scan --compact --quiet
    ;;
  *)
    echo "usage: $0 [--json | --install]" >&2
    exit 2
    ;;
esac
