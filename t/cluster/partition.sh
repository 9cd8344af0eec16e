#!/bin/sh
# partition.sh — replicas cut off from their shards by the network, and
# back. The replicas' node runs in a network namespace of its own, joined
# to the host by a veth pair the test makes (and always removes); the
# shards and the web node run on the host, CURVE between all of them: s0
# (ack = primary) with its replica r1, s1 (ack = replica) with r2. Under
# curl write load through the gateway the link is cut for 5 s and
# restored. s0 goes on acknowledging writes, s1 acknowledges none while its
# only replica is cut off; the replicas leave the read rotation (reads are
# the primaries' meanwhile, a token's too), catch up from the shards' logs
# afterwards (no snapshot: the outage is well within the default 100000
# changes), stream at the shards' sequences, and hold every acknowledged
# document byte for byte (sqlite3). Needs root and `ip` (iproute2): without
# them the test is skipped. Prints TAP.

dir=$(mktemp -d "${TMPDIR:-/tmp}/tiers-partition-XXXXXX")
. "${top_srcdir:-.}/t/cluster/lib.sh"
PROBE="$top_builddir/t/cluster/probe"
LC_ALL=C; export LC_ALL       # sort and comm agree on the order
contains () { grep -qF -- "$2" "$1"; }
skip_all () { echo "ok 1 # SKIP $*"; echo "1..1"; exit 0; }

# --- The namespace and the veth pair: unique by the test's pid, removed on
# every exit (lib.sh's cleanup kills the processes first: a namespace with
# a process inside outlives `ip netns del`).
ns="tiers-part-$$"
veth_host="tph$$"             # at most 15 characters
veth_ns="tpn$$"
made_ns=""; made_veth=""
net_cleanup () {
    cleanup
    [ -z "$made_veth" ] || ip link del "$veth_host" 2>/dev/null
    [ -z "$made_ns" ] || ip netns del "$ns" 2>/dev/null
}
trap net_cleanup EXIT

[ "$(id -u)" = 0 ] || skip_all "network namespaces need root (running as uid $(id -u))"
command -v ip >/dev/null 2>&1 || skip_all "no ip command (iproute2) to make a network namespace"
command -v sqlite3 >/dev/null 2>&1 || skip_all "no sqlite3 to read the replica's file"
ip netns add "$ns" 2>"$dir/netns.err" \
    || skip_all "ip netns add fails here: $(head -n 1 "$dir/netns.err")"
made_ns=1
ip link add "$veth_host" type veth peer name "$veth_ns" 2>"$dir/veth.err" \
    || skip_all "cannot make a veth pair: $(head -n 1 "$dir/veth.err")"
made_veth=1
# A /30 of 10.250.0.0/16 from the pid, the next free one when taken.
k=$(($$ % 16384)); tries=0
while :; do
    net="10.250.$((k / 64)).$((k % 64 * 4))"
    host_ip="10.250.$((k / 64)).$((k % 64 * 4 + 1))"
    ns_ip="10.250.$((k / 64)).$((k % 64 * 4 + 2))"
    ip -o addr show | grep -qF " $host_ip/" || break
    k=$(((k + 1) % 16384)); tries=$((tries + 1))
    [ $tries -lt 64 ] || skip_all "no free /30 in 10.250.0.0/16"
done
{ ip link set "$veth_ns" netns "$ns" \
  && ip addr add "$host_ip/30" dev "$veth_host" \
  && ip link set "$veth_host" up \
  && ip netns exec "$ns" ip addr add "$ns_ip/30" dev "$veth_ns" \
  && ip netns exec "$ns" ip link set "$veth_ns" up \
  && ip netns exec "$ns" ip link set lo up; } 2>"$dir/ip.err" \
    || skip_all "cannot set up the veth pair: $(head -n 1 "$dir/ip.err")"
diag "namespace $ns: $veth_host $host_ip/30 (host) <-> $veth_ns $ns_ip/30 ($net/30)"

p_s0=$(freeport); p_s0s=$(freeport)
p_s1=$(freeport); p_s1s=$(freeport)
p_r1=$(freeport); p_r2=$(freeport)
keys="$dir/keys"
data="$dir/data"
cat >"$dir/p.map" <<MAP
cluster
    name = partition
    data = $data
    log = info
    sync = normal
    ack = primary
    security = curve
    keys = $keys
node = web
    gateway
        http = 127.0.0.1:0
    balancer
        bind = inproc://balancer
    read-api
    write-api
