/*  make-corpus.c — writes the seed corpus for wire_fuzz into a directory.

    Valid messages of every kind are built through the wire.h API and
    encoded; malformed ones come from t/fuzz/wire_cases.h (the same table
    t/unit/wire.c checks). The output is deterministic, so regenerating the
    committed corpus gives the same files. The few fuzz-* files next to them
    are inputs libFuzzer found (minimized with -merge=1); they are kept, not
    generated. To regenerate:

    gcc -std=gnu11 -D_GNU_SOURCE -Iruntime -I. t/fuzz/make-corpus.c \
        runtime/wire.c runtime/poller.c $(pkg-config --cflags --libs libczmq libzmq) \
        -o /tmp/make-corpus && /tmp/make-corpus t/fuzz/corpus
*/
#include "wire.h"
#include "t/fuzz/wire_cases.h"
#include <stdio.h>

static const char *s_dir;

static void
s_write (const char *name, const void *data, size_t size)
{
    char path [1024];
    snprintf (path, sizeof (path), "%s/%s", s_dir, name);
    FILE *file = fopen (path, "wb");
    if (!file || fwrite (data, 1, size, file) != size || fclose (file)) {
        fprintf (stderr, "make-corpus: cannot write %s\n", path);
        exit (1);
    }
}

//  Encodes, checks the encoding decodes, writes it, destroys the message.
static void
s_emit (const char *name, tiers_wire_t **wire_p)
{
    tiers_wire_t *wire = *wire_p;
    size_t size = tiers_wire_size (wire);
    uint8_t *buf = (uint8_t *) malloc (size);
    assert (buf);
    tiers_wire_encode (wire, buf);
    const char *error;
    tiers_wire_t *copy = tiers_wire_decode (buf, size, &error);
    if (!copy) {
        fprintf (stderr, "make-corpus: %s does not decode: %s\n", name, error);
        exit (1);
    }
    tiers_wire_destroy (&copy);
    s_write (name, buf, size);
    free (buf);
    tiers_wire_destroy (wire_p);
}

static tiers_wire_t *
s_request (void)
{
    tiers_wire_t *wire = tiers_wire_new (TIERS_WIRE_REQUEST);
    wire->deadline = 1700000000250;
    wire->trace = 0x0123456789abcdefull;
    tiers_wire_set_rid (wire, "gw0-000001");
    tiers_wire_set_service (wire, "read");
    return wire;
}

int
main (int argc, char *argv [])
{
    if (argc != 2) {
        fprintf (stderr, "usage: make-corpus DIR\n");
        return 1;
    }
    s_dir = argv [1];

    tiers_wire_t *wire = tiers_wire_new (TIERS_WIRE_REQUEST);
    s_emit ("ok-minimal", &wire);

    wire = s_request ();
    tiers_wire_set_header (wire, "method", "GET", 3);
    tiers_wire_set_header (wire, "path", "/v1/users/7", 11);
    tiers_wire_set_header (wire, "if-none-match", "\"3\"", 3);
    s_emit ("ok-request-get", &wire);

    wire = s_request ();
    tiers_wire_set_service (wire, "write");
    tiers_wire_set_header (wire, "method", "PUT", 3);
    tiers_wire_set_header (wire, "path", "/v1/users/7", 11);
    tiers_wire_set_header (wire, "idempotency-key", "", 0);
    const char *json = "{\"name\":\"ada\",\"age\":36}";
    tiers_wire_set_body (wire, json, strlen (json));
    s_emit ("ok-request-put", &wire);

    wire = s_request ();
    tiers_wire_t *reply = tiers_wire_reply_to (wire, 200);
    tiers_wire_set_header (reply, "etag", "\"4\"", 3);
    tiers_wire_set_body (reply, json, strlen (json));
    s_emit ("ok-reply-200", &reply);
    reply = tiers_wire_reply_to (wire, 404);
    s_emit ("ok-reply-404", &reply);
    reply = tiers_wire_reply_to (wire, 503);
    tiers_wire_set_header (reply, "retry-after", "1", 1);
    s_emit ("ok-reply-503", &reply);
    tiers_wire_destroy (&wire);

    wire = tiers_wire_new (TIERS_WIRE_READY);
    tiers_wire_set_service (wire, "read");
    s_emit ("ok-ready", &wire);
    wire = tiers_wire_new (TIERS_WIRE_HEARTBEAT);
    s_emit ("ok-heartbeat", &wire);
    wire = tiers_wire_new (TIERS_WIRE_BYE);
    tiers_wire_set_service (wire, "write");
    s_emit ("ok-bye", &wire);
    wire = tiers_wire_new (TIERS_WIRE_STATUS);
    s_emit ("ok-status", &wire);
    wire = tiers_wire_new (TIERS_WIRE_STATUS);
    wire->status = 200;
    json = "{\"actor\":\"balancer\",\"workers\":3}";
    tiers_wire_set_body (wire, json, strlen (json));
    s_emit ("ok-status-reply", &wire);

    //  Every header slot used
    wire = s_request ();
    int i;
    for (i = 0; i < TIERS_WIRE_MAX_HEADERS; i++) {
        char key [8];
        snprintf (key, sizeof (key), "h%d", i);
        tiers_wire_set_headerf (wire, key, "%d", i * 7);
    }
    s_emit ("ok-max-headers", &wire);

    //  Opaque bytes: NULs and high bytes in a value and the body
    wire = s_request ();
    tiers_wire_set_header (wire, "bin", "\0\x01\xff\x00z", 5);
    tiers_wire_set_body (wire, "\0\0\x80\xfe\0", 5);
    s_emit ("ok-binary", &wire);

    //  Names at their longest, extreme numbers
    wire = tiers_wire_new (TIERS_WIRE_REPLY);
    char name [TIERS_WIRE_MAX_RID + 1];
    memset (name, '~', TIERS_WIRE_MAX_RID);
    name [TIERS_WIRE_MAX_RID] = 0;
    tiers_wire_set_rid (wire, name);
    name [TIERS_WIRE_MAX_SERVICE] = 0;
    tiers_wire_set_service (wire, name);
    name [TIERS_WIRE_MAX_KEY] = 0;
    name [0] = '!';
    tiers_wire_set_header (wire, name, "x", 1);
    wire->status = 65535;
    wire->deadline = -1;
    wire->trace = UINT64_MAX;
    s_emit ("ok-limits", &wire);

    //  A longer value and body (still small)
    wire = s_request ();
    char value [600];
    memset (value, 'v', sizeof (value));
    tiers_wire_set_header (wire, "long", value, sizeof (value));
    tiers_wire_set_body (wire, value, sizeof (value));
    s_emit ("ok-long", &wire);

    size_t c;
    for (c = 0; c < WIRE_CASES; c++) {
        wire_bytes_t bytes = { .size = 0 };
        wire_cases [c].build (&bytes);
        char file [64];
        snprintf (file, sizeof (file), "bad-%s", wire_cases [c].name);
        s_write (file, bytes.data, bytes.size);
    }
    return 0;
}
