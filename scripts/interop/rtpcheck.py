#!/usr/bin/env python3
"""RTP/audio checks for the interop scripts (python3 stdlib only).

  rtpcheck.py stream FIELDS [--ref WAV] [--pt N] [--max-gap-ms 30] [--min-packets N] [--corr 0.9] [--seconds 3]
      FIELDS: tshark -T fields output, tab-separated, columns
        frame.time_relative udp.srcport udp.dstport rtp.version rtp.p_type rtp.seq rtp.timestamp rtp.ssrc rtp.payload
      Per SSRC: version 2, payload type, seq +1 and timestamp +160 per packet, ~50 packets/s, no gap > max-gap-ms;
      with --ref: the decoded G.711 audio matches the WAV (normalized cross-correlation at the best lag, and the share
      of identical mu-law/A-law bytes against our own G.711 encoding of the WAV).  Exit 0 iff every stream passes.
  rtpcheck.py tone WAV [--freq 1000] [--min-seconds 1.0]
      Goertzel: share of non-silent 50 ms frames whose energy is >= 80 % at FREQ. Exit 0 iff >= 90 % and >= min-seconds.
  rtpcheck.py timing FIELDS2 [--skip S]
      FIELDS2 columns: frame.time_relative rtp.ssrc rtp.timestamp rtp.p_type.  Send-time accuracy per packet:
      lateness = (arrival - timestamp/8000) - min over the stream; prints share within 2 ms, p50/p99/max lateness,
      and stalls: 10 ms windows in which at least a tenth of the streams sent a packet over 2 ms late (the sender
      as a whole held up, rather than one stream).
      --skip S leaves out packets captured in the capture's first S seconds (its start-up stalls the machine).
"""
import argparse
import math
import struct
import sys
import wave


def _ulaw_decode(b):
    u = ~b & 0xFF
    sign, exp, mant = u & 0x80, (u >> 4) & 7, u & 0x0F
    s = (((mant << 3) + 0x84) << exp) - 0x84
    return -s if sign else s


def _alaw_decode(b):
    a = b ^ 0x55
    sign, exp, mant = a & 0x80, (a >> 4) & 7, a & 0x0F
    s = (mant << 4) + 8 if exp == 0 else ((mant << 4) + 0x108) << (exp - 1)
    return s if sign else -s


ULAW = [_ulaw_decode(i) for i in range(256)]
ALAW = [_alaw_decode(i) for i in range(256)]
assert ULAW[0xFF] == 0 and ULAW[0x00] == -32124 and ULAW[0x80] == 32124
assert ALAW[0xD5] == 8 and ALAW[0x55] == -8 and ALAW[0xAA] == 32256


