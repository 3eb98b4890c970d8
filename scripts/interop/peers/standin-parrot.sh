#!/bin/bash
# Stand-in for the parrot CLI, built from SIPp, to exercise the interop scripts' mechanics (ports, captures,
# checks, cleanup) without parrot:  PARROT=scripts/interop/peers/standin-parrot.sh bash scripts/interop/10-...sh
# Supports only what the scripts need: "serve --bind 127.0.0.1:0 [--play F] [--rtp-ports LO-HI]" and
# "call URI [--calls N] [--parallel K] [--duration S]". No DTMF, auth, recording.
set -u
here="$(cd "$(dirname "$0")" && pwd)"; repo="$(cd "$here/../../.." && pwd)"
pick() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cmd=$1; shift
case "$cmd" in
serve)
  play="$repo/assets/welcome.wav"; rtp=""
  while [ $# -gt 0 ]; do case $1 in --play) play=$2; shift 2;; --rtp-ports) rtp=${2%-*}; shift 2;; *) shift;; esac; done
  port=$(pick); tmp=$(mktemp -d)
  sox "$play" -r 8000 -c 1 -e mu-law "$tmp/p.wav"
  sed "s|@WAV@|$tmp/p.wav|" "$here/scenarios/standin_uas_play.xml" > "$tmp/uas.xml"
  echo "listening on udp 127.0.0.1:$port tcp 127.0.0.1:$port"
  exec sipp -sf "$tmp/uas.xml" -i 127.0.0.1 -p "$port" -mi 127.0.0.1 ${rtp:+-mp $rtp} -nostdin -timeout 600s -buff_size 4194304 ;;
call)
  uri=$1; shift; n=1; k=1; d=5
  while [ $# -gt 0 ]; do case $1 in --calls) n=$2; shift 2;; --parallel) k=$2; shift 2;; --duration) d=$2; shift 2;; *) shift;; esac; done
  hostport=${uri#sip:}; user=service; case $hostport in *@*) user=${hostport%%@*};; esac; hostport=${hostport#*@}; tmp=$(mktemp -d)
  sipp -sn uac "$hostport" -s "$user" -i 127.0.0.1 -p "$(pick)" -m "$n" -l "$k" -r 1000 -d "$(python3 -c "print(int($d*1000))")" \
       -nostdin -timeout 120s > "$tmp/out" 2>&1
  ok=$(grep -E '^\s+Successful call' "$tmp/out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  bad=$(grep -E '^\s+Failed call' "$tmp/out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  echo "calls: ${ok:-0} ok, ${bad:-$n} failed"; [ "${bad:-1}" = 0 ] ;;
*) echo "standin: unsupported $cmd" >&2; exit 2 ;;
esac
