#!/usr/bin/env bash
# Instructions per "parse + read typical headers", counted by callgrind: repeatable on a busy
# machine where wall-clock benches are noisy. Prints one line per parser and message.
#   bash benches/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p parrot-benches --bin count >/dev/null 2>&1
bin=target/release/count
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ir() { # parser message iterations -> total instructions
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" "$1" "$2" "$3" >/dev/null 2>"$out/log"
  grep -E '^summary:|^totals:' "$out/cg" | head -1 | awk '{print $2}'
}
printf '%-12s %-10s %12s %8s\n' message parser instr/msg ratio
for msg in invite_sdp ok200_sdp register; do
  base=""
  for p in parrot rsipstack sipx-sip rsip; do
    a=$(ir "$p" "$msg" 200); b=$(ir "$p" "$msg" 1200)
    per=$(( (b - a) / 1000 ))
    [ -z "$base" ] && base=$per
    printf '%-12s %-10s %12d %7.2fx\n' "$msg" "$p" "$per" "$(echo "$per / $base" | bc -l)"
  done
done
