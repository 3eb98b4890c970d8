# Shared helpers for the interop scripts (source it: . "$(dirname "$0")/lib.sh").
# - installs Debian packages on demand (apt-get update once when the package lists are empty)
# - picks free loopback ports (never assumes 5060/5070/6000 are free: other programs may hold them)
# - remembers every background PID it starts and stops exactly those on exit
# - builds the parrot binary once (cargo build --release -p parrot) and parses its event lines
# Every script ends with one verdict line: "PASS <name>: ..." or "FAIL <name>: <reason>".
set -u
INTEROP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$INTEROP_DIR/../.." && pwd)"
PEERS="$INTEROP_DIR/peers"
SCEN="$PEERS/scenarios"
NAME="${NAME:-$(basename "$0" .sh)}"
WORK="${WORK:-$(mktemp -d "/tmp/parrot-interop.$NAME.XXXXXX")}"
mkdir -p "$WORK"
_PIDS=()
_PORTS_FILE="$WORK/.ports-taken"   # ports already handed out (a file: the pickers run in $(...) subshells)
: > "$_PORTS_FILE"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
pass() { echo "PASS $NAME: $*"; exit 0; }
fail() { echo "FAIL $NAME: $* (logs in $WORK)"; exit 1; }

apt_install() {   # apt_install pkg...  (no-op for packages already installed)
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo"
  if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ]; then
    $sudo apt-get update >/dev/null || fail "apt-get update failed"
  fi
  # tshark asks whether non-root users may capture; answer "no" non-interactively
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >"$WORK/apt.log" 2>&1 \
    || { $sudo apt-get update >/dev/null 2>&1; $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >"$WORK/apt.log" 2>&1; } \
    || { tail -20 "$WORK/apt.log" >&2; fail "apt-get install ${missing[*]}"; }
}
command -v ss >/dev/null && command -v ps >/dev/null || apt_install iproute2 procps
command -v python3 >/dev/null || apt_install python3

_port_busy() {    # _port_busy PORT -> 0 if anything (udp or tcp) is bound to PORT, or we handed it out already
  grep -qx "$1" "$_PORTS_FILE" && return 0
  ss -Hanu "sport = :$1" | grep -q . && return 0
  ss -Hant "sport = :$1" | grep -q . && return 0
  return 1
}
free_port() {     # free_port -> a port free for both UDP and TCP on loopback (also not bound on 0.0.0.0)
  local p i
  for i in $(seq 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))   # below the ephemeral range (32768+)
    _port_busy $p && continue
    echo "$p" >> "$_PORTS_FILE"; echo $p; return 0
  done
  fail "no free port found"
}
free_range() {    # free_range N -> "LO-HI": N consecutive free ports starting at an even port
  local lo i j ok used
  used=" $(ss -Hanu; ss -Hant) "; used=" $(echo "$used" | awk '{n=split($4, a, ":"); print a[n]}' | sort -un | tr '\n' ' ') $(tr '\n' ' ' < "$_PORTS_FILE")"
  for i in $(seq 200); do
    lo=$(( (20000 + (RANDOM * 32768 + RANDOM) % (12000 - $1)) & ~1 )); ok=1
    for j in $(seq 0 $(($1 - 1))); do case "$used" in *" $((lo + j)) "*) ok=0; break ;; esac; done
    [ $ok = 1 ] || continue
    seq "$lo" $((lo + $1 - 1)) >> "$_PORTS_FILE"
    echo "$lo-$((lo + $1 - 1))"; return 0
  done
  fail "no free port range of $1 found"
}

