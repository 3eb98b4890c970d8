#!/usr/bin/env python3
"""A minimal RFC 6455 client from the standard library, for interop checks of the WS layer.

usage: ws_client.py HOST PORT [--tls CAFILE]
Sends one SIP OPTIONS as a masked text frame with the `sip` subprotocol, expects it echoed back
in one unmasked frame, then closes with 1000 and expects the Close echoed. Exit 0 on success.
"""
import base64, hashlib, os, socket, ssl, struct, sys

host, port = sys.argv[1], int(sys.argv[2])
sock = socket.create_connection((host, port), timeout=5)
if len(sys.argv) > 4 and sys.argv[3] == "--tls":
    ctx = ssl.create_default_context(cafile=sys.argv[4])
    sock = ctx.wrap_socket(sock, server_hostname="localhost")

key = base64.b64encode(os.urandom(16)).decode()
sock.sendall((
    "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
    % (host, port, key)).encode())

buf = b""
while b"\r\n\r\n" not in buf:
    chunk = sock.recv(4096)
    if not chunk:
        sys.exit("closed during handshake")
    buf += chunk
head, buf = buf.split(b"\r\n\r\n", 1)
head = head.decode()
want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
assert head.startswith("HTTP/1.1 101"), head
assert ("Sec-WebSocket-Accept: " + want) in head, head
assert "Sec-WebSocket-Protocol: sip" in head, head

def send(opcode, payload):
    mask = os.urandom(4)
    n = len(payload)
    hdr = bytes([0x80 | opcode])
    if n < 126:
        hdr += bytes([0x80 | n])
    elif n < 65536:
        hdr += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        hdr += bytes([0x80 | 127]) + struct.pack("!Q", n)
    sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

def recv_frame():
    global buf
    def need(n):
        global buf
        while len(buf) < n:
            chunk = sock.recv(4096)
            if not chunk:
                sys.exit("closed while reading a frame")
            buf += chunk
    need(2)
    b0, b1 = buf[0], buf[1]
    assert b1 & 0x80 == 0, "server frames are not masked"
    n, at = b1 & 0x7F, 2
    if n == 126:
        need(4); n = struct.unpack("!H", buf[2:4])[0]; at = 4
    elif n == 127:
        need(10); n = struct.unpack("!Q", buf[2:10])[0]; at = 10
    need(at + n)
    payload, buf = buf[at:at + n], buf[at + n:]
    return b0 & 0x0F, payload

msg = (b"OPTIONS sip:echo@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK1\r\n"
       b"From: <sip:py@invalid>;tag=1\r\nTo: <sip:echo@127.0.0.1>\r\nCall-ID: py1\r\nCSeq: 1 OPTIONS\r\n"
       b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
send(0x1, msg)
send(0x9, b"hi")
seen = {}
while len(seen) < 2:
    op, payload = recv_frame()
    seen[op] = payload
assert seen[0x1] == msg, seen
assert seen[0xA] == b"hi", seen
send(0x8, struct.pack("!H", 1000))
op, payload = recv_frame()
assert op == 0x8 and payload[:2] == struct.pack("!H", 1000), (op, payload)
print("ws ok: echo, pong, close")
