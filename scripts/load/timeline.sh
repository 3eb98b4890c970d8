#!/bin/bash
# Signalling load, second by second: SIPp's built-in uac at RATE calls/s for SECS seconds against "parrot serve",
# printing each second how long parrot's SIP thread ran and how long it waited for a core (from its schedstat), how
# long its media threads ran, how long SIPp ran, and the SIP socket's receive drops; then SIPp's totals and the calls
# overload shedding refused. Shows how an overload starts and whether the server recovers from it. Not part of test-all.
# usage: scripts/load/timeline.sh RATE SECS
set -u
. "$(dirname "$0")/../interop/lib.sh"
RATE=${1:?rate}; SECS=${2:?seconds}
apt_install sip-tester
parrot_build
cd "$WORK"
RTP=$(free_range 4000); UAC=$(free_port); MP=$(free_range 4)
serve_start serve.log --rtp-ports "$RTP"
bg uac.out timeout $((SECS + 60)) sipp -sn uac "127.0.0.1:$SERVE_PORT" -i 127.0.0.1 -p "$UAC" -mi 127.0.0.1 \
  -mp "${MP%-*}" -r "$RATE" -m $((RATE * SECS)) -buff_size 4194304 -nostdin -timeout $((SECS + 30))s
UAC_PID=$LAST_PID
sleep 0.2
SIPP_PID=$(pgrep -P "$UAC_PID" -x sipp | head -1)
SIP_TASK=$(dirname "$(grep -l '^parrot-sip$' /proc/"$SERVE_PID"/task/*/comm | head -1)")
ms() { echo $(( ($1 - $2) / 1000000 )); }
media_ns() {
  local t n=0
  for t in /proc/"$SERVE_PID"/task/*; do
    grep -q media "$t/comm" 2>/dev/null && n=$((n + $(awk '{print $1}' "$t/schedstat")))
  done
  echo $n
}
read -r r0 w0 _ < "$SIP_TASK/schedstat"; m0=$(media_ns); u0=$(awk '{print $1}' /proc/"$SIPP_PID"/schedstat 2>/dev/null || echo 0)
d0=$(sock_drops "$SERVE_PORT")
echo "| s | SIP thread ran (ms) | SIP thread waited for a core (ms) | media threads ran (ms) | sipp ran (ms) | SIP socket drops |"
echo "|---:|---:|---:|---:|---:|---:|"
for s in $(seq 1 "$SECS"); do
  sleep 1
  read -r r w _ < "$SIP_TASK/schedstat"; m=$(media_ns); u=$(awk '{print $1}' /proc/"$SIPP_PID"/schedstat 2>/dev/null || echo "$u0")
  d=$(sock_drops "$SERVE_PORT")
  echo "| $s | $(ms "$r" "$r0") | $(ms "$w" "$w0") | $(ms "$m" "$m0") | $(ms "$u" "$u0") | $((d - d0)) |"
  r0=$r; w0=$w; m0=$m; u0=$u; d0=$d
done
wait "$UAC_PID" 2>/dev/null
serve_stop
shed=$(shed_count serve.log)
echo
echo "calls: $(sipp_ok uac.out) ok / $(sipp_failed uac.out) failed; $shed refused 503 by overload shedding"