node = db1
    shard = s0
        bind = tcp://127.0.0.1:$p_s0
        bind.stream = tcp://$host_ip:$p_s0s
        slots = 0-511
    shard = s1
        bind = tcp://127.0.0.1:$p_s1
        bind.stream = tcp://$host_ip:$p_s1s
        slots = 512-1023
        ack = replica
node = db2
    replica = r1
        bind = tcp://$ns_ip:$p_r1
        of = s0
    replica = r2
        bind = tcp://$ns_ip:$p_r2
        of = s1
MAP
"$TIERS" check -m "$dir/p.map" >"$dir/check.out" 2>&1
ok $? "tiers check: the map (the replicas on $ns_ip, the streams on $host_ip) loads"
"$TIERS" keys -m "$dir/p.map" >/dev/null 2>&1; ok $? "the nodes' keys are made"

# `tiers ARGS` inside the namespace, as start_node does on the host (the
# pid of `ip netns exec` is the pid of tiers: it execs).
start_node_ns () {
    log=$1; shift
    : >"$log"
    ip netns exec "$ns" "$TIERS" "$@" >>"$log" 2>&1 &
    pid=$!
    pids="$pids $pid"
    i=0
    while [ $i -lt 600 ] && ! grep -q "; ready" "$log"; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05; i=$((i + 1))
    done
    grep -q "; ready" "$log" && return 0
    sed 's/^/# /' "$log" | tail -n 10
    return 1
}
# STATUS as the node the map lets ask (the shards' node asks its replicas,
# the web node its shards). The replicas' from inside the namespace: that
# works while the link is down too.
status () {   # status ENDPOINT SERVER_NODE CLIENT_NODE
    "$PROBE" status "$1" "$keys/$2.cert" "$keys/$3.cert"
}
field () {    # field JSON KEY -> the first value of that key
    echo "$1" | grep -o "\"$2\":[^,}]*" | head -n 1 | sed 's/^[^:]*://; s/"//g'
}
port_of () { eval "echo \$p_$1"; }
shard_status () { status "tcp://127.0.0.1:$(port_of "$1")" db1 web; }
replica_status () {
    ip netns exec "$ns" "$PROBE" status "tcp://$ns_ip:$(port_of "$1")" "$keys/db2.cert" "$keys/db1.cert"
}
of () { case $1 in r1) echo s0 ;; r2) echo s1 ;; esac; }
now_ms () { echo $(( $(date +%s%N) / 1000000 )); }
caught_up () {   # caught_up REPLICA: within 20 s, streaming at its shard's sequence
    i=0
    while [ $i -lt 200 ]; do
        st=$(replica_status "$1")
        if [ "$(field "$st" state)" = streaming ] \
        && [ "$(field "$st" applied)" = "$(field "$(shard_status "$(of "$1")")" sequence)" ]; then
            return 0
        fi
        sleep 0.1; i=$((i + 1))
    done
    diag "$1 is $st; $(of "$1") is at $(field "$(shard_status "$(of "$1")")" sequence)"
    return 1
}
# put ID BODY WHO -> $code, $tok, $tshard; an acknowledged write goes to
# $dir/acked.SHARD as "ID BODY", and every write to $dir/writes as
# "ID CODE SENT_MS ANSWERED_MS SHARD OUTCOME" (SHARD "-" without a token;
# OUTCOME of a failed one from its problem type: not-applied,
# outcome-unknown or "-").
put () {
    sent=$(now_ms)
    code=$(curl -s -m 10 -o "$dir/put.body.$3" -D "$dir/put.hdr.$3" -w '%{http_code}' -X PUT -d "$2" "$base/v1/d/$1")
    tok=$(grep -i '^tiers-token:' "$dir/put.hdr.$3" | cut -d' ' -f2- | tr -d '\r')
    tshard=${tok%%=*}; [ -n "$tshard" ] || tshard=-
    outcome=$(grep -o 'urn:tiers:problem:[a-z-]*' "$dir/put.body.$3" | head -n 1 | sed 's/.*://')
    case $code in 200|201) echo "$1 $2" >>"$dir/acked.$tshard" ;; esac
    echo "$1 $code $sent $(now_ms) $tshard ${outcome:--}" >>"$dir/writes"
}
# Writes until $dir/stop exists: new documents d/wJ (on either shard), and
# every fifth time a new version of d/$hot (on s0). One client: the
# acknowledged ones are in order.
load () {
    j=1
    while [ ! -e "$dir/stop" ]; do
        put "w$j" "{\"id\":\"w$j\",\"text\":\"caf\\u00e9 $j\",\"n\":$j}" load
        [ $((j % 5)) = 0 ] && put "$hot" "{\"id\":\"$hot\",\"v\":$j}" load
        j=$((j + 1))
    done
}
acked () { cat "$dir/acked.s0" "$dir/acked.s1" | wc -l | tr -d ' '; }
# What a replica's file must hold: the last acknowledged body of each id
# of its shard. Prints the ones missing from FILE or different in it.
missing () {   # missing FILE SHARD
    sqlite3 "$1" "SELECT id || ' ' || body FROM docs WHERE collection = 'd'" \
        | sort >"$dir/have" 2>"$dir/sqlite.err"
    awk '{ last [$1] = $0 } END { for (id in last) print last [id] }' "$dir/acked.$2" \
        | sort | comm -23 - "$dir/have"
}
# The writes of SHARD answered CODES (a regex) that were sent after FROM
# and answered before TO (ms), counted.
writes_between () {   # writes_between SHARD CODES FROM TO
    awk -v s="$1" -v c="^($2)\$" -v f="$3" -v t="$4" \
        '$5 == s && $2 ~ c && $3 >= f && $4 <= t { n++ } END { print n + 0 }' "$dir/writes"
}
s1_writes_after () {   # s1_writes_after FROM: 2xx writes of s1 sent after FROM
    awk -v f="$1" '$5 == "s1" && $2 ~ /^20[01]$/ && $3 >= f { n++ } END { print n + 0 }' "$dir/writes"
}

