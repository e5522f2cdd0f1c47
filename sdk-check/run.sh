#!/usr/bin/env bash
# Runs the official Python SDKs of LiveKit, Telnyx and Twilio against `cwa sandbox serve`.
#
#   sdk-check/run.sh            # all three SDKs
#   sdk-check/run.sh livekit    # only some of them (livekit, telnyx, twilio)
#
# The sandbox runs in strict mode (CWA_SANDBOX_STRICT=1): every SDK request and every answer
# is held to the spec extracts in tests/contracts/.
#
# Creates a venv (SDK_CHECK_VENV, default target/sdk-check-venv), installs the pinned SDKs,
# builds cwa, serves a fresh runbook world from a temporary directory on a free loopback
# port, runs check.py with the environment the server prints, stops the server and exits
# non-zero if any check failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venv="${SDK_CHECK_VENV:-$repo/target/sdk-check-venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"

cargo build --quiet --manifest-path "$repo/Cargo.toml" --bin cwa
target_dir="$(cargo metadata --manifest-path "$repo/Cargo.toml" --format-version 1 --no-deps \
    | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
cwa="$target_dir/debug/cwa"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -INT "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

CWA_SANDBOX_STRICT=1 "$cwa" sandbox serve --listen 127.0.0.1:0 --dir "$work/world" --world runbook \
    >"$work/exports" 2>"$work/server.log" &
server_pid=$!

for _ in $(seq 1 100); do
    if grep -q '^export TWILIO_TRUNKING_BASE_URL=' "$work/exports" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "sdk-check: the sandbox exited early:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if ! grep -q '^export TWILIO_TRUNKING_BASE_URL=' "$work/exports"; then
    echo "sdk-check: the sandbox printed no environment" >&2
    cat "$work/server.log" >&2
    exit 1
fi

set -a
# shellcheck disable=SC1091
. "$work/exports"
set +a
echo "sdk-check: sandbox at $LIVEKIT_URL"

status=0
"$venv/bin/python" "$here/check.py" "$@" || status=$?

kill -INT "$server_pid" 2>/dev/null || true
wait "$server_pid" 2>/dev/null || true
server_pid=""
if [ "$status" -ne 0 ]; then
    echo "sdk-check: $status check(s) failed" >&2
    exit 1
fi
echo "sdk-check: every SDK agrees with the sandbox"
