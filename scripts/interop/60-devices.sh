#!/bin/bash
# parrot call with sound devices (cargo feature `devices`, cpal -> ALSA) on a machine without a sound card.
#  ALSA "default" goes to a private PulseAudio (peers/alsa_pulse.asoundrc) with two null sinks: "mic", into
#  which a 440 Hz tone is played and whose monitor is the default capture source, and "speaker", the default
#  playback sink, whose monitor is recorded. (ALSA's file and null plugins open too but are not paced: a cpal
#  stream on them runs at ~100x real time, so they only serve the "devices can be listed and opened" check.)
#  A) with peers/alsa_null.asoundrc: `parrot devices` lists a default capture and playback device.
#  B) `parrot call --input-device default --output-device default --dtmf 2` to `parrot serve --play tone1k.wav`:
#     the far end's voicemail recording holds the 440 Hz fed into the microphone, and the speaker received the
#     far end's audio (>= 1.5 s audible); the call prints live lines (not a terminal) and its audio counters.
# Env: PARROT (a parrot built with --features devices; default: build it)
. "$(dirname "$0")/lib.sh"
apt_install libasound2-dev pkg-config alsa-utils sox pulseaudio pulseaudio-utils libasound2-plugins python3
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
ok=0; for i in $(seq 50); do pactl info >/dev/null 2>&1 && { ok=1; break; }; sleep 0.1; done
[ $ok = 1 ] || fail "pulseaudio did not start ($(tail -3 pulse.log))"
pactl set-default-sink speaker && pactl set-default-source mic.monitor || fail "pactl defaults"
# A silent stream keeps the speaker sink running in real time (a lone stream got ~40% of real time).
bg keeper.log pacat --playback --raw --format=s16le --rate=48000 --channels=2 --latency-msec=20 -d speaker /dev/zero
sox -n -r 48000 -c 2 -b 16 mic.wav synth 40 sine 440 vol 0.5
bg mic.log paplay -d mic mic.wav
bg parecord.log sh -c 'exec pacat --record -d speaker.monitor --rate=8000 --channels=1 --format=s16le > speaker.raw'

RTP=$(free_range 20); CALL_RTP=$(free_range 4)
serve_start serve.log --play "$REPO/assets/tone1k.wav" --rtp-ports "$RTP" --record-dir "$WORK/vm"
HOME="$WORK/home-pulse" timeout 60 "$PARROT" call "sip:parrot@127.0.0.1:$SERVE_PORT" --bind 127.0.0.1:0 \
  --rtp-ports "$CALL_RTP" --input-device default --output-device default --dtmf 2 --duration 12 > call.out 2> call.err; rB=$?
sleep 1
serve_stop
cleanup
log "B) parrot call: rc=$rB, $(calls_line call.out)"
grep -E '^(call|audio)' call.out | sed 's/^/   /' >&2
grep '^live' call.out | tail -2 | sed 's/^/   /' >&2
msg=$(ls vm/message-*.wav 2>/dev/null | head -1)
python3 - "$msg" speaker.raw > tones.out 2>&1 <<'PY'
import sys, wave, struct, math
def load(p):
    if p.endswith(".raw"):
        b = open(p, "rb").read(); b = b[:len(b) // 2 * 2]
        return 8000, struct.unpack('<%dh' % (len(b) // 2), b)
    w = wave.open(p); n = w.getnframes(); ch = w.getnchannels(); r = w.getframerate()
    d = struct.unpack('<%dh' % (n * ch), w.readframes(n))[::ch]
    return r, d
def share(x, rate, f):
    c = 2 * math.cos(2 * math.pi * f / rate); s1 = s2 = e = 0.0
    for v in x:
        s = v + c * s1 - s2; s2 = s1; s1 = s; e += v * v
    return (s1 * s1 + s2 * s2 - c * s1 * s2) / max(e * len(x) / 2, 1.0)
def best(p, f):   # best 0.25 s window: share of f, and its peak
    r, d = load(p); n = r // 4; out = (0.0, 0)
    for i in range(0, max(len(d) - n, 0), n):
        b = d[i:i + n]; s = share(b, r, f)
        if s > out[0]: out = (s, max(abs(v) for v in b))
    return out, len(d) / r
ok = True
# The speaker: the far end's audio (tone, then the IVR's record prompt and 1 kHz beep) is audible
# for at least 1.5 s in 0.25 s windows.
r, d = load(sys.argv[2]); n = r // 4
loud = sum(1 for i in range(0, max(len(d) - n, 0), n) if math.sqrt(sum(v * v for v in d[i:i + n]) / n) > 1000)
good = loud * 0.25 >= 1.5; ok &= good
print("%s speaker got the far end: %.2f s audible of %.1f s" % ("ok" if good else "FAIL", loud * 0.25, len(d) / r))
for p, f, what in ((sys.argv[1], 440, "far end heard the microphone"),):
    try:
        (s, peak), secs = best(p, f)
    except Exception as e:
        print("FAIL", what, p, e); ok = False; continue
    good = s > 0.5 and peak > 1000
    ok &= good
    print("%s %s: %d Hz share %.2f peak %d in %.1f s" % ("ok" if good else "FAIL", what, f, s, peak, secs))
sys.exit(0 if ok else 1)
PY
rT=$?
sed 's/^/   /' tones.out >&2
[ "$rB" = 0 ] || fail "B: parrot call exit $rB: $(tail -3 call.err)"
grep -q '^calls: 1 ok, 0 failed' call.out || fail "B: $(calls_line call.out)"
grep -q '^live ' call.out || fail "B: no live lines"
[ -n "$msg" ] || fail "B: the far end recorded no message (serve: $(grep -c dtmf serve.log) dtmf lines)"
[ "$rT" = 0 ] || fail "B: $(grep FAIL tones.out | head -2 | tr '\n' ' ')"
pass "devices listed via the null plugin; call through ALSA->PulseAudio: $(grep -c "^ok" tones.out)/2 checks ($(tr '\n' ';' < tones.out | sed 's/;$//'))"
