#!/usr/bin/env bash
# Runs a command inside textnorm's development environment, creating it first if needed:
# a virtual environment outside the clone (keyed by the hash of requirements/dev.txt, so it is
# reused until the pins change) with the pinned dependencies and the Rust extension built in
# release mode. Usage: bash scripts/env.sh COMMAND [ARGS...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
key="$(sha256sum requirements/dev.txt | cut -c1-12)"
venv="${TEXTNORM_VENV:-$HOME/.cache/textnorm/venv-$key}"
mkdir -p "$(dirname "$venv")"
# One creator at a time: a second caller waits here instead of deleting a half-built environment.
exec 9>"$venv.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  echo "textnorm: creating $venv (first run: a few minutes)" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r requirements/dev.txt
  touch "$venv/.complete"
fi
flock -u 9
# shellcheck disable=SC1091
source "$venv/bin/activate"
# Rebuild the extension only when Rust sources or build files changed since this clone's last
# build. The stamp is per clone, and PYTHONPATH puts this clone's python/ first, so several
# clones (worktrees) can share one environment without rebuilding over each other.
stamp="$venv/.textnorm-build-$(printf '%s' "$root" | sha256sum | cut -c1-12)"
export PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}"
want="$(cat Cargo.toml pyproject.toml $(find rust -name '*.rs' -o -name '*.json' | sort) | sha256sum | cut -c1-16)"
# The environment may be shared by several clones: rebuild also when textnorm resolves elsewhere.
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! python -c "
import sys, textnorm._core as c
sys.exit(not c.__file__.startswith('$root/python/'))" 2>/dev/null; then
  maturin develop --release -q >&2
  echo "$want" >"$stamp"
fi
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
exec "$@"
