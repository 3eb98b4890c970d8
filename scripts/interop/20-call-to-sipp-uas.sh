#!/bin/bash
# parrot call -> SIPp uas.
#  A) 200 calls (--calls 200 --parallel 20 --duration 0.2) to the built-in uas: parrot prints "calls: 200 ok, 0 failed",
#     exits 0, and SIPp's uas counts 200 successful calls.
#  B) digest auth on INVITE: scenarios/uas_invite_auth.xml answers 401, verifies the retried INVITE with <verifyauth>
#     (alice/secret): "parrot call --user alice --password secret" must succeed; with a wrong password it must fail
#     (SIPp answers 403) and exit non-zero.
# Env: CALLS(200) PARALLEL(20) DURATION(0.2) PARROT (system under test)
. "$(dirname "$0")/lib.sh"
CALLS=${CALLS:-200}; PARALLEL=${PARALLEL:-20}; DURATION=${DURATION:-0.2}
apt_install sip-tester
parrot_build
cd "$WORK"
UAS_PORT=$(free_port); UAS_MP=$(free_range 4)

# --- A: many calls to the built-in uas
sipp_uas_start uasA.out "$UAS_PORT" -mi 127.0.0.1 -mp "${UAS_MP%-*}" -trace_err -error_file uasA.err
timeout 120 "$PARROT" call "sip:service@127.0.0.1:$UAS_PORT" --bind 127.0.0.1:0 \
  --calls "$CALLS" --parallel "$PARALLEL" --duration "$DURATION" > callA.log 2>&1; rA=$?
sleep 1; stop_pid "$SIPP_UAS_PID" USR1
lineA=$(calls_line callA.log); uasok=$(sipp_ok uasA.out); uasbad=$(sipp_failed uasA.out)
log "A) parrot call x$CALLS: rc=$rA '$lineA'; sipp uas ok=$uasok failed=$uasbad"
sipp_errors uasA.err >&2
grep -vE '^call [0-9]+ (incoming|answered|ended|dtmf|play-complete|progress)|^calls:' callA.log | sed -E 's/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -5 >&2

# --- B: 401 challenge on INVITE
UAS2_PORT=$(free_port)
bg uasB.out sipp -sf "$SCEN/uas_invite_auth.xml" -i 127.0.0.1 -p "$UAS2_PORT" -mi 127.0.0.1 -mp "${UAS_MP%-*}" \
   -nostdin -timeout 60s -trace_msg -message_file uasB.msg -trace_err -error_file uasB.err; UASB=$LAST_PID
wait_port udp "$UAS2_PORT" || fail "sipp uas_invite_auth did not start"
timeout 30 "$PARROT" call "sip:alice@127.0.0.1:$UAS2_PORT" --bind 127.0.0.1:0 --user alice --password secret \
  --duration 1 > callB.log 2>&1; rB=$?
timeout 30 "$PARROT" call "sip:alice@127.0.0.1:$UAS2_PORT" --bind 127.0.0.1:0 --user alice --password WRONG \
  --duration 1 > callBbad.log 2>&1; rBbad=$?
sleep 0.5; stop_pid "$UASB" USR1
log "B) auth good password: rc=$rB '$(calls_line callB.log)'; wrong password: rc=$rBbad '$(calls_line callBbad.log)'"
grep -m2 -E '^(Authorization|WWW-Authenticate):' uasB.msg >&2
grep -E '^SIP/2.0 (200|403)' uasB.msg | sort | uniq -c >&2

[ "$rA" = 0 ] && [ "$lineA" = "calls: $CALLS ok, 0 failed" ] \
  || fail "A: parrot call rc=$rA, '${lineA:-no calls: line}' (sipp uas ok=$uasok); last output: $(tail -2 callA.log | tr '\n' ' ')"
[ "$uasok" = "$CALLS" ] || fail "A: sipp uas counted $uasok successful calls, want $CALLS"
[ "$rB" = 0 ] && [ "$(calls_line callB.log)" = "calls: 1 ok, 0 failed" ] \
  || fail "B: digest-authenticated call failed rc=$rB: $(tail -3 callB.log | tr '\n' ' ') $(sipp_errors uasB.err | head -1)"
grep -q '^Authorization: Digest' uasB.msg || fail "B: no Authorization header in the retried INVITE"
[ "$rBbad" != 0 ] || fail "B: call with a wrong password reported success"
pass "$CALLS/$CALLS calls ok (sipp uas counted $uasok), INVITE digest auth ok, wrong password rejected (rc $rBbad)"
