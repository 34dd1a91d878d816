#!/usr/bin/env bash
# Tools the test suite drives as real clients. Idempotent; installs into ./.tools (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools
# (sections are added by the features that need them)

# Claude Code CLI (the marketplace end-to-end test drives `claude plugin ...`).
# The native binary comes from the npm optional dependency @anthropic-ai/claude-code-linux-x64.
if ! [ -x .tools/node_modules/.bin/claude ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "install-test-tools: installing @anthropic-ai/claude-code into .tools"
    (cd .tools && [ -f package.json ] || echo '{"name": "agnes-test-tools", "private": true}' > package.json)
    npm install --prefix .tools --no-audit --no-fund --loglevel=error '@anthropic-ai/claude-code@^2.1' >/dev/null
  else
    echo "install-test-tools: npm not found; the Claude Code end-to-end test will be skipped" >&2
  fi
fi
