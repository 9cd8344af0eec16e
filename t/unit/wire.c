/*  t/unit/wire.c — tests for the wire codec (runtime/wire.c).

    Round trips of every kind and every limit, the setters' limits, the
    malformed cases of t/fuzz/wire_cases.h with their exact errors, a replay
    of the fuzz seed corpus ($top_srcdir/t/fuzz/corpus), 10,000 seeded random
    mutations, and real sockets (PAIR, ROUTER/DEALER over inproc).
*/
#include "wire.h"
#include "t/tap.h"
#include "t/fuzz/wire_cases.h"
#include <dirent.h>

//  --------------------------------------------------------------------------
//  Helpers

static uint8_t *
s_encode (const tiers_wire_t *wire, size_t *size_p)
{
    *size_p = tiers_wire_size (wire);
    uint8_t *buf = (uint8_t *) malloc (*size_p);
    assert (buf);
    size_t written = tiers_wire_encode (wire, buf);
    assert (written == *size_p);
    return buf;
}

static bool
s_equal (const tiers_wire_t *a, const tiers_wire_t *b)
{
    if (a->kind != b->kind || a->status != b->status
    ||  a->deadline != b->deadline || a->trace != b->trace
    ||  strcmp (a->rid, b->rid) || strcmp (a->service, b->service)
    ||  a->header_count != b->header_count || a->body_size != b->body_size
    ||  memcmp (a->body, b->body, a->body_size) || b->body [b->body_size])
        return false;
    size_t i;
    for (i = 0; i < a->header_count; i++) {
        const tiers_wire_header_t *x = &a->headers [i], *y = &b->headers [i];
        if (strcmp (x->key, y->key) || x->value_size != y->value_size
        ||  memcmp (x->value, y->value, x->value_size)
        ||  y->value [y->value_size])
            return false;
    }
    return true;
}

//  Encode, decode, compare fields, re-encode and compare bytes.
static bool
s_round_trip (const tiers_wire_t *wire)
{
    size_t size, size2;
    uint8_t *buf = s_encode (wire, &size);
    const char *error = "unset";
    tiers_wire_t *copy = tiers_wire_decode (buf, size, &error);
    bool pass = copy != NULL && error == NULL && s_equal (wire, copy);
    if (!copy)
        diag ("decode failed: %s", error);
    if (copy) {
        uint8_t *buf2 = s_encode (copy, &size2);
        pass = pass && size2 == size && memcmp (buf, buf2, size) == 0;
        free (buf2);
    }
    tiers_wire_destroy (&copy);
    free (buf);
    return pass;
}

//  True when bytes either fail cleanly (NULL + error) or decode and
//  re-encode to exactly the same bytes.
static bool
s_clean (const uint8_t *data, size_t size, bool *decoded)
{
    const char *error = NULL;
    tiers_wire_t *wire = tiers_wire_decode (data, size, &error);
    *decoded = wire != NULL;
    //  peek must give the same verdict and the same fixed fields
    tiers_wire_t view;
    const char *peeked = tiers_wire_peek (data, size, &view);
    if ((peeked == NULL) != (wire != NULL) || (!wire && !streq (peeked, error)))
        return false;
    if (wire && (view.kind != wire->kind || view.status != wire->status
              || view.deadline != wire->deadline || view.trace != wire->trace
              || !streq (view.rid, wire->rid) || !streq (view.service, wire->service)
              || view.header_count != wire->header_count
              || view.body_size != wire->body_size || view.body != NULL)) {
        tiers_wire_destroy (&wire);
        return false;
    }
    if (!wire)
        return error != NULL;
    size_t size2;
    uint8_t *buf = s_encode (wire, &size2);
    bool pass = error == NULL && size2 == size && memcmp (buf, data, size) == 0;
    free (buf);
    tiers_wire_destroy (&wire);
    return pass;
}

static tiers_wire_t *
s_request (void)
{
    tiers_wire_t *wire = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_rid (wire, "gw0-1");
    tiers_wire_set_service (wire, "read");
    tiers_wire_set_header (wire, "path", "/v1/users/7", 11);
    tiers_wire_set_body (wire, "{\"a\":1}", 7);
    wire->deadline = 1700000000123;
    wire->trace = 0xfeedfacecafebeefull;
    return wire;
}

static char *
s_repeat (char c, size_t n)
{
    char *s = (char *) malloc (n + 1);
    assert (s);
    memset (s, c, n);
    s [n] = 0;
    return s;
}

