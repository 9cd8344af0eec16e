# lib.sh — what the shell cluster tests share: TAP, curl requests, and
# starting and stopping `tiers` processes by pid. Sourced, not run.
# The sourcing script sets $dir (its temporary directory) first.
#
#   ok STATUS TEXT       is GOT EXPECTED TEXT      diag TEXT
#   req METHOD PATH [CURL ARGS...]  ->  $code, $dir/body, $dir/hdr
#   hdr NAME / body / has TEXT      the last response
#   start_node LOG ARGS...          `tiers ARGS` in the background until
#                                   "; ready" shows in LOG; sets $pid
#   stop_pid PID SIGNAL             waits up to 10 s; the exit status
#   until_ready [SECONDS]           GET $base/ready until it is 200 (20 s)
#   freeport                        a port free now that this test was not
#                                   given before
#   in_api_rotation LOG REPLICA...  the read-api logging to LOG counts every
#                                   REPLICA in its read rotation (20 s)
#   box_map_head NAME [LINE...]     a single-box map's cluster block (LINEs
#                                   added to it) and back end, to stdout
# Every pid started is killed on exit, also when a test fails.

: "${top_builddir:=.}"
: "${top_srcdir:=.}"
TIERS="$top_builddir/tiers"
TOOL="$top_builddir/t/cluster/tool"
pids=""
cleanup () {
    for p in $pids; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    [ -n "${KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0; failed=0
ok () {   # ok STATUS DESCRIPTION
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $n - $2"
    else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
is () {   # is GOT EXPECTED DESCRIPTION
    if [ "$1" = "$2" ]; then ok 0 "$3"
    else ok 1 "$3"; echo "#      got: '$1'"; echo "# expected: '$2'"; fi
}
diag () { echo "# $*"; }

req () {
    method=$1; path=$2; shift 2
    if [ "$method" = HEAD ]; then
        code=$(curl -s -m 10 -I -o /dev/null -D "$dir/hdr" -w '%{http_code}' "$@" "$base$path")
        : >"$dir/body"
    else
        code=$(curl -s -m 10 -o "$dir/body" -D "$dir/hdr" -w '%{http_code}' -X "$method" "$@" "$base$path")
    fi
}
hdr () { grep -i "^$1:" "$dir/hdr" | head -n 1 | cut -d' ' -f2- | tr -d '\r'; }
body () { cat "$dir/body"; }
has () { grep -qF -- "$1" "$dir/body"; }

start_node () {
    log=$1; shift
    # Empty the log before the start: a restart that reuses the log could
    # otherwise read the last process's "ready".
    : >"$log"
    "$TIERS" "$@" >>"$log" 2>&1 &
    pid=$!
    pids="$pids $pid"
    i=0
    while [ $i -lt 600 ] && ! grep -q "; ready" "$log"; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05; i=$((i + 1))
    done
    grep -q "; ready" "$log" && return 0
    if kill -0 "$pid" 2>/dev/null; then
        echo "# $* : not ready after $((i / 20)) s"
    else
        wait "$pid"; echo "# $* : exited with status $? before it was ready"
    fi
    sed 's/^/# /' "$log" | tail -n 10
    return 1
}
stop_pid () {
    kill -"$2" "$1" 2>/dev/null
    i=0
    while [ $i -lt 100 ] && kill -0 "$1" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$1" 2>/dev/null; then
        kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; forget "$1"; return 124
    fi
    wait "$1"; status=$?
    forget "$1"
    return $status
}
forget () {       # forget PID: reaped, so the exit trap must not kill it
    pids=$(echo " $pids " | sed "s/ $1 / /g")
}
# until_ready [SECONDS]: "; ready" in the log means the actors run; the
# APIs join their balancer pools and reach their shards a moment later
# (much later on a loaded machine, or while a restarted node's peers
# reconnect). /ready is 200 once both pools have a worker and every shard
# answers: asked until it is, for SECONDS (20).
until_ready () {
    ur_i=0; ur_limit=$((${1:-20} * 10)); ur_code=000
    while [ $ur_i -lt $ur_limit ]; do
        ur_code=$(curl -s -m 5 -o "$dir/ready.last" -w '%{http_code}' "$base/ready")
        [ "$ur_code" = 200 ] && return 0
        sleep 0.1; ur_i=$((ur_i + 1))
    done
    echo "# $base/ready is still $ur_code after ${1:-20} s: $(head -c 200 "$dir/ready.last" 2>/dev/null)"
    return 1
}
# freeport: `tool freeport` picks at random among the kernel's ports, and
# may pick the same one twice in a row (over the 17 of a big map, about
# once in a hundred runs): never one this test was given before.
freeport () {
    while :; do
        fp=$("$TOOL" freeport) || return 1
        grep -qx "$fp" "$dir/freeports" 2>/dev/null || break
    done
    echo "$fp" >>"$dir/freeports"
    echo "$fp"
}
box_map_head () {   # the cluster block (extra lines after NAME) and the back end
    mh_name=$1; shift
    printf 'cluster\n    name = %s\n    data = %s\n' "$mh_name" "$dir/$mh_name-data"
    for line in "$@"; do printf '    %s\n' "$line"; done
    cat <<EOF
node = box
    balancer
        bind = inproc://balancer
    read-api
    write-api
    shard = s0
        bind = inproc://s0
EOF
}
# in_api_rotation LOG REPLICA...: the read-api of the node whose LOG it is
# counts every REPLICA in its read rotation: its last "replica R joined /
# left the read rotation" line says joined (in every instance), within
# 20 s. What a fixed sleep after a freeze stood for.
in_api_rotation () {
    ar_log=$1; shift; ar_i=0
    while [ $ar_i -lt 200 ]; do
        ar_in=$(awk -v want="$*" '
            / replica [^ ]* (joined|left) the read rotation/ {
                for (i = 1; i < NF; i++)
                    if ($i ~ /^read-api[.0-9]*:$/ && $(i + 1) == "replica") {
                        state [$i " " $(i + 2)] = $(i + 3); break
                    }
            }
            END {
                n = split(want, r, " "); all = 1
                for (i = 1; i <= n; i++) wanted [r [i]] = 1
                for (k in state) {
                    split(k, p, " ")
                    if (!(p[2] in wanted)) continue
                    seen [p[2]] = 1
                    if (state [k] != "joined") all = 0
                }
                for (i = 1; i <= n; i++) if (!(r [i] in seen)) all = 0
                print all
            }' "$ar_log")
        [ "$ar_in" = 1 ] && return 0
        sleep 0.1; ar_i=$((ar_i + 1))
    done
    echo "# the read-api's rotation ($ar_log): $(grep 'the read rotation' "$ar_log" | tail -n 4 | sed 's/.*read-api/read-api/' | tr '\n' ';')"
    return 1
}
