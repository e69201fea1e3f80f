#!/usr/bin/env bash
# A local Ray cluster for development: loopback only, token auth on, stopped by PID.
#
#   cluster/local.sh start [--workers N] [--cpus N]   start a head (and N extra worker nodes)
#   cluster/local.sh env                              print the exports a shell needs to use it
#   cluster/local.sh status                           show what runs and where
#   cluster/local.sh stop                             stop exactly the processes `start` started
#
# State lives in cluster/.local/ (git- and ray-ignored): auth_token (mode 600), the PIDs of the
# `ray start --block` processes it started (each one stops all of its node's Ray processes on SIGTERM),
# the ports and a short per-cluster Ray temp dir. Nothing binds beyond 127.0.0.1 except what Ray itself
# needs for extra worker nodes (see README "running on a real cluster").
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
STATE="$HERE/.local"
RAY="${RAY:-$ROOT/.venv/bin/ray}"
PY="${PY:-$ROOT/.venv/bin/python}"

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

node_ports() {  # every port a Ray node opens, chosen free, so several clusters share one machine
  echo --node-manager-port "$(free_port)" --object-manager-port "$(free_port)" \
    --dashboard-agent-listen-port "$(free_port)" --dashboard-agent-grpc-port "$(free_port)" \
    --runtime-env-agent-port "$(free_port)" --metrics-export-port "$(free_port)"
}

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# A count must be plain decimal digits before it reaches arithmetic: bash evaluates array subscripts and
# $(...) inside $(( )), [[ -eq ]] and (( )), so `--workers 'a[$(cmd)]'` would run cmd.
count() {  # count OPTION VALUE MIN MAX: print VALUE when it is an integer in [MIN, MAX], else exit 2
  local opt="$1" v="$2" min="$3" max="$4"
  if [[ ! "$v" =~ ^[0-9]{1,4}$ ]] || ((10#$v < min || 10#$v > max)); then
    printf '%s must be a whole number from %s to %s, got %q\n' "$opt" "$min" "$max" "$v" >&2
    exit 2
  fi
  echo "$((10#$v))"
}

start() {
  local workers=0 cpus=2
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --workers) [[ $# -ge 2 ]] || { echo "--workers needs a value" >&2; exit 2; }
        workers="$(count --workers "$2" 0 64)" || exit 2; shift 2 ;;
      --cpus) [[ $# -ge 2 ]] || { echo "--cpus needs a value" >&2; exit 2; }
        cpus="$(count --cpus "$2" 1 1024)" || exit 2; shift 2 ;;
      *) printf 'unknown option %q\n' "$1" >&2; exit 2 ;;
    esac
  done
  if alive "$STATE/head.pid"; then echo "already running (head PID $(cat "$STATE/head.pid")); stop it first" >&2; exit 1; fi
  mkdir -p "$STATE" && chmod 700 "$STATE"
  if [[ ! -s "$STATE/auth_token" ]]; then
    (umask 077 && "$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$STATE/auth_token")
  fi
  chmod 600 "$STATE/auth_token"
  local tmp gcs dash
  tmp="$(mktemp -d /tmp/gr-local-XXXX)"   # short: Ray's Unix socket paths must stay under 108 bytes
  gcs="$(free_port)"; dash="$(free_port)"
  echo "$tmp" > "$STATE/temp_dir"; echo "$gcs" > "$STATE/gcs_port"; echo "http://127.0.0.1:$dash" > "$STATE/address"
  export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$STATE/auth_token"
  # job entrypoints run `python ...` with the node's PATH: make it the project's interpreter
  PATH="$(dirname "$PY"):$PATH"; export PATH
  # Ray maps --node-ip-address 127.0.0.1 to the host's outward address unless it is told this is a
  # single-machine cluster; keep a head-only cluster on loopback.
  local single=0; [[ "$workers" -eq 0 ]] && single=1
  # shellcheck disable=SC2046
  RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=$((1 - single)) setsid "$RAY" start --head --block \
    --node-ip-address 127.0.0.1 --port "$gcs" --ray-client-server-port "$(free_port)" \
    --dashboard-host 127.0.0.1 --dashboard-port "$dash" --num-cpus "$cpus" --temp-dir "$tmp" \
    --disable-usage-stats $(node_ports) > "$STATE/head.log" 2>&1 < /dev/null &
  echo $! > "$STATE/head.pid"
  wait_dashboard "http://127.0.0.1:$dash"
  local i
  for ((i = 1; i <= workers; i++)); do
    # shellcheck disable=SC2046
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1 setsid "$RAY" start --block --address "127.0.0.1:$gcs" \
      --node-ip-address 127.0.0.1 --num-cpus "$cpus" --disable-usage-stats $(node_ports) \
      > "$STATE/worker-$i.log" 2>&1 < /dev/null &
    echo $! > "$STATE/worker-$i.pid"
  done
  echo "Ray head PID $(cat "$STATE/head.pid") with $workers worker node(s); dashboard http://127.0.0.1:$dash"
  echo "token: $STATE/auth_token (mode 600). Use it with:"
  env_cmd
}

wait_dashboard() {  # bounded: the Jobs API answers 401 without a token once it is up
  local url="$1" i code
  for ((i = 0; i < 90; i++)); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "$url/api/version" || true)"
    if [[ "$code" == 401 || "$code" == 200 ]]; then return 0; fi
    if ! alive "$STATE/head.pid"; then echo "Ray head exited; see $STATE/head.log" >&2; stop > /dev/null; exit 1; fi
    sleep 1
  done
  echo "dashboard $url did not come up within 90s; see $STATE/head.log" >&2
  stop; exit 1
}

env_cmd() {  # shell-quoted with %q: safe to eval for any checkout path (spaces, quotes, $(...))
  local address
  address="$(cat "$STATE/address")"
  printf 'export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=%q\n' "$STATE/auth_token"
  printf 'export GENART_RAY_ADDRESS=%q   # genart submit ... --address "$GENART_RAY_ADDRESS"\n' "$address"
  printf 'export RAY_API_SERVER_ADDRESS=%q   # for ray job submit/list/logs\n' "$address"
}

stop() {
  local f pid i
  for f in "$STATE"/worker-*.pid "$STATE/head.pid"; do   # workers first, the head last
    [[ -f "$f" ]] || continue
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"   # `ray start --block` stops every process of its node, then exits
      i=0
      while kill -0 "$pid" 2>/dev/null && ((i++ < 60)); do sleep 0.5; done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
      echo "stopped $(basename "$f" .pid) (PID $pid)"
    fi
    rm -f "$f"
  done
  if [[ -f "$STATE/temp_dir" ]]; then rm -rf "$(cat "$STATE/temp_dir")"; rm -f "$STATE/temp_dir"; fi
}

status() {
  local f
  for f in "$STATE/head.pid" "$STATE"/worker-*.pid; do
    [[ -f "$f" ]] || continue
    if alive "$f"; then echo "$(basename "$f" .pid): PID $(cat "$f") running"; else echo "$(basename "$f" .pid): not running"; fi
  done
  [[ -f "$STATE/address" ]] && echo "dashboard: $(cat "$STATE/address")"
  return 0
}

cmd="${1:-}"; shift || true
case "$cmd" in
  start) start "$@" ;;
  stop) stop ;;
  status) status ;;
  env) env_cmd ;;
  *) sed -n '2,8p' "$0"; exit 2 ;;
esac
