#!/bin/bash
# Registrar load: highest rate of digest-authenticated registrations at which SIPp (uac_register_auth.xml: REGISTER,
# 401 challenge, REGISTER with credentials, 200; two REGISTER transactions per registration) gets every one accepted,
# from REGISTRAR = "parrot serve --registrar --users FILE" and, as the reference doing the same job, Kamailio 5.6
# (peers/kamailio_registrar.cfg: pv_auth_check MD5 qop=auth + save("location"), usrloc in memory, children=2, -m 1024;
# the recipe of ../shared/peers/kamailio_run.sh).
# USERS users u0001.. with passwords pw0001..: one users file for parrot, and for Kamailio a copy of its cfg whose
# credentials htable (filled at startup in event_route[htable:mod-init], the recipe's fixed table) holds the same
# users (table size 2^10 instead of 2^4). SIPp reads them from an -inf CSV in sequence, so each user re-registers its
# one contact with a new Call-ID every USERS registrations: a refresh of the same binding.
# Rate ladder (RATES, registrations/s), each step SECS seconds against a fresh registrar, stop at the first step
# with a failed registration. -buff_size 4194304 on every sipp. Registrar CPU from /proc/PID/stat (utime+stime;
# Kamailio: all its processes). Prints markdown table rows for BENCHMARKS.md. Not part of test-all (takes minutes).
# usage: scripts/load/registrar.sh
# Env: RATES("500 1000 2000 3000 4000 5000 6000") SECS(5) USERS(1000) TARGETS("parrot kamailio") PARROT
set -u
. "$(dirname "$0")/../interop/lib.sh"
RATES=${RATES:-500 1000 2000 3000 4000 5000 6000}; SECS=${SECS:-5}; USERS=${USERS:-1000}
TARGETS=${TARGETS:-parrot kamailio}; BUF=4194304
apt_install sip-tester kamailio
parrot_build
cd "$WORK"
HZ=$(getconf CLK_TCK)
UAC_PORT=$(free_port); KAM_PORT=$(free_port)

# ---- the users, in the three forms
{ echo SEQUENTIAL; for i in $(seq -w 1 "$USERS"); do echo "u$i;[authentication username=u$i password=pw$i]"; done; } > users.csv
for i in $(seq -w 1 "$USERS"); do echo "u$i:pw$i"; done > users.txt
awk -v n="$USERS" '
  /creds=>size=/ { sub(/size=[0-9]+/, "size=10") }
  { print }
  /^event_route\[htable:mod-init\]/ { w = length(n ""); for (i = 1; i <= n; i++) printf "\t$sht(creds=>u%0*d) = \"pw%0*d\";\n", w, i, w, i }
' "$PEERS/kamailio_registrar.cfg" > kamailio_users.cfg
[ "$(grep -c 'creds=>u' kamailio_users.cfg)" = "$USERS" ] || fail "kamailio cfg: users not inserted"
kamailio -c -f kamailio_users.cfg -Y "$WORK" -A "LISTEN_ADDR=udp:127.0.0.1:$KAM_PORT" > kamcheck.log 2>&1 \
  || fail "kamailio config check: $(tail -3 kamcheck.log)"

load1() { awk '{print $1}' /proc/loadavg; }
rows=()
log "$(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for target in $TARGETS; do
  best=0
  for rate in $RATES; do
    tag="$target.$rate"
    if [ "$target" = parrot ]; then
      # REGISTER transactions linger for Timer J (32 s on UDP): room for every one of the step.
      serve_start "serve.$tag.log" --registrar --users "$WORK/users.txt" --max-transactions 2000000
      port=$SERVE_PORT; pids=("$SERVE_PID")
    else
      mkdir -p "kam.$tag"; port=$KAM_PORT
      bg "kamailio.$tag.log" kamailio -f "$WORK/kamailio_users.cfg" -DD -E -Y "$WORK/kam.$tag" -P "$WORK/kam.$tag/k.pid" \
         -m 1024 -M 16 -A "LISTEN_ADDR=udp:127.0.0.1:$KAM_PORT"; KAM=$LAST_PID
      wait_port udp "$KAM_PORT" || fail "kamailio did not start: $(tail -3 "kamailio.$tag.log")"
      sleep 0.5; pids=("$KAM"); for c in $(ps --ppid "$KAM" -o pid=); do _PIDS+=("$c"); pids+=("$c"); done
    fi
    la0=$(load1); c0=$(tree_ticks "${pids[@]}"); t0=$(date +%s.%N)
    sipp -sf "$SCEN/uac_register_auth.xml" -inf users.csv "127.0.0.1:$port" -i 127.0.0.1 -p "$UAC_PORT" \
         -r "$rate" -m $((rate * SECS)) -buff_size $BUF -nostdin -timeout $((SECS + 60))s \
         -trace_err -error_file "uac.$tag.err" > "uac.$tag.out" 2>&1
    t1=$(date +%s.%N); c1=$(tree_ticks "${pids[@]}"); la1=$(load1); drops=$(sock_drops "$port")
    rss=0; for p in "${pids[@]}"; do rss=$((rss + $(awk '/VmHWM/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done
    if [ "$target" = parrot ]; then serve_stop; else stop_pid "$KAM"; fi
    ok=$(sipp_ok "uac.$tag.out"); bad=$(sipp_failed "uac.$tag.out")
    achieved=$(grep -E 'Call Rate' "uac.$tag.out" | tail -1 | awk -F'|' '{print $3}' | grep -oE '[0-9.]+' | head -1)
    cpu=$(python3 -c "print(f'{100*($c1-$c0)/$HZ/($t1-$t0):.0f}')")
    perreg=$(python3 -c "print(f'{1e6*($c1-$c0)/$HZ/max(1,$ok):.0f}')")
    name="parrot serve --registrar"; [ "$target" = kamailio ] && name="kamailio 5.6 (2 children)"
    row="| registrar | $name | ${rate}/s x ${SECS}s | ${achieved:-?}/s | $ok ok / $bad failed | ${cpu}% CPU | ${perreg} µs CPU/registration | ${rss} KB peak RSS | $drops | $la0 → $la1 |"
    echo "$row"
    sipp_errors "uac.$tag.err" >&2
    if [ "$bad" = 0 ] && [ "$ok" = $((rate * SECS)) ]; then best=$rate; else break; fi
  done
  rows+=("| **max clean rate** | $target | **$best registrations/s** ($((best * 2)) REGISTERs/s) | | | | | | | |")
done
echo
echo "| test | registrar | offered | achieved | registrations | registrar CPU | CPU per registration | memory | registrar socket receive drops | load average (1 min) before → after |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
