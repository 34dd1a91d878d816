#!/usr/bin/env bash
# The real parts the test suite drives, installed or started; safe to run again (make test and
# .ci/run both run it).
#
#   git, Redis (127.0.0.1:6379), Chromium (/usr/bin/chromium), Node.js + npm, and the Claude Code
#   CLI (into ./.tools, git-ignored), PostgreSQL on 127.0.0.1:5432 (the postgres connector and the
#   remote-table tests; a cluster this script installs gets trust auth for user postgres on 127.0.0.1).
#
# As root with apt-get, missing Debian packages are installed. Otherwise each missing part gets
# one line saying what to install, and the tests that need it skip with that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "tools: $*"; }

can_install=false
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then can_install=true; fi

redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

# package(s)|what it is for and what happens without it
missing=()
command -v git >/dev/null 2>&1 || missing+=("git|git: most tests fail without it")
redis_up || command -v redis-server >/dev/null 2>&1 ||
  missing+=("redis-server|Redis: the job, worker and deployment tests skip until then")
[ -x /usr/bin/chromium ] || missing+=("chromium|Chromium: the browser tests skip until then")
command -v npm >/dev/null 2>&1 || missing+=("nodejs npm|Node.js and npm: the Claude Code end-to-end test skips until then")
pg_installed_here=false
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  missing+=("postgresql|PostgreSQL: the postgres connector and remote-table tests skip until then")
  $can_install && pg_installed_here=true
fi

if [ ${#missing[@]} -gt 0 ]; then
  packages=$(for m in "${missing[@]}"; do printf '%s ' "${m%%|*}"; done)
  if $can_install; then
    say "installing Debian packages: $packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    apt-get install -y -qq $packages >/dev/null
  else
    for m in "${missing[@]}"; do
      say "missing ${m#*|} (install: sudo apt-get install ${m%%|*})"
    done
  fi
fi

# Redis: the tests need a real one; start it (no root needed) when nothing answers on 6379.
if ! redis_up && command -v redis-server >/dev/null 2>&1; then
  say "starting redis-server on 127.0.0.1:6379 (keeps nothing on disk)"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
fi
redis_up || say "Redis does not answer on 127.0.0.1:6379: the tests that need it skip"

# PostgreSQL: the postgres connector's and the remote-table tests use the local server (trust auth
# for user postgres on 127.0.0.1:5432). A cluster installed just now gets that line in pg_hba.conf;
# one that was already there is left as its owner configured it.
pg_version=""
[ -d /etc/postgresql ] && pg_version="$(ls /etc/postgresql | sort -V | tail -1)"
if $pg_installed_here && [ -n "$pg_version" ]; then
  hba="/etc/postgresql/$pg_version/main/pg_hba.conf"
  if [ -f "$hba" ] && ! grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
    say "PostgreSQL $pg_version: trust auth for user postgres on 127.0.0.1 (test machine)"
    { echo 'host all postgres 127.0.0.1/32 trust'; cat "$hba"; } > "$hba.agnes" && mv "$hba.agnes" "$hba"
    chown postgres:postgres "$hba" 2>/dev/null || true
    pg_ctlcluster --skip-systemctl-redirect "$pg_version" main reload >/dev/null 2>&1 || true
  fi
fi
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if [ -n "$pg_version" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
    say "starting postgresql $pg_version"
    pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  fi
fi
if ! command -v pg_isready >/dev/null 2>&1 || ! pg_isready -q -h 127.0.0.1 -p 5432; then
  say "PostgreSQL does not answer on 127.0.0.1:5432 (trust auth for user postgres): its tests skip (fail under CI)"
fi

# Claude Code CLI (the marketplace end-to-end test drives `claude plugin ...`).
# The native binary comes from the npm optional dependency @anthropic-ai/claude-code-linux-x64.
if ! [ -x .tools/node_modules/.bin/claude ] && command -v npm >/dev/null 2>&1; then
  say "installing @anthropic-ai/claude-code into .tools"
  mkdir -p .tools
  [ -f .tools/package.json ] || echo '{"name": "agnes-test-tools", "private": true}' > .tools/package.json
  npm install --prefix .tools --no-audit --no-fund --loglevel=error '@anthropic-ai/claude-code@^2.1' >/dev/null
fi
