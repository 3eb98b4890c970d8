#!/usr/bin/env bash
# Runs every test of Parrot: unit, property, conformance and simulation tests, lints, and the
# interop scenarios against real peers on loopback (installed on demand with apt-get).
# Usage: ./scripts/test-all.sh            (from a fresh clone; needs only the Rust toolchain)
#        SKIP_INTEROP=1 ./scripts/test-all.sh   (Rust tests only)
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

if [ "${SKIP_INTEROP:-0}" != 1 ] && [ -d scripts/interop ]; then
  for t in scripts/interop/[0-9]*.sh; do
    [ -e "$t" ] || continue
    step "interop: $(basename "$t" .sh)" bash "$t"
  done
fi

echo
for f in "${failures[@]:-}"; do [ -n "$f" ] && echo "FAILED: $f"; done
echo "test-all: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
