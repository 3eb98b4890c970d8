#!/bin/bash
# Media load: N concurrent calls, each with parrot streaming G.711 at 20 ms ("parrot serve --play assets/tone1k.wav",
# looped). SIPp's built-in uac holds the calls open (-d HOLD ms, -l N); tshark captures the RTP parrot sends for a
# window in the middle of the calls (plus one second first, left out of the analysis: setting up tshark's 256 MB
# capture ring holds a core in the kernel for ~30 ms, which stalls whatever runs there); rtpcheck.py timing computes, per packet, the lateness against its due time
# (arrival - timestamp/8000, relative to the stream's best packet): share within 2 ms, p50/p99/max.
# Parrot's RSS per call = (VmRSS during the calls - VmRSS idle) / N; CPU from /proc/PID/stat over the window.
# The capture goes to tmpfs (/dev/shm, when it has 2 GB free; CAPDIR to choose), which keeps its ~20 MB/s of disk
# writes (and their writeback every 5 s) out of what is measured.
# Stalls: 10 ms windows in which a tenth of the streams or more were over 2 ms late at once. Host steal: the share of the machine's CPU time the hypervisor took over the window (/proc/stat), a stall
# no priority inside the VM can prevent.
# Prints markdown table rows for BENCHMARKS.md. Not part of test-all.
# usage: scripts/load/media.sh    Env: NS("10 50 100 200") WINDOW(15) capture seconds, RAMP(200) calls/s while
# setting up, HOLD (seconds per call; default: the ramp + WINDOW + 10), PARROT, SERVE_ARGS (more parrot serve
# arguments, e.g. "--media-threads 0"), KEEP (keep the captures), RT (parrot serve --realtime RT: its media sending threads at this SCHED_FIFO priority, its SIP/media loop one above, as media servers
# are run in production: FreeSWITCH -rp, Asterisk -p)
set -u
. "$(dirname "$0")/../interop/lib.sh"
NS=${NS:-10 50 100 200}; WINDOW=${WINDOW:-15}; RAMP=${RAMP:-200}   # RAMP: calls set up per second
apt_install sip-tester tshark
parrot_build
cd "$WORK"
HZ=$(getconf CLK_TCK)
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
steal() { awk '/^cpu /{print $9}' /proc/stat; }
CAP=${CAPDIR:-}
if [ -z "$CAP" ]; then
  if [ -w /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR==2{print $4}')" -gt 2000000 ]; then
    CAP=$(mktemp -d /dev/shm/parrot-media.XXXXXX)
  else CAP=$WORK; fi
fi
echo "| test | concurrent calls | packets | within 2 ms of due | p99 lateness | max lateness | parrot CPU | RSS per call | stalls | host steal |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for n in $NS; do
  hold=${HOLD:-$(( n / RAMP + WINDOW + 10 ))}
  RTP=$(free_range $((2 * n + 20))); UAC=$(free_port); MP=$(free_range 4)
  serve_start "serve.$n.log" --play "$REPO/assets/tone1k.wav" --rtp-ports "$RTP" ${RT:+--realtime "$RT"} ${SERVE_ARGS:-}
  sleep 0.5; r0=$(rss "$SERVE_PID")
  sipp -sn uac "127.0.0.1:$SERVE_PORT" -i 127.0.0.1 -p "$UAC" -mi 127.0.0.1 -mp "${MP%-*}" -r $((n > RAMP ? RAMP : n)) -l "$n" -m "$n" \
       -d $((hold * 1000)) -buff_size 4194304 -nostdin -timeout $((hold + 60))s -trace_err -error_file "uac.$n.err" > "uac.$n.out" 2>&1 &
  UACPID=$!; _PIDS+=("$UACPID")
  sleep $(( n / RAMP + 3 ))                     # all calls set up
  r1=$(rss "$SERVE_PID"); c0=$(cpu_ticks "$SERVE_PID"); s0=$(steal); t0=$(date +%s.%N)
  "${TSHARK_CAP[@]}" -n -B 256 -i lo -f "udp src portrange ${RTP%-*}-${RTP#*-}" -w "$CAP/rtp.$n.pcap" -a "duration:$((WINDOW + 1))" -q 2>"tshark.$n.log"
  t1=$(date +%s.%N); c1=$(cpu_ticks "$SERVE_PID"); s1=$(steal)
  wait "$UACPID"; serve_stop
  : > "$_PORTS_FILE"                            # this step's ports are free again for the next N
  tshark -r "$CAP/rtp.$n.pcap" -n -d "udp.port==$RTP,rtp" -Y rtp -T fields -e frame.time_epoch -e rtp.ssrc -e rtp.timestamp -e rtp.p_type \
    > "$CAP/rtp.$n.tsv" 2>/dev/null
  res=$(python3 "$INTEROP_DIR/rtpcheck.py" timing "$CAP/rtp.$n.tsv" --skip 1)
  [ -n "${KEEP:-}" ] || rm -f "$CAP/rtp.$n.pcap" "$CAP/rtp.$n.tsv"   # ~300 MB each at 2,000 calls
  log "N=$n: $res; sipp $(sipp_summary "uac.$n.out")"
  cpu=$(python3 -c "print(f'{100*($c1-$c0)/$HZ/($t1-$t0):.0f}')")
  st=$(python3 -c "print(f'{100*($s1-$s0)/$HZ/($t1-$t0)/$(nproc):.1f}')")
  set -- $res
  streams=$2; pkts=$4; within=$7; p99=${11}; max=${13}; stalls=${15:-?}
  echo "| media | $n (${streams} streams seen) | $pkts in ${WINDOW}s | $within | $p99 | $max | ${cpu}% | $(( (r1 - r0) / n )) KB | ${stalls} | ${st}% |"
done
if [ -z "${KEEP:-}" ] && [ "$CAP" != "$WORK" ] && [ -z "${CAPDIR:-}" ]; then rmdir "$CAP" 2>/dev/null; fi
[ -z "${KEEP:-}" ] || log "captures kept in $CAP"
