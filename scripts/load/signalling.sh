#!/bin/bash
# Signalling load: highest call rate at which SIPp's built-in uac (zero-length calls) gets 0 failed calls from
# "parrot serve", and, as a baseline, from SIPp's own built-in uas run the same way.
# Rate ladder (RATES), each step SECS seconds of calls (calls = rate*secs) against a fresh target, stop at the first
# step with failed calls. -buff_size 4194304 on every sipp. Target CPU from /proc/PID/stat (utime+stime) over the step.
# Prints markdown table rows for BENCHMARKS.md. Not part of test-all (takes minutes).
# usage: scripts/load/signalling.sh    Env: RATES("100 200 400 800 1600 3200 6400") SECS(60) TARGETS("parrot sipp") PARROT
set -u
. "$(dirname "$0")/../interop/lib.sh"
RATES=${RATES:-100 200 400 800 1600 3200 6400}; SECS=${SECS:-60}; TARGETS=${TARGETS:-parrot sipp}; BUF=4194304
apt_install sip-tester
parrot_build
cd "$WORK"
HZ=$(getconf CLK_TCK)
RTP=$(free_range 200); TPORT=$(free_port); UAC=$(free_port); MP=$(free_range 4); TMP=$(free_range 4)
rcvbuf_errors() { awk '/^Udp:/{getline; print $6; exit}' /proc/net/snmp; }
rows=()
for target in $TARGETS; do
  best=0; bestrow=""
  for rate in $RATES; do
    tag="$target.$rate"
    if [ "$target" = parrot ]; then
      serve_start "serve.$rate.log" --rtp-ports "$RTP"; TPID=$SERVE_PID; port=$SERVE_PORT
    else
      port=$TPORT; sipp_uas_start "uas.$rate.out" "$port" -mi 127.0.0.1 -mp "${TMP%-*}" -buff_size $BUF; TPID=$SIPP_UAS_PID
    fi
    c0=$(cpu_ticks "$TPID"); e0=$(rcvbuf_errors); t0=$(date +%s.%N)
    sipp -sn uac "127.0.0.1:$port" -i 127.0.0.1 -p "$UAC" -mi 127.0.0.1 -mp "${MP%-*}" -r "$rate" -m $((rate * SECS)) \
         -buff_size $BUF -nostdin -timeout $((SECS + 60))s -trace_err -error_file "uac.$tag.err" > "uac.$tag.out" 2>&1
    t1=$(date +%s.%N); c1=$(cpu_ticks "$TPID"); e1=$(rcvbuf_errors)
    rss=$(awk '/VmHWM/{print $2}' "/proc/$TPID/status" 2>/dev/null)
    if [ "$target" = parrot ]; then serve_stop; else stop_pid "$TPID" USR1; fi
    ok=$(sipp_ok "uac.$tag.out"); bad=$(sipp_failed "uac.$tag.out")
    achieved=$(grep -E 'Call Rate' "uac.$tag.out" | tail -1 | awk -F'|' '{print $3}' | grep -oE '[0-9.]+' | head -1)
    cpu=$(python3 -c "print(f'{100*($c1-$c0)/$HZ/($t1-$t0):.0f}')")
    row="| signalling | $([ $target = parrot ] && echo 'parrot serve' || echo 'sipp uas (baseline)') | ${rate} cps x ${SECS}s | ${achieved:-?} cps | $ok ok / $bad failed | ${cpu}% CPU | ${rss:-?} KB peak RSS | $((e1 - e0)) UDP rcvbuf errors |"
    echo "$row"
    sipp_errors "uac.$tag.err" >&2
    if [ "$bad" = 0 ] && [ "$ok" = $((rate * SECS)) ]; then best=$rate; bestrow=$row; else break; fi
  done
  rows+=("| **max clean rate** | $target | **$best cps** | | | | | |")
done
echo
echo "| test | target | offered | achieved | calls | target CPU | memory | drops |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
