#!/bin/bash
# sipvicious 0.3.3 (svwar extension enumeration, svcrack digest dictionary attack) against
# parrot serve --registrar --users FILE, loopback only.
#  A) svwar REGISTER over a numeric range and a name list that both hold real users (100, 105, alice, bob) and
#     users that do not exist: nothing can be enumerated ("found nothing": an unknown extension is challenged
#     exactly like a real one); with --force, nothing again or every extension with the same verdict.
#  B) svwar INVITE and OPTIONS over the same range: no extension stands out either.
#  C) svcrack with a 4-word list: alice (whose weak password is in the list) is cracked, which shows the attack
#     works; for alice with a list without her password and for a user that does not exist the tool sees
#     the same thing (nothing found, no "User not found").
#  D) the server stays up: parrot options still gets 200, and SIGTERM ends it cleanly.
# Never pass -R/--reportback (it mails a report over the internet). sipvicious binds 5060 unless told
# otherwise, where other programs' traffic may arrive: every run gets its own -P port.
. "$(dirname "$0")/lib.sh"
apt_install sipvicious
parrot_build
cd "$WORK"; errs=()
SVWAR=$(command -v svwar || command -v sipvicious_svwar) || fail "no svwar after installing sipvicious"
SVCRACK=$(command -v svcrack || command -v sipvicious_svcrack) || fail "no svcrack after installing sipvicious"
printf 'alice:secret\nbob:hunter2\n100:pw-100\n105:pw-105\n' > users.txt
printf 'alice\nbob\ncarol\ndave\nmallory\n' > names.txt
printf 'password\n123456\nhunter2\nsecret\n' > words.txt
printf 'password\n123456\nletmein\n' > words_nohit.txt
serve_start serve.log --registrar --users "$WORK/users.txt"
sv() {            # sv OUT TOOL args... - one sipvicious run on its own local port, bounded in time
  local out=$1 tool=$2; shift 2
  timeout 60 "$tool" -P "$(free_port)" -b 127.0.0.1 -x 127.0.0.1 -p "$SERVE_PORT" "$@" > "$out" 2>&1
}
rows() {          # rows OUT -> "extension verdict" per result row of a svwar/svcrack table
  grep -E '^\| ' "$1" | grep -vE '^\| (Extension|-)' | awk -F'|' '{gsub(/ /,"",$2); gsub(/ /,"",$3); print $2, $3}'
}
nothing() { grep -q 'found nothing' "$1" && [ -z "$(rows "$1")" ]; }

# --- A: REGISTER enumeration
sv warA1.out "$SVWAR" -m REGISTER -e 100-110 127.0.0.1
sv warA2.out "$SVWAR" -m REGISTER -d names.txt 127.0.0.1
sv warA3.out "$SVWAR" --force -m REGISTER -e 100-110 127.0.0.1
verdictsA3=$(rows warA3.out | awk '{print $2}' | sort | uniq -c | tr -s ' ' | tr '\n' ',')
log "A) svwar REGISTER 100-110: $(nothing warA1.out && echo 'found nothing' || rows warA1.out | tr '\n' ',')"
log "A) svwar REGISTER names: $(nothing warA2.out && echo 'found nothing' || rows warA2.out | tr '\n' ',')"
log "A) svwar --force REGISTER 100-110: $(rows warA3.out | wc -l) rows, verdicts:$verdictsA3"
nothing warA1.out || errs+=("A: svwar REGISTER enumerated: $(rows warA1.out | tr '\n' ',')")
nothing warA2.out || errs+=("A: svwar REGISTER (names) enumerated: $(rows warA2.out | tr '\n' ',')")
nothing warA3.out || { [ "$(rows warA3.out | awk '{print $2}' | sort -u | wc -l)" = 1 ] && [ "$(rows warA3.out | wc -l)" -ge 11 ]; } \
  || errs+=("A: svwar --force: extensions answered differently: $verdictsA3")

# --- B: INVITE and OPTIONS enumeration
for m in INVITE OPTIONS; do
  sv "war$m.out" "$SVWAR" -m "$m" -e 100-110 127.0.0.1
  sv "war${m}n.out" "$SVWAR" -m "$m" -d names.txt 127.0.0.1
  log "B) svwar $m 100-110 / names: $(rows "war$m.out" | wc -l) / $(rows "war${m}n.out" | wc -l) extension(s) reported"
  for f in "war$m.out" "war${m}n.out"; do
    n=$(rows "$f" | wc -l); d=$(rows "$f" | awk '{print $2}' | sort -u | wc -l)
    # either nothing stands out, or everything (the tool's random probe included) looks the same
    [ "$n" = 0 ] || [ "$d" = 1 ] || errs+=("B: svwar $m told extensions apart: $(rows "$f" | tr '\n' ',')")
  done
done

# --- C: password cracking
sv crackA.out "$SVCRACK" -u alice -d words.txt 127.0.0.1
sv crackB.out "$SVCRACK" -u alice -d words_nohit.txt 127.0.0.1
sv crackC.out "$SVCRACK" -u mallory -d words_nohit.txt 127.0.0.1
log "C) svcrack alice/4 words: $(rows crackA.out | tr '\n' ' ')"
log "C) svcrack alice/no hit: $(nothing crackB.out && echo 'found nothing'), mallory (no such user): $(nothing crackC.out && echo 'found nothing'); 'User not found' lines: $(grep -c 'User not found' crackB.out crackC.out | tr '\n' ' ')"
rows crackA.out | grep -q '^alice secret$' || errs+=("C: svcrack did not crack alice's dictionary password (is digest working?): $(tail -2 crackA.out | tr '\n' ' ')")
nothing crackB.out && nothing crackC.out || errs+=("C: svcrack without the password: alice '$(tail -1 crackB.out)', mallory '$(tail -1 crackC.out)'")
! grep -q 'User not found' crackB.out crackC.out || errs+=("C: an unknown user was told apart (404)")

# --- D: still up
timeout 10 "$PARROT" options "sip:127.0.0.1:$SERVE_PORT" --bind 127.0.0.1:0 > options.log 2>&1; rO=$?
log "D) parrot options after the scans: rc=$rO $(head -1 options.log)"
[ "$rO" = 0 ] || errs+=("D: OPTIONS after the scans: rc=$rO $(head -2 options.log | tr '\n' ' ')")
kill -0 "$SERVE_PID" 2>/dev/null || errs+=("D: parrot serve died")
serve_stop
[ "${SERVE_RC:-0}" = 0 ] || errs+=("D: parrot serve exited $SERVE_RC on SIGTERM")

[ ${#errs[@]} -eq 0 ] || { printf '  %s\n' "${errs[@]}" >&2; fail "${errs[*]}"; }
pass "svwar REGISTER/INVITE/OPTIONS: no user told apart; svcrack: only the dictionary password found, unknown user looks like a wrong password; server up"
