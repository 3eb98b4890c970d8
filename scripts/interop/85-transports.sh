#!/bin/bash
# parrot serve over TCP, TLS, WS and WSS against real clients.
#  A) SIPp built-in uac over TCP (-t t1, one connection): CALLS calls, 0 failed.
#  B) baresip dials parrot serve over TLS (sip:...;transport=tls, a certificate made with openssl): the call is
#     answered and RTP flows both ways (parrot's "ended" line counts > 50 packets received).
#  C) parrot call --transport tls --tls-ca ca.pem -> parrot serve: answered, our client verifies the certificate;
#     the same call trusting another CA fails.
#  D) ws_call.py (a standard-library RFC 6455 client standing in for a browser softphone) places a call over WS and
#     WSS: INVITE -> 200 with SDP, ACK, BYE -> 200.
# (This SIPp build has no TLS, so `-t l1` is not available; baresip and our client stand in for it.)
# Env: CALLS(100) PARROT (system under test)
. "$(dirname "$0")/lib.sh"
CALLS=${CALLS:-100}
apt_install sip-tester baresip openssl python3
parrot_build
cd "$WORK"
errs=()
# A CA and a server certificate it signs (rustls refuses a CA certificate as the server's own).
{ openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 2 -subj /CN=parrot-test-ca \
  && openssl req -newkey rsa:2048 -nodes -keyout key.pem -out server.csr -subj /CN=127.0.0.1 \
  && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > ext.cnf \
  && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile ext.cnf -out cert.pem \
  && openssl req -x509 -newkey rsa:2048 -nodes -keyout other-key.pem -out other.pem -days 2 -subj /CN=other-ca; } \
  >openssl.log 2>&1 || fail "openssl: $(tail -2 openssl.log)"
RTP=$(free_range 40); TLS=$(free_port); WS=$(free_port); WSS=$(free_port)
serve_start serve.log --rtp-ports "$RTP" --tls-bind "127.0.0.1:$TLS" --ws-bind "127.0.0.1:$WS" \
  --wss-bind "127.0.0.1:$WSS" --tls-cert cert.pem --tls-key key.pem
grep -q "tls 127.0.0.1:$TLS ws 127.0.0.1:$WS wss 127.0.0.1:$WSS" serve.log || fail "listeners: $(head -1 serve.log)"

# --- A: SIPp over TCP
UAC_PORT=$(free_port); UAC_MP=$(free_range 4)
sipp -sn uac "127.0.0.1:$SERVE_PORT" -t t1 -i 127.0.0.1 -p "$UAC_PORT" -mi 127.0.0.1 -mp "${UAC_MP%-*}" \
     -r 20 -m "$CALLS" -l 20 -nostdin -timeout 60s -trace_err -error_file uacA.err > uacA.out 2>&1; rA=$?
okA=$(sipp_ok uacA.out); badA=$(sipp_failed uacA.out)
log "A) sipp -t t1 uac -> parrot serve (TCP): rc=$rA ok=$okA failed=$badA"
[ "$rA" = 0 ] && [ "$okA" = "$CALLS" ] && [ "$badA" = 0 ] || errs+=("A: TCP $okA/$CALLS ok, $badA failed: $(sipp_errors uacA.err | head -1)")

# --- B: baresip over TLS
BS=$(free_range 2); BS_CTRL=$(free_port); BS_RTP=$(free_range 20)
bash "$PEERS/baresip_conf.sh" "$WORK/bs" "${BS%-*}" "$BS_CTRL" "$BS_RTP" "$REPO/assets/tone1k.wav" manual "$WORK/rec" caller
bg baresip.log baresip -f "$WORK/bs" -t 30; BSP=$LAST_PID
wait_port tcp "$BS_CTRL" 100 || fail "B: baresip did not start ($(tail -3 baresip.log))"
before=$(grep -cE '^call [0-9]+ ended' serve.log)
timeout 30 python3 "$PEERS/baresip_ctrl.py" "127.0.0.1:$BS_CTRL" "dial sip:parrot@127.0.0.1:$TLS;transport=tls" 3 \
  "hangup" 1 "quit" 0.5 > ctrl.jsonl 2>&1
stop_pid "$BSP"
for i in $(seq 30); do [ "$(grep -cE '^call [0-9]+ ended' serve.log)" -gt "$before" ] && break; sleep 0.1; done
lineB=$(grep -E "to sip:parrot@127.0.0.1:$TLS;transport=tls" serve.log | head -1)
callB=$(echo "$lineB" | grep -oE '^call [0-9]+' | grep -oE '[0-9]+')
endB=$(grep -E "^call $callB ended" serve.log | head -1)
rxB=$(echo "$endB" | grep -oE 'received [0-9]+' | grep -oE '[0-9]+')
log "B) baresip over TLS: ${endB:-no call}"
[ -n "$callB" ] && [ "${rxB:-0}" -gt 50 ] || errs+=("B: baresip over TLS: ${endB:-the call never reached parrot} ($(grep -iE 'tls|error' baresip.log | head -1))")

# --- C: parrot's own client over TLS, verifying the certificate
CR=$(free_range 20)
timeout 30 "$PARROT" call "sip:parrot@127.0.0.1:$TLS;transport=tls" --transport tls --tls-ca ca.pem \
  --bind 127.0.0.1:0 --rtp-ports "$CR" --duration 1 > callC.log 2>&1; rC=$?
timeout 40 "$PARROT" call "sip:parrot@127.0.0.1:$TLS;transport=tls" --transport tls --tls-ca other.pem \
  --bind 127.0.0.1:0 --rtp-ports "$CR" --duration 1 > callC2.log 2>&1; rC2=$?
log "C) parrot call over TLS: rc=$rC; trusting another CA: rc=$rC2 ($(grep -m1 -iE 'fail|ended' callC2.log))"
[ "$rC" = 0 ] && grep -q answered callC.log || errs+=("C: parrot call over TLS rc=$rC: $(tail -2 callC.log | tr '\n' ' ')")
[ "$rC2" != 0 ] || errs+=("C: a call to a server the client does not trust succeeded")

# --- D: WebSocket and secure WebSocket
timeout 20 python3 "$INTEROP_DIR/ws_call.py" 127.0.0.1 "$WS" > wsD.log 2>&1; rD=$?
timeout 20 python3 "$INTEROP_DIR/ws_call.py" 127.0.0.1 "$WSS" --tls ca.pem > wssD.log 2>&1; rD2=$?
log "D) WS: $(tail -1 wsD.log); WSS: $(tail -1 wssD.log)"
[ "$rD" = 0 ] || errs+=("D: WS call: $(tail -1 wsD.log)")
[ "$rD2" = 0 ] || errs+=("D: WSS call: $(tail -1 wssD.log)")

serve_stop
[ "$SERVE_RC" = 0 ] || errs+=("parrot serve exit status $SERVE_RC on SIGTERM")
[ ${#errs[@]} -eq 0 ] || fail "${errs[*]}"
pass "TCP $okA/$CALLS (SIPp -t t1); TLS: baresip call rx $rxB pkts, parrot call verified, untrusted refused; WS and WSS calls ok"
