#!/usr/bin/env bash
# Run fastcelery's benchmarks and rewrite docs/benchmarks.md.
#   bash bench/run.sh [--quick] [--only cli,enqueue,e2e,noop,growth,tunings,tests] [--rounds N]
#                     [--variants LABEL-PART,...] [--merge]
# Installs what it needs (idempotently): wrk from Debian, the `bench` dependency group.
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) and redis-server on PATH;
# it starts its own Redis servers and uses its own databases (bench_baseline, bench_generated).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v redis-server >/dev/null || need_apt+=(redis-server)
if ((${#need_apt[@]})); then
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v uv >/dev/null || python3 -m pip install -q uv

# The services are Python 3.12 projects: let uv see pyenv's interpreters.
if [ -z "${PYENV_VERSION:-}" ] && command -v pyenv >/dev/null; then
  PYENV_VERSION="$(pyenv versions --bare | tr '\n' ':')"
  export PYENV_VERSION
fi

uv sync -q --group bench
PYTHONPATH="$PWD/bench" exec uv run -q --group bench python -m fcbench "$@"
