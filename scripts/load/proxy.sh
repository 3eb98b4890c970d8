#!/bin/bash
# Proxy load: highest call rate at which SIPp uac (uac_proxy_call.xml, zero-length calls: INVITE, 180, 200, ACK, BYE,
# 200) -> PROXY -> SIPp uas (uas_rr.xml) completes every call, with PROXY = "parrot serve --proxy-to" and, as the
# reference doing the same job, Kamailio 5.6 (peers/kamailio_registrar.cfg: record_route + t_relay to a static target,
# the recipe of ../shared/peers/kamailio_run.sh, children=2, -m 1024). Both proxies record-route, so ACK and BYE pass
# through them too (6 messages in, 6 out per call).
# Rate ladder (RATES), each step SECS seconds against a fresh proxy, stop at the first step with failed calls.
# -buff_size 4194304 on every sipp. Proxy CPU from /proc/PID/stat (utime+stime; Kamailio: all its processes).
# Prints markdown table rows for BENCHMARKS.md. Not part of test-all (takes minutes).
# usage: scripts/load/proxy.sh
# Env: RATES("250 500 1000 1500 2000 2500 3000") SECS(10) TARGETS("parrot kamailio") PARROT
set -u
. "$(dirname "$0")/../interop/lib.sh"
RATES=${RATES:-250 500 1000 1500 2000 2500 3000}; SECS=${SECS:-10}; TARGETS=${TARGETS:-parrot kamailio}; BUF=4194304
apt_install sip-tester kamailio
parrot_build
cd "$WORK"
HZ=$(getconf CLK_TCK)
UAS_PORT=$(free_port); UAC_PORT=$(free_port); KAM_PORT=$(free_port); UMP=$(free_range 4); CMP=$(free_range 4)
rows=()
for target in $TARGETS; do
  best=0
  for rate in $RATES; do
    tag="$target.$rate"
    bg "uas.$tag.out" sipp -sf "$SCEN/uas_rr.xml" -i 127.0.0.1 -p "$UAS_PORT" -mi 127.0.0.1 -mp "${UMP%-*}" -buff_size $BUF \
       -nostdin -timeout $((SECS + 90))s; UAS=$LAST_PID
    wait_port udp "$UAS_PORT" || fail "sipp uas did not start"
    if [ "$target" = parrot ]; then
      serve_start "serve.$tag.log" --proxy-to "sip:loadtest@127.0.0.1:$UAS_PORT"; port=$SERVE_PORT; pids=("$SERVE_PID")
    else
      mkdir -p "kam.$tag"; port=$KAM_PORT
      bg "kamailio.$tag.log" kamailio -f "$PEERS/kamailio_registrar.cfg" -DD -E -Y "$WORK/kam.$tag" -P "$WORK/kam.$tag/k.pid" \
         -m 1024 -M 16 -A "LISTEN_ADDR=udp:127.0.0.1:$KAM_PORT" -A "UAS_URI=\"sip:127.0.0.1:$UAS_PORT\""; KAM=$LAST_PID
      wait_port udp "$KAM_PORT" || fail "kamailio did not start: $(tail -3 "kamailio.$tag.log")"
      sleep 0.5; pids=("$KAM"); for c in $(ps --ppid "$KAM" -o pid=); do _PIDS+=("$c"); pids+=("$c"); done
    fi
    c0=$(tree_ticks "${pids[@]}"); t0=$(date +%s.%N)
    sipp -sf "$SCEN/uac_proxy_call.xml" -inf "$SCEN/users.csv" -s loadtest "127.0.0.1:$port" -i 127.0.0.1 -p "$UAC_PORT" \
         -mi 127.0.0.1 -mp "${CMP%-*}" -r "$rate" -m $((rate * SECS)) -buff_size $BUF -pause_msg_ign -nostdin \
         -timeout $((SECS + 60))s -trace_err -error_file "uac.$tag.err" > "uac.$tag.out" 2>&1
    t1=$(date +%s.%N); c1=$(tree_ticks "${pids[@]}"); drops=$(sock_drops "$port")
    rss=0; for p in "${pids[@]}"; do rss=$((rss + $(awk '/VmHWM/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done
    stop_pid "$UAS" USR1
    if [ "$target" = parrot ]; then serve_stop; else stop_pid "$KAM"; fi
    ok=$(sipp_ok "uac.$tag.out"); bad=$(sipp_failed "uac.$tag.out")
    achieved=$(grep -E 'Call Rate' "uac.$tag.out" | tail -1 | awk -F'|' '{print $3}' | grep -oE '[0-9.]+' | head -1)
    cpu=$(python3 -c "print(f'{100*($c1-$c0)/$HZ/($t1-$t0):.0f}')")
    percall=$(python3 -c "print(f'{1e6*($c1-$c0)/$HZ/max(1,$ok):.0f}')")
    name="parrot serve --proxy-to"; [ "$target" = kamailio ] && name="kamailio 5.6 (2 children)"
    row="| proxy | $name | ${rate} cps x ${SECS}s | ${achieved:-?} cps | $ok ok / $bad failed | ${cpu}% CPU | ${percall} µs CPU/call | ${rss} KB peak RSS | $drops |"
    echo "$row"
    sipp_errors "uac.$tag.err" >&2
    if [ "$bad" = 0 ] && [ "$ok" = $((rate * SECS)) ]; then best=$rate; else break; fi
  done
  rows+=("| **max clean rate** | $target | **$best cps** | | | | | | |")
done
echo
echo "| test | proxy | offered | achieved | calls | proxy CPU | CPU per call | memory | proxy socket receive drops |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