bg() {            # bg LOGFILE cmd args...   start in background, PID in $LAST_PID (stopped on exit)
  local out=$1; shift
  "$@" >"$out" 2>&1 &
  LAST_PID=$!
  _PIDS+=("$LAST_PID")
}
stop_pid() {      # stop_pid PID [SIGNAL]  - signal one of OUR pids, wait up to 5 s, then SIGKILL it
  local pid=$1 sig=${2:-TERM} i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -"$sig" "$pid" 2>/dev/null
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
cleanup() {
  local p
  for p in "${_PIDS[@]:-}"; do [ -n "$p" ] && stop_pid "$p" >/dev/null 2>&1; done
  return 0
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

wait_port() {     # wait_port udp|tcp PORT [tries of 0.1 s]
  local i f=-u; [ "$1" = tcp ] && f=-t
  for i in $(seq "${3:-50}"); do ss -Hln $f "sport = :$2" | grep -q . && return 0; sleep 0.1; done
  return 1
}
wait_line() {     # wait_line FILE REGEX [tries of 0.1 s] - wait until FILE has a line matching REGEX
  local i
  for i in $(seq "${3:-100}"); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# ---- SIPp
sipp_field() {    # sipp_field SIPP_STDOUT "Successful call" -> cumulative value of that statistics row
  grep -E "^\s+$2" "$1" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}'
}
sipp_summary() {  # sipp_summary SIPP_STDOUT -> "ok=N failed=M"
  local s f; s=$(sipp_field "$1" "Successful call"); f=$(sipp_field "$1" "Failed call")
  echo "ok=${s:-?} failed=${f:-?}"
}
sipp_ok() { local s; s=$(sipp_field "$1" "Successful call"); echo "${s:-0}"; }
sipp_failed() { local s; s=$(sipp_field "$1" "Failed call"); echo "${s:-0}"; }
sipp_errors() {   # sipp_errors SIPP_ERRFILE - the distinct error lines (without timestamps), most frequent first
  [ -s "$1" ] || return 0
  # entries are "DATE<TAB>TIME<TAB>EPOCH: text[ + the SIP message]", not always newline-separated: keep the text line,
  # mask Call-IDs so equal errors group
  head -c 4000000 "$1" | sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2}\s+[0-9:.]+\s+[0-9.]+: /\n@@/g' | grep '^@@' | sed 's/^@@//' \
    | grep -v '^The following events occurred' | sed -E "s/Call-I[Dd][: ]+'?[^' ]+'?/Call-ID <id>/g" | cut -c1-240 \
    | sort | uniq -c | sort -rn | head -5
}
sipp_uas_start() {  # sipp_uas_start LOG PORT [extra sipp args...] - built-in (or -sf) uas, PID in SIPP_UAS_PID
  local out=$1 port=$2; shift 2
  bg "$out" sipp -sn uas -i 127.0.0.1 -p "$port" -nostdin -timeout 300s "$@"; SIPP_UAS_PID=$LAST_PID
  wait_port udp "$port" || fail "sipp uas did not start on $port ($(tail -3 "$out"))"
}

# ---- tshark
# Capturing needs root (the package is installed without setuid dumpcap); elsewhere use passwordless sudo (CI runners).
TSHARK_CAP=(tshark); if [ "$(id -u)" != 0 ]; then TSHARK_CAP=(sudo -n tshark); fi
cap_start() {     # cap_start "BPF filter" OUT.pcap MAX_SECONDS  - tshark on lo, returns when capture is live
  local i
  bg "$2.log" "${TSHARK_CAP[@]}" -n -i lo -f "$1" -w "$2" -a "duration:$3" -q
  CAP_PID=$LAST_PID
  for i in $(seq 150); do grep -q 'Capturing on' "$2.log" 2>/dev/null && { sleep 0.3; return 0; }; sleep 0.1; done
  fail "tshark did not start ($(tail -2 "$2.log"))"
}
cap_stop() { sleep 0.3; stop_pid "$CAP_PID" INT; }

# ---- Parrot
# PARROT: the system-under-test binary. Override (e.g. PARROT=/path/to/standin) to exercise the mechanics.
parrot_build() {
  if [ -n "${PARROT:-}" ]; then   # given by the caller: make it absolute (the scripts cd into $WORK)
    case "$PARROT" in /*) ;; *) PARROT="$(cd "$(dirname "$PARROT")" && pwd)/$(basename "$PARROT")" ;; esac
    parrot_runtime
    return 0
  fi
  command -v cargo >/dev/null || fail "cargo not found"
  (cd "$REPO" && cargo build --release -p parrot --quiet) >"$WORK/build.log" 2>&1 \
    || { tail -20 "$WORK/build.log" >&2; fail "cargo build --release -p parrot failed"; }
  PARROT="$REPO/target/release/parrot"
  [ -x "$PARROT" ] || fail "no $PARROT after build"
  parrot_runtime
}
# RUNTIME=tokio|smol|mio: every serve/call/register/options of the scenario runs on that adapter (a wrapper adds
# --runtime; exec keeps the PID, so stop_pid still stops the right process).
parrot_runtime() {
  [ -n "${RUNTIME:-}" ] || return 0
  local real=$PARROT
  PARROT="$WORK/parrot-$RUNTIME"
  printf '#!/bin/bash\ncase "$1" in serve|call|register|options) exec "%s" "$@" --runtime %s ;; *) exec "%s" "$@" ;; esac\n' \
    "$real" "$RUNTIME" "$real" > "$PARROT"
  chmod +x "$PARROT"
  log "runtime: $RUNTIME"
}
serve_start() {   # serve_start LOG [serve args...] - parrot serve on 127.0.0.1:0; sets SERVE_PID SERVE_PORT
  local out=$1; shift
  bg "$out" "$PARROT" serve --bind 127.0.0.1:0 "$@"; SERVE_PID=$LAST_PID
  wait_line "$out" '^listening on udp 127\.0\.0\.1:[0-9]+' 150 \
    || fail "parrot serve did not print 'listening on udp 127.0.0.1:PORT' ($(head -c 600 "$out"))"
  SERVE_PORT=$(grep -m1 -oE '^listening on udp 127\.0\.0\.1:[0-9]+' "$out" | grep -oE '[0-9]+$')
  log "parrot serve pid $SERVE_PID on udp 127.0.0.1:$SERVE_PORT ($*)"
}
serve_stop() {    # serve_stop - SIGTERM, must exit 0 (graceful shutdown); sets SERVE_RC
  local i
  kill -TERM "$SERVE_PID" 2>/dev/null
  for i in $(seq 100); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SERVE_PID" 2>/dev/null; then kill -KILL "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null; SERVE_RC=killed
  else wait "$SERVE_PID" 2>/dev/null; SERVE_RC=$?; fi
}
calls_line() {    # calls_line LOG -> the "calls: N ok, M failed" line of parrot call
  grep -E '^calls: [0-9]+ ok, [0-9]+ failed' "$1" | tail -1
}
cpu_ticks() {     # cpu_ticks PID -> utime+stime in clock ticks
  awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0
}
tree_ticks() {    # tree_ticks PID... -> summed utime+stime
  local t=0 p; for p in "$@"; do t=$((t + $(cpu_ticks "$p"))); done; echo $t
}
sock_drops() {    # sock_drops PORT -> receive drops of the UDP socket(s) bound to PORT (/proc/net/udp "drops" column)
  awk -v p="$(printf ':%04X' "$1")" 'substr($2, length($2) - 4) == p {d += $NF} END {print d + 0}' /proc/net/udp /proc/net/udp6
}
shed_count() {    # shed_count SERVE_LOG -> new requests parrot serve's overload shedding answered 503 (from its warnings)
  grep -oE 'overloaded: [0-9]+' "$1" | awk '{s += $2} END {print s + 0}'
}
