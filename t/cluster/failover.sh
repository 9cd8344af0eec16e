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
# More than 20 acknowledged before the kill (20 s at most: a loaded
# machine acknowledges fewer a second).
i=0
while [ $i -lt 200 ] && [ "$(cat "$dir/acked.x" "$dir/acked.y" | wc -l | tr -d ' ')" -lt 21 ]; do
    sleep 0.1; i=$((i + 1))
done
kill -9 "$storage"; wait "$storage" 2>/dev/null; forget "$storage"
before=$(cat "$dir/acked.x" "$dir/acked.y" | wc -l | tr -d ' ')
ok 0 "the storage node is killed -9 under write load ($before writes acknowledged so far)"
[ "$before" -gt 20 ]; ok $? "... more than 20 of them"
sleep 1

# Promotion: a replica of each shard, the a one unless the b one has more.
# (The primary died under load: a write one replica has may not have
# reached the other yet. `tiers promote` then refuses, naming the one to
# promote instead, as an operator would be told.)
promote () {   # promote SHARD -> $new (the promoted replica) and $other
    new=${1}a; other=${1}b
    "$TIERS" promote -m "$dir/r.map" "$new" >"$dir/promote-$1.out" 2>&1; st=$?
    if [ $st -ne 0 ] && grep -q "$other has more" "$dir/promote-$1.out"; then
        sed 's/^/# /' "$dir/promote-$1.out"
        new=${1}b; other=${1}a
        "$TIERS" promote -m "$dir/r.map" "$new" >"$dir/promote-$1.out" 2>&1; st=$?
    fi
    return $st
}
node_of () { case $1 in *a) echo replica-a ;; *) echo replica-b ;; esac; }
pid_of () { case $1 in *a) echo "$node_a" ;; *) echo "$node_b" ;; esac; }
promote s0; ok $? "tiers promote $new: exit 0"
new0=$new; other0=$other
sed 's/^/# /' "$dir/promote-s0.out"
contains "$dir/promote-s0.out" "$new0 is the primary of s0: epoch 2"; ok $? "... $new0 is the primary of s0 at epoch 2"
promote s1; ok $? "tiers promote $new: exit 0"
new1=$new; other1=$other
contains "$dir/promote-s1.out" "$new1 is the primary of s1: epoch 2"; ok $? "... $new1 of s1"
"$TIERS" promote -m "$dir/r.map" "$new0" >"$dir/again.out" 2>&1; ok $? "promoting $new0 again: exit 0"
contains "$dir/again.out" "$new0 is the primary of s0 already (epoch 2)"; ok $? "... it is the primary already"

# The writes go on, to the new primaries (the APIs hear it from their STATUS;
# 30 s at most).
n0=$(cat "$dir/acked.x" "$dir/acked.y" | wc -l | tr -d ' ')
i=0
while [ $i -lt 300 ] && [ "$(cat "$dir/acked.x" "$dir/acked.y" | wc -l | tr -d ' ')" -lt $((n0 + 40)) ]; do
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
stopped=$(pid_of "$other0")
kill -STOP "$stopped"
"$TIERS" promote -m "$dir/r.map" "$other0" >"$dir/refused.out" 2>&1
is "$?" 1 "promoting a replica that does not answer ($other0, its node stopped): exit 1"
contains "$dir/refused.out" "nothing was changed"; ok $? "... saying why, and that nothing was changed"
kill -CONT "$stopped"

# The old primaries come back fenced: they ask their replicas for their
# epochs before they take a write.
start_node "$dir/storage2.log" run -m "$dir/r.map" -n storage; ok $? "the old storage node starts again"
storage=$pid
i=0
while [ $i -lt 100 ] && [ "$(field "$(status s0 storage)" role)" != fenced ]; do sleep 0.1; i=$((i + 1)); done
is "$(field "$(status s0 storage)" role)" fenced "the old s0 is fenced"
is "$(field "$(status s1 storage)" role)" fenced "the old s1 is fenced"
contains "$dir/storage2.log" "fenced"; ok $? "... and says so in its log"
# (asked again for 10 s while it fails: the web node may still be sorting
# out who is the primary; after a 5xx the write may have been applied)
i=0; late=""
while :; do
    code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT -d '{"after":1}' "$base/v1/d/after1")
    case $code in 2*|4*) break ;; esac
    late=1; i=$((i + 1)); [ $i -lt 20 ] || break; sleep 0.5
done
ok $([ "$code" = 201 ] || { [ -n "$late" ] && [ "$code" = 200 ]; } && echo 0 || echo 1) \
    "a write after the old primaries' return is acknowledged (by the new ones: $code, $((i + 1)) tries)"
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
caught "$other0" "$(node_of "$other0")" "$new0" "$(node_of "$new0")"; ok $? "$other0 streams from $new0 at epoch 2"
caught "$other1" "$(node_of "$other1")" "$new1" "$(node_of "$new1")"; ok $? "$other1 streams from $new1 at epoch 2"
for f in "$other0" "$other1"; do
    sqlite3 "$dir/data/$f.db" "SELECT id || ' ' || body FROM docs WHERE collection = 'd'"
done 2>/dev/null | sort >"$dir/have"
# (a write whose answer was lost or came too late may be there too: more
# is fine, fewer is a lost write)
is "$(comm -23 "$dir/acked" "$dir/have" | wc -l | tr -d ' '):$([ "$(wc -l <"$dir/have")" -ge $((total + 1)) ] && echo all)" "0:all" \
    "every acknowledged write is in the files of $other0 and $other1, byte for byte (and after1)"
is "$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/d/after1")" 200 "an eventual read of it is served"

# A promoted replica started again is the primary still.
stop_pid "$(pid_of "$new0")" TERM; ok $? "replica node $(node_of "$new0") (the new primary $new0) stops"
start_node "$dir/a2.log" run -m "$dir/r.map" -n "$(node_of "$new0")"; ok $? "... and starts again"
case $new0 in *a) node_a=$pid ;; *) node_b=$pid ;; esac
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
