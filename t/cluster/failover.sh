#!/bin/sh
# failover.sh — losing the primary's machine with ack = replica, and the
# promotion that loses no acknowledged write (doc/replication.md): the
# rung-3 map (maps/replicas.map: a storage node with two shards, two
# replica nodes, the web node; CURVE; ack = replica, sync = normal) as
# `tiers run` processes on loopback. Under curl write load the storage
# node is killed -9; `tiers promote` makes a replica of each shard the
# primary; the writes go on to the new primaries; every acknowledged write
# is there with its body; the old primaries, started again, are fenced;
# the other replicas follow the new primaries. Prints TAP.

dir=$(mktemp -d "${TMPDIR:-/tmp}/tiers-failover-XXXXXX")
. "${top_srcdir:-.}/t/cluster/lib.sh"
PROBE="$top_builddir/t/cluster/probe"
LC_ALL=C; export LC_ALL
contains () { grep -qF -- "$2" "$1"; }

keys="$dir/keys"
sed -e "s|data = ./tiers-data|data = $dir/data|" -e "s|keys = ./tiers-keys|keys = $keys|" \
    -e "s|http = 127.0.0.1:8080|http = 127.0.0.1:0|" "$top_srcdir/maps/replicas.map" >"$dir/r.map"
for old in $(grep -o '127\.0\.0\.1:[0-9][0-9]*' "$dir/r.map" | grep -v ':0$' | sort -u); do
    # a port free now, and not one given to another endpoint already (lib.sh)
    p=$(freeport)
    sed -i "s|$old\$|127.0.0.1:$p|" "$dir/r.map"
done
! grep -q ':71[0-9][0-9]$\|:910[0-9]$' "$dir/r.map"; ok $? "the map's fixed ports are replaced by free ones"
port_of () {   # port_of ENTRY [stream]: the port that ENTRY binds
    awk -v e="$1" -v k="${2:+bind.stream}" '
        $0 ~ "^    [a-z-]+ = " e "$" { inside = 1; next }
        /^    [a-z]/ || /^node/ { inside = 0 }
        inside && $1 == (k ? k : "bind") { sub(".*:", "", $3); print $3 }' "$dir/r.map"
}
"$TIERS" keys -m "$dir/r.map" >/dev/null 2>&1; ok $? "the nodes' keys are made"
"$TIERS" check -m "$dir/r.map" >"$dir/check.out" 2>&1; ok $? "tiers check: the rung-3 map loads"
contains "$dir/check.out" "replicas: s0a (node replica-a), s0b (node replica-b)  ack: replica"
ok $? "... and shows s0's replicas and ack = replica"

status () {   # status ENTRY NODE_OF_ENTRY -> its STATUS JSON, asked as the web node
    "$PROBE" status "tcp://127.0.0.1:$(port_of "$1")" "$keys/$2.cert" "$keys/web.cert"
}
field () { echo "$1" | grep -o "\"$2\":[^,}]*" | head -n 1 | sed 's/^[^:]*://; s/"//g'; }

start_node "$dir/storage.log" run -m "$dir/r.map" -n storage; ok $? "the storage node starts"
storage=$pid
start_node "$dir/a.log" run -m "$dir/r.map" -n replica-a; ok $? "replica node a starts"
node_a=$pid
start_node "$dir/b.log" run -m "$dir/r.map" -n replica-b; ok $? "replica node b starts"
node_b=$pid
start_node "$dir/web.log" run -m "$dir/r.map" -n web; ok $? "the web node starts"
web=$pid
base=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$dir/web.log" | head -n 1)
if [ "$failed" -ne 0 ]; then
    echo "Bail out! the cluster did not start"
    exit 1
fi
i=0
while [ $i -lt 100 ] && [ "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d '{}' "$base/v1/warm/w")" != 201 ]; do
    sleep 0.1; i=$((i + 1))
done
is "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d '{"w":2}' "$base/v1/warm/w")" 200 \
    "writes are acknowledged (ack = replica: the replicas stream)"

