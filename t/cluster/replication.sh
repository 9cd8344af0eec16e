#!/bin/sh
# replication.sh — a real shard and real replicas end to end, as `tiers run`
# processes with CURVE between them: a replica starts from empty while
# curl PUTs go through the gateway, another is killed -9 under the same
# load and catches up, and every acknowledged document is in both
# replicas' files byte for byte (read with sqlite3). Prints TAP.

dir=$(mktemp -d "${TMPDIR:-/tmp}/tiers-replication-XXXXXX")
. "${top_srcdir:-.}/t/cluster/lib.sh"
PROBE="$top_builddir/t/cluster/probe"
LC_ALL=C; export LC_ALL       # sort and comm agree on the order
contains () { grep -qF -- "$2" "$1"; }

p_shard=$("$TOOL" freeport); p_stream=$("$TOOL" freeport)
p_r1=$("$TOOL" freeport); p_r2=$("$TOOL" freeport)
keys="$dir/keys"
data="$dir/data"
cat >"$dir/r.map" <<MAP
cluster
    name = replicas
    data = $data
    log = info
    sync = normal
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
        bind.stream = tcp://127.0.0.1:$p_stream
node = db2
    replica = r1
        bind = tcp://127.0.0.1:$p_r1
        of = s0
node = db3
    replica = r2
        bind = tcp://127.0.0.1:$p_r2
        of = s0
MAP
"$TIERS" check -m "$dir/r.map" >"$dir/check.out" 2>&1; ok $? "tiers check: the map of a shard and two replicas loads"
contains "$dir/check.out" "replicas: r1 (node db2), r2 (node db3)  ack: primary"
ok $? "... and shows the shard's replicas and its ack"
"$TIERS" keys -m "$dir/r.map" >/dev/null 2>&1; ok $? "the nodes' keys are made"

# STATUS of a copy, as the node the map lets reach it.
status () {   # status PORT NODE -> the JSON on stdout
    "$PROBE" status "tcp://127.0.0.1:$1" "$keys/$3.cert" "$keys/$2.cert"
}
field () {    # field JSON KEY -> the first value of that key (number, string, bool)
    echo "$1" | grep -o "\"$2\":[^,}]*" | head -n 1 | sed 's/^[^:]*://; s/"//g'
}
shard_sequence () { field "$(status "$p_shard" web db1)" sequence; }
# Waits until the replica on PORT (of node NODE) streams at the shard's
# sequence; 0 when it did within 20 s.
caught_up () {
    i=0
    while [ $i -lt 200 ]; do
        st=$(status "$1" db1 "$2")
        if [ "$(field "$st" state)" = streaming ] \
        && [ "$(field "$st" applied)" = "$(shard_sequence)" ]; then
            return 0
        fi
        sleep 0.1; i=$((i + 1))
    done
    diag "$2 is $st; the shard is at $(shard_sequence)"
    return 1
}
# PUTs d/PREFIX1 .. d/PREFIXN through the gateway; every acknowledged one
# (201) goes to $dir/acked as "id body".
load () {   # load PREFIX N
    j=1
    while [ $j -le "$2" ]; do
        body="{\"id\":\"$1$j\",\"text\":\"caf\\u00e9 $j\",\"n\":$j}"
        c=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT -d "$body" "$base/v1/d/$1$j")
        [ "$c" = 201 ] && echo "$1$j $body" >>"$dir/acked"
        j=$((j + 1))
    done
}
# Every acknowledged document in FILE's docs, byte for byte: prints the
# ones that are missing or differ.
missing () {   # missing FILE
    sqlite3 "$1" "SELECT id || ' ' || body FROM docs WHERE collection = 'd'" \
        | sort >"$dir/have" 2>"$dir/sqlite.err"
    sort "$dir/acked" | comm -23 - "$dir/have"
}

: >"$dir/acked"
start_node "$dir/db1.log" run -m "$dir/r.map" -n db1; ok $? "the shard's node starts"
db1=$pid
start_node "$dir/web.log" run -m "$dir/r.map" -n web; ok $? "the web node starts"
web=$pid
base=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$dir/web.log" | head -n 1)
# A shard with replicas in its map takes no write before a majority of its
# copies answered (itself and one of the two replicas): r2 first.
start_node "$dir/db3.log" run -m "$dir/r.map" -n db3; ok $? "replica r2 starts from empty"
db3=$pid
i=0
while [ $i -lt 100 ] && [ "$(field "$(status "$p_shard" web db1)" role)" != primary ]; do
    sleep 0.05; i=$((i + 1))
done
is "$(field "$(status "$p_shard" web db1)" role)" primary "the shard serves as the primary"
load a 50

# --- A replica from empty, under write load.
load b 300 &
loader=$!
sleep 0.3
start_node "$dir/db2.log" run -m "$dir/r.map" -n db2; ok $? "replica r1 starts from empty while writes go on"
db2=$pid
wait "$loader"
is "$(wc -l <"$dir/acked" | tr -d ' ')" 350 "350 writes acknowledged"
caught_up "$p_r1" db2; ok $? "r1 streams at the shard's sequence"
caught_up "$p_r2" db3; ok $? "r2 too"
contains "$dir/db2.log" "snapshot"; ok $? "r1 took a snapshot"
is "$(missing "$data/r1.db" | wc -l | tr -d ' ')" 0 "every acknowledged document is in r1's file, byte for byte"
is "$(missing "$data/r2.db" | wc -l | tr -d ' ')" 0 "... and in r2's"
st=$(status "$p_r1" db1 db2)
is "$(field "$st" rotation)" true "r1 is in the read rotation ($st)"

# --- kill -9 of a replica under write load, and its catch-up.
load c 300 &
loader=$!
sleep 0.5
kill -9 "$db3"; wait "$db3" 2>/dev/null; forget "$db3"
ok 0 "r2 killed -9 while writes go on"
sleep 0.5
start_node "$dir/db3b.log" run -m "$dir/r.map" -n db3; ok $? "r2 starts again"
db3=$pid
wait "$loader"
is "$(wc -l <"$dir/acked" | tr -d ' ')" 650 "650 writes acknowledged in all"
caught_up "$p_r2" db3; ok $? "r2 caught up with the shard"
caught_up "$p_r1" db2; ok $? "r1 streamed all along"
! contains "$dir/db3b.log" "fetching snapshot"; ok $? "r2 caught up from its own file, without a snapshot"
is "$(missing "$data/r2.db" | wc -l | tr -d ' ')" 0 "every acknowledged document is in r2's file, byte for byte"
is "$(missing "$data/r1.db" | wc -l | tr -d ' ')" 0 "... and in r1's"
missing "$data/r2.db" | head -n 3 | sed 's/^/# missing: /'

stop_pid "$db3" TERM; ok $? "r2 stops"
stop_pid "$db2" TERM; ok $? "r1 stops"
stop_pid "$web" TERM; ok $? "the web node stops"
stop_pid "$db1" TERM; ok $? "the shard stops"
[ "$failed" -eq 0 ] || for f in db1 db2 db3 db3b; do
    diag "--- $f.log"; tail -n 15 "$dir/$f.log" | sed 's/^/# /'
done
echo "1..$n"
[ "$failed" -eq 0 ]