//  --------------------------------------------------------------------------

static void
test_basics (void)
{
    is (tiers_wire_kind_name (TIERS_WIRE_REQUEST), "request", "kind name request");
    is (tiers_wire_kind_name (TIERS_WIRE_STATUS), "status", "kind name status");
    is (tiers_wire_kind_name (0), "?", "kind name 0");
    is (tiers_wire_kind_name (7), "?", "kind name 7");
    int64_t now = tiers_wire_now ();
    ok (now > 1600000000000LL && now < 4000000000000LL, "now is ms since epoch");

    tiers_wire_t *wire = tiers_wire_new (TIERS_WIRE_HEARTBEAT);
    ok (wire->body && wire->body_size == 0 && wire->body [0] == 0,
        "new message has an empty NUL-terminated body");
    is_int (tiers_wire_size (wire), TIERS_WIRE_FIXED + 6, "minimal size");
    tiers_wire_destroy (&wire);
    ok (wire == NULL, "destroy nulls the pointer");
    tiers_wire_destroy (&wire);
    ok (1, "destroy is safe on NULL");
}

static void
test_round_trips (void)
{
    int kind;
    for (kind = 1; kind <= TIERS_WIRE_KIND_MAX; kind++) {
        tiers_wire_t *wire = tiers_wire_new (kind);
        ok (s_round_trip (wire), "empty %s round trip",
            tiers_wire_kind_name (kind));
        tiers_wire_set_rid (wire, "rid-1");
        tiers_wire_set_service (wire, "svc");
        tiers_wire_set_header (wire, "k", "v", 1);
        tiers_wire_set_body (wire, "body", 4);
        wire->status = (uint16_t) (100 * kind);
        wire->deadline = 1700000000000 + kind;
        wire->trace = (uint64_t) kind << 40;
        ok (s_round_trip (wire), "full %s round trip",
            tiers_wire_kind_name (kind));
        tiers_wire_destroy (&wire);
    }

    //  Largest body
    tiers_wire_t *wire = s_request ();
    uint8_t *body = (uint8_t *) malloc (TIERS_WIRE_MAX_BODY + 1);
    assert (body);
    size_t i;
    for (i = 0; i < TIERS_WIRE_MAX_BODY; i++)
        body [i] = (uint8_t) (i * 31 + (i >> 8));
    is_int (tiers_wire_take_body (wire, body, TIERS_WIRE_MAX_BODY), 0,
            "take a body of TIERS_WIRE_MAX_BODY bytes");
    ok (wire->body [TIERS_WIRE_MAX_BODY] == 0, "take_body terminates the body");
    ok (s_round_trip (wire), "max body round trip");
    tiers_wire_destroy (&wire);

    //  Every header slot, each value at its limit, binary bytes
    wire = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_rid (wire, "gw0-2");
    char *value = s_repeat ('x', TIERS_WIRE_MAX_VALUE);
    int rc = 0;
    for (i = 0; i < TIERS_WIRE_MAX_HEADERS; i++) {
        char key [TIERS_WIRE_MAX_KEY + 1];
        snprintf (key, sizeof (key), "key-%zu", i);
        value [0] = (char) i;       //  0 first: a NUL in the value
        value [100] = 0;
        value [200] = (char) 0xff;
        rc |= tiers_wire_set_header (wire, key, value, TIERS_WIRE_MAX_VALUE);
    }
    ok (rc == 0 && wire->header_count == TIERS_WIRE_MAX_HEADERS,
        "%d headers of %d bytes set", TIERS_WIRE_MAX_HEADERS,
        TIERS_WIRE_MAX_VALUE);
    tiers_wire_set_body (wire, "\0a\0b\0", 5);
    ok (s_round_trip (wire), "max headers, binary values, NULs in body");
    const char *got = tiers_wire_header (wire, "key-0");
    ok (got && got [0] == 0 && got [1] == 'x'
        && wire->headers [0].value_size == TIERS_WIRE_MAX_VALUE,
        "binary header value kept whole");
    free (value);
    tiers_wire_destroy (&wire);

    //  Longest names, extreme numbers, empty header value
    wire = tiers_wire_new (TIERS_WIRE_REPLY);
    char *name = s_repeat ('~', TIERS_WIRE_MAX_RID);
    ok (tiers_wire_set_rid (wire, name) == 0, "rid of %d bytes", TIERS_WIRE_MAX_RID);
    name [TIERS_WIRE_MAX_SERVICE] = 0;
    ok (tiers_wire_set_service (wire, name) == 0, "service of %d bytes",
        TIERS_WIRE_MAX_SERVICE);
    name [TIERS_WIRE_MAX_KEY] = 0;
    ok (tiers_wire_set_header (wire, name, "", 0) == 0, "key of %d bytes",
        TIERS_WIRE_MAX_KEY);
    ok (tiers_wire_set_header (wire, "!", NULL, 0) == 0, "NULL empty value");
    is (tiers_wire_header (wire, "!"), "", "empty value reads as \"\"");
    wire->status = UINT16_MAX;
    wire->deadline = INT64_MIN;
    wire->trace = UINT64_MAX;
    ok (s_round_trip (wire), "limits round trip");
    free (name);
    tiers_wire_destroy (&wire);
}

