#!/bin/bash
# parrot serve as a stateful, record-routing proxy (RFC 3261 §16) between real user agents.
#  A) SIPp uac (uac_proxy_call.xml) -> parrot serve --proxy-to sip:service@UAS -> SIPp uas (uas_rr.xml): CALLS calls,
#     none failed; ACK and BYE follow the Record-Route set through parrot.
#  B) parrot in front of Kamailio: uac -> parrot -> kamailio (peers/kamailio_registrar.cfg) -> uas.
#  C) Kamailio in front of parrot: uac -> kamailio -> parrot -> uas.
#  D) parrot serve --registrar: SIPp registers alice with the Contact of a SIPp uas, a SIPp uac calls
#     sip:alice@parrot and reaches it (BYE from the caller); bob is registered for a SIPp uas that hangs up itself
#     (uas_rr_bye.xml) and "parrot call sip:bob@parrot" sees the BYE; sip:carol@parrot (no binding) gets 404.
# Env: CALLS(200) RATE(50) PARROT (system under test)
. "$(dirname "$0")/lib.sh"
CALLS=${CALLS:-200}; RATE=${RATE:-50}
apt_install sip-tester kamailio
parrot_build
cd "$WORK"; errs=()

uas_start() {     # uas_start LOG PORT SCENARIO - a SIPp uas on PORT; PID in UAS
  local mp; mp=$(free_range 4)
  bg "$1" sipp -sf "$SCEN/$3" -i 127.0.0.1 -p "$2" -mp "${mp%-*}" -nostdin -timeout 300s -trace_err -error_file "$1.err"; UAS=$LAST_PID
  wait_port udp "$2" || fail "sipp uas did not start on $2 ($(tail -3 "$1"))"
}
uas_stop() { sleep 0.5; stop_pid "$UAS" USR1; }   # USR1: sipp prints its final statistics
uac_calls() {     # uac_calls LOG DEST_PORT USER N - SIPp uac_proxy_call.xml, N calls at RATE; rc in UAC_RC
  # -pause_msg_ign: Kamailio's two children sometimes relay a 180 after the 200 (UDP reordering, as in
  # ../shared/peers/kamailio_run.sh); SIPp would count that late 180 as unexpected
  timeout $(( $4 / RATE + 60 )) sipp -sf "$SCEN/uac_proxy_call.xml" -inf "$SCEN/users.csv" -s "$3" "127.0.0.1:$2" \
    -i 127.0.0.1 -p 0 -m "$4" -r "$RATE" -pause_msg_ign -nostdin -timeout $(( $4 / RATE + 40 ))s -trace_err -error_file "$1.err" > "$1" 2>&1
  UAC_RC=$?
}
kam_start() {     # kam_start NAME PORT UAS_URI - kamailio_registrar.cfg on udp 127.0.0.1:PORT, static target UAS_URI
  local defs=(-A "LISTEN_ADDR=udp:127.0.0.1:$2" -A "UAS_URI=\"$3\"")
  mkdir -p "$WORK/kam-$1"
  kamailio -c -f "$PEERS/kamailio_registrar.cfg" -Y "$WORK/kam-$1" "${defs[@]}" > "kamcheck-$1.log" 2>&1 \
    || fail "kamailio config check: $(tail -3 "kamcheck-$1.log")"
  bg "kamailio-$1.log" kamailio -f "$PEERS/kamailio_registrar.cfg" -DD -E -Y "$WORK/kam-$1" -P "$WORK/kam-$1/k.pid" -m 256 -M 16 "${defs[@]}"
  KAM=$LAST_PID
  wait_port udp "$2" || fail "kamailio did not start: $(tail -3 "kamailio-$1.log")"
  sleep 0.3; local c; for c in $(ps --ppid "$KAM" -o pid=); do _PIDS+=("$c"); done
}
check_calls() {   # check_calls PART UAC_LOG UAS_LOG N
  local ok failed uasok
  ok=$(sipp_ok "$2"); failed=$(sipp_failed "$2"); uasok=$(sipp_ok "$3")
  log "$1) uac rc=$UAC_RC ok=$ok failed=$failed; uas ok=$uasok (want $4 each)"
  [ "$UAC_RC" = 0 ] && [ "$ok" = "$4" ] && [ "$failed" = 0 ] && [ "$uasok" = "$4" ] \
    || { errs+=("$1: uac rc=$UAC_RC ok=$ok failed=$failed, uas ok=$uasok of $4"); sipp_errors "$2.err" >&2; sipp_errors "$3.err" >&2; }
}

