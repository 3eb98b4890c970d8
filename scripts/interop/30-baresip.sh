#!/bin/bash
# baresip (headless: aufile source, sndfile dumps, ctrl_tcp) <-> parrot, both directions, PCMU + RFC 4733 DTMF.
#  A) baresip dials "parrot serve --play assets/tone1k.wav" and sends DTMF 4 7 9 via ctrl_tcp "sndcode":
#     parrot prints "dtmf 4/7/9" exactly once each, baresip's decoded audio (sndfile *-dec.wav) holds the 1 kHz tone.
#  B) "parrot call --play assets/tone1k.wav --record out.wav --dtmf 479" -> baresip (auto-answer, plays tone1k.wav):
#     parrot exits 0, out.wav holds the 1 kHz tone, baresip reports DTMF 4, 7, 9 exactly once each (log
#     "received DTMF" and/or ctrl events CALL_DTMF_START), baresip's decoded audio holds the tone.
# Tone check: rtpcheck.py tone (Goertzel, >= 90 % of the non-silent 50 ms frames at 1 kHz, >= 1.5 s of tone).
# Env: DIGITS(479) PARROT (system under test)
. "$(dirname "$0")/lib.sh"
DIGITS=${DIGITS:-479}
apt_install baresip
parrot_build
cd "$WORK"
TONE="$REPO/assets/tone1k.wav"   # 8 kHz mono S16LE: what baresip's aufile needs for G.711 (10 s; aufile ends the call at EOF)
CTRL="python3 $PEERS/baresip_ctrl.py"
tone_ok() { python3 "$INTEROP_DIR/rtpcheck.py" tone "$1" --min-seconds 1.5; }
dec_wav() { ls -t "$1"/*dec*.wav 2>/dev/null | head -1; }
digits_of() { grep -oE "$2" "$1" | grep -oE "[0-9*#A-D]'?\$" | tr -d "'" | tr -d '\n'; }
errs=()

# --- A: baresip -> parrot serve
RTP=$(free_range 20); BS=$(free_range 2); BS_SIP=${BS%-*}; BS_CTRL=$(free_port); BS_RTP=$(free_range 20)
serve_start serveA.log --play "$TONE" --rtp-ports "$RTP"
bash "$PEERS/baresip_conf.sh" "$WORK/bsA" "$BS_SIP" "$BS_CTRL" "$BS_RTP" "$TONE" manual "$WORK/recA" caller
bg baresipA.log baresip -f "$WORK/bsA" -t 30; BSA=$LAST_PID
wait_port tcp "$BS_CTRL" 100 || fail "A: baresip did not start ($(tail -3 baresipA.log))"
send=(); for d in $(echo "$DIGITS" | grep -o .); do send+=("sndcode $d" 0.3); done
timeout 30 $CTRL "127.0.0.1:$BS_CTRL" "dial sip:parrot@127.0.0.1:$SERVE_PORT" 2.5 "${send[@]}" 1.5 "listcalls" 0.3 "hangup" 1 "quit" 0.5 \
  > ctrlA.jsonl 2>&1
for i in $(seq 50); do kill -0 "$BSA" 2>/dev/null || break; sleep 0.1; done; stop_pid "$BSA"
evA=$(grep -oE '"type":"[A-Z_]+"' ctrlA.jsonl | cut -d'"' -f4 | tr '\n' ' ')
gotA=$(grep -oE '^call [0-9]+ dtmf [0-9*#A-D]' serveA.log | awk '{print $4}' | tr -d '\n')
wavA=$(dec_wav recA)
toneA=$( [ -n "$wavA" ] && tone_ok "$wavA" || echo "no decoded WAV from baresip")
log "A) baresip -> parrot serve: ctrl events: $evA"
log "   parrot dtmf: '$gotA' (sent '$DIGITS'); baresip decoded audio: $toneA"
grep -E '^call [0-9]+ ' serveA.log | head -8 >&2
echo "$evA" | grep -q CALL_ESTABLISHED || errs+=("A: call not established (events: $evA; $(grep -m1 -iE 'error|fail|reject|[4-6][0-9][0-9] ' baresipA.log))")
[ "$gotA" = "$DIGITS" ] || errs+=("A: parrot got DTMF '$gotA', baresip sent '$DIGITS'")
echo "$toneA" | grep -q -- '-> ok' || errs+=("A: tone at baresip: $toneA")
serve_stop

# --- B: parrot call -> baresip (auto-answer)
BS=$(free_range 2); BS_SIP=${BS%-*}; BS_CTRL=$(free_port); BS_RTP=$(free_range 20)
bash "$PEERS/baresip_conf.sh" "$WORK/bsB" "$BS_SIP" "$BS_CTRL" "$BS_RTP" "$TONE" auto "$WORK/recB" bare
bg baresipB.log baresip -f "$WORK/bsB" -t 30; BSB=$LAST_PID
wait_port tcp "$BS_CTRL" 100 || fail "B: baresip did not start ($(tail -3 baresipB.log))"
cap_start "udp dst portrange ${BS_RTP%-*}-${BS_RTP#*-}" dtmfB.pcap 30
# listen for events during the call (baresip_ctrl.py prints what it read when each wait ends: let it finish)
bg ctrlB.jsonl timeout 20 $CTRL "127.0.0.1:$BS_CTRL" "listcalls" 8; CTRLB=$LAST_PID
wait_line ctrlB.jsonl '"token":"1"' 100 || fail "B: baresip ctrl_tcp listener did not connect"   # listening before the call
timeout 30 "$PARROT" call "sip:bare@127.0.0.1:$BS_SIP" --bind 127.0.0.1:0 --play "$TONE" --record "$WORK/out.wav" \
  --dtmf "$DIGITS" --duration 4 > callB.log 2>&1; rB=$?
wait "$CTRLB"; stop_pid "$BSB"; cap_stop
# the RFC 4733 packets parrot sent (seq, timestamp, marker, event, end bit, volume, duration)
tshark -r dtmfB.pcap -n -d "udp.port==$BS_RTP,rtp" -Y rtpevent -T fields -e frame.time_relative -e rtp.seq -e rtp.timestamp \
  -e rtp.marker -e rtpevent.event_id -e rtpevent.end_of_event -e rtpevent.volume -e rtpevent.duration > dtmfB.tsv 2>/dev/null
dtmf_sent=$(awk -F'\t' '$6==1 || $6=="True" {print $3"/"$5}' dtmfB.tsv | sort -u | awk -F/ '{printf "%s", $2}' | sed 's/10/*/g; s/11/#/g')
evB=$(grep -oE '"type":"[A-Z_]+"' ctrlB.jsonl | cut -d'"' -f4 | tr '\n' ' ')
gotB_log=$(grep -oE "received DTMF: '.'" baresipB.log | cut -d"'" -f2 | tr -d '\n')
gotB_ev=$(grep -E '"type":"CALL_DTMF_START"' ctrlB.jsonl | grep -oE '"param":"[^"]*"' | cut -d'"' -f4 | tr -d '\n')
toneB=$( [ -s out.wav ] && tone_ok out.wav || echo "no out.wav")
wavB=$(dec_wav recB)
toneBb=$( [ -n "$wavB" ] && tone_ok "$wavB" || echo "no decoded WAV from baresip")
log "B) parrot call -> baresip: rc=$rB '$(calls_line callB.log)'; ctrl events: $evB"
log "   baresip dtmf: log '$gotB_log' events '$gotB_ev' (sent '$DIGITS'; end packets on the wire: '$dtmf_sent', $(wc -l < dtmfB.tsv) event packets)"
log "   parrot --record out.wav: $toneB"
log "   baresip decoded audio: $toneBb"
[ "$rB" = 0 ] && calls_line callB.log | grep -q '^calls: 1 ok, 0 failed' || errs+=("B: parrot call rc=$rB: $(tail -2 callB.log | tr '\n' ' ')")
[ "$gotB_log" = "$DIGITS" ] || [ "$gotB_ev" = "$DIGITS" ] || errs+=("B: baresip got DTMF log='$gotB_log' events='$gotB_ev', parrot sent '$DIGITS'")
echo "$toneB" | grep -q -- '-> ok' || errs+=("B: tone in parrot's recording: $toneB")
echo "$toneBb" | grep -q -- '-> ok' || errs+=("B: tone at baresip: $toneBb")

[ ${#errs[@]} -eq 0 ] || { printf '  %s\n' "${errs[@]}" >&2; fail "${errs[*]}"; }
pass "baresip->serve dtmf '$gotA' tone ok; call->baresip dtmf '${gotB_log:-$gotB_ev}' tone ok both ways"