static void
test_setters (void)
{
    tiers_wire_t *wire = s_request ();
    size_t size, size2;
    uint8_t *before = s_encode (wire, &size);

    char *rid = s_repeat ('r', TIERS_WIRE_MAX_RID + 1);
    is_int (tiers_wire_set_rid (wire, rid), -1, "rid too long");
    is_int (tiers_wire_set_rid (wire, "a b"), -1, "rid with a space");
    is_int (tiers_wire_set_rid (wire, "a\tb"), -1, "rid with a tab");
    is_int (tiers_wire_set_rid (wire, "caf\xc3\xa9"), -1, "rid with UTF-8");
    is_int (tiers_wire_set_rid (wire, NULL), -1, "NULL rid");
    char *service = s_repeat ('s', TIERS_WIRE_MAX_SERVICE + 1);
    is_int (tiers_wire_set_service (wire, service), -1, "service too long");
    is_int (tiers_wire_set_service (wire, "x\x7f"), -1, "service with DEL");
    char *key = s_repeat ('k', TIERS_WIRE_MAX_KEY + 1);
    is_int (tiers_wire_set_header (wire, key, "v", 1), -1, "key too long");
    is_int (tiers_wire_set_header (wire, "", "v", 1), -1, "empty key");
    is_int (tiers_wire_set_header (wire, NULL, "v", 1), -1, "NULL key");
    is_int (tiers_wire_set_header (wire, "a:b c", "v", 1), -1, "key with space");
    char *value = s_repeat ('v', TIERS_WIRE_MAX_VALUE + 1);
    is_int (tiers_wire_set_header (wire, "k", value, TIERS_WIRE_MAX_VALUE + 1),
            -1, "value too long");
    is_int (tiers_wire_set_header (wire, "path", value, TIERS_WIRE_MAX_VALUE + 1),
            -1, "replacing with a value too long");
    is_int (tiers_wire_set_header (wire, "k", NULL, 3), -1, "NULL value, size 3");
    is_int (tiers_wire_set_headerf (wire, "k", "%s", value), -1,
            "headerf too long");
    is_int (tiers_wire_set_body (wire, "x", TIERS_WIRE_MAX_BODY + 1), -1,
            "body too long");
    uint8_t *mine = (uint8_t *) malloc (4);
    is_int (tiers_wire_take_body (wire, mine, TIERS_WIRE_MAX_BODY + 1), -1,
            "take body too long (caller keeps it)");
    free (mine);
    is (tiers_wire_header (wire, "missing"), NULL, "missing header is NULL");

    uint8_t *after = s_encode (wire, &size2);
    ok (size == size2 && memcmp (before, after, size) == 0,
        "failed setters left the message unchanged");
    free (after);

    //  Header table full: a new key fails, replacing still works
    size_t i;
    for (i = 0; wire->header_count < TIERS_WIRE_MAX_HEADERS; i++) {
        char name [16];
        snprintf (name, sizeof (name), "h%zu", i);
        tiers_wire_set_headerf (wire, name, "%zu", i);
    }
    free (before);
    before = s_encode (wire, &size);
    is_int (tiers_wire_set_header (wire, "one-more", "v", 1), -1,
            "17th header refused");
    is_int (tiers_wire_set_headerf (wire, "one-more", "%d", 1), -1,
            "17th header refused (headerf)");
    after = s_encode (wire, &size2);
    ok (size == size2 && memcmp (before, after, size) == 0,
        "full table unchanged");
    free (after);
    is_int (tiers_wire_set_header (wire, "path", "/v1/x", 5), 0,
            "replace works on a full table");
    is (tiers_wire_header (wire, "path"), "/v1/x", "replaced value");
    is_int (wire->header_count, TIERS_WIRE_MAX_HEADERS, "count unchanged by replace");
    is_int (tiers_wire_set_headerf (wire, "path", "/v1/%s/%d", "users", 42), 0,
            "headerf replace");
    is (tiers_wire_header (wire, "path"), "/v1/users/42", "headerf value");
    ok (strcmp (wire->headers [0].key, "path") == 0,
        "replace keeps the header's position");
    is (tiers_wire_header (wire, "PATH"), NULL, "keys are case-sensitive");
    //  Replacing a value with (part of) itself
    const char *old = tiers_wire_header (wire, "path");
    is_int (tiers_wire_set_header (wire, "path", old + 4, strlen (old + 4)), 0,
            "replace with a slice of the old value");
    is (tiers_wire_header (wire, "path"), "users/42", "self-slice value");
    is_int (tiers_wire_set_body (wire, wire->body + 1, wire->body_size - 1), 0,
            "set body from a slice of the body");
    is ((char *) wire->body, "\"a\":1}", "self-slice body");
    ok (s_round_trip (wire), "full table round trip");

    free (before);
    free (rid);
    free (service);
    free (key);
    free (value);
    tiers_wire_destroy (&wire);
}

