#!/bin/sh
# es-publish end to end against es-sidecar: one event with -m metadata; a
# file with a bad line (reported with its number, the rest published, exit
# 2); --dry-run with the token redacted; an unregistered binding (exit 1,
# one line per distinct reason); usage errors (exit 2).
set -u
sidecar=$1; pub=$2
work=$(mktemp -d /tmp/es-pub-test.XXXXXX)
pid=""; fail=0; passed=0
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
check() { # name, condition result
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else fail=$((fail + 1)); echo "FAILED: $1"; fi
}
"$sidecar" --port 0 --port-file "$work/port" --out "$work/out" --token s3cr3t-tok 2>"$work/log" &
pid=$!
i=0; while [ ! -s "$work/port" ]; do i=$((i+1)); [ $i -le 200 ] || exit 1; sleep 0.05; done
url="http://127.0.0.1:$(cat "$work/port")"
export DAPR_API_TOKEN=s3cr3t-tok

"$pub" --sidecar "$url" --type processor_events --name batch_processed \
  --data '{"batch_size":50}' -m processor_id=kafka-1 -m n=3 --stats 2>"$work/stats"
check "one event exits 0" $?
grep -q '"processor_id":"kafka-1","n":3' "$work/out"; check "custom metadata sent" $?
grep -q '"succeeded":1' "$work/stats"; check "--stats line" $?

printf '%s\n' '{"event_type":"t","event_name":"a","data":{"i":1}}' \
  'not json' '' '{"event_type":"t","event_name":"b","data":{"i":2},"metadata":{"k":"v"}}' \
  '{"event_type":"t","data":{}}' > "$work/in"
"$pub" --sidecar "$url" -f "$work/in" 2>"$work/err"
check "bad lines exit 2" $(( $? == 2 ? 0 : 1 ))
grep -q ':2: invalid JSON' "$work/err"; check "line 2 reported" $?
grep -q ':5: event_name is missing' "$work/err"; check "line 5 reported" $?
grep -c '"kind":"binding"' "$work/out" | grep -qx 3; check "good lines published" $?

cat "$work/in" | "$pub" --sidecar "$url" -f - --dry-run > "$work/dry" 2>/dev/null
grep -q '"dapr-api-token":"<redacted>"' "$work/dry"; check "dry run redacts" $?
grep -q 's3cr3t-tok' "$work/dry" "$work/err" "$work/stats"; check "token never printed" $(( $? == 0 ? 1 : 0 ))
[ "$(wc -l < "$work/dry")" -eq 2 ]; check "dry run prints each request" $?

"$pub" --sidecar "$url" --binding nope --type t --name n 2>"$work/err2"
check "unregistered exits 1" $(( $? == 1 ? 0 : 1 ))
grep -q '1 event(s) failed: ES_ENOTREGISTERED' "$work/err2"; check "reason line" $?

"$pub" --type t 2>/dev/null; check "usage error exits 2" $(( $? == 2 ? 0 : 1 ))
"$pub" --sidecar https://127.0.0.1:1 --type t --name n 2>/dev/null
check "https refused (exit 2)" $(( $? == 2 ? 0 : 1 ))
echo "$passed passed, $fail failed"
[ "$fail" -eq 0 ]
