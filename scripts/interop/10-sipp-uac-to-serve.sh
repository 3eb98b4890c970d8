#!/bin/bash
# SIPp built-in uac -> parrot serve.
#  A) signalling: 200 calls (-r 20 -l 40), 0 failed; parrot logs one "answered" and one "ended" per call.
#  B) media: 3 calls with scenarios/uac_rtpstream.xml (SIPp streams audio to parrot for 5 s); tshark captures the RTP
#     parrot sends; rtpcheck.py verifies RTP v2, PT 0, seq +1 / timestamp +160, one SSRC per call, ~50 pkt/s, no gap
#     > 30 ms, and that the audio is assets/welcome.wav (cross-correlation >= 0.9 over the first 3 s).
#  C) parrot serve exits 0 on SIGTERM.
# Env: CALLS(200) RATE(20) LIMIT(40) RTP_CALLS(3) MAX_GAP_MS(30) PARROT (system under test; default: build target/release/parrot)
. "$(dirname "$0")/lib.sh"
CALLS=${CALLS:-200}; RATE=${RATE:-20}; LIMIT=${LIMIT:-40}; RTP_CALLS=${RTP_CALLS:-3}
apt_install sip-tester tshark sox
parrot_build
cd "$WORK"
RTP=$(free_range 40); UAC_PORT=$(free_port); UAC_MP=$(free_range 4)
serve_start serve.log --rtp-ports "$RTP"

# --- A: 200 calls, zero call length
sipp -sn uac "127.0.0.1:$SERVE_PORT" -i 127.0.0.1 -p "$UAC_PORT" -mi 127.0.0.1 -mp "${UAC_MP%-*}" \
     -r "$RATE" -m "$CALLS" -l "$LIMIT" -nostdin -timeout 60s -trace_err -error_file uacA.err > uacA.out 2>&1; rA=$?
okA=$(sipp_ok uacA.out); badA=$(sipp_failed uacA.out)
log "A) sipp uac -> parrot serve: rc=$rA ok=$okA failed=$badA"
sipp_errors uacA.err >&2

# --- B: RTP from parrot, captured and checked
sox "$REPO/assets/tone1k.wav" -r 8000 -c 1 -e mu-law tx.wav
sed "s|@WAV@|$WORK/tx.wav|g" "$SCEN/uac_rtpstream.xml" > uac_rtpstream.xml
cap_start "udp src portrange ${RTP%-*}-${RTP#*-}" rtp.pcap 40
sipp -sf uac_rtpstream.xml "127.0.0.1:$SERVE_PORT" -s parrot -i 127.0.0.1 -p "$UAC_PORT" -mi 127.0.0.1 -mp "${UAC_MP%-*}" \
     -m "$RTP_CALLS" -l "$RTP_CALLS" -r 10 -nostdin -timeout 30s -trace_err -error_file uacB.err > uacB.out 2>&1; rB=$?
cap_stop
okB=$(sipp_ok uacB.out); badB=$(sipp_failed uacB.out)
log "B) rtpstream calls: rc=$rB ok=$okB failed=$badB"
sipp_errors uacB.err >&2
tshark -r rtp.pcap -n -d "udp.port==$RTP,rtp" -Y rtp -T fields -e frame.time_relative -e udp.srcport -e udp.dstport \
       -e rtp.version -e rtp.p_type -e rtp.seq -e rtp.timestamp -e rtp.ssrc -e rtp.payload > rtp.tsv 2>tshark.err
python3 "$INTEROP_DIR/rtpcheck.py" stream rtp.tsv --ref "$REPO/assets/welcome.wav" --pt 0 --min-packets 200 --max-gap-ms "${MAX_GAP_MS:-30}" > rtpcheck.out 2>&1; rR=$?
cat rtpcheck.out >&2
nstreams=$(grep -c '^ssrc ' rtpcheck.out)

serve_stop
log "parrot serve exit: $SERVE_RC"
answered=$(grep -cE '^call [0-9]+ answered' serve.log); ended=$(grep -cE '^call [0-9]+ ended' serve.log)
log "parrot events: answered=$answered ended=$ended"

want=$((CALLS + RTP_CALLS))
[ "$rA" = 0 ] && [ "$okA" = "$CALLS" ] && [ "$badA" = 0 ] || fail "A: $okA/$CALLS calls ok, $badA failed (sipp rc $rA): $(sipp_errors uacA.err | head -1)"
[ "$rB" = 0 ] && [ "$okB" = "$RTP_CALLS" ] || fail "B: $okB/$RTP_CALLS rtpstream calls ok (sipp rc $rB): $(sipp_errors uacB.err | head -1)"
[ "$nstreams" = "$RTP_CALLS" ] || fail "B: $nstreams RTP streams from parrot, want $RTP_CALLS (one SSRC per call): $(tail -1 rtpcheck.out)"
[ "$rR" = 0 ] || fail "B: RTP check: $(grep -m1 ERRORS rtpcheck.out)"
if [ "${SKIP_EVENTS:-0}" != 1 ]; then   # SKIP_EVENTS=1: for the SIPp stand-in, which prints no call events
  [ "$answered" -ge "$want" ] && [ "$ended" -ge "$want" ] || fail "parrot printed $answered 'answered' / $ended 'ended' lines for $want calls"
  [ "$SERVE_RC" = 0 ] || fail "parrot serve exit status $SERVE_RC on SIGTERM (want 0)"
fi
pass "$okA/$CALLS calls, rtp ok ($nstreams streams, $(grep -oE 'corr [0-9.]+' rtpcheck.out | sort -k2 -n | head -1), $(tail -1 rtpcheck.out | grep -oE 'max gap [0-9.]+ ms'))"