static void
test_peek (void)
{
    tiers_wire_t *request = s_request ();
    size_t size;
    uint8_t *buf = s_encode (request, &size);
    tiers_wire_t view;
    ok (tiers_wire_peek (buf, size, &view) == NULL, "peek: a good request passes");
    is (view.rid, request->rid, "peek: rid");
    is (view.service, request->service, "peek: service");
    ok (view.deadline == request->deadline && view.trace == request->trace,
        "peek: deadline and trace");
    is_int ((int) view.header_count, (int) request->header_count, "peek: header count");
    ok (view.headers [0].value == NULL && view.body == NULL, "peek: nothing copied");
    is_int ((int) view.body_size, (int) request->body_size, "peek: body size");
    ok (tiers_wire_peek (NULL, 0, &view) != NULL, "peek: NULL data rejected");

    tiers_wire_set_deadline_at (buf, size, 1234567890123LL);
    const char *error = NULL;
    tiers_wire_t *patched = tiers_wire_decode (buf, size, &error);
    ok (patched && patched->deadline == 1234567890123LL, "deadline rewritten in place");
    request->deadline = 1234567890123LL;
    ok (patched && s_equal (request, patched), "and nothing else changed");
    tiers_wire_destroy (&patched);
    tiers_wire_destroy (&request);
    free (buf);
}

static void
test_reply_to (void)
{
    tiers_wire_t *request = s_request ();
    tiers_wire_t *reply = tiers_wire_reply_to (request, 404);
    is_int (reply->kind, TIERS_WIRE_REPLY, "reply kind");
    is_int (reply->status, 404, "reply status");
    is (reply->rid, "gw0-1", "reply rid");
    is (reply->service, "read", "reply service");
    ok (reply->trace == request->trace, "reply trace");
    ok (reply->deadline == request->deadline, "reply deadline");
    is_int (reply->header_count, 0, "reply has no headers");
    is_int (reply->body_size, 0, "reply has no body");
    ok (s_round_trip (reply), "reply round trip");
    tiers_wire_destroy (&reply);
    tiers_wire_destroy (&request);
}