def ulaw_encode(s):
    sign = 0x80 if s < 0 else 0
    s = min(-s if s < 0 else s, 32635) + 0x84
    exp = 7
    while exp > 0 and not (s & (0x4000 >> (7 - exp))):
        exp -= 1
    mant = (s >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


def alaw_encode(s):
    # search the decode table: 256 entries, good enough for a few seconds of audio
    return min(range(256), key=lambda c: abs(ALAW[c] - s))


assert all(ULAW[ulaw_encode(ULAW[c])] == ULAW[c] for c in range(256))


def read_wav(path):
    with wave.open(path, "rb") as w:
        ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(n)
    if width != 2:
        sys.exit(f"{path}: only 16-bit WAV supported (got {8 * width} bit)")
    samples = struct.unpack("<%dh" % (len(raw) // 2), raw)[::ch]
    return rate, list(samples)


def parse_payload(hexstr):
    h = hexstr.replace(":", "").strip()
    return bytes.fromhex(h) if h else b""


def corr(a, b):
    n = min(len(a), len(b))
    if n == 0:
        return 0.0
    sab = saa = sbb = 0.0
    for i in range(n):
        x, y = a[i], b[i]
        sab += x * y
        saa += x * x
        sbb += y * y
    return sab / math.sqrt(saa * sbb) if saa > 0 and sbb > 0 else 0.0


def envelope(x, frame=160):
    return [math.sqrt(sum(v * v for v in x[i:i + frame]) / frame) for i in range(0, len(x) - frame + 1, frame)]


def best_lag(rx, ref, seconds):
    """Lag (samples) such that rx[i] ~ ref[i + lag]; coarse on 20 ms envelopes, then sample-exact."""
    win = int(seconds * 8000)
    erx, eref = envelope(rx[:win + 16000]), envelope(ref)
    best = (-2.0, 0)
    for fl in range(-25, 100):   # rx may start up to 0.5 s into ref (lag>0) or up to 2 s before it (lag<0)
        a = erx[max(0, -fl):]
        b = eref[max(0, fl):]
        n = min(len(a), len(b), win // 160)
        if n < 25:
            continue
        ma, mb = sum(a[:n]) / n, sum(b[:n]) / n
        c = corr([v - ma for v in a[:n]], [v - mb for v in b[:n]])
        best = max(best, (c, fl))
    fl = best[1]
    cands = []
    step_win = min(win, 8000)
    for lag in range(fl * 160 - 200, fl * 160 + 201):
        a = rx[max(0, -lag):]
        b = ref[max(0, lag):]
        cands.append((corr(a[:step_win], b[:step_win]), lag))
    return max(cands)[1]


def cmd_stream(args):
    streams = {}
    for line in open(args.fields, encoding="utf-8", errors="replace"):
        f = line.rstrip("\n").split("\t")
        if len(f) < 9 or not f[7]:
            continue
        try:
            t, sport, dport = float(f[0]), int(f[1]), int(f[2])
            ver, pt, seq, ts, ssrc = int(f[3]), int(f[4]), int(f[5]), int(f[6]), f[7]
        except ValueError:
            continue
        streams.setdefault(ssrc, []).append((t, sport, dport, ver, pt, seq, ts, f[8]))
    if not streams:
        print("rtpcheck: no RTP packets")
        return 1
    ref = None
    if args.ref:
        rate, ref = read_wav(args.ref)
        if rate != 8000:
            sys.exit(f"{args.ref}: reference must be 8 kHz (got {rate})")
    bad = 0
    summary = []
    for ssrc, pk in sorted(streams.items(), key=lambda kv: kv[1][0][0]):
        audio = [p for p in pk if args.pt is None or p[4] == args.pt]
        errs = []
        if len(pk) < args.min_packets:
            errs.append(f"{len(pk)} packets < {args.min_packets}")
        ports = {(p[1], p[2]) for p in pk}
        if len(ports) != 1:
            errs.append(f"SSRC used on {len(ports)} port pairs {sorted(ports)[:3]}")
        vers = {p[3] for p in pk}
        if vers != {2}:
            errs.append(f"RTP version {sorted(vers)}")
        pts = sorted({p[4] for p in pk})
        if args.pt is not None and args.pt not in pts:
            errs.append(f"payload types {pts}, expected {args.pt}")
        seq_err = ts_err = 0
        first_seq_err = None
        for a, b in zip(pk, pk[1:]):
            if (b[5] - a[5]) % 65536 != 1:
                seq_err += 1
                first_seq_err = first_seq_err or f"seq {a[5]}->{b[5]}"
        for a, b in zip(audio, audio[1:]):
            ds = (b[5] - a[5]) % 65536
            if (b[6] - a[6]) % (1 << 32) != 160 * ds:
                ts_err += 1
                first_seq_err = first_seq_err or f"ts {a[6]}->{b[6]} over {ds} packets"
        if seq_err:
            errs.append(f"{seq_err} sequence jumps")
        if ts_err:
            errs.append(f"{ts_err} timestamp steps != 160/packet")
        dur = pk[-1][0] - pk[0][0]
        rate_pps = (len(pk) - 1) / dur if dur > 0 else 0.0
        gaps = [b[0] - a[0] for a, b in zip(pk, pk[1:])]
        max_gap = max(gaps) * 1000 if gaps else 0.0
        if len(pk) > 10 and not 45 <= rate_pps <= 55:
            errs.append(f"rate {rate_pps:.1f} pkt/s")
        if max_gap > args.max_gap_ms:
            errs.append(f"max gap {max_gap:.1f} ms > {args.max_gap_ms}")
        desc = (f"ssrc {ssrc} {sport_dport(pk)} pt {pts} {len(pk)} pkts {dur:.2f}s {rate_pps:.1f}/s "
                f"maxgap {max_gap:.1f}ms")
        if ref is not None and audio:
            pt = audio[0][4]
            table = ULAW if pt == 0 else ALAW if pt == 8 else None
            if table is None:
                errs.append(f"cannot decode payload type {pt}")
            else:
                payload = b"".join(parse_payload(p[7]) for p in audio)
                rx = [table[c] for c in payload]
                lag = best_lag(rx, ref, args.seconds)
                n = min(int(args.seconds * 8000), len(rx) - max(0, -lag), len(ref) - max(0, lag))
                a, b = rx[max(0, -lag):][:n], ref[max(0, lag):][:n]
                c = corr(a, b)
                enc = ulaw_encode if pt == 0 else alaw_encode
                same = sum(1 for x, y in zip(payload[max(0, -lag):][:n], b) if x == enc(y)) / n if n > 0 else 0.0
                desc += f" audio corr {c:.3f} same-bytes {100 * same:.1f}% lag {lag / 8:.1f}ms over {n / 8000:.2f}s"
                if n < 4000:
                    errs.append(f"only {n} samples to compare")
                if c < args.corr:
                    errs.append(f"audio correlation {c:.3f} < {args.corr}")
        if errs:
            bad += 1
            desc += " ERRORS: " + "; ".join(errs) + (f" (first: {first_seq_err})" if first_seq_err else "")
        print(desc)
        summary.append((len(pk), max_gap))
    print(f"rtpcheck: {len(streams)} streams, {len(streams) - bad} ok, {bad} bad; "
          f"max gap {max(g for _, g in summary):.1f} ms")
    return 1 if bad else 0


def sport_dport(pk):
    return f"{pk[0][1]}->{pk[0][2]}"


def goertzel_ratio(x, rate, freq):
    n = len(x)
    k = round(n * freq / rate)
    w = 2 * math.pi * k / n
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    for v in x:
        s0 = v + coeff * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    energy = sum(v * v for v in x)
    return 2 * power / (n * energy) if energy > 0 else 0.0


def cmd_tone(args):
    rate, x = read_wav(args.wav)
    n = rate // 20
    frames = [x[i:i + n] for i in range(0, len(x) - n + 1, n)]
    loud = [f for f in frames if math.sqrt(sum(v * v for v in f) / n) > 300]
    good = [f for f in loud if goertzel_ratio(f, rate, args.freq) >= 0.8]
    secs = len(good) * 0.05
    share = len(good) / len(loud) if loud else 0.0
    ok = loud and share >= 0.9 and secs >= args.min_seconds
    print(f"tone {args.freq:.0f} Hz: {secs:.2f}s of tone, {100 * share:.0f}% of {len(loud)} non-silent 50ms frames "
          f"({len(x) / rate:.2f}s file at {rate} Hz) -> {'ok' if ok else 'NOT FOUND'}")
    return 0 if ok else 1


def cmd_timing(args):
    streams = {}
    for line in open(args.fields):
        f = line.rstrip("\n").split("\t")
        try:
            t, ssrc, ts, pt = float(f[0]), f[1], int(f[2]), int(f[3])
        except (ValueError, IndexError):
            continue
        if pt >= 96:
            continue
        streams.setdefault(ssrc, []).append((t, ts))
    if args.skip > 0 and streams:
        start = min(pk[0][0] for pk in streams.values()) + args.skip
        streams = {s: [p for p in pk if p[0] >= start] for s, pk in streams.items()}
        streams = {s: pk for s, pk in streams.items() if pk}
    late = []
    late_at = {}
    for pk in streams.values():
        t0, ts0 = pk[0]
        off = []
        for t, ts in pk:
            off.append(t - ((ts - ts0) % (1 << 32)) / 8000.0)
        base = min(off)
        late.extend((o - base) * 1000 for o in off)
        # A packet more than 2 ms late, by the 10 ms window it left in.
        for (t, _), o in zip(pk, off):
            if (o - base) * 1000 > 2.0:
                late_at.setdefault(int(t * 100), set()).add(id(pk))
    if not late:
        print("timing: no packets")
        return 1
    late.sort()
    within = sum(1 for v in late if v <= 2.0) / len(late)
    p = lambda q: late[min(len(late) - 1, int(q * len(late)))]
    print(f"timing: {len(streams)} streams {len(late)} pkts within2ms {100 * within:.2f}% "
          f"p50 {p(0.5):.2f}ms p99 {p(0.99):.2f}ms max {late[-1]:.2f}ms "
          f"stalls {sum(1 for s in late_at.values() if len(s) * 10 >= len(streams))}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stream")
    s.add_argument("fields")
    s.add_argument("--ref")
    s.add_argument("--pt", type=int)
    s.add_argument("--max-gap-ms", type=float, default=30.0)
    s.add_argument("--min-packets", type=int, default=50)
    s.add_argument("--corr", type=float, default=0.9)
    s.add_argument("--seconds", type=float, default=3.0)
    t = sub.add_parser("tone")
    t.add_argument("wav")
    t.add_argument("--freq", type=float, default=1000.0)
    t.add_argument("--min-seconds", type=float, default=1.0)
    m = sub.add_parser("timing")
    m.add_argument("fields")
    m.add_argument("--skip", type=float, default=0.0)
    a = ap.parse_args()
    return {"stream": cmd_stream, "tone": cmd_tone, "timing": cmd_timing}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