: >"$dir/acked.s0"; : >"$dir/acked.s1"; : >"$dir/writes"
# The replicas first: a shard with replicas takes no write before a
# majority of its copies answered.
start_node_ns "$dir/db2.log" run -m "$dir/p.map" -n db2
ok $? "the replicas' node starts inside the namespace ($ns_ip)"
db2=$pid
start_node "$dir/db1.log" run -m "$dir/p.map" -n db1; ok $? "the shards' node starts"
db1=$pid
start_node "$dir/web.log" run -m "$dir/p.map" -n web; ok $? "the web node starts"
web=$pid
base=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$dir/web.log" | head -n 1)
i=0
while [ $i -lt 100 ] && { [ "$(field "$(shard_status s0)" role)" != primary ] \
                      || [ "$(field "$(shard_status s1)" role)" != primary ]; }; do
    sleep 0.05; i=$((i + 1))
done
is "$(field "$(shard_status s0)" role) $(field "$(shard_status s1)" role)" "primary primary" \
    "both shards serve as primaries (they heard their replicas)"
# Under load the shards' sequences move on: "streaming, in the rotation"
# is what can be waited for here (the exact catch-up is checked at the end).
for r in r1 r2; do
    i=0
    while [ $i -lt 100 ]; do
        st=$(replica_status $r)
        [ "$(field "$st" state)" = streaming ] && [ "$(field "$st" rotation)" = true ] && break
        sleep 0.1; i=$((i + 1))
    done
    is "$(field "$st" state) $(field "$st" rotation)" "streaming true" "$r streams over the veth, in its read rotation"
done
# Two keys on s0 (the token names the shard): d/$hot for versions, one
# for the read right after the cut.
hot=""; cutkey=""; kj=1
while [ $kj -lt 100 ] && [ -z "$cutkey" ]; do
    put "k$kj" "{\"id\":\"k$kj\"}" main
    if [ "$tshard" = s0 ]; then [ -z "$hot" ] && hot=k$kj || cutkey=k$kj; fi
    kj=$((kj + 1))
done
[ -n "$hot" ] && [ -n "$cutkey" ]; ok $? "two keys on s0: d/$hot, d/$cutkey"

load &
loader=$!
pids="$pids $loader"
i=0
while [ $i -lt 200 ] && [ "$(acked)" -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
in_api_rotation "$dir/web.log" r1 r2; ok $? "r1 and r2 are in the web node's read rotation"
[ "$(s1_writes_after 0)" -gt 0 ]; ok $? "s1 acknowledges writes (ack = replica: r2 has them) before the cut ($(s1_writes_after 0))"
snapshots_before=$(grep -c "fetching snapshot" "$dir/db2.log")
resyncs_before=$(grep -c "resync at sequence" "$dir/db2.log")
applied_r1=$(field "$(replica_status r1)" applied)
applied_r2=$(field "$(replica_status r2)" applied)
r1_joins=$(grep -c "read-api: replica r1 joined the read rotation" "$dir/web.log")

# --- The cut: 5 s with the host side of the veth down.
before_cut=$(acked)
cut_at=$(now_ms)
ip link set "$veth_host" down; ok $? "the link is cut ($veth_host down)"
# Read your writes at once, while the read-api still counts r1 in: the
# read waits for r1 (replica_timeout + read_wait at most), then the primary.
put "$cutkey" "{\"id\":\"$cutkey\",\"v\":1}" main
case $code in 200|201) ok 0 "a write to s0 right after the cut is acknowledged (ack = primary)" ;;
    *) ok 1 "a write to s0 right after the cut is acknowledged (ack = primary): $code" ;; esac
