#!/bin/bash
# Fault handling.
#  A) packet loss: SIPp built-in uac with -lost 10 (drops 10 % of the messages it sends and receives), 200 calls,
#     against parrot serve and, at the same time, against SIPp's own uas: parrot must complete at least as many calls
#     as SIPp's uas (both numbers printed; LOSS_TOLERANCE calls of random slack, default 0).
#  B) fault isolation: parrot serve --panic-every 10, 100 SIPp calls: exactly the 10 panicking calls get 500 and fail,
#     the other 90 succeed, and parrot serve still runs and exits 0 on SIGTERM afterwards.
# Env: CALLS(200) LOSS(10) LOSS_TOLERANCE(0) PANIC_CALLS(100) PANIC_EVERY(10) PARROT (system under test)
. "$(dirname "$0")/lib.sh"
CALLS=${CALLS:-200}; LOSS=${LOSS:-10}; LOSS_TOLERANCE=${LOSS_TOLERANCE:-0}; PANIC_CALLS=${PANIC_CALLS:-100}; PANIC_EVERY=${PANIC_EVERY:-10}
apt_install sip-tester
parrot_build
cd "$WORK"
RTP=$(free_range 100); UAS_PORT=$(free_port); UAS_MP=$(free_range 4); UAC1=$(free_port); UAC2=$(free_port)
MP1=$(free_range 4); MP2=$(free_range 4)
errs=()

# --- A: 10 % loss, parrot serve and sipp uas side by side
serve_start serveA.log --rtp-ports "$RTP"
sipp_uas_start uasA.out "$UAS_PORT" -mi 127.0.0.1 -mp "${UAS_MP%-*}"
uac() { sipp -sn uac "127.0.0.1:$1" -i 127.0.0.1 -p "$2" -mi 127.0.0.1 -mp "$3" -r 20 -l 60 -m "$CALLS" -lost "$LOSS" \
        -nostdin -timeout 150s -trace_err -error_file "$4.err" > "$4.out" 2>&1; }
uac "$SERVE_PORT" "$UAC1" "${MP1%-*}" lossParrot & P1=$!; _PIDS+=("$P1")
uac "$UAS_PORT" "$UAC2" "${MP2%-*}" lossSipp & P2=$!; _PIDS+=("$P2")
wait $P1; wait $P2
stop_pid "$SIPP_UAS_PID" USR1
okP=$(sipp_ok lossParrot.out); badP=$(sipp_failed lossParrot.out); okS=$(sipp_ok lossSipp.out); badS=$(sipp_failed lossSipp.out)
log "A) -lost $LOSS, $CALLS calls: parrot serve ok=$okP failed=$badP; sipp uas ok=$okS failed=$badS"
log "   failures against parrot:"; sipp_errors lossParrot.err >&2
log "   failures against sipp uas:"; sipp_errors lossSipp.err >&2
kill -0 "$SERVE_PID" 2>/dev/null || errs+=("A: parrot serve died: $(tail -3 serveA.log | tr '\n' ' ')")
serve_stop
[ "$okP" -ge $((okS - LOSS_TOLERANCE)) ] 2>/dev/null || errs+=("A: parrot completed $okP calls under ${LOSS}% loss, sipp uas $okS")

# --- B: a panicking call handler must only take down its own call
serve_start serveB.log --rtp-ports "$RTP" --panic-every "$PANIC_EVERY"
sipp -sn uac "127.0.0.1:$SERVE_PORT" -i 127.0.0.1 -p "$UAC1" -mi 127.0.0.1 -mp "${MP1%-*}" -r 20 -l 40 -m "$PANIC_CALLS" \
     -nostdin -timeout 60s -trace_err -error_file panic.err > panic.out 2>&1
okB=$(sipp_ok panic.out); badB=$(sipp_failed panic.out)
n500=$(grep -o "received 'SIP/2.0 500" panic.err | wc -l)
wantbad=$((PANIC_CALLS / PANIC_EVERY))
alive=yes; kill -0 "$SERVE_PID" 2>/dev/null || alive=no
# a final call after the panics must still work
sipp -sn uac "127.0.0.1:$SERVE_PORT" -i 127.0.0.1 -p "$UAC1" -mi 127.0.0.1 -mp "${MP1%-*}" -m 1 -nostdin -timeout 10s > after.out 2>&1; rAfter=$?
serve_stop
log "B) --panic-every $PANIC_EVERY, $PANIC_CALLS calls: ok=$okB failed=$badB (500s seen: $n500, want $wantbad); alive=$alive; call after: rc=$rAfter; exit=$SERVE_RC"
sipp_errors panic.err >&2
grep -iE 'panic' serveB.log | sed -E 's/[0-9]+/N/g' | sort | uniq -c | head -3 >&2
[ "$badB" = "$wantbad" ] && [ "$okB" = $((PANIC_CALLS - wantbad)) ] || errs+=("B: $okB ok / $badB failed, want $((PANIC_CALLS - wantbad)) / $wantbad")
[ "$n500" -ge "$wantbad" ] || errs+=("B: only $n500 of the failed calls were answered 500")
[ "$alive" = yes ] && [ "$rAfter" = 0 ] || errs+=("B: parrot serve not usable after the panics (alive=$alive, next call rc=$rAfter)")
[ "$SERVE_RC" = 0 ] || errs+=("B: parrot serve exit status $SERVE_RC on SIGTERM")
[ ${#errs[@]} -eq 0 ] || { printf '  %s\n' "${errs[@]}" >&2; fail "${errs[*]}"; }
pass "-lost $LOSS: parrot $okP/$CALLS vs sipp uas $okS/$CALLS; panic-every $PANIC_EVERY: $okB ok, $badB failed with 500 ($n500)"
