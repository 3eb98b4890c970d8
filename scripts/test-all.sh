#!/usr/bin/env bash
# Runs every test of Parrot: unit, property, conformance and simulation tests, lints, and the
# interop scenarios against real peers on loopback (installed on demand with apt-get), then the
# cross-runtime scenarios again on the smol and mio adapters, and prints a scenario x runtime table.
# Usage: ./scripts/test-all.sh            (from a fresh clone; needs only the Rust toolchain)
#        SKIP_INTEROP=1 ./scripts/test-all.sh   (Rust tests only)
#        RUNTIMES="tokio smol" ./scripts/test-all.sh   (the runtimes of the table; default all three)
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()
step() { # step NAME command...
  local name=$1; shift
  printf '==> %s\n' "$name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy -D warnings" cargo clippy --workspace --all-targets --quiet -- -D warnings
step "cargo test (unit, property, conformance, simulation)" cargo test --workspace --quiet

# The scenarios every runtime runs (the rest run on tokio, the CLI's default).
CROSS="10-sipp-uac-to-serve 20-call-to-sipp-uas 30-baresip 50-faults 85-transports"
RUNTIMES=${RUNTIMES:-tokio smol mio}
results=$(mktemp -d)
scenario() { # scenario SCRIPT RUNTIME - runs it, keeps its verdict line for the table
  local t=$1 rt=$2 name out
  name=$(basename "$t" .sh)
  out="$results/$name.$rt"
  RUNTIME=$rt bash "$t" 2>&1 | tee "$out.log"
  local rc=${PIPESTATUS[0]}
  grep -E '^(PASS|FAIL) ' "$out.log" | tail -1 > "$out"
  [ -s "$out" ] || echo "FAIL $name: exit $rc, no verdict" > "$out"
  return "$rc"
}

if [ "${SKIP_INTEROP:-0}" != 1 ] && [ -d scripts/interop ]; then
  (cargo build --release -p parrot --quiet) || true
  for t in scripts/interop/[0-9]*.sh; do
    [ -e "$t" ] || continue
    step "interop: $(basename "$t" .sh) [tokio]" scenario "$t" tokio
  done
  for rt in $RUNTIMES; do
    [ "$rt" = tokio ] && continue
    for name in $CROSS; do
      step "interop: $name [$rt]" scenario "scripts/interop/$name.sh" "$rt"
    done
  done
  echo
  echo "Interop scenarios x runtime (PASS/FAIL and the scenario's own figures):"
  printf '| %-22s |' scenario; for rt in $RUNTIMES; do printf ' %-48s |' "$rt"; done; echo
  printf '|%s|' "------------------------"; for rt in $RUNTIMES; do printf '%s|' "--------------------------------------------------"; done; echo
  for t in scripts/interop/[0-9]*.sh; do
    name=$(basename "$t" .sh)
    printf '| %-22s |' "$name"
    for rt in $RUNTIMES; do
      f="$results/$name.$rt"
      if [ -s "$f" ]; then
        printf ' %-48s |' "$(sed -E "s/^(PASS|FAIL) $name: /\1 /" "$f" | cut -c1-48)"
      else
        printf ' %-48s |' "-"
      fi
    done
    echo
  done
  echo
  echo "Verdicts in full:"
  for rt in $RUNTIMES; do
    for f in "$results"/*."$rt"; do [ -s "$f" ] && echo "  [$rt] $(cat "$f")"; done
  done
fi

echo
for f in "${failures[@]:-}"; do [ -n "$f" ] && echo "FAILED: $f"; done
echo "test-all: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
