#!/bin/sh
# partition.sh — a replica cut off from its shard by the network, and back.
# The replica's node runs in a network namespace of its own, joined to the
# host by a veth pair the test makes (and always removes); the shard and
# the web node run on the host, CURVE between all of them. Under curl
# write load through the gateway (ack = primary: writes go on), the link is
# cut for 5 s and restored. The replica must leave the read rotation while
# cut off (the reads are the primary's meanwhile), catch up from the
# shard's log afterwards (no snapshot: the outage is well within the
# default 100000 changes), stream at the shard's sequence, and hold every
# acknowledged document byte for byte (sqlite3). Needs root and `ip`
# (iproute2): without them the test is skipped. Prints TAP.

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

p_shard=$("$TOOL" freeport); p_stream=$("$TOOL" freeport); p_r1=$("$TOOL" freeport)
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
        bind = tcp://127.0.0.1:$p_shard
        bind.stream = tcp://$host_ip:$p_stream
node = db2
    replica = r1
        bind = tcp://$ns_ip:$p_r1
        of = s0
MAP
"$TIERS" check -m "$dir/p.map" >"$dir/check.out" 2>&1
ok $? "tiers check: the map (the replica on $ns_ip, the stream on $host_ip) loads"
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
# STATUS as the node the map lets ask (the shard's node asks its replica,
# the web node its shard). The replica's from inside the namespace: that
# works while the link is down too.
status () {   # status ENDPOINT SERVER_NODE CLIENT_NODE
    "$PROBE" status "$1" "$keys/$2.cert" "$keys/$3.cert"
}
shard_status () { status "tcp://127.0.0.1:$p_shard" db1 web; }
replica_status () {
    ip netns exec "$ns" "$PROBE" status "tcp://$ns_ip:$p_r1" "$keys/db2.cert" "$keys/db1.cert"
}
field () {    # field JSON KEY -> the first value of that key
    echo "$1" | grep -o "\"$2\":[^,}]*" | head -n 1 | sed 's/^[^:]*://; s/"//g'
}
shard_sequence () { field "$(shard_status)" sequence; }
caught_up () {   # within 20 s: streaming at the shard's sequence
    i=0
    while [ $i -lt 200 ]; do
        st=$(replica_status)
        if [ "$(field "$st" state)" = streaming ] \
        && [ "$(field "$st" applied)" = "$(shard_sequence)" ]; then
            return 0
        fi
        sleep 0.1; i=$((i + 1))
    done
    diag "r1 is $st; the shard is at $(shard_sequence)"
    return 1
}
# Writes until $dir/stop exists: new documents d/wJ, and every fifth time
# a new version of d/hot. Each acknowledged one (200 or 201) goes to
# $dir/acked as "id body", in the order acknowledged (one client).
load () {
    j=1
    while [ ! -e "$dir/stop" ]; do
        body="{\"id\":\"w$j\",\"text\":\"caf\\u00e9 $j\",\"n\":$j}"
        c=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT -d "$body" "$base/v1/d/w$j")
        [ "$c" = 201 ] && echo "w$j $body" >>"$dir/acked"
        if [ $((j % 5)) = 0 ]; then
            body="{\"id\":\"hot\",\"v\":$j}"
            c=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT -d "$body" "$base/v1/d/hot")
            case $c in 200|201) echo "hot $body" >>"$dir/acked" ;; esac
        fi
        j=$((j + 1))
    done
}
acked () { wc -l <"$dir/acked" | tr -d ' '; }
# What the replica's file must hold: the last acknowledged body of each id.
# Prints the ones missing from FILE or different in it.
missing () {   # missing FILE
    sqlite3 "$1" "SELECT id || ' ' || body FROM docs WHERE collection = 'd'" \
        | sort >"$dir/have" 2>"$dir/sqlite.err"
    awk '{ last [$1] = $0 } END { for (id in last) print last [id] }' "$dir/acked" \
        | sort | comm -23 - "$dir/have"
}

: >"$dir/acked"
# The replica first: a shard with replicas takes no write before a
# majority of its copies answered.
start_node_ns "$dir/db2.log" run -m "$dir/p.map" -n db2
ok $? "the replica's node starts inside the namespace ($ns_ip)"
db2=$pid
start_node "$dir/db1.log" run -m "$dir/p.map" -n db1; ok $? "the shard's node starts"
db1=$pid
start_node "$dir/web.log" run -m "$dir/p.map" -n web; ok $? "the web node starts"
web=$pid
base=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$dir/web.log" | head -n 1)
i=0
while [ $i -lt 100 ] && [ "$(field "$(shard_status)" role)" != primary ]; do
    sleep 0.05; i=$((i + 1))
done
is "$(field "$(shard_status)" role)" primary "the shard serves as the primary (it heard its replica)"

