#!/usr/bin/env bash
# Runs cargo-fuzz targets on the stable toolchain, each for SECONDS (default 600).
#   ./scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. ./scripts/fuzz.sh 60 sip_datagram
# Needs `cargo install cargo-fuzz`. Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-600}; shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(sip_datagram sip_stream sip_uri sip_views endpoint sdp rtp rtcp)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  seeds=()
  case $t in sip_*|endpoint) seeds=(seeds/sip) ;; esac
  # cargo-fuzz passes -Zsanitizer; RUSTC_BOOTSTRAP lets the stable compiler accept it.
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -dict=sip.dict -print_final_stats=1 2>&1 \
    | grep -E '^(stat::|#[0-9]+ +DONE|SUMMARY|==[0-9]+==ERROR|thread .* panicked)' || true
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "fuzz: $t found a crash: $(ls artifacts/$t/crash-* | head -1)"; exit 1
  fi
done
