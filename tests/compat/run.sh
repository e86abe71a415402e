#!/usr/bin/env bash
# Proof that real WeChat SDKs no one here wrote get tokenvault's managed token
# through the WeChat-compatible endpoints, then use it against "WeChat" (the
# simulator's token-checking getcallbackip):
#   - npm  wechat-api (node-webot), only its `endpoint` changed;
#   - PyPI wechatpy, through its extension point (fetch_access_token), with
#     its JS-SDK ticket call; and wechatpy's WeCom client (its tokens and
#     both WeCom JS-SDK tickets through the WeCom-compatible endpoints).
#
# Starts `tokenvault wechat-sim` and `tokenvault serve` (embedded PostgreSQL in
# a temporary data directory) on free ports, signs up, creates an API key,
# registers the app over the REST API, runs each SDK's script, and tears
# everything down. Needs: the tokenvault binary (built here with cargo unless
# TOKENVAULT_BIN is set), curl, node with `npm ci --prefix tests/compat`, and
# python3 with tests/compat/requirements.txt, preferably in the virtual
# environment tests/compat/.venv (used when present; COMPAT_PYTHON overrides).
# Last line: `compat: N passed, M failed`.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

# Only what this script sets reaches tokenvault: no TOKENVAULT_* setting or
# DATABASE_URL exported in the caller's shell (TOKENVAULT_BIN is our input).
bin_given="${TOKENVAULT_BIN:-}"
while read -r name; do unset "$name"; done < <(compgen -e | grep -E '^(TOKENVAULT_|DATABASE_URL$)' || true)
TOKENVAULT_BIN="$bin_given"

if [ -z "${TOKENVAULT_BIN:-}" ]; then
  (cd "$repo" && cargo build --quiet --bin tokenvault)
  TOKENVAULT_BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/tokenvault"
fi
[ -x "$TOKENVAULT_BIN" ] || { echo "compat: no tokenvault binary at $TOKENVAULT_BIN" >&2; exit 2; }
[ -d "$here/node_modules/wechat-api" ] || {
  echo "compat: wechat-api is not installed: npm ci --prefix tests/compat --no-audit --no-fund" >&2
  exit 2
}
if [ -z "${COMPAT_PYTHON:-}" ]; then
  COMPAT_PYTHON=python3
  [ -x "$here/.venv/bin/python" ] && COMPAT_PYTHON="$here/.venv/bin/python"
fi
"$COMPAT_PYTHON" -c 'import wechatpy' 2>/dev/null || {
  echo "compat: wechatpy is not installed for $COMPAT_PYTHON:" \
    "python3 -m venv tests/compat/.venv && tests/compat/.venv/bin/pip install -r tests/compat/requirements.txt" >&2
  exit 2
}