t0=$(now_ms)
req GET "/v1/d/$cutkey" -H "Tiers-Token: $tok"
read_ms=$(($(now_ms) - t0))
is "$code $(body)" "200 {\"id\":\"$cutkey\",\"v\":1}" "read with its token right after the cut, it is the write ($read_ms ms)"
# (by design replica_timeout 500 ms + read_wait 1 s; 5 s for a loaded machine)
[ "$read_ms" -lt 5000 ]; ok $? "... answered within 5 s (the primary, after r1 did not answer)"
silent=0; out=0; seen=""; behind=0; behind_seen=""
while [ $(($(now_ms) - cut_at)) -lt 5000 ]; do
    # The primary's view: r1 among its followers, acked below its sequence
    # (until it forgets r1, silent for 3 s).
    sst=$(shard_status s0)
    sacked=$(field "$sst" acked); sseq=$(field "$sst" sequence)
    if [ -n "$sacked" ] && [ -n "$sseq" ] && [ $((sseq - sacked)) -gt 0 ]; then
        behind=1; behind_seen="sequence $sseq, r1 acked $sacked"
    fi
    st=$(replica_status r1)
    [ -n "$st" ] && seen=$st
    ps=$(field "$st" primary_silent_ms)
    [ -n "$ps" ] && [ "$ps" -ge 1000 ] && silent=1
    [ "$(field "$st" rotation)" = false ] && out=1
    sleep 0.2
done
# Reads during the cut: the replicas cannot be asked, the primary answers.
t0=$(now_ms)
req GET "/v1/d/w1"
read_ms=$(($(now_ms) - t0))
is "$code" 200 "an eventual read while the replicas are cut off is answered ($read_ms ms)"
[ "$read_ms" -lt 5000 ]; ok $? "... within 5 s"
during_cut=$(($(acked) - before_cut))
restore_at=$(now_ms)
ip link set "$veth_host" up; ok $? "the link is back ($veth_host up) after $((restore_at - cut_at)) ms"
# A write sent 300 ms after the cut cannot have reached r2 before the
# restore: s1 must not have acknowledged it (ack = replica).
s0_ok=$(writes_between s0 '200|201' $((cut_at + 300)) "$restore_at")
s1_ok=$(writes_between s1 '200|201' $((cut_at + 300)) "$restore_at")
s1_refused=$(awk -v f=$((cut_at + 300)) -v t="$restore_at" \
    '$5 == "-" && $2 ~ /^5/ && $3 >= f && $4 <= t { n++ } END { print n + 0 }' "$dir/writes")
[ "$s0_ok" -gt 0 ]; ok $? "s0 (ack = primary) acknowledged writes while the link was down ($s0_ok)"
is "$s1_ok" 0 "s1 (ack = replica) acknowledged none while its only replica was cut off"
[ "$s1_refused" -gt 0 ]; ok $? "... it answered them 5xx ($s1_refused)"
is "$behind" 1 "s0 saw r1's lag > 0 during the cut (its STATUS: $behind_seen)"
grep -q "s0: replica r1 is silent: forgotten" "$dir/db1.log"; ok $? "... and forgot r1, silent for 3 s"
is "$silent" 1 "r1 saw its primary silent for 1 s or more during the cut (its STATUS, asked inside the namespace)"
is "$out" 1 "r1 said it was out of the read rotation during the cut ($seen)"
grep -q "read-api: replica r1 left the read rotation" "$dir/web.log"; ok $? "the web node's read-api took r1 out of its rotation"