load &
loader=$!
pids="$pids $loader"
i=0
while [ $i -lt 200 ] && [ "$(acked)" -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
# Under load the shard's sequence moves on: "streaming, in its rotation"
# is what can be waited for here (the exact catch-up is checked at the end).
i=0
while [ $i -lt 100 ]; do
    st=$(replica_status)
    [ "$(field "$st" state)" = streaming ] && [ "$(field "$st" rotation)" = true ] && break
    sleep 0.1; i=$((i + 1))
done
is "$(field "$st" state) $(field "$st" rotation)" "streaming true" \
    "r1 streams over the veth under write load, in its read rotation ($st)"
i=0
while [ $i -lt 40 ] && ! contains "$dir/web.log" "read-api: replica r1 joined the read rotation"; do
    sleep 0.05; i=$((i + 1))
done
contains "$dir/web.log" "read-api: replica r1 joined the read rotation"; ok $? "r1 is in the web node's read rotation"
snapshots_before=$(grep -c "fetching snapshot" "$dir/db2.log")
resyncs_before=$(grep -c "resync at sequence" "$dir/db2.log")
applied_before=$(field "$(replica_status)" applied)

# --- The cut: 5 s with the host side of the veth down.
before_cut=$(acked)
ip link set "$veth_host" down; ok $? "the link is cut ($veth_host down)"
cut_at=$(date +%s%N)
# Read your writes at once, while the read-api still counts r1 in: the
# read waits for r1 (replica_timeout + read_wait at most), then the primary.
req PUT /v1/d/cut -d '{"id":"cut","v":1}'
is "$code" 201 "a write right after the cut is acknowledged (ack = primary)"
token=$(hdr Tiers-Token)
echo "cut {\"id\":\"cut\",\"v\":1}" >>"$dir/acked"
t0=$(date +%s%N)
req GET /v1/d/cut -H "Tiers-Token: $token"
read_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "$code $(body)" '200 {"id":"cut","v":1}' "read with its token right after the cut, it is the write ($read_ms ms)"
[ "$read_ms" -lt 2500 ]; ok $? "... answered within 2.5 s (the primary, after r1 did not answer)"
silent=0; out=0; seen=""; behind=0; behind_seen=""
while [ $(( ($(date +%s%N) - cut_at) / 1000000 )) -lt 5000 ]; do
    # The primary's view: r1 among its followers, acked below its sequence
    # (until it forgets r1, silent for 3 s).
    sst=$(shard_status)
    sacked=$(field "$sst" acked); sseq=$(field "$sst" sequence)
    if [ -n "$sacked" ] && [ -n "$sseq" ] && [ $((sseq - sacked)) -gt 0 ]; then
        behind=1; behind_seen="sequence $sseq, r1 acked $sacked"
    fi
    st=$(replica_status)
    [ -n "$st" ] && seen=$st
    ps=$(field "$st" primary_silent_ms)
    [ -n "$ps" ] && [ "$ps" -ge 1000 ] && silent=1
    [ "$(field "$st" rotation)" = false ] && out=1
    sleep 0.2
done
# Reads during the cut: the replica cannot be asked, the primary answers.
t0=$(date +%s%N)
req GET /v1/d/w1
read_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "$code" 200 "an eventual read while r1 is cut off is answered ($read_ms ms)"
[ "$read_ms" -lt 2000 ]; ok $? "... within 2 s"
during_cut=$(($(acked) - before_cut))
ip link set "$veth_host" up; ok $? "the link is back ($veth_host up) after 5 s"
[ "$during_cut" -gt 0 ]; ok $? "writes were acknowledged while the link was down ($during_cut)"
is "$behind" 1 "the shard saw r1's lag > 0 during the cut (its STATUS: $behind_seen)"
contains "$dir/db1.log" "replica r1 is silent: forgotten"; ok $? "... and forgot r1, silent for 3 s"
is "$silent" 1 "r1 saw its primary silent for 1 s or more during the cut (its STATUS, asked inside the namespace)"
is "$out" 1 "r1 said it was out of the read rotation during the cut ($seen)"
contains "$dir/web.log" "replica r1 left the read rotation"; ok $? "the web node's read-api took r1 out of its rotation"

# --- Back: a little more load, then the writes stop and r1 must catch up.
sleep 1
touch "$dir/stop"
wait "$loader"; forget "$loader"
diag "$(acked) writes acknowledged, $during_cut of them while the link was down"
caught_up; ok $? "r1 caught up: streaming at the shard's sequence"
st=$(replica_status)
[ "$(field "$st" applied)" -gt "$applied_before" ]; ok $? "r1 applied the writes of the cut and after ($applied_before -> $(field "$st" applied))"
is "$(grep -c "fetching snapshot" "$dir/db2.log")" "$snapshots_before" \
    "r1 caught up from the shard's log, without a snapshot"
is "$(grep -c "resync at sequence" "$dir/db2.log")" "$resyncs_before" "... and without a resync"
contains "$dir/db2.log" "follow again"; ok $? "r1 followed the shard again after the cut (its log says why)"
is "$(missing "$data/r1.db" | wc -l | tr -d ' ')" 0 "every acknowledged document is in r1's file, byte for byte"
missing "$data/r1.db" | head -n 3 | sed 's/^/# missing: /'
[ -s "$dir/sqlite.err" ] && sed 's/^/# sqlite3: /' "$dir/sqlite.err"
i=0
while [ $i -lt 50 ] && [ "$(grep -c "read-api: replica r1 joined the read rotation" "$dir/web.log")" -lt 2 ]; do
    sleep 0.1; i=$((i + 1))
done
is "$(grep -c "read-api: replica r1 joined the read rotation" "$dir/web.log")" 2 "r1 is back in the web node's read rotation"
req GET /v1/d/hot
last_hot=$(grep '^hot ' "$dir/acked" | tail -n 1 | cut -d' ' -f2-)
is "$(body)" "$last_hot" "an eventual read of d/hot gives its last acknowledged version"

stop_pid "$web" TERM; ok $? "the web node stops"
stop_pid "$db1" TERM; ok $? "the shard stops"
stop_pid "$db2" TERM; ok $? "the replica's node stops"
[ "$failed" -eq 0 ] || for f in db1 db2 web; do
    diag "--- $f.log"; tail -n 25 "$dir/$f.log" | sed 's/^/# /'
done
echo "1..$n"
[ "$failed" -eq 0 ]