static void
test_malformed (void)
{
    size_t c;
    for (c = 0; c < WIRE_CASES; c++) {
        wire_bytes_t bytes = { .size = 0 };
        wire_cases [c].build (&bytes);
        //  A heap copy of the exact size, so ASan sees any overread
        uint8_t *data = (uint8_t *) malloc (bytes.size ? bytes.size : 1);
        memcpy (data, bytes.data, bytes.size);
        const char *error = NULL;
        tiers_wire_t *wire = tiers_wire_decode (data, bytes.size, &error);
        ok (wire == NULL, "%s: rejected", wire_cases [c].name);
        is (error, wire_cases [c].error, "%s: '%s'", wire_cases [c].name,
            wire_cases [c].error);
        tiers_wire_t view;
        const char *peeked = tiers_wire_peek (data, bytes.size, &view);
        is (peeked, wire_cases [c].error, "%s: peek says the same", wire_cases [c].name);
        tiers_wire_destroy (&wire);
        free (data);
    }
    const char *error = NULL;
    ok (tiers_wire_decode (NULL, 0, &error) == NULL, "NULL data rejected");
    is (error, "too short", "NULL data: too short");
    wire_bytes_t bytes = { .size = 0 };
    wb_valid (&bytes);
    ok (tiers_wire_decode (bytes.data, bytes.size - 1, NULL) == NULL,
        "NULL error pointer is allowed");
    tiers_wire_t *wire = tiers_wire_decode (bytes.data, bytes.size, &error);
    ok (wire && error == NULL, "the cases' valid base decodes, error NULL");
    is (wire ? tiers_wire_header (wire, "path") : NULL, "/v1/users/7",
        "base header");
    tiers_wire_destroy (&wire);

    //  Every proper prefix of a valid encoding fails cleanly
    tiers_wire_t *full = s_request ();
    size_t size, cut;
    uint8_t *buf = s_encode (full, &size);
    int rejected = 0;
    for (cut = 0; cut < size; cut++) {
        uint8_t *prefix = (uint8_t *) malloc (cut ? cut : 1);
        memcpy (prefix, buf, cut);
        wire = tiers_wire_decode (prefix, cut, &error);
        if (!wire && error
        && (streq (error, "too short") || streq (error, "truncated")))
            rejected++;
        tiers_wire_destroy (&wire);
        free (prefix);
    }
    is_int (rejected, (long long) size, "all %zu prefixes: too short/truncated",
            size);
    free (buf);
    tiers_wire_destroy (&full);
}

static void
test_corpus (void)
{
    const char *top = getenv ("top_srcdir");
    char path [1024];
    snprintf (path, sizeof (path), "%s/t/fuzz/corpus", top ? top : ".");
    DIR *dir = opendir (path);
    ok (dir != NULL, "corpus directory %s", path);
    if (!dir)
        return;
    int files = 0, decoded = 0, clean = 0, wrong = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (entry->d_name [0] == '.')
            continue;
        char file [2048];
        snprintf (file, sizeof (file), "%s/%s", path, entry->d_name);
        zfile_t *handle = zfile_new (NULL, file);
        if (!handle || zfile_is_directory (handle) || zfile_input (handle)) {
            zfile_destroy (&handle);
            continue;
        }
        size_t size = (size_t) zfile_cursize (handle);
        zchunk_t *chunk = zfile_read (handle, size, 0);
        files++;
        bool did;
        if (chunk && zchunk_size (chunk) == size) {
            //  Exact-size heap copy, so ASan catches overreads
            uint8_t *data = (uint8_t *) malloc (size ? size : 1);
            memcpy (data, zchunk_data (chunk), size);
            if (s_clean (data, size, &did))
                clean++;
            else
                diag ("corpus file %s misbehaves", entry->d_name);
            decoded += did;
            if (strncmp (entry->d_name, "ok-", 3) == 0 && !did) {
                diag ("corpus file %s should decode", entry->d_name);
                wrong++;
            }
            if (strncmp (entry->d_name, "bad-", 4) == 0 && did) {
                diag ("corpus file %s should not decode", entry->d_name);
                wrong++;
            }
            free (data);
        }
        zchunk_destroy (&chunk);
        zfile_close (handle);
        zfile_destroy (&handle);
    }
    closedir (dir);
    ok (files >= 20, "corpus has %d files", files);
    is_int (clean, files, "every corpus file decodes canonically or fails cleanly");
    ok (decoded > 0 && decoded < files, "%d of %d corpus files decode",
        decoded, files);
    is_int (wrong, 0, "every ok-* corpus file decodes and no bad-* one does");
}

static uint64_t s_seed = 0x9e3779b97f4a7c15ull;

static uint32_t
s_random (void)
{
    //  xorshift64*: seeded, so a failure reproduces
    s_seed ^= s_seed >> 12;
    s_seed ^= s_seed << 25;
    s_seed ^= s_seed >> 27;
    return (uint32_t) ((s_seed * 0x2545f4914f6cdd1dull) >> 32);
}