# The load: PUTs of new documents until $dir/stop exists; each acknowledged
# one (201) goes to $dir/acked as "id body", every answer's code to codes.
loader () {
    j=0
    : >"$dir/acked.$1"
    while [ ! -e "$dir/stop" ]; do
        j=$((j + 1))
        body="{\"id\":\"$1$j\",\"n\":$j,\"text\":\"caf\\u00e9\"}"
        c=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X PUT -d "$body" "$base/v1/d/$1$j")
        echo "$c" >>"$dir/codes.$1"
        [ "$c" = 201 ] && echo "$1$j $body" >>"$dir/acked.$1"
    done
}
loader x &
load_x=$!
loader y &
load_y=$!
pids="$pids $load_x $load_y"
sleep 2
kill -9 "$storage"; wait "$storage" 2>/dev/null; forget "$storage"
before=$(cat "$dir/acked.x" "$dir/acked.y" | wc -l | tr -d ' ')
ok 0 "the storage node is killed -9 under write load ($before writes acknowledged so far)"
[ "$before" -gt 20 ]; ok $? "... more than 20 of them"
sleep 1

# Promotion: a replica of each shard.
"$TIERS" promote -m "$dir/r.map" s0a >"$dir/promote0.out" 2>&1; ok $? "tiers promote s0a: exit 0"
sed 's/^/# /' "$dir/promote0.out"
contains "$dir/promote0.out" "s0a is the primary of s0: epoch 2"; ok $? "... s0a is the primary of s0 at epoch 2"
"$TIERS" promote -m "$dir/r.map" s1a >"$dir/promote1.out" 2>&1; ok $? "tiers promote s1a: exit 0"
contains "$dir/promote1.out" "s1a is the primary of s1: epoch 2"; ok $? "... s1a of s1"
"$TIERS" promote -m "$dir/r.map" s0a >"$dir/again.out" 2>&1; ok $? "promoting s0a again: exit 0"
contains "$dir/again.out" "s0a is the primary of s0 already (epoch 2)"; ok $? "... it is the primary already"

# The writes go on, to the new primaries (the APIs hear it from their STATUS).
n0=$(cat "$dir/acked.x" "$dir/acked.y" | wc -l | tr -d ' ')
i=0
while [ $i -lt 100 ] && [ "$(cat "$dir/acked.x" "$dir/acked.y" | wc -l | tr -d ' ')" -lt $((n0 + 40)) ]; do
    sleep 0.1; i=$((i + 1))
done
n1=$(cat "$dir/acked.x" "$dir/acked.y" | wc -l | tr -d ' ')
[ "$n1" -ge $((n0 + 40)) ]; ok $? "writes are acknowledged again after the promotion ($n0 -> $n1)"
touch "$dir/stop"
wait "$load_x" "$load_y" 2>/dev/null
cat "$dir/acked.x" "$dir/acked.y" | sort >"$dir/acked"
total=$(wc -l <"$dir/acked" | tr -d ' ')
bad=$(cat "$dir/codes.x" "$dir/codes.y" | grep -v '^201$\|^503$\|^504$\|^502$\|^000$' | sort | uniq -c | tr '\n' ' ')
is "$bad" "" "the writers saw only 201, or 502/503/504 (or their own 5 s timeout) while there was no primary"

# Every acknowledged write is there, with its body (strong reads: the primary).
lost=0
while read -r id body; do
    got=$(curl -s -H 'Tiers-Consistency: strong' "$base/v1/d/$id")
    [ "$got" = "$body" ] || { lost=$((lost + 1)); [ $lost -le 3 ] && diag "lost $id: '$got'"; }
done <"$dir/acked"
is "$lost:$([ "$total" -gt 50 ] && echo some)" "0:some" \
    "every one of the $total acknowledged writes (more than 50) is there with its body"

