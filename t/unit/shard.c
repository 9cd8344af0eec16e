/*  t/unit/shard.c — tests for storage/shard.c and runtime/slot.c.

    A real node runs two real shards on SQLite files in a temporary data
    directory: s0 (batch 256, max_doc 1k) and s1 (batch 1, to compare
    against group commit). The test speaks the shard protocol
    (doc/protocol.md) over a DEALER: every status of the contract, input
    that must be refused, list paging and JSON escaping, group commit,
    durability across a restart, and that versions are never reused.
*/
#include "kind.h"
#include "map.h"
#include "node.h"
#include "wire.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "slot.h"
#include "t/tap.h"
#include <sqlite3.h>
#include <dirent.h>
#include <inttypes.h>
#include <fcntl.h>
#include <unistd.h>

static int s_rid = 0;
static char s_dir [256];

//  A request with op/collection/id headers (NULL = header absent).
static tiers_wire_t *
s_request (const char *op, const char *collection, const char *id,
           const char *body)
{
    tiers_wire_t *msg = tiers_wire_new (TIERS_WIRE_REQUEST);
    char rid [32];
    snprintf (rid, sizeof rid, "r%d", ++s_rid);
    tiers_wire_set_rid (msg, rid);
    tiers_wire_set_service (msg, "shard");
    if (op)
        tiers_wire_set_header (msg, "op", op, strlen (op));
    if (collection)
        tiers_wire_set_header (msg, "collection", collection, strlen (collection));
    if (id)
        tiers_wire_set_header (msg, "id", id, strlen (id));
    if (body)
        tiers_wire_set_body (msg, body, strlen (body));
    return msg;
}

//  Send and wait for the reply; the request is consumed.
static tiers_wire_t *
s_call (zsock_t *dealer, tiers_wire_t *request)
{
    tiers_wire_t *reply = tiers_call (dealer, request, 10000);
    tiers_wire_destroy (&request);
    return reply;
}

//  One call; returns the status (0 on timeout) and keeps the reply in
//  *reply_p when that is not NULL.
static int
s_do (zsock_t *dealer, const char *op, const char *collection, const char *id,
      const char *body, const char *key, const char *value,
      tiers_wire_t **reply_p)
{
    tiers_wire_t *request = s_request (op, collection, id, body);
    if (key)
        tiers_wire_set_header (request, key, value, strlen (value));
    tiers_wire_t *reply = s_call (dealer, request);
    int status = reply ? reply->status : 0;
    if (reply_p)
        *reply_p = reply;
    else
        tiers_wire_destroy (&reply);
    return status;
}

static int64_t
s_version (const tiers_wire_t *reply)
{
    const char *version = reply ? tiers_wire_header (reply, "version") : NULL;
    return version ? strtoll (version, NULL, 10) : -1;
}

//  The reply's tag ("INCARNATION.VERSION") in `tag`, "" when none.
static const char *
s_tag (const tiers_wire_t *reply, char tag [64])
{
    const char *value = reply ? tiers_wire_header (reply, "tag") : NULL;
    snprintf (tag, 64, "%s", value ? value : "");
    return tag;
}

static zsock_t *s_dealer (const char *endpoint);

//  Send and wait; the status (0 on timeout). The request is consumed.
static int
s_call_status (zsock_t *dealer, tiers_wire_t *request)
{
    tiers_wire_t *reply = s_call (dealer, request);
    int status = reply ? reply->status : 0;
    tiers_wire_destroy (&reply);
    return status;
}

static zsock_t *
s_dealer (const char *endpoint)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zsock_set_linger (dealer, 0);
    zsock_set_sndhwm (dealer, 100000);
    zsock_set_rcvhwm (dealer, 100000);
    int rc = zsock_connect (dealer, "%s", endpoint);
    assert (rc == 0);
    return dealer;
}

static tiers_counter_t *
s_counter (const char *name, const char *shard)
{
    char labels [64];
    snprintf (labels, sizeof labels, "shard=\"%s\"", shard);
    return tiers_metrics_counter (name, labels, NULL);
}

//  Send `count` puts at once (ids PREFIX0000..), then collect the replies.
//  Returns how many came back with `status`; *seconds = wall time.
static int
s_burst (zsock_t *dealer, const char *collection, const char *prefix,
         int count, int status, double *seconds)
{
    int64_t started = tiers_clock_us ();
    for (int i = 0; i < count; i++) {
        char id [64];
        snprintf (id, sizeof id, "%s%04d", prefix, i);
        tiers_wire_t *request = s_request ("put", collection, id, "{\"n\":1}");
        int rc = tiers_wire_send (request, dealer, NULL);
        assert (rc == 0);
        tiers_wire_destroy (&request);
    }
    int good = 0;
    for (int i = 0; i < count; i++) {
        zmq_pollitem_t item = { zsock_resolve (dealer), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 10000) <= 0)
            break;
        tiers_wire_t *reply = tiers_wire_recv (dealer, NULL, NULL);
        if (reply && reply->status == status)
            good++;
        tiers_wire_destroy (&reply);
    }
    *seconds = (tiers_clock_us () - started) / 1e6;
    return good;
}

//  SQLite as the JSON checker for list pages.
static sqlite3 *s_json_db;

static bool
s_json_valid (const char *text)
{
    sqlite3_stmt *stmt;
    sqlite3_prepare_v2 (s_json_db, "SELECT json_valid (?1)", -1, &stmt, NULL);
    sqlite3_bind_text (stmt, 1, text, -1, SQLITE_STATIC);
    bool valid = sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_int (stmt, 0) == 1;
    sqlite3_finalize (stmt);
    return valid;
}

//  A list page: appends its ids to `ids` (a zlist of strings) and returns
//  the next cursor (malloc'ed) or NULL; *valid says if the page was JSON.
static char *
s_page (zsock_t *dealer, const char *collection, const char *after,
        const char *limit, zlist_t *ids, bool *valid, int *status)
{
    tiers_wire_t *request = s_request ("list", collection, NULL, NULL);
    if (after)
        tiers_wire_set_header (request, "after", after, strlen (after));
    if (limit)
        tiers_wire_set_header (request, "limit", limit, strlen (limit));
    tiers_wire_t *reply = s_call (dealer, request);
    *status = reply ? reply->status : 0;
    *valid = false;
    char *next = NULL;
    if (reply && reply->status == 200) {
        const char *body = (const char *) reply->body;
        *valid = s_json_valid (body);
        sqlite3_stmt *stmt;
        sqlite3_prepare_v2 (s_json_db, "SELECT json_extract (value, '$.id')"
                            " FROM json_each (?1, '$.items')", -1, &stmt, NULL);
        sqlite3_bind_text (stmt, 1, body, -1, SQLITE_STATIC);
        while (sqlite3_step (stmt) == SQLITE_ROW)
            zlist_append (ids, strdup ((const char *) sqlite3_column_text (stmt, 0)));
        sqlite3_finalize (stmt);
        sqlite3_prepare_v2 (s_json_db, "SELECT json_extract (?1, '$.next')",
                            -1, &stmt, NULL);
        sqlite3_bind_text (stmt, 1, body, -1, SQLITE_STATIC);
        if (sqlite3_step (stmt) == SQLITE_ROW
        &&  sqlite3_column_type (stmt, 0) != SQLITE_NULL)
            next = strdup ((const char *) sqlite3_column_text (stmt, 0));
        sqlite3_finalize (stmt);
    }
    tiers_wire_destroy (&reply);
    return next;
}

static void
s_ids_destroy (zlist_t **ids_p)
{
    char *id;
    while ((id = (char *) zlist_pop (*ids_p)))
        free (id);
    zlist_destroy (ids_p);
}

