#!/bin/sh
# Independent check of captured table fixtures against expected.json, using only
# awk/sort/uniq/jq (no lab code). Usage: scripts/lab/verify-fixtures.sh [test/fixtures/tables]
# Every TCP format (ss -tan, ss -tanu, netstat -an/-ant/-antu/-antW, /proc/net/tcp+tcp6)
# is reduced to "<key> <count>" lines and compared with the corresponding expected.json block.
set -u
ROOT=${1:-test/fixtures/tables}
fail=0

# ---- normalisers: each prints "STATE PEER_IP" for every TCP socket (netstat state names) ----
ss_tan() { # ss -tan (no Netid column) / ss -tanu (Netid column: keep tcp)
  awk -v netid="$2" '
    NR == 1 { next }
    netid && $1 != "tcp" { next }
    { if (netid) { st = $2; peer = $6 } else { st = $1; peer = $5 }
      sub(/:[^:]*$/, "", peer); gsub(/[][]/, "", peer); sub(/^::ffff:/, "", peer)
      if (st == "ESTAB") st = "ESTABLISHED"; else gsub(/-/, "_", st)
      print st, peer }' "$1"
}
netstat_t() { # any netstat -a... output: only tcp/tcp6 lines
  awk '$1 == "tcp" || $1 == "tcp6" { peer = $5; sub(/:[^:]*$/, "", peer); print $6, peer }' "$1"
}
proc_t() { # /proc/net/tcp and tcp6: decode hex addresses (mawk-safe)
  awk '
    function hv(h,  i, v) { v = 0; h = toupper(h)
      for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789ABCDEF", substr(h, i, 1)) - 1
      return v }
    function v4(h) { return hv(substr(h,7,2)) "." hv(substr(h,5,2)) "." hv(substr(h,3,2)) "." hv(substr(h,1,2)) }
    function v6(h,  w, wd, b, g, i, bs, bl, cs, cl, out) {
      for (w = 0; w < 4; w++) { wd = substr(h, w*8+1, 8)
        b = substr(wd,7,2) substr(wd,5,2) substr(wd,3,2) substr(wd,1,2)
        g[w*2+1] = hv(substr(b,1,4)); g[w*2+2] = hv(substr(b,5,4)) }
      if (g[1]+g[2]+g[3]+g[4]+g[5] == 0 && g[6] == 65535)
        return int(g[7]/256) "." g[7]%256 "." int(g[8]/256) "." g[8]%256
      bs = 0; bl = 0; cl = 0
      for (i = 1; i <= 8; i++) { if (g[i] == 0) { if (cl == 0) cs = i; cl++; if (cl > bl) { bl = cl; bs = cs } } else cl = 0 }
      if (bl < 2) bl = 0
      out = ""
      for (i = 1; i <= 8; i++) {
        if (bl && i == bs) { out = out "::"; i += bl - 1; continue }
        if (out != "" && substr(out, length(out)) != ":") out = out ":"
        out = out sprintf("%x", g[i]) }
      return out }
    BEGIN { n["01"]="ESTABLISHED"; n["02"]="SYN_SENT"; n["03"]="SYN_RECV"; n["04"]="FIN_WAIT1"; n["05"]="FIN_WAIT2";
            n["06"]="TIME_WAIT"; n["07"]="CLOSE"; n["08"]="CLOSE_WAIT"; n["09"]="LAST_ACK"; n["0A"]="LISTEN"; n["0B"]="CLOSING" }
    FNR == 1 { next }
    { split($3, a, ":"); ip = (length(a[1]) == 8) ? v4(a[1]) : v6(a[1]); print n[$4], ip }' "$@"
}

FORMATS="ss-tan ss-tanu netstat-an netstat-ant netstat-antu netstat-antW proc"
pairs() { # $1 dir, $2 format -> "STATE IP" lines
  case $2 in
    ss-tan) ss_tan "$1/ss-tan.txt" "" ;;
    ss-tanu) ss_tan "$1/ss-tanu.txt" 1 ;;
    proc) proc_t "$1/proc-tcp.txt" "$1/proc-tcp6.txt" ;;
    *) netstat_t "$1/$2.txt" ;;
  esac
}
count() { sort | uniq -c | awk '{ print $2, $1 }' | sort; }
jcount() { jq -r "$1 | to_entries[] | \"\(.key) \(.value)\"" "$2" | sort; }

