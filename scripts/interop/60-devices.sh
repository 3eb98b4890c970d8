#!/bin/bash
# parrot call with sound devices (cargo feature `devices`, cpal -> ALSA) on a machine without a sound card.
#  ALSA "default" goes to a private PulseAudio (peers/alsa_pulse.asoundrc) with two null sinks: "mic", into
#  which a WAV file (a 440 Hz tone) is played and whose monitor is the default capture source (a file-backed
#  microphone), and "speaker", the default playback sink, whose monitor is recorded. (ALSA's file and null
#  plugins open too but are not paced: a cpal stream on them runs at ~100x real time, so they only serve the
#  "devices can be listed and opened" check.)
#  A) with peers/alsa_null.asoundrc: `parrot devices` lists a default capture and playback device.
#  B1) speakers: `parrot call --input-device default --output-device default` to `parrot serve --play tone1k.wav`:
#     the speaker sink's monitor, recorded during the call, holds the far end's 1 kHz tone for (nearly) the whole
#     call (rtpcheck.py tone), with no playback overruns/underruns and the playback buffer near its target.
#  B2) microphone: the same with --dtmf 2 (voicemail): the far end's recording holds the 440 Hz fed into the
#     microphone (rtpcheck.py tone), with no capture overruns/underruns.
#  B3) both ways with baresip (auto-answer, aufile tone1k, sndfile dumps): the speaker gets baresip's 1 kHz and
#     baresip decodes the microphone's 440 Hz.
#  Both calls print live lines (not a terminal) and their audio counters.
# Env: PARROT (a parrot built with --features devices; default: build it)
. "$(dirname "$0")/lib.sh"
apt_install libasound2-dev pkg-config alsa-utils sox pulseaudio pulseaudio-utils libasound2-plugins python3 baresip
if [ -z "${PARROT:-}" ]; then
  (cd "$REPO" && cargo build --release -p parrot --features devices --quiet) >"$WORK/build.log" 2>&1 \
    || { tail -20 "$WORK/build.log" >&2; fail "cargo build --release -p parrot --features devices failed"; }
  PARROT="${CARGO_TARGET_DIR:-$REPO/target}/release/parrot"
  case "$PARROT" in /*) ;; *) PARROT="$REPO/$PARROT" ;; esac
fi
parrot_build
cd "$WORK"

# --- A: null plugin
mkdir -p home-null && cp "$PEERS/alsa_null.asoundrc" home-null/.asoundrc
HOME="$WORK/home-null" timeout 30 "$PARROT" devices > devices-null.out 2>devices-null.err; rA=$?
log "A) parrot devices (null plugin): rc=$rA"; sed 's/^/   /' devices-null.out >&2
[ "$rA" = 0 ] || fail "A: parrot devices exit $rA: $(tail -2 devices-null.err)"
grep -A3 '^capture' devices-null.out | grep -q 'default' || fail "A: no default capture device listed"
grep -A3 '^playback' devices-null.out | grep -q 'default' || fail "A: no default playback device listed"

# --- B: paced fake sound card
mkdir -p pulse-rt home-pulse vm && cp "$PEERS/alsa_pulse.asoundrc" home-pulse/.asoundrc
export PULSE_SERVER="unix:$WORK/pulse.sock"
bg pulse.log env XDG_RUNTIME_DIR="$WORK/pulse-rt" pulseaudio -n --daemonize=no --exit-idle-time=-1 --use-pid-file=no \
   --log-target=stderr --log-level=error \
   -L "module-null-sink sink_name=speaker rate=48000 channels=2" \
   -L "module-null-sink sink_name=mic rate=48000 channels=2" \
   -L "module-native-protocol-unix auth-anonymous=1 socket=$WORK/pulse.sock"
PULSE_PID=$LAST_PID
ok=0; for i in $(seq 50); do pactl info >/dev/null 2>&1 && { ok=1; break; }; sleep 0.1; done
[ $ok = 1 ] || fail "pulseaudio did not start ($(tail -3 pulse.log))"
pactl set-default-sink speaker && pactl set-default-source mic.monitor || fail "pactl defaults"
# A silent stream keeps the speaker sink running in real time (a lone stream got ~40% of real time).
bg keeper.log pacat --playback --raw --format=s16le --rate=48000 --channels=2 --latency-msec=20 -d speaker /dev/zero
# The microphone: a WAV file played into the "mic" sink, heard through its monitor (the default source).
sox -n -r 48000 -c 2 -b 16 mic.wav synth 60 sine 440 vol 0.5
bg mic.log paplay -d mic mic.wav
# The sinks take ~2 s to start streaming; a call placed before that sees its devices stall (it copes, but the
# checks below are about steady state). Wait until the speaker's monitor delivers audio.
bg warm.log sh -c 'exec pacat --record -d speaker.monitor --rate=8000 --channels=1 --format=s16le > warm.raw'
WARM_PID=$LAST_PID
for i in $(seq 100); do [ "$(stat -c %s warm.raw 2>/dev/null || echo 0)" -gt 16000 ] && break; sleep 0.1; done
stop_pid "$WARM_PID"
[ "$(stat -c %s warm.raw 2>/dev/null || echo 0)" -gt 16000 ] || fail "the speaker sink did not start streaming"

RTP=$(free_range 20)
serve_start serve.log --play "$REPO/assets/tone1k.wav" --rtp-ports "$RTP" --record-dir "$WORK/vm"

devcall() {   # devcall NAME URI [extra parrot call args...]: a call through the default devices
  local name=$1 uri=$2; shift 2
  HOME="$WORK/home-pulse" timeout 60 "$PARROT" call "$uri" --bind 127.0.0.1:0 \
    --rtp-ports "$(free_range 4)" --input-device default --output-device default "$@" > "$name.out" 2> "$name.err"
  local rc=$?
  log "$name) parrot call: rc=$rc, $(calls_line "$name.out")"
  grep -E '^(call|audio)' "$name.out" | sed 's/^/   /' >&2
  grep '^live' "$name.out" | tail -1 | sed 's/^/   /' >&2
  [ "$rc" = 0 ] || fail "$name: parrot call exit $rc: $(tail -3 "$name.err")"
  grep -q '^calls: 1 ok, 0 failed' "$name.out" || fail "$name: $(calls_line "$name.out")"
  grep -q '^live ' "$name.out" || fail "$name: no live lines"
}
audio_field() {   # audio_field NAME playback|capture overruns|underruns -> that number of the audio line
  grep '^audio:' "$1.out" | grep -oE "$2 overruns [0-9]+ underruns [0-9]+" \
    | awk -v w="$3" '{print (w == "overruns") ? $3 : $5}'
}
live_field() {    # live_field NAME fill -> "capture/playback" of the last live line
  grep '^live' "$1.out" | tail -1 | grep -oE " $2 -?[0-9]+/-?[0-9]+" | awk '{print $2}'
}

# --- B1: the speakers receive the far end's tone
bg speaker.log sh -c 'exec pacat --record -d speaker.monitor --rate=8000 --channels=1 --format=s16le > speaker.raw'
REC_PID=$LAST_PID
sleep 0.3
devcall B1 "sip:parrot@127.0.0.1:$SERVE_PORT" --duration 8
sleep 0.5
stop_pid "$REC_PID"
sox -t raw -r 8000 -e signed -b 16 -c 1 speaker.raw speaker.wav || fail "B1: sox speaker.raw"
python3 "$INTEROP_DIR/rtpcheck.py" tone speaker.wav --freq 1000 --min-seconds 6.5 > B1.tone 2>&1; rT1=$?
log "B1) speaker: $(cat B1.tone)"

# --- B2: the microphone reaches the far end (voicemail)
devcall B2 "sip:parrot@127.0.0.1:$SERVE_PORT" --dtmf 2 --duration 8
sleep 1
serve_stop
msg=$(ls vm/message-*.wav 2>/dev/null | head -1)
[ -n "$msg" ] || fail "B2: the far end recorded no message (serve: $(grep -c dtmf serve.log) dtmf lines)"
python3 "$INTEROP_DIR/rtpcheck.py" tone "$msg" --freq 440 --min-seconds 4 > B2.tone 2>&1; rT2=$?
log "B2) far end's voicemail: $(cat B2.tone)"

# --- B3: both directions with baresip (auto-answer, plays tone1k through aufile, dumps what it decodes)
BS=$(free_range 2); BS_SIP=${BS%-*}; BS_CTRL=$(free_port); BS_RTP=$(free_range 20)
bash "$PEERS/baresip_conf.sh" "$WORK/bs" "$BS_SIP" "$BS_CTRL" "$BS_RTP" "$REPO/assets/tone1k.wav" auto "$WORK/recbs" bare \
  || fail "B3: baresip_conf.sh"
bg baresip.log baresip -f "$WORK/bs" -t 40; BSP=$LAST_PID
wait_port tcp "$BS_CTRL" 100 || fail "B3: baresip did not start ($(tail -3 baresip.log))"
bg speaker3.log sh -c 'exec pacat --record -d speaker.monitor --rate=8000 --channels=1 --format=s16le > speaker3.raw'
REC_PID=$LAST_PID
sleep 0.3
devcall B3 "sip:bare@127.0.0.1:$BS_SIP" --duration 6
sleep 0.5
stop_pid "$REC_PID"; stop_pid "$BSP"
sox -t raw -r 8000 -e signed -b 16 -c 1 speaker3.raw speaker3.wav || fail "B3: sox speaker3.raw"
python3 "$INTEROP_DIR/rtpcheck.py" tone speaker3.wav --freq 1000 --min-seconds 4.5 > B3.speaker 2>&1; rT3=$?
dec=$(ls -t recbs/*dec*.wav 2>/dev/null | head -1)
[ -n "$dec" ] || fail "B3: baresip dumped no decoded audio ($(ls recbs 2>/dev/null | tr '\n' ' '))"
# (PulseAudio's capture stream delivers its first audio 1-2 s after it opens, and baresip answers at once.)
python3 "$INTEROP_DIR/rtpcheck.py" tone "$dec" --freq 440 --min-seconds 3 > B3.far 2>&1; rT4=$?
log "B3) speaker (baresip's tone1k): $(cat B3.speaker)"
log "B3) baresip decoded (our microphone): $(cat B3.far)"
cleanup

[ "$rT1" = 0 ] || fail "B1: the speaker did not receive the far end's 1 kHz tone: $(cat B1.tone)"
[ "$rT2" = 0 ] || fail "B2: the far end did not receive the microphone's 440 Hz: $(cat B2.tone)"
[ "$rT3" = 0 ] || fail "B3: the speaker did not receive baresip's 1 kHz tone: $(cat B3.speaker)"
[ "$rT4" = 0 ] || fail "B3: baresip did not receive the microphone's 440 Hz: $(cat B3.far)"
# Buffers: no xruns once the devices run (a few frames of slack for scheduling hiccups on a loaded machine), and the
# playback latency near its 60 ms target (under 200 ms at 48 kHz) at the end of each call.
for c in B1 B2 B3; do
  for f in "playback overruns" "playback underruns" "capture overruns" "capture underruns"; do
    v=$(audio_field "$c" $f); [ -n "$v" ] || fail "$c: no '$f' on the audio line"
    [ "$v" -le 2000 ] || fail "$c: $f $v (device frames or codec samples)"
  done
  fill=$(live_field "$c" fill); pfill=${fill#*/}
  [ -n "$pfill" ] && [ "$pfill" -le 9600 ] || fail "$c: playback buffer $pfill frames at the end (latency over 200 ms)"
done
xr() { echo "$(audio_field "$1" playback overruns)/$(audio_field "$1" playback underruns) playback, $(audio_field "$1" capture overruns)/$(audio_field "$1" capture underruns) capture xruns, fill $(live_field "$1" fill), correction $(live_field "$1" correction) ppm"; }
pass "devices listed via the null plugin; through ALSA->PulseAudio the speaker got the far end's $(grep -oE '[0-9.]+s of tone' B1.tone) of 1 kHz in an 8 s call ($(xr B1)); the far end's voicemail got $(grep -oE '[0-9.]+s of tone' B2.tone) of the microphone's 440 Hz ($(xr B2)); with baresip in a 6 s call the speaker got $(grep -oE '[0-9.]+s of tone' B3.speaker) of its 1 kHz and it decoded $(grep -oE '[0-9.]+s of tone' B3.far) of our 440 Hz ($(xr B3))"
