#!/usr/bin/env bash
# Interop of the stream layer's server side with real clients, on loopback only:
#   openssl s_client (TLS 1.3 and 1.2, certificate verified) against the `tls_echo` example,
#   and a standard-library Python WebSocket client over WS and WSS.
# Usage: parrot-transport/scripts/interop.sh   (needs openssl and python3; builds the example)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v openssl >/dev/null || { echo "interop: openssl missing, skipped"; exit 0; }
cargo build -q -p parrot-transport --example tls_echo
bin=${CARGO_TARGET_DIR:-target}/debug/examples/tls_echo
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

start() { # start KIND -> sets port
  "$bin" "$1" --cert-out "$tmp/$1.pem" >"$tmp/$1.out" 2>"$tmp/$1.err" &
  pids+=($!)
  for _ in $(seq 50); do grep -q listening "$tmp/$1.out" 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/^listening 127.0.0.1://p' "$tmp/$1.out")
  [ -n "$port" ] || { echo "interop: $1 server did not start"; exit 1; }
}

msg=$'OPTIONS sip:echo@127.0.0.1 SIP/2.0\r\nCall-ID: s-client-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n'
start tls
for v in -tls1_3 -tls1_2; do
  out=$( (printf '%s' "$msg"; sleep 1) | timeout 10 openssl s_client "$v" -connect "127.0.0.1:$port" \
      -servername localhost -CAfile "$tmp/tls.pem" -verify_return_error -brief 2>&1 || true)
  if grep -q "Call-ID: s-client-1" <<<"$out" && grep -q "Verification: OK" <<<"$out"; then
    echo "tls ok: openssl s_client $v, certificate verified, SIP echoed"
  else
    echo "interop: openssl s_client $v failed:"; echo "$out"; exit 1
  fi
done

if command -v python3 >/dev/null; then
  start ws
  python3 parrot-transport/scripts/ws_client.py 127.0.0.1 "$port"
  start wss
  python3 parrot-transport/scripts/ws_client.py 127.0.0.1 "$port" --tls "$tmp/wss.pem"
fi
echo "interop: all passed"