static void
s_remove_dir (const char *path)
{
    DIR *dir = opendir (path);
    if (!dir)
        return;
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (!streq (entry->d_name, ".") && !streq (entry->d_name, "..")) {
            char file [512];
            snprintf (file, sizeof file, "%s/%s", path, entry->d_name);
            unlink (file);
        }
    closedir (dir);
    rmdir (path);
}

//  Reference FNV-1a 64 over a byte string.
static uint64_t
s_fnv (const char *data, size_t size)
{
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; i++) {
        hash ^= (unsigned char) data [i];
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

static void
s_test_slots (void)
{
    ok (s_fnv ("", 0) == 0xcbf29ce484222325ULL
     && s_fnv ("a", 1) == 0xaf63dc4c8601ec8cULL
     && s_fnv ("foobar", 6) == 0x85944171f73967e8ULL,
        "reference FNV-1a 64 matches the published vectors");
    ok (tiers_slot_of ("users", "42", 1024) == s_fnv ("users\x1f" "42", 8) % 1024,
        "slot = FNV-1a(collection 0x1f id) mod slots");
    ok (tiers_slot_of ("users", "42", 1024) == tiers_slot_of ("users", "42", 1024),
        "slot is deterministic");
    ok (tiers_slot_of ("ab", "c", 65536) != tiers_slot_of ("a", "bc", 65536),
        "the separator keeps (ab,c) and (a,bc) apart");
    int hits [16] = { 0 };
    bool below = true;
    for (int i = 0; i < 16000; i++) {
        char id [32];
        snprintf (id, sizeof id, "user-%d", i);
        uint32_t slot = tiers_slot_of ("users", id, 16);
        below &= slot < 16;
        if (slot < 16)
            hits [slot]++;
    }
    int low = hits [0], high = hits [0];
    for (int i = 1; i < 16; i++) {
        low = hits [i] < low ? hits [i] : low;
        high = hits [i] > high ? hits [i] : high;
    }
    ok (below, "every slot < slots");
    ok (low > 800 && high < 1200, "16000 keys spread over 16 slots (%d..%d each)",
        low, high);
    is_int (tiers_slot_of ("x", "y", 1), 0, "one slot: always 0");
}

//  tiers_slots_each: what it hands out, and what it refuses before that.
typedef struct {
    char seen [128];
    int calls, stop_at;
} s_ranges_t;

static int
s_range_seen (long long low, long long high, void *arg)
{
    s_ranges_t *ranges = (s_ranges_t *) arg;
    size_t used = strlen (ranges->seen);
    snprintf (ranges->seen + used, sizeof ranges->seen - used, "%s%lld-%lld",
              used ? " " : "", low, high);
    return ++ranges->calls == ranges->stop_at ? 7 : 0;
}

static void
s_slots_bad (const char *text, long long slots, const char *why_expected)
{
    s_ranges_t ranges = { "", 0, 0 };
    char *why = NULL;
    int rc = tiers_slots_each (text, slots, s_range_seen, &ranges, &why);
    ok (rc == -1 && ranges.calls == 0 && why && streq (why, why_expected),
        "slots '%s' of %lld refused, nothing handed out: %s", text ? text : "(null)",
        slots, why ? why : "(no reason)");
    free (why);
}

static void
s_test_slot_ranges (void)
{
    s_ranges_t ranges = { "", 0, 0 };
    char *why = (char *) "unset";
    int rc = tiers_slots_each ("0-511,600,768-1023", 1024, s_range_seen, &ranges, &why);
    ok (rc == 0 && why == NULL, "good ranges: 0 and no reason");
    is (ranges.seen, "0-511 600-600 768-1023", "ranges handed out in order");
    ok (tiers_slots_each ("0-1023", 1024, NULL, NULL, NULL) == 0,
        "fn NULL only checks");
    ranges = (s_ranges_t) { "", 0, 2 };
    rc = tiers_slots_each ("1,2,3", 4, s_range_seen, &ranges, &why);
    ok (rc == 7 && ranges.calls == 2 && why == NULL, "fn's non-zero stops and is returned");
    const char *syntax = "expected slot ranges like 0-511,768-1023";
    const char *order = "ranges must ascend and not overlap";
    s_slots_bad ("", 1024, syntax);
    s_slots_bad (NULL, 1024, syntax);
    s_slots_bad ("0-", 1024, syntax);
    s_slots_bad ("1,", 1024, syntax);
    s_slots_bad ("0-1,x", 1024, syntax);
    s_slots_bad ("-1", 1024, syntax);
    s_slots_bad ("0 -1", 1024, syntax);
    s_slots_bad ("99999999999999999999", 1024, syntax);
    s_slots_bad ("5-3", 1024, order);
    s_slots_bad ("0-10,10-20", 1024, order);
    s_slots_bad ("20-30,0-10", 1024, order);
    s_slots_bad ("0-511,512-1024", 1024,
                 "slot 1024 is beyond the cluster's 1024 slots (0-1023)");
    //  The whole text is checked before anything is handed out.
    s_slots_bad ("0-10,5", 1024, order);
}

static const char *s_map_format =
    "cluster\n"
    "    name = shardtest\n"
    "    data = %s\n"
    "node = n\n"
    "    shard = s0\n"
    "        bind = inproc://s0\n"
    "        slots = 0-511\n"
    "        max_doc = 1k\n"
    "    shard = s1\n"
    "        bind = inproc://s1\n"
    "        slots = 512-1023\n"
    "        batch = 1\n";

//  The shard's file deleted under it (an operator's rm, a cleanup script):
//  no write is acknowledged after that, since it would vanish at the next
//  restart; what was refused is not there after the restart either.
static void
s_test_lost_file (void)
{
    char dir [PATH_MAX];
    snprintf (dir, sizeof dir, "%s/lost", s_dir);
    char *text = zsys_sprintf ("cluster\n    data = %s\nnode = box\n    shard = gone\n"
                               "        bind = inproc://gone\n", dir);
    tiers_map_t *map = tiers_map_parse (text, "lost.map", NULL);
    tiers_node_t *node = map ? tiers_node_new (map, NULL) : NULL;
    ok (node && tiers_node_start (node) == 0, "lost file: the shard starts");
    if (!node || !map) {
        free (text);
        return;
    }
    zsock_t *dealer = s_dealer ("inproc://gone");
    is_int (s_do (dealer, "put", "c", "before", "{}", NULL, NULL, NULL), 201,
            "lost file: a write before the removal is 201");
    //  A write whose deadline passed before the shard got to it is not
    //  started (issue 10, item 4): 504, and nothing stored.
    tiers_wire_t *late = s_request ("put", "c", "late", "{}");
    late->deadline = tiers_wire_now () - 1;
    tiers_wire_t *answer = s_call (dealer, late);
    is_int (answer ? answer->status : 0, 504, "a write past its deadline is 504");
    const char *why = answer ? tiers_wire_header (answer, "error") : NULL;
    ok (why && strstr (why, "not applied"), "... saying it was not applied");
    tiers_wire_destroy (&answer);
    is_int (s_do (dealer, "get", "c", "late", NULL, NULL, NULL, NULL), 404,
            "... and it was not");
    //  A body with a NUL byte is refused with a reason that is ours (the
    //  JSON parser never ran, so it has none to give).
    tiers_wire_t *nul = s_request ("put", "c", "nul", NULL);
    tiers_wire_set_body (nul, "{\"a\":\"\0\"}", 9);
    answer = s_call (dealer, nul);
    is_int (answer ? answer->status : 0, 400, "a body with a NUL byte is 400");
    why = answer ? tiers_wire_header (answer, "error") : NULL;
    ok (why && strstr (why, "a NUL byte is no JSON"), "... saying so (%s)", why ? why : "none");
    tiers_wire_destroy (&answer);
    char *path = zsys_sprintf ("%s/gone.db", dir);
    char *wal = zsys_sprintf ("%s/gone.db-wal", dir);
    ok (unlink (path) == 0 && unlink (wal) == 0, "lost file: gone.db and its WAL removed");
    tiers_wire_t *reply = NULL;
    is_int (s_do (dealer, "put", "c", "after", "{}", NULL, NULL, &reply), 503,
            "lost file: a write after it is 503, not acknowledged");
    const char *error = reply ? tiers_wire_header (reply, "error") : NULL;
    ok (error && strstr (error, "removed or replaced"), "... saying why (%s)",
        error ? error : "none");
    tiers_wire_destroy (&reply);
    is_int (s_do (dealer, "put", "c", "later", "{}", NULL, NULL, NULL), 503,
            "lost file: and so are the writes after that");
    is_int (s_do (dealer, "get", "c", "before", NULL, NULL, NULL, NULL), 200,
            "lost file: reads still answer from the open file");
    zsock_destroy (&dealer);
    tiers_node_destroy (&node);
    node = tiers_node_new (map, NULL);
    int rc = -1;
    for (int tries = 0; tries < 20 && rc; tries++) {
        rc = tiers_node_start (node);   //  inproc://gone is freed by libzmq's
        if (rc)                         //  reaper, a moment after the stop
            zclock_sleep (50);
    }
    ok (rc == 0, "lost file: the restarted shard starts on a new file");
    dealer = s_dealer ("inproc://gone");
    is_int (s_do (dealer, "get", "c", "after", NULL, NULL, NULL, NULL), 404,
            "lost file: the refused write is not there");
    is_int (s_do (dealer, "put", "c", "again", "{}", NULL, NULL, NULL), 201,
            "lost file: and writes are acknowledged again");
    zsock_destroy (&dealer);
    tiers_node_destroy (&node);
    tiers_map_destroy (&map);
    free (path);
    free (wal);
    free (text);
}

//  --------------------------------------------------------------------------
//  One shard alone in DIR (cluster CLUSTER, shard NAME, extra keys), for
//  the identity, idempotency and list tests.
typedef struct {
    tiers_map_t *map;
    tiers_node_t *node;
    zsock_t *dealer;
    char endpoint [64];
} box_t;

static int
s_box_start (box_t *box, const char *dir, const char *cluster, const char *name,
             const char *extra)
{
    memset (box, 0, sizeof *box);
    snprintf (box->endpoint, sizeof box->endpoint, "inproc://box-%s", name);
    char *text = zsys_sprintf ("cluster\n    name = %s\n    data = %s\nnode = box\n"
                               "    shard = %s\n        bind = %s\n%s", cluster, dir,
                               name, box->endpoint, extra ? extra : "");
    char *errors = NULL;
    box->map = tiers_map_parse (text, "box.map", &errors);
    free (text);
    if (!box->map) {
        diag ("box.map: %s", errors ? errors : "?");
        free (errors);
        return -2;
    }
    box->node = tiers_node_new (box->map, NULL);
    int rc = -1;
    for (int tries = 0; tries < 40 && rc; tries++) {
        rc = tiers_node_start (box->node);  //  inproc:// is freed by libzmq's
        if (rc && !strstr (tiers_node_error (box->node), "in use"))
            break;                          //  reaper, a moment after a stop
        if (rc)
            zclock_sleep (50);
    }
    if (rc == 0)
        box->dealer = s_dealer (box->endpoint);
    return rc;
}

static void
s_box_stop (box_t *box)
{
    zsock_destroy (&box->dealer);
    tiers_node_destroy (&box->node);
    tiers_map_destroy (&box->map);
}

static int
s_copy_file (const char *from, const char *to)
{
    FILE *in = fopen (from, "rb"), *out = fopen (to, "wb");
    char buffer [65536];
    size_t size;
    while (in && out && (size = fread (buffer, 1, sizeof buffer, in)) > 0)
        fwrite (buffer, 1, size, out);
    int rc = in && out ? 0 : -1;
    if (in)
        fclose (in);
    if (out && fclose (out))
        rc = -1;
    return rc;
}

//  The file's identity: a new incarnation where the file cannot be the
//  one this shard served last, so that no ETag of before matches.
static void
s_test_identity (void)
{
    char dir [PATH_MAX], path [PATH_MAX + 16], copy [PATH_MAX + 16], lock [PATH_MAX + 16];
    snprintf (dir, sizeof dir, "%s/identity", s_dir);
    snprintf (path, sizeof path, "%s/one.db", dir);
    snprintf (copy, sizeof copy, "%s/one.db.saved", dir);
    snprintf (lock, sizeof lock, "%s/one.db.lock", dir);
    box_t box;
    tiers_wire_t *reply = NULL;
    char first [64], tag [64], match [80];
    ok (s_box_start (&box, dir, "c1", "one", NULL) == 0, "identity: a new file");
    s_do (box.dealer, "put", "d", "a", "{\"v\":1}", NULL, NULL, &reply);
    s_tag (reply, first);
    tiers_wire_destroy (&reply);
    ok (strlen (first) == 14 && streq (first + 12, ".1"), "identity: the first write's tag "
        "is INCARNATION.1 (%s)", first);
    s_box_stop (&box);

    //  A clean restart keeps the incarnation: tags of before still match.
    ok (s_box_start (&box, dir, "c1", "one", NULL) == 0, "identity: restart");
    is_int (s_do (box.dealer, "put", "d", "a", "{\"v\":2}", "match", first, &reply), 200,
            "identity: after a restart, the tag of before still matches");
    s_tag (reply, tag);
    tiers_wire_destroy (&reply);
    ok (strncmp (tag, first, 12) == 0, "... the same incarnation (%s)", tag);
    s_box_stop (&box);

    //  A stop that was not clean (the mark still says R, running): with
    //  sync = full the file is vouched for by its commits' fsyncs and
    //  keeps its incarnation; with sync = normal commits may have been
    //  lost, so it gets a new one.
    for (int normal = 0; normal < 2; normal++) {
        int fd = open (lock, O_RDWR);
        char mark [80] = "";
        ssize_t got = fd >= 0 ? pread (fd, mark, sizeof mark - 1, 11) : -1;
        char *state = got > 35 ? mark + 34 : NULL;
        bool was_clean = state && *state == 'C';
        if (state) {
            *state = 'R';
            got = pwrite (fd, mark, (size_t) got, 11);
        }
        if (fd >= 0)
            close (fd);
        ok (was_clean, "identity: a clean stop left the mark C (%.40s)", mark);
        ok (s_box_start (&box, dir, "c1", "one", normal ? "        sync = normal\n" : NULL) == 0,
            "identity: restart after an unclean stop, sync = %s", normal ? "normal" : "full");
        s_do (box.dealer, "get", "d", "a", NULL, NULL, NULL, &reply);
        char after [64];
        s_tag (reply, after);
        tiers_wire_destroy (&reply);
        if (normal)
            ok (strncmp (after, tag, 12) != 0, "... sync = normal: a new incarnation (%s, was "
                "%s)", after, tag);
        else
            ok (strncmp (after, tag, 12) == 0, "... sync = full: the same incarnation (%s)",
                after);
        strcpy (tag, after);
        s_box_stop (&box);
    }
    strcpy (first, tag);
    strcpy (first + 12, ".1");      //  version 1 under this incarnation

    //  Another cluster or another shard is refused: names are the file's.
    int rc = s_box_start (&box, dir, "c2", "one", NULL);
    const char *error = box.node ? tiers_node_error (box.node) : NULL;
    ok (rc == -1 && error && strstr (error, "belongs to shard 'one' of cluster 'c1'"),
        "identity: another cluster's map is refused (%s)", error ? error : "?");
    s_box_stop (&box);
    char other [PATH_MAX + 16];
    snprintf (other, sizeof other, "%s/two.db", dir);
    s_copy_file (path, other);
    rc = s_box_start (&box, dir, "c1", "two", NULL);
    error = box.node ? tiers_node_error (box.node) : NULL;
    ok (rc == -1 && error && strstr (error, "not to shard 'two'"),
        "identity: a file copied to another shard's name is refused");
    s_box_stop (&box);
    unlink (other);

    //  An empty data dir where the shard used to be: versions start again
    //  at 1, under a new incarnation, so a tag of before matches nothing.
    s_remove_dir (dir);
    ok (s_box_start (&box, dir, "c1", "one", NULL) == 0, "identity: an empty data dir");
    s_do (box.dealer, "put", "d", "a", "{\"v\":\"new\"}", NULL, NULL, &reply);
    s_tag (reply, tag);
    tiers_wire_destroy (&reply);
    ok (streq (tag + 12, ".1") && strncmp (tag, first, 12) != 0,
        "... versions start at 1 again, under a new incarnation (%s, was %s)", tag, first);
    is_int (s_do (box.dealer, "put", "d", "a", "{\"v\":\"lost update\"}", "match", first,
                  NULL), 412, "... and the old tag with the same version number is 412");
    s_box_stop (&box);

    //  A restored older copy of the file (the lock file's mark is ahead of
    //  it): a new incarnation.
    s_copy_file (path, copy);
    strcpy (first, tag);
    ok (s_box_start (&box, dir, "c1", "one", NULL) == 0, "identity: before a restore");
    s_do (box.dealer, "put", "d", "b", "{}", NULL, NULL, NULL);
    s_box_stop (&box);
    ok (rename (copy, path) == 0, "identity: the older copy restored over the file");
    ok (s_box_start (&box, dir, "c1", "one", NULL) == 0, "identity: restart on the copy");
    s_do (box.dealer, "get", "d", "a", NULL, NULL, NULL, &reply);
    s_tag (reply, tag);
    tiers_wire_destroy (&reply);
    ok (*tag && strncmp (tag, first, 12) != 0 && streq (tag + 12, first + 12),
        "... the same version under a new incarnation (%s, was %s)", tag, first);
    is_int (s_do (box.dealer, "get", "d", "b", NULL, NULL, NULL, NULL), 404,
            "... (the copy is from before b was written)");
    s_box_stop (&box);

    //  The lock file gone: nothing says this file is the one served last.
    strcpy (first, tag);
    unlink (lock);
    ok (s_box_start (&box, dir, "c1", "one", NULL) == 0, "identity: the lock file removed");
    s_do (box.dealer, "get", "d", "a", NULL, NULL, NULL, &reply);
    s_tag (reply, tag);
    tiers_wire_destroy (&reply);
    ok (*tag && strncmp (tag, first, 12) != 0, "... a new incarnation (%s, was %s)", tag, first);
    snprintf (match, sizeof match, "%s", first);
    is_int (s_do (box.dealer, "delete", "d", "a", NULL, "match", match, NULL), 412,
            "... and a delete with the old tag is 412");
    //  STATUS tells the incarnation.
    tiers_wire_t *status = tiers_wire_new (TIERS_WIRE_STATUS);
    tiers_wire_set_rid (status, "st");
    reply = s_call (box.dealer, status);
    char expect [64];
    snprintf (expect, sizeof expect, "\"incarnation\":\"%.12s\"", tag);
    ok (reply && reply->body && strstr ((char *) reply->body, expect)
        && strstr ((char *) reply->body, "\"writable\":true"),
        "STATUS tells the incarnation and that the shard is writable");
    tiers_wire_destroy (&reply);
    s_box_stop (&box);
}

//  Idempotency-Key: a repeat gets the first outcome, whatever happened to
//  the document since; another request under the same key gets 422.
static void
s_test_idempotency (void)
{
    char dir [PATH_MAX];
    snprintf (dir, sizeof dir, "%s/keys", s_dir);
    box_t box;
    //  A time to live no run outlasts here (a loaded machine takes seconds
    //  for these writes); a short one is tried after the restart below.
    ok (s_box_start (&box, dir, "c1", "keys", "        idempotency_ttl = 1h\n") == 0,
        "keys: a shard with a 1 h time to live for keys");
    tiers_wire_t *reply = NULL;
    char tag [64], again [64];
    tiers_wire_t *request = s_request ("put", "d", "a", "{\"n\":1}");
    tiers_wire_set_header (request, "idempotency-key", "k1", 2);
    reply = s_call (box.dealer, request);
    is_int (reply ? reply->status : 0, 201, "keys: a keyed put -> 201");
    s_tag (reply, tag);
    ok (reply && !tiers_wire_header (reply, "replayed"), "... not a replay");
    tiers_wire_destroy (&reply);
    for (int i = 0; i < 2; i++) {
        request = s_request ("put", "d", "a", "{\"n\":1}");
        tiers_wire_set_header (request, "idempotency-key", "k1", 2);
        reply = s_call (box.dealer, request);
        is_int (reply ? reply->status : 0, 201, "keys: the same put again -> 201, "
                "its first outcome (%d)", i + 1);
        ok (streq (s_tag (reply, again), tag) && tiers_wire_header (reply, "replayed"),
            "... with the first tag, marked replayed");
        tiers_wire_destroy (&reply);
    }
    s_do (box.dealer, "get", "d", "a", NULL, NULL, NULL, &reply);
    ok (streq (s_tag (reply, again), tag), "keys: the replays wrote nothing (%s)", again);
    tiers_wire_destroy (&reply);
    //  The document changes; the key's outcome does not.
    is_int (s_do (box.dealer, "put", "d", "a", "{\"n\":2}", NULL, NULL, NULL), 200,
            "keys: an unkeyed put changes the document");
    request = s_request ("put", "d", "a", "{\"n\":1}");
    tiers_wire_set_header (request, "idempotency-key", "k1", 2);
    reply = s_call (box.dealer, request);
    is_int (reply ? reply->status : 0, 201, "keys: the first put once more -> still 201");
    tiers_wire_destroy (&reply);
    s_do (box.dealer, "get", "d", "a", NULL, NULL, NULL, &reply);
    is (reply ? (char *) reply->body : NULL, "{\"n\":2}", "... and the document is not "
        "set back");
    tiers_wire_destroy (&reply);
    //  Another request under the key: 422, not applied.
    const char *others [][3] = {
        { "put", "{\"n\":3}", NULL },           //  another body
        { "put", "{\"n\":1}", "create" },       //  another precondition
        { "delete", NULL, NULL },               //  another method
    };
    for (size_t i = 0; i < 3; i++) {
        request = s_request (others [i][0], "d", "a", others [i][1]);
        tiers_wire_set_header (request, "idempotency-key", "k1", 2);
        if (others [i][2])
            tiers_wire_set_header (request, others [i][2], "1", 1);
        reply = s_call (box.dealer, request);
        const char *outcome = reply ? tiers_wire_header (reply, "outcome") : NULL;
        ok (reply && reply->status == 422 && outcome && streq (outcome, "not-applied"),
            "keys: %s under the same key -> 422 not-applied (%d)",
            i == 0 ? "another body" : i == 1 ? "another precondition" : "another method",
            reply ? reply->status : 0);
        tiers_wire_destroy (&reply);
    }
    s_do (box.dealer, "get", "d", "a", NULL, NULL, NULL, &reply);
    is (reply ? (char *) reply->body : NULL, "{\"n\":2}", "... none of them applied");
    tiers_wire_destroy (&reply);
    //  A key belongs to its document: the same key elsewhere is a new one.
    request = s_request ("put", "d", "b", "{\"n\":1}");
    tiers_wire_set_header (request, "idempotency-key", "k1", 2);
    is_int (s_call_status (box.dealer, request), 201, "keys: the same key on another "
            "document is its own");
    //  A delete's outcome replays too (204, not the 404 a second delete gets).
    for (int i = 0; i < 2; i++) {
        request = s_request ("delete", "d", "b", NULL);
        tiers_wire_set_header (request, "idempotency-key", "del", 3);
        is_int (s_call_status (box.dealer, request), 204, "keys: a keyed delete -> 204 (%d)",
                i + 1);
    }
    //  A failed precondition is an outcome as well.
    for (int i = 0; i < 2; i++) {
        request = s_request ("put", "d", "c", "{}");
        tiers_wire_set_header (request, "idempotency-key", "pre", 3);
        tiers_wire_set_header (request, "match", "nope.1", 6);
        is_int (s_call_status (box.dealer, request), 412, "keys: a keyed put whose "
                "precondition fails -> 412 (%d)", i + 1);
    }
    //  Bad keys
    request = s_request ("put", "d", "c", "{}");
    tiers_wire_set_header (request, "idempotency-key", "", 0);
    is_int (s_call_status (box.dealer, request), 400, "keys: an empty key -> 400");
    request = s_request ("put", "d", "c", "{}");
    tiers_wire_set_header (request, "idempotency-key", "a\tb", 3);
    is_int (s_call_status (box.dealer, request), 400, "keys: a control character -> 400");
    char big [300];
    memset (big, 'k', 256);
    big [256] = 0;
    request = s_request ("put", "d", "c", "{}");
    tiers_wire_set_header (request, "idempotency-key", big, 256);
    is_int (s_call_status (box.dealer, request), 400, "keys: 256 bytes -> 400");
    //  A key written just before the stop, asked again after the restart.
    int64_t fresh_sent = zclock_mono ();
    request = s_request ("put", "d", "e", "{\"n\":5}");
    tiers_wire_set_header (request, "idempotency-key", "k2", 2);
    reply = s_call (box.dealer, request);
    int64_t fresh_written = zclock_mono ();
    is_int (reply ? reply->status : 0, 201, "keys: a keyed put just before a stop -> 201");
    s_tag (reply, tag);
    tiers_wire_destroy (&reply);
    s_box_stop (&box);

    //  Keys outlive a restart (they are in the file, with the writes), for
    //  the time to live the shard has now (3 s), counted from their write.
    const int ttl_ms = 3000;
    ok (s_box_start (&box, dir, "c1", "keys", "        idempotency_ttl = 3s\n") == 0,
        "keys: restart, with a 3 s time to live");
    request = s_request ("put", "d", "e", "{\"n\":5}");
    tiers_wire_set_header (request, "idempotency-key", "k2", 2);
    reply = s_call (box.dealer, request);
    int64_t asked = zclock_mono () - fresh_sent;   //  the key's age at most
    if (asked < ttl_ms - 200)
        ok (reply && reply->status == 201 && streq (s_tag (reply, again), tag)
            && tiers_wire_header (reply, "replayed"), "keys: after a restart, the "
            "repeat still gets its first outcome (asked %d ms after the write)",
            (int) asked);
    else
        ok (1, "keys: after a restart, the repeat still gets its first outcome "
            "# SKIP the stop and restart took %d ms, near the 3 s time to live",
            (int) asked);
    tiers_wire_destroy (&reply);
    //  ... then, their time to live past, they are forgotten.
    int64_t forgotten = fresh_written + ttl_ms + 200 - zclock_mono ();
    if (forgotten > 0)
        zclock_sleep ((int) forgotten);
    request = s_request ("put", "d", "e", "{\"n\":5}");
    tiers_wire_set_header (request, "idempotency-key", "k2", 2);
    reply = s_call (box.dealer, request);
    ok (reply && reply->status == 200 && !tiers_wire_header (reply, "replayed"),
        "keys: after the time to live the key is new again (200, applied)");
    tiers_wire_destroy (&reply);
    s_box_stop (&box);
}

//  A stored document that is not I-JSON (written before the shard checked,
//  or by hand) is listed with an error, and the page stays JSON.
static void
s_test_bad_stored (void)
{
    char dir [PATH_MAX], path [PATH_MAX + 16];
    snprintf (dir, sizeof dir, "%s/bad", s_dir);
    snprintf (path, sizeof path, "%s/bad.db", dir);
    box_t box;
    ok (s_box_start (&box, dir, "c1", "bad", NULL) == 0, "bad stored: start");
    s_do (box.dealer, "put", "d", "a", "{\"n\":1}", NULL, NULL, NULL);
    s_do (box.dealer, "put", "d", "c", "{\"n\":3}", NULL, NULL, NULL);
    s_box_stop (&box);
    sqlite3 *db = NULL;
    int rc = sqlite3_open (path, &db);
    rc = rc ? rc : sqlite3_exec (db, "INSERT INTO docs (collection, id, version, updated, body)"
                                 " VALUES ('d', 'b', 99, 0, '\"\\ud800\"')", NULL, NULL, NULL);
    sqlite3_close (db);
    ok (rc == SQLITE_OK, "bad stored: a lone surrogate written into the file by hand");
    ok (s_box_start (&box, dir, "c1", "bad", NULL) == 0, "bad stored: restart");
    tiers_wire_t *reply = NULL;
    is_int (s_do (box.dealer, "list", "d", NULL, NULL, NULL, NULL, &reply), 200,
            "bad stored: the list is 200");
    const char *body = reply && reply->body ? (const char *) reply->body : "";
    ok (s_json_valid (body), "... valid JSON");
    ok (strstr (body, "{\"id\":\"b\",\"version\":99,") && strstr (body, "not I-JSON")
        && !strstr (body, "ud800"), "... the bad one listed with an error, without its bytes");
    ok (strstr (body, "\"doc\":{\"n\":1}") && strstr (body, "\"doc\":{\"n\":3}")
        && strstr (body, "\"etag\":\"\\\""), "... the others with their doc and etag");
    tiers_wire_destroy (&reply);
    s_box_stop (&box);
}

static tiers_node_t *
s_start (tiers_map_t *map)
{
    tiers_node_t *node = tiers_node_new (map, NULL);
    int rc = tiers_node_start (node);
    if (rc)
        diag ("node start: %s", tiers_node_error (node));
    ok (rc == 0, "node with two shards starts");
    return node;
}

int
main (void)
{
    zsys_handler_set (NULL);
    tiers_log_set_level (TIERS_LOG_WARN);
    sqlite3_open (":memory:", &s_json_db);
    s_test_slots ();
    s_test_slot_ranges ();

    const char *tmp = getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp";
    snprintf (s_dir, sizeof s_dir, "%s/tiers-shard-XXXXXX", tmp);
    assert (mkdtemp (s_dir));
    char *text = zsys_sprintf (s_map_format, s_dir);
    char *errors = NULL;
    tiers_map_t *map = tiers_map_parse (text, "shard.map", &errors);
    if (!map)
        diag ("%s", errors);
    free (errors);
    free (text);
    ok (map != NULL, "map parses");
    if (!map)
        return done_testing ();

    tiers_node_t *node = s_start (map);
    zsock_t *dealer = s_dealer ("inproc://s0");
    tiers_wire_t *reply = NULL;

    //  put / get / replace
    is_int (s_do (dealer, "put", "users", "alice", "{\"name\":\"Alice\"}", NULL, NULL, &reply),
            201, "put new -> 201");
    int64_t v1 = s_version (reply);
    ok (v1 > 0 && tiers_wire_header (reply, "updated"), "put carries version %" PRId64
        " and updated", v1);
    tiers_wire_destroy (&reply);
    is_int (s_do (dealer, "get", "users", "alice", NULL, NULL, NULL, &reply), 200, "get -> 200");
    is (reply ? (char *) reply->body : NULL, "{\"name\":\"Alice\"}", "get returns the body");
    is_int (s_version (reply), v1, "get returns the version");
    tiers_wire_destroy (&reply);
    is_int (s_do (dealer, "put", "users", "alice", "{\"name\":\"Alice B\"}", NULL, NULL, &reply),
            200, "put replace -> 200");
    int64_t v2 = s_version (reply);
    ok (v2 > v1, "replace takes a higher version (%" PRId64 " > %" PRId64 ")", v2, v1);
    tiers_wire_destroy (&reply);

    //  Preconditions: `match`, the tags the document may have
    char tag [64], tag3 [64], stale [160];
    s_do (dealer, "get", "users", "alice", NULL, NULL, NULL, &reply);
    s_tag (reply, tag);
    tiers_wire_destroy (&reply);
    size_t dot = strcspn (tag, ".");
    ok (dot == 12 && strspn (tag, "0123456789abcdef") == 12 && atoll (tag + 13) == v2,
        "the tag is INCARNATION.VERSION (%s)", tag);
    snprintf (stale, sizeof stale, "x %s y", tag);
    is_int (s_do (dealer, "put", "users", "alice", "{\"name\":\"C\"}", "match", stale, &reply),
            200, "put with the current tag in the match list -> 200");
    int64_t v3 = s_version (reply);
    s_tag (reply, tag3);
    tiers_wire_destroy (&reply);
    is_int (s_do (dealer, "put", "users", "alice", "{\"name\":\"stale\"}", "match", tag, &reply),
            412, "put with a stale tag -> 412");
    is_int (s_version (reply), v3, "412 tells the current version");
    ok (streq (s_tag (reply, stale), tag3), "... and tag");
    tiers_wire_destroy (&reply);
    snprintf (stale, sizeof stale, "%.12s.%" PRId64, tag3 [0] == 'f' ? "eeeeeeeeeeee"
              : "ffffffffffff", v3);
    is_int (s_do (dealer, "put", "users", "alice", "{\"name\":\"stale\"}", "match", stale, NULL),
            412, "the current version under another incarnation -> 412");
    is_int (s_do (dealer, "put", "users", "alice", "{\"name\":\"stale\"}", "match", "", NULL),
            412, "an empty match list matches nothing -> 412");
    is_int (s_do (dealer, "put", "users", "alice", "{}", "version", "3", NULL), 400,
            "version is no precondition any more -> 400");
    is_int (s_do (dealer, "put", "users", "alice", "{}", "match", "a \"b", NULL), 400,
            "a quote in a match list -> 400");
    is_int (s_do (dealer, "put", "users", "alice", "{}", "match",
                  "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17", NULL), 400,
            "17 tags in a match list -> 400");
    s_do (dealer, "get", "users", "alice", NULL, NULL, NULL, &reply);
    is (reply ? (char *) reply->body : NULL, "{\"name\":\"C\"}", "stale put left the body unchanged");
    tiers_wire_destroy (&reply);
    is_int (s_do (dealer, "put", "users", "alice", "{}", "create", "1", NULL), 412,
            "create=1 on an existing document -> 412");
    is_int (s_do (dealer, "put", "users", "bob", "{}", "create", "1", NULL), 201,
            "create=1 on a new document -> 201");
    is_int (s_do (dealer, "put", "users", "carol", "{}", "match", tag, NULL), 412,
            "match on a missing document -> 412");

    //  Delete
    is_int (s_do (dealer, "delete", "users", "bob", NULL, "match", tag, NULL), 412,
            "delete with a wrong tag -> 412");
    is_int (s_do (dealer, "delete", "users", "bob", NULL, NULL, NULL, &reply), 204, "delete -> 204");
    int64_t deleted_at = s_version (reply);
    tiers_wire_destroy (&reply);
    is_int (s_do (dealer, "get", "users", "bob", NULL, NULL, NULL, NULL), 404, "get deleted -> 404");
    is_int (s_do (dealer, "delete", "users", "bob", NULL, NULL, NULL, NULL), 404,
            "delete again -> 404");
    is_int (s_do (dealer, "put", "users", "bob", "{\"again\":true}", NULL, NULL, &reply), 201,
            "re-create after delete -> 201");
    ok (s_version (reply) > deleted_at && deleted_at > v3,
        "versions never reused: recreate %" PRId64 " > delete %" PRId64 " > %" PRId64,
        s_version (reply), deleted_at, v3);
    int64_t bob_version = s_version (reply);
    tiers_wire_destroy (&reply);

    //  Refused input
    tiers_counter_t *errors_total = s_counter ("tiers_shard_errors_total", "s0");
    uint64_t errors_before = tiers_counter_value (errors_total);
    is_int (s_do (dealer, "put", "users", "dave", "{\"a\":", NULL, NULL, &reply), 400,
            "invalid JSON -> 400");
    ok (reply && tiers_wire_header (reply, "error"), "with an error header ('%s')",
        reply && tiers_wire_header (reply, "error") ? tiers_wire_header (reply, "error") : "");
    tiers_wire_destroy (&reply);
    is_int (s_do (dealer, "get", "users", "dave", NULL, NULL, NULL, NULL), 404,
            "nothing stored for invalid JSON");
    is_int (s_do (dealer, "put", "users", "dave", "", NULL, NULL, NULL), 400, "empty body -> 400");
    {
        tiers_wire_t *request = s_request ("put", "users", "dave", NULL);
        tiers_wire_set_body (request, "{}\0{}", 5);
        reply = s_call (dealer, request);
        is_int (reply ? reply->status : 0, 400, "body with a NUL -> 400");
        tiers_wire_destroy (&reply);
        request = s_request ("put", "users", "dave", NULL);
        tiers_wire_set_body (request, "\"\xff\xfe\"", 4);
        reply = s_call (dealer, request);
        is_int (reply ? reply->status : 0, 400, "body not UTF-8 -> 400");
        tiers_wire_destroy (&reply);
    }
    char big [2048];
    memset (big, 'x', sizeof big);
    big [0] = '"';
    big [sizeof big - 2] = '"';
    big [sizeof big - 1] = 0;
    is_int (s_do (dealer, "put", "users", "dave", big, NULL, NULL, NULL), 413,
            "body over max_doc (1k) -> 413");
    is_int (s_do (dealer, "get", "users", "dave", NULL, NULL, NULL, NULL), 404,
            "nothing stored for an oversize body");
    is_int (s_do (dealer, NULL, "users", "alice", NULL, NULL, NULL, NULL), 400, "missing op -> 400");
    is_int (s_do (dealer, "frob", "users", "alice", NULL, NULL, NULL, NULL), 400, "unknown op -> 400");
    is_int (s_do (dealer, "get", NULL, "alice", NULL, NULL, NULL, NULL), 400,
            "missing collection -> 400");
    is_int (s_do (dealer, "get", "users", NULL, NULL, NULL, NULL, NULL), 400, "get without id -> 400");
    is_int (s_do (dealer, "put", "users", NULL, "{}", NULL, NULL, NULL), 400, "put without id -> 400");
    is_int (s_do (dealer, "delete", "users", NULL, NULL, NULL, NULL, NULL), 400,
            "delete without id -> 400");
    is_int (s_do (dealer, "put", "users", "alice", "{}", "version", "abc", NULL), 400,
            "version abc -> 400");
    is_int (s_do (dealer, "put", "users", "alice", "{}", "version", "0", NULL), 400,
            "version 0 -> 400");
    is_int (s_do (dealer, "delete", "users", "alice", NULL, "version", "-3", NULL), 400,
            "version -3 -> 400");
    is_int (s_do (dealer, "put", "users", "alice", "{}", "create", "yes", NULL), 400,
            "create yes -> 400");
    is_int (s_do (dealer, "list", "users", NULL, NULL, "limit", "0", NULL), 400, "limit 0 -> 400");
    is_int (s_do (dealer, "list", "users", NULL, NULL, "limit", "1001", NULL), 400,
            "limit 1001 -> 400");
    is_int (s_do (dealer, "list", "users", NULL, NULL, "limit", "10x", NULL), 400,
            "limit 10x -> 400");
    {
        tiers_wire_t *request = s_request ("get", "users", NULL, NULL);
        tiers_wire_set_header (request, "id", "a\0b", 3);
        reply = s_call (dealer, request);
        is_int (reply ? reply->status : 0, 400, "id with a NUL -> 400");
        tiers_wire_destroy (&reply);
    }
    is_int ((long long) (tiers_counter_value (errors_total) - errors_before), 19,
        "refusals are counted in tiers_shard_errors_total");

    //  A garbage frame gets a 400 and the shard carries on.
    zstr_send (dealer, "garbage, not a tiers frame");
    zmq_pollitem_t item = { zsock_resolve (dealer), 0, ZMQ_POLLIN, 0 };
    reply = zmq_poll (&item, 1, 5000) > 0 ? tiers_wire_recv (dealer, NULL, NULL) : NULL;
    is_int (reply ? reply->status : 0, 400, "garbage frame -> 400 reply");
    ok (reply && tiers_wire_header (reply, "error"), "... saying why ('%s')",
        reply && tiers_wire_header (reply, "error") ? tiers_wire_header (reply, "error") : "");
    tiers_wire_destroy (&reply);
    is_int (s_do (dealer, "get", "users", "alice", NULL, NULL, NULL, NULL), 200,
            "the shard still serves after garbage");
    {
        tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_STATUS);
        tiers_wire_set_rid (request, "status-1");
        reply = s_call (dealer, request);
        ok (reply && reply->status == 200 && s_json_valid ((char *) reply->body),
            "STATUS answers JSON: %s", reply ? (char *) reply->body : "");
        tiers_wire_destroy (&reply);
    }

    //  Random combinations of good and bad headers and bodies, pipelined:
    //  every request gets exactly one answer from the contract's statuses.
    {
        static const char *ops [] = { "get", "put", "delete", "list", "", "PUT", NULL };
        static const char *names [] = { "c", "d", "", "\xff\xfe", "a\"b\\", "\x7f", NULL };
        static const char *numbers [] = { "1", "0", "x", "-1", "99999999999999999999",
                                          "1000", "1001", "3", NULL };
        static const char *bodies [] = { "{}", "[1,2]", "\"s\"", "{\"a\":", "nul\x01",
                                         "42", "{\"k\":\"\xc3\x28\"}", NULL };
        char long_name [1100];
        memset (long_name, 'n', sizeof long_name - 1);
        long_name [sizeof long_name - 1] = 0;
        unsigned seed = 42;
        const int count = 2000;
        for (int i = 0; i < count; i++) {
            #define PICK(list) list [rand_r (&seed) % (sizeof list / sizeof list [0])]
            const char *collection = rand_r (&seed) % 20 ? PICK (names) : long_name;
            tiers_wire_t *request = s_request (PICK (ops), collection, PICK (names),
                                               PICK (bodies));
            if (rand_r (&seed) % 3 == 0) {
                const char *number = PICK (numbers);
                if (number)
                    tiers_wire_set_header (request, "match", number, strlen (number));
            }
            if (rand_r (&seed) % 3 == 0) {
                const char *number = PICK (numbers);
                if (number)
                    tiers_wire_set_header (request, "limit", number, strlen (number));
            }
            if (rand_r (&seed) % 4 == 0)
                tiers_wire_set_header (request, "create", "1", 1);
            if (rand_r (&seed) % 5 == 0)
                tiers_wire_set_header (request, "after", "c", 1);
            tiers_wire_send (request, dealer, NULL);
            tiers_wire_destroy (&request);
            #undef PICK
        }
        int answers = 0, unexpected = 0;
        while (answers < count && zmq_poll (&item, 1, 5000) > 0) {
            tiers_wire_t *answer = tiers_wire_recv (dealer, NULL, NULL);
            int code = answer ? answer->status : 0;
            unexpected += code != 200 && code != 201 && code != 204 && code != 400
                       && code != 404 && code != 412 && code != 413;
            answers++;
            tiers_wire_destroy (&answer);
        }
        is_int (answers, count, "%d random requests: every one answered", count);
        is_int (unexpected, 0, "... each with a status of the contract");
        is_int (s_do (dealer, "get", "users", "alice", NULL, NULL, NULL, NULL), 200,
                "the shard still serves");
    }

    //  List paging over 250 documents.
    double seconds;
    is_int (s_burst (dealer, "pages", "doc", 250, 201, &seconds), 250, "250 documents stored");
    zlist_t *ids = zlist_new ();
    char *after = NULL;
    int pages = 0, bad = 0, status;
    bool valid, all_valid = true;
    do {
        char *next = s_page (dealer, "pages", after, "100", ids, &valid, &status);
        pages++;
        all_valid &= valid;
        bad += status != 200;
        free (after);
        after = next;
    } while (after && pages < 10);
    is_int (pages, 3, "limit 100 over 250 documents -> 3 pages, next null on the last");
    ok (all_valid && bad == 0, "every page is valid JSON");
    is_int ((long long) zlist_size (ids), 250, "250 ids returned");
    int index = 0, misplaced = 0;
    for (char *id = (char *) zlist_first (ids); id; id = (char *) zlist_next (ids)) {
        char expected [32];
        snprintf (expected, sizeof expected, "doc%04d", index++);
        misplaced += !streq (id, expected);
    }
    is_int (misplaced, 0, "in id order, no duplicate, no loss");
    s_ids_destroy (&ids);
    ids = zlist_new ();
    free (s_page (dealer, "pages", NULL, NULL, ids, &valid, &status));
    is_int ((long long) zlist_size (ids), 100, "default limit is 100");
    s_ids_destroy (&ids);
    ids = zlist_new ();
    char *next = s_page (dealer, "nothing-here", NULL, NULL, ids, &valid, &status);
    ok (status == 200 && valid && next == NULL && zlist_size (ids) == 0,
        "empty collection -> empty page, next null");
    free (next);
    s_ids_destroy (&ids);

    //  Ids that need escaping come back intact.
    const char *odd [] = { "q\"uote", "back\\slash", "tab\tnew\nline", "\x01" "ctl\x1f",
                           "caf\xc3\xa9", "</script>", NULL };
    int stored = 0;
    for (int i = 0; odd [i]; i++)
        stored += s_do (dealer, "put", "odd", odd [i], "{\"s\":\"\\\"\"}", NULL, NULL, NULL) == 201;
    is_int (stored, 6, "ids with quotes, backslashes, control chars stored");
    ids = zlist_new ();
    next = s_page (dealer, "odd", NULL, NULL, ids, &valid, &status);
    ok (valid, "the list page with odd ids is valid JSON");
    int found = 0;
    for (int i = 0; odd [i]; i++)
        for (char *id = (char *) zlist_first (ids); id; id = (char *) zlist_next (ids))
            found += streq (id, odd [i]);
    is_int (found, 6, "every odd id comes back exactly");
    free (next);
    s_ids_destroy (&ids);

    //  Group commit: 200 puts at once.
    tiers_counter_t *commits = s_counter ("tiers_shard_commits_total", "s0");
    uint64_t commits_before = tiers_counter_value (commits);
    is_int (s_burst (dealer, "burst", "b", 200, 201, &seconds), 200,
            "200 puts fired at once: all acknowledged 201");
    uint64_t used = tiers_counter_value (commits) - commits_before;
    ok (used < 200, "... in %" PRIu64 " commits (group commit)", used);
    diag ("s0 (batch 256): 200 pipelined puts in %.1f ms = %.0f puts/s, %" PRIu64 " commits",
          seconds * 1000, 200 / seconds, used);

    zsock_t *dealer1 = s_dealer ("inproc://s1");
    tiers_counter_t *commits1 = s_counter ("tiers_shard_commits_total", "s1");
    commits_before = tiers_counter_value (commits1);
    double seconds1;
    is_int (s_burst (dealer1, "burst", "b", 200, 201, &seconds1), 200,
            "s1 (batch 1): 200 puts acknowledged");
    is_int ((long long) (tiers_counter_value (commits1) - commits_before), 200,
            "... in 200 commits");
    diag ("s1 (batch 1): 200 pipelined puts in %.1f ms = %.0f puts/s (%.1fx slower)",
          seconds1 * 1000, 200 / seconds1, seconds1 / seconds);
    int64_t started = tiers_clock_us ();
    int sequential = 0;
    for (int i = 0; i < 100; i++) {
        char id [32];
        snprintf (id, sizeof id, "seq%04d", i);
        sequential += s_do (dealer, "put", "seq", id, "{}", NULL, NULL, NULL) == 201;
    }
    double seconds_seq = (tiers_clock_us () - started) / 1e6;
    is_int (sequential, 100, "100 sequential puts acknowledged");
    diag ("s0: one put at a time: %.0f puts/s (%.2f ms each)",
          100 / seconds_seq, seconds_seq * 10);
    zsock_destroy (&dealer1);

    int first_rid = s_rid + 1;
    //  Acknowledged means durable: stop in the middle of a burst; every
    //  write that was acknowledged must be there after the restart.
    const int burst = 5000;     //  ~20 commits: the stop lands among them
    for (int i = 0; i < burst; i++) {
        char id [32];
        snprintf (id, sizeof id, "k%04d", i);
        tiers_wire_t *request = s_request ("put", "stop", id, "{\"x\":1}");
        tiers_wire_send (request, dealer, NULL);
        tiers_wire_destroy (&request);
    }
    //  Wait for the first acknowledgement so a commit is in progress.
    zlist_t *acked = zlist_new ();
    zlist_autofree (acked);
    int refused = 0;
    if (zmq_poll (&item, 1, 5000) > 0) {
        tiers_wire_t *first = tiers_wire_recv (dealer, NULL, NULL);
        if (first && first->status == 201)
            zlist_append (acked, first->rid);
        tiers_wire_destroy (&first);
    }
    started = tiers_clock_us ();
    tiers_node_destroy (&node);
    double stop_ms = (tiers_clock_us () - started) / 1e3;
    diag ("stopping the node during a %d-put burst took %.1f ms", burst, stop_ms);
    ok (stop_ms < 5000, "node stops promptly while writes are queued (< 5 s)");
    //  Collect whatever answers were delivered before the shard stopped.
    //  Replies carry the rid; map rid -> id through the request order.
    int answered = 0;
    while (zmq_poll (&item, 1, 100) > 0) {
        tiers_wire_t *late = tiers_wire_recv (dealer, NULL, NULL);
        if (late && late->status == 201)
            zlist_append (acked, late->rid);
        else
        if (late && late->status == 503)
            refused++;
        answered += late != NULL;
        tiers_wire_destroy (&late);
    }
    diag ("after the stop: %d more answers (%d refused with 503)", answered, refused);
    if (refused > 0 || answered + 1 < burst)
        ok (1, "the stop interrupted the burst (%d of %d answered, %d with 503)",
            answered + 1, burst, refused);
    else
        ok (1, "the stop interrupted the burst # SKIP all %d committed before the stop", burst);
    zsock_destroy (&dealer);

    //  Restart on the same files.
    started = tiers_clock_us ();
    node = s_start (map);
    diag ("restart took %.1f ms", (tiers_clock_us () - started) / 1e3);
    dealer = s_dealer ("inproc://s0");
    is_int (s_do (dealer, "get", "users", "alice", NULL, NULL, NULL, &reply), 200,
            "after restart: alice is there");
    is (reply ? (char *) reply->body : NULL, "{\"name\":\"C\"}", "... with her last body");
    is_int (s_version (reply), v3, "... and version");
    tiers_wire_destroy (&reply);
    is_int (s_do (dealer, "get", "users", "bob", NULL, NULL, NULL, &reply), 200,
            "after restart: bob (re-created) is there");
    is_int (s_version (reply), bob_version, "... with his version");
    tiers_wire_destroy (&reply);
    ids = zlist_new ();
    after = NULL;
    pages = 0;
    do {
        char *cursor = s_page (dealer, "burst", after, "1000", ids, &valid, &status);
        free (after);
        after = cursor;
    } while (after && ++pages < 10);
    is_int ((long long) zlist_size (ids), 200, "after restart: all 200 burst documents");
    s_ids_destroy (&ids);
    //  Every acknowledged write of the interrupted burst survived. The
    //  rids were r<N>, sent in the order of ids k0000..k4999.

    int lost = 0;
    for (char *rid = (char *) zlist_first (acked); rid; rid = (char *) zlist_next (acked)) {
        int n = atoi (rid + 1) - first_rid;
        char id [32];
        snprintf (id, sizeof id, "k%04d", n);
        lost += s_do (dealer, "get", "stop", id, NULL, NULL, NULL, NULL) != 200;
    }
    is_int (lost, 0, "every acknowledged write of the interrupted burst survived (%zu)",
            zlist_size (acked));
    zlist_destroy (&acked);
    is_int (s_do (dealer, "put", "users", "erin", "{}", NULL, NULL, &reply), 201,
            "put after restart -> 201");
    int64_t highest = 0;
    {
        tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_STATUS);
        tiers_wire_set_rid (request, "status-2");
        tiers_wire_t *state = s_call (dealer, request);
        const char *at = state ? strstr ((char *) state->body, "\"sequence\":") : NULL;
        highest = at ? strtoll (at + 11, NULL, 10) : 0;
        tiers_wire_destroy (&state);
    }
    ok (s_version (reply) > bob_version && s_version (reply) == highest,
        "new versions continue above the old ones (%" PRId64 ")", s_version (reply));
    tiers_wire_destroy (&reply);
    zsock_destroy (&dealer);

    started = tiers_clock_us ();
    tiers_node_destroy (&node);
    double idle_stop_ms = (tiers_clock_us () - started) / 1e3;
    //  A clean stop checkpoints the WAL and syncs: seconds on a loaded disk
    //  are no fault, a stop that sits out a timeout is.
    ok (idle_stop_ms < 2000, "idle node stops within 2 s (%.1f ms)", idle_stop_ms);
    char *wal = zsys_sprintf ("%s/s0.db-wal", s_dir);
    ok (!zsys_file_exists (wal), "a clean stop checkpoints and removes the WAL");
    free (wal);

    //  A data path that cannot be a database: the shard fails to start.
    char *bad_dir = zsys_sprintf ("%s/s0.db", s_dir);
    char *bad_text = zsys_sprintf (s_map_format, bad_dir);
    tiers_map_t *bad_map = tiers_map_parse (bad_text, "bad.map", NULL);
    tiers_node_t *bad_node = bad_map ? tiers_node_new (bad_map, NULL) : NULL;
    ok (bad_node && tiers_node_start (bad_node) == -1,
        "a shard whose file cannot be opened fails to start: %s",
        bad_node ? tiers_node_error (bad_node) : "?");
    tiers_node_destroy (&bad_node);
    tiers_map_destroy (&bad_map);
    free (bad_text);
    free (bad_dir);

    s_test_lost_file ();
    s_test_identity ();
    s_test_idempotency ();
    s_test_bad_stored ();
    //  One file, one shard: a second map in this process on the same file
    //  is refused while the first serves it.
    tiers_node_t *first = tiers_node_new (map, NULL);
    tiers_node_t *second = tiers_node_new (map, NULL);
    ok (tiers_node_start (first) == 0, "one file, one shard: the first node serves");
    ok (tiers_node_start (second) == -1 && strstr (tiers_node_error (second),
        "is served by another shard (pid"), "... a second one on the same files is "
        "refused: %s", tiers_node_error (second));
    tiers_node_destroy (&second);
    tiers_node_destroy (&first);

    tiers_map_destroy (&map);
    sqlite3_close (s_json_db);
    s_remove_dir (s_dir);
    return done_testing ();
}
