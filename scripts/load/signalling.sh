#!/bin/bash
# Signalling load: highest call rate at which SIPp's built-in uac (zero-length calls) gets 0 failed calls from
# "parrot serve", and, as a baseline, from SIPp's own built-in uas run the same way.
# Rate ladder (RATES), each step SECS seconds of calls (calls = rate*secs) against a fresh target, stop at the first
# step with failed calls. -buff_size 4194304 on every sipp. Target CPU from /proc/PID/stat (utime+stime) over the step.
# Prints markdown table rows for BENCHMARKS.md (for parrot, the new calls overload shedding refused with 503, from its
# log). Not part of test-all (takes minutes).
# usage: scripts/load/signalling.sh
# Env: PARROT_RATES("50 100 150 200 300 400 600 800 1200") SIPP_RATES("500 1000 2000 4000 8000") SECS(60)
#      TARGETS("parrot sipp") RTP_PORTS(4000: size of parrot's --rtp-ports range; each call holds a pair) PARROT, SERVE_ARGS (more
#      parrot serve arguments)
set -u
. "$(dirname "$0")/../interop/lib.sh"
PARROT_RATES=${PARROT_RATES:-50 100 150 200 300 400 600 800 1200}; SIPP_RATES=${SIPP_RATES:-500 1000 2000 4000 8000}
SECS=${SECS:-60}; RTP_PORTS=${RTP_PORTS:-4000}; TARGETS=${TARGETS:-parrot sipp}; BUF=4194304
apt_install sip-tester
parrot_build
cd "$WORK"
HZ=$(getconf CLK_TCK)
RTP=$(free_range "$RTP_PORTS"); TPORT=$(free_port); UAC=$(free_port); MP=$(free_range 4); TMP=$(free_range 4)
rows=()
for target in $TARGETS; do
  best=0; bestrow=""
  rates=$PARROT_RATES; [ "$target" = sipp ] && rates=$SIPP_RATES
  for rate in $rates; do
    tag="$target.$rate"
    if [ "$target" = parrot ]; then
      serve_start "serve.$rate.log" --rtp-ports "$RTP" ${SERVE_ARGS:-}; TPID=$SERVE_PID; port=$SERVE_PORT
    else
      port=$TPORT; sipp_uas_start "uas.$rate.out" "$port" -mi 127.0.0.1 -mp "${TMP%-*}" -buff_size $BUF; TPID=$SIPP_UAS_PID
    fi
    c0=$(cpu_ticks "$TPID"); t0=$(date +%s.%N)
    sipp -sn uac "127.0.0.1:$port" -i 127.0.0.1 -p "$UAC" -mi 127.0.0.1 -mp "${MP%-*}" -r "$rate" -m $((rate * SECS)) \
         -buff_size $BUF -nostdin -timeout $((SECS + 60))s -trace_err -error_file "uac.$tag.err" > "uac.$tag.out" 2>&1
    t1=$(date +%s.%N); c1=$(cpu_ticks "$TPID"); drops=$(sock_drops "$port")
    rss=$(awk '/VmHWM/{print $2}' "/proc/$TPID/status" 2>/dev/null)
    shed=""
    if [ "$target" = parrot ]; then
      serve_stop
      # Overload shedding's warnings (one a second at most) count the new calls refused 503.
      shed="$(shed_count "serve.$rate.log") shed 503 |"
    else
      stop_pid "$TPID" USR1
    fi
    ok=$(sipp_ok "uac.$tag.out"); bad=$(sipp_failed "uac.$tag.out")
    achieved=$(grep -E 'Call Rate' "uac.$tag.out" | tail -1 | awk -F'|' '{print $3}' | grep -oE '[0-9.]+' | head -1)
    cpu=$(python3 -c "print(f'{100*($c1-$c0)/$HZ/($t1-$t0):.0f}')")
    row="| signalling | $([ $target = parrot ] && echo 'parrot serve' || echo 'sipp uas (baseline)') | ${rate} cps x ${SECS}s | ${achieved:-?} cps | $ok ok / $bad failed | ${cpu}% CPU | ${rss:-?} KB peak RSS | $drops SIP socket drops |${shed}"
    echo "$row"
    sipp_errors "uac.$tag.err" >&2
    if [ "$bad" = 0 ] && [ "$ok" = $((rate * SECS)) ]; then best=$rate; bestrow=$row; else break; fi
  done
  rows+=("| **max clean rate** | $target | **$best cps** | | | | | |")
done
echo
echo "| test | target | offered | achieved | calls | target CPU | memory | SIP socket receive drops |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