static void
test_mutations (void)
{
    //  Bases: a few valid encodings of different shapes
    tiers_wire_t *bases [4];
    bases [0] = s_request ();
    bases [1] = tiers_wire_reply_to (bases [0], 200);
    tiers_wire_set_body (bases [1], "{\"ok\":true}", 11);
    bases [2] = tiers_wire_new (TIERS_WIRE_READY);
    tiers_wire_set_service (bases [2], "write");
    bases [3] = s_request ();
    int h;
    for (h = 0; h < TIERS_WIRE_MAX_HEADERS; h++) {
        char key [8];
        snprintf (key, sizeof (key), "h%d", h);
        tiers_wire_set_headerf (bases [3], key, "%d", h);
    }
    int round, failures = 0, decoded = 0;
    for (round = 0; round < 10000; round++) {
        size_t size;
        uint8_t *base = s_encode (bases [round % 4], &size);
        uint8_t *data = (uint8_t *) malloc (size + 16);
        memcpy (data, base, size);
        int edits = 1 + s_random () % 4;
        while (edits--) {
            size_t at = size ? s_random () % size : 0;
            switch (s_random () % 6) {
                case 0:     //  flip a bit
                    if (size)
                        data [at] ^= (uint8_t) (1 << (s_random () % 8));
                    break;
                case 1:     //  random byte
                    if (size)
                        data [at] = (uint8_t) s_random ();
                    break;
                case 2:     //  truncate
                    size = at;
                    break;
                case 3:     //  append a byte (at most 4 edits: room for 16)
                    data [size++] = (uint8_t) s_random ();
                    break;
                case 4:     //  small +-1 change (lengths are off by one)
                    if (size)
                        data [at] += (s_random () & 1) ? 1 : 0xff;
                    break;
                case 5:     //  a header count, kind or length byte changed
                    if (size > 22)
                        data [2 + s_random () % 21] = (uint8_t) s_random ();
                    break;
            }
        }
        //  Exact-size copy, so any overread is an ASan report
        uint8_t *exact = (uint8_t *) malloc (size ? size : 1);
        memcpy (exact, data, size);
        bool did;
        if (!s_clean (exact, size, &did))
            failures++;
        decoded += did;
        free (exact);
        free (data);
        free (base);
    }
    is_int (failures, 0, "10000 mutations: all decode canonically or fail cleanly");
    diag ("%d of 10000 mutations still decoded", decoded);
    int b;
    for (b = 0; b < 4; b++)
        tiers_wire_destroy (&bases [b]);
}

