#!/usr/bin/env bash
# parrot serve's work per call without sockets (benches/serve_call_count.rs), counted: prints
# instructions per call (callgrind, less the bench's own message writing and reading) and
# allocations per call (memcheck), each the difference between N and 2N calls over N.
#   bash parrot-ua/benches/serve_call_count.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-2000}; m=$((2 * n))
bin=$(cargo bench -p parrot-ua --bench serve_call_count --no-run 2>&1 |
  grep -oE '[^ (]*/deps/serve_call_count-[0-9a-f]+' | tail -1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for k in $n $m; do
  valgrind --tool=callgrind --callgrind-out-file="$out/cg.$k" "$bin" "$k" >/dev/null 2>&1
  valgrind --tool=memcheck "$bin" "$k" 2>&1 | grep 'total heap usage' |
    awk '{gsub(",", "", $5); print $5}' > "$out/al.$k"
done
total() { grep -E '^(summary|totals):' "$out/cg.$1" | head -1 | awk '{print $2}'; }
harness() { # inclusive instructions of the bench's own invite/in_dialog/dialog_of
  callgrind_annotate --inclusive=yes "$out/cg.$1" 2>/dev/null |
    grep -E 'serve_call_count::(invite|in_dialog|dialog_of) \[' |
    awk '{gsub(",", "", $1); s += $1} END {print s + 0}'
}
a=$(( $(total $n) - $(harness $n) )); b=$(( $(total $m) - $(harness $m) ))
echo "instructions per call: $(( (b - a) / n ))"
echo "allocations per call: $(echo "scale=1; ($(cat "$out/al.$m") - $(cat "$out/al.$n")) / $n" | bc)"