check() { # name, expected-lines, actual-lines
  if [ "$2" = "$3" ]; then printf '  %-34s OK\n' "$1"
  else printf '  %-34s MISMATCH\n' "$1"; fail=1
    printf '%s\n' "$2" > /tmp/fgv.exp.$$; printf '%s\n' "$3" > /tmp/fgv.act.$$
    diff /tmp/fgv.exp.$$ /tmp/fgv.act.$$ | sed 's/^/      /' | head -20; rm -f /tmp/fgv.exp.$$ /tmp/fgv.act.$$
  fi
}

for d in "$ROOT"/*/; do
  d=${d%/}; e=$d/expected.json
  [ -f "$e" ] || continue
  echo "== $(basename "$d")"
  if jq -e 'has("observedSynRecvByIp")' "$e" >/dev/null; then
    synsel='.observedSynRecvByIp'; allsel='(.byIpAllStatesButListen as $a | .observedSynRecvByIp | reduce to_entries[] as $x ($a; .[$x.key] += $x.value))'
    check "observed SYN_RECV total = states" "$(jq -r '.states.SYN_RECV' "$e")" "$(jq -r '[.observedSynRecvByIp[]] | add' "$e")"
  else synsel='.synRecvByIp'; allsel='.byIpAllStatesButListen'; fi
  exp_states=$(jcount .states "$e"); exp_syn=$(jcount "$synsel" "$e"); exp_est=$(jcount .establishedByIp "$e")
  exp_tw=$(jcount .timeWaitByIp "$e"); exp_all=$(jcount "$allsel" "$e")
  for f in $FORMATS; do
    p=$(pairs "$d" "$f")
    check "$f states" "$exp_states" "$(printf '%s\n' "$p" | awk '{print $1}' | count)"
    check "$f SYN_RECV by ip" "$exp_syn" "$(printf '%s\n' "$p" | awk '$1=="SYN_RECV"{print $2}' | count)"
    check "$f ESTABLISHED by ip" "$exp_est" "$(printf '%s\n' "$p" | awk '$1=="ESTABLISHED"{print $2}' | count)"
    check "$f TIME_WAIT by ip" "$exp_tw" "$(printf '%s\n' "$p" | awk '$1=="TIME_WAIT"{print $2}' | count)"
    check "$f all-but-LISTEN by ip" "$exp_all" "$(printf '%s\n' "$p" | awk '$1!="LISTEN"{print $2}' | count)"
  done
  # SYN_RECV by network, from the decoded /proc addresses (/24 for IPv4, /64 for IPv6)
  check "proc SYN_RECV by net" "$(jcount .synRecvByNet "$e")" "$(pairs "$d" proc | awk '$1=="SYN_RECV"{print $2}' | awk '
      /\./ { split($1, o, "."); print o[1] "." o[2] "." o[3] ".0/24"; next }
      { n = split($1, h, "::"); split(h[1], g, ":"); k = 0; for (i in g) k++
        if (k >= 4) print g[1] ":" g[2] ":" g[3] ":" g[4] "::/64"
        else { s = h[1]; print s "::/64" } }' | count)"
  check "proc rows tcp/tcp6" "$(jq -r '"\(.procRows.tcp) \(.procRows.tcp6)"' "$e")" "$(($(wc -l < "$d/proc-tcp.txt") - 1)) $(($(wc -l < "$d/proc-tcp6.txt") - 1))"
  check "udp rows proc/netstat/ss" "$(jq -r '.udpSockets | "\(.udp) \(.udp6) \(.udp + .udp6) \(.udp + .udp6)"' "$e")" \
    "$(($(wc -l < "$d/proc-udp.txt") - 1)) $(($(wc -l < "$d/proc-udp6.txt") - 1)) $(awk '$1 ~ /^udp/' "$d/netstat-antu.txt" | wc -l) $(awk '$1 == "udp"' "$d/ss-tanu.txt" | wc -l)"
done
[ $fail = 0 ] && echo "ALL OK" || echo "SOME CHECKS FAILED"
exit $fail
