#!/usr/bin/env bash
# Schema-driven check: start tokenvault (embedded PostgreSQL, WeChat
# simulator), sign up, create an API key, and let schemathesis exercise every
# operation of /api/openapi.json. Fails on any server error or any answer that
# does not match the document. Run from anywhere: bash tests/schema/run.sh
#
# Knobs: SCHEMA_MAX_EXAMPLES (default 25), SCHEMA_MAX_TIME seconds (default 150),
# TOKENVAULT_BIN (default: build this tree and use its debug binary).
# One worker: hypothesis 6.x can trip over its own lambda cache across threads.
set -euo pipefail
cd "$(dirname "$0")/../.."

max_examples=${SCHEMA_MAX_EXAMPLES:-25}
max_time=${SCHEMA_MAX_TIME:-150}
command -v schemathesis >/dev/null || { echo "schema: schemathesis missing: pip install -r tests/schema/requirements.txt" >&2; exit 1; }

work=$(mktemp -d /tmp/tokenvault-schema.XXXXXX)
# The embedded cluster runs as the postgres user when we are root.
chmod 755 "$work"
# A copy of the binary: a build in a shared target directory cannot swap it mid-run.
if [ -n "${TOKENVAULT_BIN:-}" ]; then
  cp "$TOKENVAULT_BIN" "$work/tokenvault"
else
  cargo build --quiet --bin tokenvault
  cp "${CARGO_TARGET_DIR:-target}/debug/tokenvault" "$work/tokenvault"
fi
bin="$work/tokenvault"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Wait for a log line and print the first http://host:port in it.
address_from_log() {
  local log=$1 pattern=$2 pid=$3
  for _ in $(seq 1 600); do
    if line=$(grep -m1 "$pattern" "$log" 2>/dev/null); then
      grep -o 'http://[0-9.:]*' <<<"$line" | head -n1
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "schema: process $pid died; its log:" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "schema: timed out waiting for '$pattern' in $log" >&2
  cat "$log" >&2
  return 1
}

"$bin" wechat-sim --bind 127.0.0.1:0 >"$work/sim.log" 2>&1 &
pids+=($!)
sim=$(address_from_log "$work/sim.log" "simulator listening on" "$!")

TOKENVAULT_BIND=127.0.0.1:0 TOKENVAULT_DATA_DIR="$work/data" \
  TOKENVAULT_WECHAT_API_BASE="$sim" TOKENVAULT_UPSTREAM_TIMEOUT=2 \
  TOKENVAULT_LOG_FORMAT=text TOKENVAULT_LOG=info \
  "$bin" serve >"$work/service.log" 2>&1 &
pids+=($!)
base=$(address_from_log "$work/service.log" "tokenvault is serving on" "$!")
echo "schema: tokenvault at $base, simulator at $sim"

jar="$work/cookies"
curl -fsS -c "$jar" -H 'Content-Type: application/json' \
  -d '{"organization":"Schema Check","email":"schema@example.com","password":"correct horse battery staple"}' \
  "$base/api/v1/signup" >"$work/signup.json"
csrf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf_token"])' "$work/signup.json")
curl -fsS -b "$jar" -H 'Content-Type: application/json' -H "X-CSRF-Token: $csrf" \
  -d '{"name":"schemathesis"}' "$base/api/v1/api-keys" >"$work/key.json"
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$work/key.json")

status=0
# From the work directory: schemathesis keeps its example database in ./.schemathesis.
(cd "$work" && schemathesis run "$base/api/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "$max_examples" \
  --max-time "$max_time" \
  --workers 1 \
  --seed 7 \
  --request-timeout 20 \
  --suppress-health-check all \
  --report junit --report-junit-path "$work/junit.xml" \
  >"$work/schemathesis.out" 2>&1) || status=$?
cat "$work/schemathesis.out"

if grep -q "panicked\|internal error" "$work/service.log"; then
  echo "schema: the service logged internal errors:" >&2
  grep -m 5 "panicked\|internal error" "$work/service.log" >&2
  status=1
fi

junit="$work/junit.xml"
read -r passed failed < <(python3 - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print(0, 1)
    raise SystemExit
cases = root.iter("testcase")
passed = failed = 0
for c in cases:
    if c.find("failure") is not None or c.find("error") is not None:
        failed += 1
    else:
        passed += 1
print(passed, failed)
PY
)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "schema: $passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
