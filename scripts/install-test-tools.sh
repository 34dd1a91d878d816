#!/usr/bin/env bash
# Tools the test suite drives as real clients. Idempotent; installs into ./.tools (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools
# (sections are added by the features that need them)
