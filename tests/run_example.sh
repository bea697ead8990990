#!/bin/sh
# Runs one example against a fresh es-sidecar on a free loopback port and
# checks that it exits 0 and that the sidecar received at least MIN events.
# Usage: run_example.sh ES_SIDECAR MIN EXAMPLE [ARGS...]
set -eu
sidecar=$1; min=$2; shift 2
work=$(mktemp -d /tmp/es-example.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
"$sidecar" --port 0 --port-file "$work/port" --out "$work/out" 2>"$work/log" &
pid=$!
i=0
while [ ! -s "$work/port" ]; do
  i=$((i + 1)); [ $i -le 200 ] || { echo "es-sidecar did not start"; exit 1; }
  sleep 0.05
done
DAPR_HTTP_ENDPOINT="http://127.0.0.1:$(cat "$work/port")" "$@"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
got=$(wc -l < "$work/out")
echo "es-sidecar received $got events (want at least $min)"
[ "$got" -ge "$min" ]