# A promotion that a replica cannot answer is refused, and changes nothing.
kill -STOP "$node_b"
"$TIERS" promote -m "$dir/r.map" s0b >"$dir/refused.out" 2>&1
is "$?" 1 "promoting a replica that does not answer (its node stopped): exit 1"
contains "$dir/refused.out" "nothing was changed"; ok $? "... saying why, and that nothing was changed"
kill -CONT "$node_b"

# The old primaries come back fenced: they ask their replicas for their
# epochs before they take a write.
start_node "$dir/storage2.log" run -m "$dir/r.map" -n storage; ok $? "the old storage node starts again"
storage=$pid
i=0
while [ $i -lt 100 ] && [ "$(field "$(status s0 storage)" role)" != fenced ]; do sleep 0.1; i=$((i + 1)); done
is "$(field "$(status s0 storage)" role)" fenced "the old s0 is fenced"
is "$(field "$(status s1 storage)" role)" fenced "the old s1 is fenced"
contains "$dir/storage2.log" "fenced"; ok $? "... and says so in its log"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d '{"after":1}' "$base/v1/d/after1")
is "$code" 201 "a write after the old primaries' return is acknowledged (by the new ones)"
is "$(curl -s -H 'Tiers-Consistency: strong' "$base/v1/d/after1")" '{"after":1}' "... and read back"

# The other replicas follow the new primaries, and have every write.
caught () {   # caught REPLICA NODE PRIMARY PRIMARY_NODE
    i=0
    while [ $i -lt 150 ]; do
        st=$(status "$1" "$2")
        [ "$(field "$st" state)" = streaming ] && [ "$(field "$st" epoch)" = 2 ] \
          && [ "$(field "$st" applied)" = "$(field "$(status "$3" "$4")" sequence)" ] && return 0
        sleep 0.1; i=$((i + 1))
    done
    diag "$1: $st"
    return 1
}
caught s0b replica-b s0a replica-a; ok $? "s0b streams from s0a at epoch 2"
caught s1b replica-b s1a replica-a; ok $? "s1b streams from s1a at epoch 2"
for f in s0b s1b; do
    sqlite3 "$dir/data/$f.db" "SELECT id || ' ' || body FROM docs WHERE collection = 'd'"
done 2>/dev/null | sort >"$dir/have"
# (a write whose answer was lost or came too late may be there too: more
# is fine, fewer is a lost write)
is "$(comm -23 "$dir/acked" "$dir/have" | wc -l | tr -d ' '):$([ "$(wc -l <"$dir/have")" -ge $((total + 1)) ] && echo all)" "0:all" \
    "every acknowledged write is in the files of s0b and s1b, byte for byte (and after1)"
is "$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/d/after1")" 200 "an eventual read of it is served"

# A promoted replica started again is the primary still.
stop_pid "$node_a" TERM; ok $? "replica node a (the new primaries) stops"
start_node "$dir/a2.log" run -m "$dir/r.map" -n replica-a; ok $? "... and starts again"
node_a=$pid
contains "$dir/a2.log" "was promoted: serving as the primary"; ok $? "... as the primary of its shards"
i=0
while [ $i -lt 100 ] && [ "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d '{"again":1}' "$base/v1/d/again1")" != 201 ]; do
    sleep 0.1; i=$((i + 1))
done
is "$(curl -s -H 'Tiers-Consistency: strong' "$base/v1/d/again1")" '{"again":1}' "... and takes writes"

stop_pid "$web" TERM; ok $? "the web node stops"
stop_pid "$node_b" TERM; ok $? "replica node b stops"
stop_pid "$node_a" TERM; ok $? "replica node a stops"
stop_pid "$storage" TERM; ok $? "the storage node stops"
[ "$failed" -eq 0 ] || for f in storage a b web storage2 a2; do
    [ -f "$dir/$f.log" ] && { diag "--- $f.log"; tail -n 20 "$dir/$f.log" | sed 's/^/# /'; }
done
echo "1..$n"
[ "$failed" -eq 0 ]