# --- Back: s1 acknowledges again; the writes stop; both must catch up.
i=0
while [ $i -lt 300 ] && [ "$(s1_writes_after "$restore_at")" -lt 5 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(s1_writes_after "$restore_at")" -ge 5 ]; ok $? "s1 acknowledges writes again once r2 is back ($(s1_writes_after "$restore_at") within $((i / 10)) s)"
touch "$dir/stop"
wait "$loader"; forget "$loader"
diag "$(acked) writes acknowledged, $during_cut of them while the link was down"
for r in r1 r2; do
    caught_up $r; ok $? "$r caught up: streaming at $(of $r)'s sequence"
done
st=$(replica_status r1)
[ "$(field "$st" applied)" -gt "$applied_r1" ]; ok $? "r1 applied the writes of the cut and after ($applied_r1 -> $(field "$st" applied))"
st=$(replica_status r2)
[ "$(field "$st" applied)" -gt "$applied_r2" ]; ok $? "r2 applied the writes after ($applied_r2 -> $(field "$st" applied))"
is "$(grep -c "fetching snapshot" "$dir/db2.log")" "$snapshots_before" \
    "r1 and r2 caught up from the shards' logs, without a snapshot"
is "$(grep -c "resync at sequence" "$dir/db2.log")" "$resyncs_before" "... and without a resync"
grep -q "r1: follow again" "$dir/db2.log" && grep -q "r2: follow again" "$dir/db2.log"
ok $? "r1 and r2 followed their shards again after the cut (their log says why)"
is "$(missing "$data/r1.db" s0 | wc -l | tr -d ' ')" 0 "every acknowledged document of s0 is in r1's file, byte for byte"
missing "$data/r1.db" s0 | head -n 3 | sed 's/^/# r1 misses: /'
is "$(missing "$data/r2.db" s1 | wc -l | tr -d ' ')" 0 "every acknowledged document of s1 is in r2's file, byte for byte"
missing "$data/r2.db" s1 | head -n 3 | sed 's/^/# r2 misses: /'
[ -s "$dir/sqlite.err" ] && sed 's/^/# sqlite3: /' "$dir/sqlite.err"
# s1's writes of unknown outcome (committed on s1, never acknowledged) are
# in r2's file too: it is the primary's file, byte for byte.
q="SELECT id || ' ' || version || ' ' || body FROM docs ORDER BY collection, id"
is "$(sqlite3 "$data/r2.db" "$q" | cksum)" "$(sqlite3 "$data/s1.db" "$q" | cksum)" \
    "r2's documents are s1's, with their versions ($(sqlite3 "$data/s1.db" "SELECT count(*) FROM docs") documents)"
# A write refused "not applied" is in no file (the w ids are written once).
awk '$2 ~ /^5/ && $6 == "not-applied" { print $1 }' "$dir/writes" | sort -u >"$dir/refused"
sqlite3 "$data/s0.db" "SELECT id FROM docs" >"$dir/ids" 2>/dev/null
sqlite3 "$data/s1.db" "SELECT id FROM docs" >>"$dir/ids" 2>/dev/null
diag "failed writes: $(awk '$2 !~ /^20/ { print $2 "/" $6 }' "$dir/writes" | sort | uniq -c | tr '\n' ' ')"
[ -s "$dir/refused" ]; ok $? "some writes were refused \"not applied\" ($(wc -l <"$dir/refused" | tr -d ' '))"
is "$(sort -u "$dir/ids" | comm -12 - "$dir/refused" | wc -l | tr -d ' ')" 0 "... and none of them is in a shard's file"
# Joined again since the cut (more than once, maybe, on a loaded
# machine), and in the rotation now.
i=0
while [ $i -lt 200 ] && [ "$(grep -c "read-api: replica r1 joined the read rotation" "$dir/web.log")" -le "$r1_joins" ]; do
    sleep 0.1; i=$((i + 1))
done
[ "$(grep -c "read-api: replica r1 joined the read rotation" "$dir/web.log")" -gt "$r1_joins" ] \
    && in_api_rotation "$dir/web.log" r1
ok $? "r1 is back in the web node's read rotation (joined $r1_joins times before the cut, $(grep -c "read-api: replica r1 joined the read rotation" "$dir/web.log") now)"
req GET "/v1/d/$hot"
last_hot=$(grep "^$hot " "$dir/acked.s0" | tail -n 1 | cut -d' ' -f2-)
is "$(body)" "$last_hot" "an eventual read of d/$hot gives its last acknowledged version"

stop_pid "$web" TERM; ok $? "the web node stops"
stop_pid "$db1" TERM; ok $? "the shards stop"
stop_pid "$db2" TERM; ok $? "the replicas' node stops"
[ "$failed" -eq 0 ] || for f in db1 db2 web; do
    diag "--- $f.log"; grep -v "INFO  gateway" "$dir/$f.log" | tail -n 25 | sed 's/^/# /'
done
echo "1..$n"
[ "$failed" -eq 0 ]