# Under /tmp and world-traversable: as root, the embedded PostgreSQL runs as
# the postgres user and must reach its directory.
work="$(mktemp -d /tmp/tokenvault-compat.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    # tokenvault stops its PostgreSQL on SIGTERM; give it time, then insist.
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" != 0 ] && [ -z "${KEEP_LOGS:-}" ]; then
    for log in "$work"/*.log; do
      [ -f "$log" ] && { echo "--- $(basename "$log") (last 30 lines)"; tail -n 30 "$log"; }
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wait until `pattern` appears in `log`; print the first http:// URL on that line.
wait_for_url() {
  local log=$1 pattern=$2 pid=$3
  for _ in $(seq 1 600); do
    if line="$(grep -m1 -- "$pattern" "$log" 2>/dev/null)"; then
      grep -o 'http://[0-9.:]*' <<<"$line" | head -n1
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "compat: process $pid exited; see $log" >&2; return 1; }
    sleep 0.1
  done
  echo "compat: timed out waiting for '$pattern' in $log" >&2
  return 1
}

json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

APPID=wx0000000000c0ffee
WECHAT_SECRET=0123456789abcdef0123456789abcdef
printf '[{"appid": "%s", "secret": "%s"}]\n' "$APPID" "$WECHAT_SECRET" >"$work/apps.json"

export NO_COLOR=1 TOKENVAULT_LOG_FORMAT=text
# Both processes run in the work directory, never in the checkout (whose
# ./.tokenvault may belong to a service someone runs).
(cd "$work" && exec "$TOKENVAULT_BIN" wechat-sim --bind 127.0.0.1:0 --apps-file "$work/apps.json") >"$work/sim.log" 2>&1 &
pids+=("$!")
WECHAT_URL="$(wait_for_url "$work/sim.log" "WeChat simulator listening on" "${pids[-1]}")"

(cd "$work" && TOKENVAULT_DATA_DIR="$work/data" TOKENVAULT_BIND=127.0.0.1:0 \
  TOKENVAULT_WECHAT_API_BASE="$WECHAT_URL" TOKENVAULT_WECOM_API_BASE="$WECHAT_URL" \
  exec "$TOKENVAULT_BIN" serve) >"$work/tokenvault.log" 2>&1 &
pids+=("$!")
TOKENVAULT_URL="$(wait_for_url "$work/tokenvault.log" "tokenvault is serving on" "${pids[-1]}")"
echo "compat: simulator at $WECHAT_URL, tokenvault at $TOKENVAULT_URL"

# Sign up, create an API key, register the mini-program (its real WeChat
# appsecret stays in tokenvault; SDKs only ever see the API key).
jar="$work/cookies"
csrf="$(curl -fsS -c "$jar" -H 'Content-Type: application/json' \
  -d '{"organization": "Compat Co", "email": "compat@example.test", "password": "correct horse battery staple"}' \
  "$TOKENVAULT_URL/api/v1/signup" | json_field csrf_token)"
API_KEY="$(curl -fsS -b "$jar" -H 'Content-Type: application/json' -H "X-CSRF-Token: $csrf" \
  -d '{"name": "sdk compatibility"}' "$TOKENVAULT_URL/api/v1/api-keys" | json_field key)"
registered="$(curl -fsS -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
  -d "{\"appid\": \"$APPID\", \"secret\": \"$WECHAT_SECRET\"}" "$TOKENVAULT_URL/api/v1/apps")"
python3 -c 'import json, sys; v = json.loads(sys.argv[1])["verification"]; assert v["ok"], v' "$registered"
MANAGED_TOKEN="$(curl -fsS -H "Authorization: Bearer $API_KEY" \
  "$TOKENVAULT_URL/api/v1/apps/$APPID/token" | json_field access_token)"
token_calls() {
  curl -fsS "$WECHAT_URL/sim/apps/$APPID/stats" |
    python3 -c 'import json, sys; s = json.load(sys.stdin); print(s["classic_calls"] + s["stable_calls"])'
}
calls_before="$(token_calls)"

# A WeCom app (its secret in the simulator and in tokenvault) and a key
# limited to it: WeCom's corpsecret for the SDK.
CORP_ID=ww00000000c0ffee00
WECOM_SECRET=Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd
WECOM_APP="$CORP_ID-1000002"
curl -fsS -X PUT -H 'Content-Type: application/json' \
  -d "{\"corpid\": \"$CORP_ID\", \"secret\": \"$WECOM_SECRET\"}" "$WECHAT_URL/sim/wecom/apps"
registered="$(curl -fsS -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
  -d "{\"kind\": \"wecom\", \"corpid\": \"$CORP_ID\", \"agentid\": 1000002, \"secret\": \"$WECOM_SECRET\"}" \
  "$TOKENVAULT_URL/api/v1/apps")"
python3 -c 'import json, sys; v = json.loads(sys.argv[1])["verification"]; assert v["ok"], v' "$registered"
WECOM_KEY="$(curl -fsS -b "$jar" -H 'Content-Type: application/json' -H "X-CSRF-Token: $csrf" \
  -d "{\"name\": \"wecom sdk\", \"apps\": [\"$WECOM_APP\"]}" "$TOKENVAULT_URL/api/v1/api-keys" | json_field key)"
wecom_token_calls() {
  curl -fsS -H 'Content-Type: application/json' \
    -d "{\"corpid\": \"$CORP_ID\", \"secret\": \"$WECOM_SECRET\"}" "$WECHAT_URL/sim/wecom/stats" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["gettoken_calls"])'
}
wecom_before="$(wecom_token_calls)"

export TOKENVAULT_URL WECHAT_URL APPID API_KEY MANAGED_TOKEN CORP_ID WECOM_APP WECOM_KEY
passed=0
failed=0
run_sdk() {
  local name=$1
  shift
  echo "compat: --- $name"
  if (cd "$here" && "$@"); then
    passed=$((passed + 1))
  else
    echo "compat: $name FAILED" >&2
    failed=$((failed + 1))
  fi
}
run_sdk "wechat-api (npm)" node "$here/wechat_api.js"
run_sdk "wechatpy (PyPI)" "$COMPAT_PYTHON" "$here/wechatpy_test.py"
run_sdk "wechatpy WeCom client (PyPI)" "$COMPAT_PYTHON" "$here/wechatpy_work_test.py"

# Every token the SDKs used came from tokenvault: none of them asked "WeChat".
calls_after="$(token_calls)"
if [ "$calls_before" != "$calls_after" ]; then
  echo "compat: the SDKs made $((calls_after - calls_before)) token calls to WeChat directly" >&2
  failed=$((failed + 1))
fi
wecom_after="$(wecom_token_calls)"
if [ "$wecom_before" != "$wecom_after" ]; then
  echo "compat: the WeCom SDK made $((wecom_after - wecom_before)) token calls to WeCom directly" >&2
  failed=$((failed + 1))
fi
if grep -q -e "$API_KEY" -e "$WECOM_KEY" "$work/tokenvault.log"; then
  echo "compat: the API key appears in tokenvault's log" >&2
  failed=$((failed + 1))
fi

echo "compat: $passed passed, $failed failed"
[ "$failed" = 0 ]