static void
test_sockets (void)
{
    //  PAIR: no envelope
    zsock_t *left = zsock_new_pair ("@inproc://wire-pair");
    zsock_t *right = zsock_new_pair (">inproc://wire-pair");
    assert (left && right);
    zsock_set_rcvtimeo (left, 2000);
    zsock_set_rcvtimeo (right, 2000);
    tiers_wire_t *request = s_request ();
    is_int (tiers_wire_send (request, right, NULL), 0, "pair: send");
    zmsg_t *envelope = (zmsg_t *) 1;
    const char *error = "unset";
    tiers_wire_t *got = tiers_wire_recv (left, &envelope, &error);
    ok (got && s_equal (request, got), "pair: received the same message");
    ok (error == NULL, "pair: no error");
    ok (envelope == NULL, "pair: no envelope");
    tiers_wire_destroy (&got);

    //  Largest body through a real socket
    uint8_t *body = (uint8_t *) malloc (TIERS_WIRE_MAX_BODY + 1);
    memset (body, 0xab, TIERS_WIRE_MAX_BODY);
    tiers_wire_take_body (request, body, TIERS_WIRE_MAX_BODY);
    is_int (tiers_wire_send (request, right, NULL), 0, "pair: send max body");
    got = tiers_wire_recv (left, NULL, &error);
    ok (got && s_equal (request, got), "pair: max body received");
    tiers_wire_destroy (&got);
    tiers_wire_set_body (request, "{}", 2);

    zsock_set_rcvtimeo (left, 10);
    got = tiers_wire_recv (left, &envelope, &error);
    ok (got == NULL && envelope == NULL, "pair: timeout gives NULL");
    is (error, "interrupted", "pair: timeout error");
    zsock_destroy (&left);
    zsock_destroy (&right);

    //  ROUTER / DEALER: the envelope comes back and routes the reply
    zsock_t *router = zsock_new_router ("@inproc://wire-router");
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (router && dealer);
    zsock_set_identity (dealer, "caller-1");
    zsock_connect (dealer, "inproc://wire-router");
    zsock_set_rcvtimeo (router, 2000);
    zsock_set_rcvtimeo (dealer, 2000);

    is_int (tiers_wire_send (request, dealer, NULL), 0, "dealer: send");
    got = tiers_wire_recv (router, &envelope, &error);
    ok (got && s_equal (request, got), "router: received the request");
    ok (envelope && zmsg_size (envelope) == 1, "router: one envelope frame");
    char *identity = envelope ? zframe_strdup (zmsg_first (envelope)) : NULL;
    is (identity, "caller-1", "router: envelope is the dealer's identity");
    zstr_free (&identity);

    tiers_wire_t *reply = tiers_wire_reply_to (got, 200);
    tiers_wire_set_body (reply, "{\"ok\":1}", 8);
    is_int (tiers_wire_send (reply, router, envelope), 0, "router: reply");
    ok (envelope && zmsg_size (envelope) == 1, "send did not consume the envelope");
    is_int (tiers_wire_send (reply, router, envelope), 0, "router: reply again");
    zmsg_destroy (&envelope);
    tiers_wire_t *answer = tiers_wire_recv (dealer, &envelope, &error);
    ok (answer && s_equal (reply, answer), "dealer: got the reply");
    ok (envelope == NULL, "dealer: no envelope");
    tiers_wire_destroy (&answer);
    answer = tiers_wire_recv (dealer, NULL, &error);
    ok (answer && s_equal (reply, answer), "dealer: got the second reply");
    tiers_wire_destroy (&answer);
    tiers_wire_destroy (&reply);
    tiers_wire_destroy (&got);

    //  Garbage through a real socket: NULL, the error, and the envelope
    zstr_send (dealer, "GET /v1/users/7 HTTP/1.1\r\nHost: x\r\n\r\n");
    got = tiers_wire_recv (router, &envelope, &error);
    ok (got == NULL, "router: garbage rejected");
    is (error, "bad magic", "router: garbage error");
    ok (envelope && zmsg_size (envelope) == 1,
        "router: envelope returned with the error");
    tiers_wire_t *problem = tiers_wire_new (TIERS_WIRE_REPLY);
    problem->status = 400;
    tiers_wire_set_header (problem, "error", error, strlen (error));
    is_int (tiers_wire_send (problem, router, envelope), 0,
            "router: error reply to the sender");
    zmsg_destroy (&envelope);
    answer = tiers_wire_recv (dealer, NULL, &error);
    ok (answer && answer->status == 400, "dealer: got the error reply");
    is (answer ? tiers_wire_header (answer, "error") : NULL, "bad magic",
        "dealer: error header");
    tiers_wire_destroy (&answer);
    tiers_wire_destroy (&problem);

    //  Empty frame, and garbage with envelope_p NULL (dropped, no leak)
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, NULL, 0);
    zmsg_send (&msg, dealer);
    got = tiers_wire_recv (router, &envelope, &error);
    ok (got == NULL && envelope != NULL, "router: empty frame rejected");
    is (error, "too short", "router: empty frame error");
    zmsg_destroy (&envelope);
    zstr_send (dealer, "junk");
    got = tiers_wire_recv (router, NULL, &error);
    ok (got == NULL, "router: garbage with no envelope pointer");

    //  A multi-frame envelope (as a proxy adds) round-trips in order
    zmsg_t *hops = zmsg_new ();
    zmsg_addstr (hops, "hop-a");
    zmsg_addstr (hops, "");
    is_int (tiers_wire_send (request, dealer, hops), 0, "dealer: send with envelope");
    got = tiers_wire_recv (router, &envelope, &error);
    ok (got && envelope && zmsg_size (envelope) == 3,
        "router: identity plus two envelope frames");
    if (envelope) {
        char *first = zmsg_popstr (envelope);
        char *second = zmsg_popstr (envelope);
        char *third = zmsg_popstr (envelope);
        ok (streq (first, "caller-1") && streq (second, "hop-a")
            && streq (third, ""), "router: envelope frames in order");
        zstr_free (&first);
        zstr_free (&second);
        zstr_free (&third);
    }
    zmsg_destroy (&envelope);
    zmsg_destroy (&hops);
    tiers_wire_destroy (&got);

    tiers_wire_destroy (&request);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}

int
main (void)
{
    test_basics ();
    test_round_trips ();
    test_setters ();
    test_reply_to ();
    test_peek ();
    test_malformed ();
    test_corpus ();
    test_mutations ();
    test_sockets ();
    return done_testing ();
}
