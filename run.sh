#!/usr/bin/env bash
# One entry point for a fresh machine. It installs what it needs, then runs the job.
#   ./run.sh check       install, then run the auth-flow check against the local Scalekit environment
#   ./run.sh test        install everything (Python, Node, Go, Chromium), then run the whole test suite
#   ./run.sh test-fast   the inner loop: no browser, no template builds
#   ./run.sh serve       serve the docs site on http://127.0.0.1:8010
#   ./run.sh package     write the skill as agents install it to dist/scalekit-auth (needs only Python 3)
#   ./run.sh setup       install only
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$PWD"
PY="$ROOT/.venv/bin/python"
STAMPS="$ROOT/.stamps"

log() { printf '[run.sh] %s\n' "$*" >&2; }

# Re-run an install step only when the file it installs from has changed.
changed() { # name file...
  local stamp="$STAMPS/$1"; shift
  local sum; sum=$(cat "$@" | sha256sum | cut -d' ' -f1)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && return 1
  echo "$sum" > "$stamp.new"; return 0
}
done_stamp() { mv "$STAMPS/$1.new" "$STAMPS/$1"; }

setup_python() {
  mkdir -p "$STAMPS"
  if [ ! -x "$PY" ]; then
    command -v python3.11 >/dev/null && PYBIN=python3.11 || PYBIN=python3
    log "creating .venv with $($PYBIN --version)"
    "$PYBIN" -m venv .venv
    rm -f "$STAMPS/python"
  fi
  if changed python requirements.txt scripts/requirements.txt; then
    log "installing Python packages (requirements.txt)"
    "$PY" -m pip install -q --disable-pip-version-check -r requirements.txt
    # The scripts' own bootstrap (scripts/_bootstrap.py) then knows this venv holds their packages.
    sha256sum scripts/requirements.txt | cut -d' ' -f1 > .venv/.scalekit-requirements.sha256
    done_stamp python
  fi
}

setup_node() {
  command -v npm >/dev/null || { log "npm is required (Node 20+)"; exit 2; }
  [ -d node_modules ] || rm -f "$STAMPS/node"
  if changed node package.json package-lock.json; then
    log "installing Node packages (package-lock.json)"
    # npm ci empties node_modules first; through a link that would empty another checkout's copy.
    if [ -L node_modules ]; then npm install --no-audit --no-fund --loglevel=error
    else npm ci --no-audit --no-fund --loglevel=error; fi
    done_stamp node
  fi
}

setup_go() {
  command -v go >/dev/null || { log "go is required (1.26+)"; exit 2; }
  if changed go tests/go/go.mod tests/go/go.sum; then
    log "downloading Go modules (tests/go/go.mod)"
    (cd tests/go && go mod download && go build ./...)
    done_stamp go
  fi
}

setup_browser() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Chromium and ChromeDriver from Debian packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    log "browser tests need Debian's chromium and chromium-driver: sudo apt-get install chromium chromium-driver"
    exit 2
  fi
}

cmd="${1:-}"; shift || true
case "$cmd" in
  setup) setup_python; setup_node; setup_go; setup_browser ;;
  check)
    setup_python
    if [ -f scripts/test_auth_flow.py ]; then
      exec "$PY" scripts/test_auth_flow.py --local "$@"
    else
      exec env NO_MKDOCS_2_WARNING=1 "$PY" -m mkdocs build --strict "$@"
    fi ;;
  test)
    setup_python; setup_node; setup_go; setup_browser
    exec "$PY" -m pytest "$@" ;;
  test-fast)
    setup_python; setup_node; setup_go
    exec "$PY" -m pytest -m "not browser and not slow" "$@" ;;
  serve)
    setup_python
    exec env NO_MKDOCS_2_WARNING=1 "$PY" -m mkdocs serve -a 127.0.0.1:8010 "$@" ;;
  package)
    command -v python3 >/dev/null || { log "python3 is required (3.11+)"; exit 2; }
    exec python3 tools/package_skill.py "$@" ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
