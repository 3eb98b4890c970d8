#!/bin/bash
# SIPp REGISTER with digest -> parrot serve --registrar --users FILE.
#  A) alice/secret and bob/hunter2 (scenarios/users.csv): 200 after the 401 challenge, for each.
#  B) a wrong password (scenarios/users_badpw.csv) is challenged again, never accepted.
. "$(dirname "$0")/lib.sh"
apt_install sip-tester
parrot_build
cd "$WORK"
printf 'alice:secret\nbob:hunter2\n' > users.txt
serve_start serve.log --registrar --users "$WORK/users.txt"
timeout 30 sipp -sf "$SCEN/uac_register_auth.xml" -inf "$SCEN/users.csv" "127.0.0.1:$SERVE_PORT" -i 127.0.0.1 -p 0 \
  -m 2 -nostdin -timeout 20s > regA.out 2>&1; rA=$?
timeout 30 sipp -sf "$SCEN/uac_register_auth.xml" -inf "$SCEN/users_badpw.csv" "127.0.0.1:$SERVE_PORT" -i 127.0.0.1 -p 0 \
  -m 1 -nostdin -timeout 10s -trace_msg -message_file regB.msg > regB.out 2>&1; rB=$?
serve_stop
okA=$(sipp_ok regA.out); challenges=$(grep -c '^SIP/2.0 401' regB.msg); accepted=$(grep -c '^SIP/2.0 200' regB.msg)
log "A) good passwords: rc=$rA ok=$okA; B) wrong password: rc=$rB 401s=$challenges 200s=$accepted"
[ "$rA" = 0 ] && [ "$okA" = 2 ] || fail "good passwords: sipp rc=$rA, $okA/2 registrations"
[ "$accepted" = 0 ] && [ "$challenges" -ge 2 ] || fail "wrong password: $challenges challenges, $accepted accepted"
[ "${SERVE_RC:-0}" = 0 ] || fail "parrot serve exited $SERVE_RC on SIGTERM"
pass "2/2 registrations after the challenge, wrong password re-challenged ($challenges x 401, 0 x 200)"
