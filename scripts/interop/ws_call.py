#!/usr/bin/env python3
"""A SIP-over-WebSocket caller (RFC 7118) from the standard library: a browser softphone's
signalling without a browser.

usage: ws_call.py HOST PORT [--tls CAFILE] [--hold SECONDS]
Opens ws:// (or wss:// trusting CAFILE), sends INVITE with an SDP offer, expects 100/180 then 200
with an SDP answer, sends ACK, waits, sends BYE, expects 200. Prints one line per step; exit 0 when
the whole dialog worked.
"""
import base64, hashlib, os, random, socket, ssl, struct, sys, time

args = sys.argv[1:]
host, port = args[0], int(args[1])
cafile = args[args.index("--tls") + 1] if "--tls" in args else None
hold = float(args[args.index("--hold") + 1]) if "--hold" in args else 1.0
sock = socket.create_connection((host, port), timeout=10)
if cafile:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    sock = ctx.wrap_socket(sock, server_hostname=host)
scheme = "WSS" if cafile else "WS"
local = "%s:%d" % sock.getsockname()[:2]

key = base64.b64encode(os.urandom(16)).decode()
sock.sendall(("GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
              % (host, port, key)).encode())
buf = b""
while b"\r\n\r\n" not in buf:
    c = sock.recv(4096)
    if not c:
        sys.exit("closed during the WebSocket handshake")
    buf += c
head, buf = buf.split(b"\r\n\r\n", 1)
accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
head = head.decode()
if not head.startswith("HTTP/1.1 101") or accept not in head or "Sec-WebSocket-Protocol: sip" not in head:
    sys.exit("bad handshake answer: " + head.splitlines()[0])
print("handshake ok (%s)" % scheme)

def send(text):
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    hdr = bytes([0x81])
    if n < 126:
        hdr += bytes([0x80 | n])
    elif n < 65536:
        hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
    sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

def need(n):
    global buf
    while len(buf) < n:
        c = sock.recv(65536)
        if not c:
            sys.exit("connection closed")
        buf += c

def recv():
    """One whole message (fragments joined); pings answered."""
    global buf
    parts = b""
    while True:
        need(2)
        b0, b1 = buf[0], buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            need(4); n = struct.unpack(">H", buf[2:4])[0]; off = 4
        elif n == 127:
            need(10); n = struct.unpack(">Q", buf[2:10])[0]; off = 10
        if b1 & 0x80:
            sys.exit("server frame is masked")
        need(off + n)
        payload, buf = buf[off:off + n], buf[off + n:]
        op = b0 & 0x0F
        if op == 9:
            continue
        if op == 8:
            sys.exit("server closed the WebSocket")
        parts += payload
        if b0 & 0x80:
            return parts.decode()

def response(want_method):
    while True:
        m = recv()
        first = m.split("\r\n", 1)[0]
        if not first.startswith("SIP/2.0 "):
            continue
        status = int(first[8:11])
        cseq = [l for l in m.split("\r\n") if l.lower().startswith(("cseq:",))]
        print("<- %s (%s)" % (first, cseq[0] if cseq else "?"))
        if status >= 200 and want_method in (cseq[0] if cseq else ""):
            return status, m

call_id = "%08x@ws.invalid" % random.getrandbits(32)
via = lambda b: "Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\r\n" % (scheme, local, b)
target = "sip:parrot@%s:%d" % (host, port)
sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 9 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")
common = ("Max-Forwards: 70\r\nFrom: <sip:browser@ws.invalid>;tag=wsc1\r\n%%s"
          "Call-ID: %s\r\nContact: <sip:browser@%s;transport=%s>\r\n" % (call_id, local, scheme.lower()))
send("INVITE %s SIP/2.0\r\n%s%sCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s"
     % (target, via("inv1"), common % ("To: <%s>\r\n" % target), len(sdp), sdp))
status, ok = response("INVITE")
if status != 200 or "m=audio" not in ok:
    sys.exit("INVITE answered %d" % status)
to = [l for l in ok.split("\r\n") if l.lower().startswith(("to:", "t:"))][0]
print("-> ACK, holding %.1f s" % hold)
send("ACK %s SIP/2.0\r\n%s%sCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n" % (target, via("ack1"), common % (to + "\r\n")))
time.sleep(hold)
send("BYE %s SIP/2.0\r\n%s%sCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n" % (target, via("bye1"), common % (to + "\r\n")))
status, _ = response("BYE")
if status != 200:
    sys.exit("BYE answered %d" % status)
print("call over %s: ok" % scheme)