# --- A: parrot alone
UAS_PORT=$(free_port)
uas_start uasA.out "$UAS_PORT" uas_rr.xml
serve_start serveA.log --proxy-to "sip:service@127.0.0.1:$UAS_PORT"
uac_calls uacA.out "$SERVE_PORT" service "$CALLS"
uas_stop; serve_stop
check_calls A uacA.out uasA.out "$CALLS"
[ "${SERVE_RC:-0}" = 0 ] || errs+=("A: parrot serve exited $SERVE_RC on SIGTERM")

# --- B: parrot in front of kamailio
UAS_PORT=$(free_port); KAM_PORT=$(free_port)
uas_start uasB.out "$UAS_PORT" uas_rr.xml
kam_start B "$KAM_PORT" "sip:127.0.0.1:$UAS_PORT"; KAMB=$KAM
serve_start serveB.log --proxy-to "sip:service@127.0.0.1:$KAM_PORT"
uac_calls uacB.out "$SERVE_PORT" service "$CALLS"
uas_stop; serve_stop; stop_pid "$KAMB"
check_calls B uacB.out uasB.out "$CALLS"

# --- C: kamailio in front of parrot
UAS_PORT=$(free_port); KAM_PORT=$(free_port)
uas_start uasC.out "$UAS_PORT" uas_rr.xml
serve_start serveC.log --proxy-to "sip:service@127.0.0.1:$UAS_PORT"
kam_start C "$KAM_PORT" "sip:127.0.0.1:$SERVE_PORT"; KAMC=$KAM
uac_calls uacC.out "$KAM_PORT" service "$CALLS"
uas_stop; stop_pid "$KAMC"; serve_stop
check_calls C uacC.out uasC.out "$CALLS"

# --- D: registrar + proxy: registered users are called through parrot
ALICE_PORT=$(free_port); BOB_PORT=$(free_port)
serve_start serveD.log --registrar
register() {      # register USER CONTACT_PORT
  timeout 20 sipp -sf "$SCEN/register_contact.xml" -key user "$1" -key contact_port "$2" "127.0.0.1:$SERVE_PORT" \
    -i 127.0.0.1 -p 0 -m 1 -nostdin -timeout 10s > "reg-$1.out" 2>&1 || errs+=("D: REGISTER $1 failed: $(tail -2 "reg-$1.out" | tr '\n' ' ')")
}
register alice "$ALICE_PORT"; register bob "$BOB_PORT"
uas_start uasD.out "$ALICE_PORT" uas_rr.xml
uac_calls uacD.out "$SERVE_PORT" alice 10
uas_stop
check_calls D uacD.out uasD.out 10
uas_start uasD2.out "$BOB_PORT" uas_rr_bye.xml
timeout 30 "$PARROT" call "sip:bob@127.0.0.1:$SERVE_PORT" --bind 127.0.0.1:0 --calls 2 --duration 10 > callD.log 2>&1; rD=$?
uas_stop
byes=$(grep -c 'ended by remote' callD.log)
log "D) parrot call sip:bob (callee hangs up): rc=$rD '$(calls_line callD.log)', $byes ended by remote; uas ok=$(sipp_ok uasD2.out)"
[ "$rD" = 0 ] && [ "$byes" = 2 ] && [ "$(sipp_ok uasD2.out)" = 2 ] || errs+=("D: callee BYE through parrot: rc=$rD, $byes/2 ended by remote, uas ok=$(sipp_ok uasD2.out)")
timeout 20 sipp -sf "$SCEN/uac_proxy_call.xml" -inf "$SCEN/users.csv" -s carol "127.0.0.1:$SERVE_PORT" -i 127.0.0.1 -p 0 -m 1 \
  -nostdin -timeout 5s -trace_msg -message_file carol.msg > uacD404.out 2>&1
got404=$(grep -c '^SIP/2.0 404 Not Found' carol.msg)
log "D) sip:carol (not registered): $got404 x '404 Not Found'"
[ "$got404" -ge 1 ] || errs+=("D: unknown user did not get 404 Not Found: $(grep '^SIP/2.0' carol.msg | sort | uniq -c | tr '\n' ' ')")
serve_stop

[ ${#errs[@]} -eq 0 ] || { printf '  %s\n' "${errs[@]}" >&2; fail "${errs[*]}"; }
pass "$CALLS/$CALLS calls uac->parrot->uas, $CALLS/$CALLS parrot->kamailio, $CALLS/$CALLS kamailio->parrot; registered users reached (BYE either side), unknown user 404"
