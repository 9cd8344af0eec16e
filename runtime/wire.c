/*  wire.c — the tiers message codec (see wire.h for the layout).

    The one idea: bytes from a socket are hostile, so the decoder reads them
    only through a cursor (s_reader_t) that knows how many bytes remain.
    Every field is taken with s_take(), which refuses to hand out more bytes
    than are present, and every length is checked against its limit before
    anything is allocated. Integers are assembled byte by byte (big-endian),
    never through casts of unaligned pointers. The format is canonical: a
    message decodes only if re-encoding it gives back exactly the same bytes,
    which is what the fuzz target (t/fuzz/wire_fuzz.c) checks.

    The setters enforce the same limits as the decoder, so anything a program
    can build, tiers_wire_encode() can write and tiers_wire_decode() accepts.
*/
#include "wire.h"
#include "poller.h"
#include <string.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

//  --------------------------------------------------------------------------
//  Big-endian helpers

static void
s_put_u16 (uint8_t *p, uint16_t v)
{
    p [0] = (uint8_t) (v >> 8);
    p [1] = (uint8_t) v;
}

static void
s_put_u32 (uint8_t *p, uint32_t v)
{
    p [0] = (uint8_t) (v >> 24);
    p [1] = (uint8_t) (v >> 16);
    p [2] = (uint8_t) (v >> 8);
    p [3] = (uint8_t) v;
}

static void
s_put_u64 (uint8_t *p, uint64_t v)
{
    s_put_u32 (p, (uint32_t) (v >> 32));
    s_put_u32 (p + 4, (uint32_t) v);
}

static uint16_t
s_get_u16 (const uint8_t *p)
{
    return (uint16_t) ((uint16_t) p [0] << 8 | p [1]);
}

static uint32_t
s_get_u32 (const uint8_t *p)
{
    return (uint32_t) p [0] << 24 | (uint32_t) p [1] << 16
         | (uint32_t) p [2] << 8  | (uint32_t) p [3];
}

static uint64_t
s_get_u64 (const uint8_t *p)
{
    return (uint64_t) s_get_u32 (p) << 32 | s_get_u32 (p + 4);
}

//  --------------------------------------------------------------------------
//  The bounded cursor the decoder reads through

typedef struct {
    const uint8_t *data;
    size_t left;                //  bytes not yet taken
} s_reader_t;

//  Returns a pointer to the next `size` bytes and advances, or NULL when
//  fewer than `size` bytes remain (nothing is consumed then).
static const uint8_t *
s_take (s_reader_t *reader, size_t size)
{
    if (size > reader->left)
        return NULL;
    const uint8_t *start = reader->data;
    reader->data += size;
    reader->left -= size;
    return start;
}

//  Names on the wire (rid, service, header keys): printable ASCII, no space.
static bool
s_is_name (const void *data, size_t size)
{
    const uint8_t *bytes = (const uint8_t *) data;
    size_t i;
    for (i = 0; i < size; i++)
        if (bytes [i] < 0x21 || bytes [i] > 0x7e)
            return false;
    return true;
}

//  Validates a C string as a name of at most `max` bytes; returns its length
//  or -1. Never reads more than max + 1 bytes of the string.
static int
s_name_length (const char *name, size_t max)
{
    if (!name)
        return -1;
    size_t length = strnlen (name, max + 1);
    if (length > max || !s_is_name (name, length))
        return -1;
    return (int) length;
}

//  malloc'ed copy of `size` bytes plus a trailing NUL; NULL if out of memory.
static uint8_t *
s_copy (const void *data, size_t size)
{
    uint8_t *copy = (uint8_t *) malloc (size + 1);
    if (copy) {
        if (size)
            memcpy (copy, data, size);
        copy [size] = 0;
    }
    return copy;
}

static tiers_wire_header_t *
s_find (const tiers_wire_t *self, const char *key, size_t key_size)
{
    size_t i;
    for (i = 0; i < self->header_count; i++) {
        const tiers_wire_header_t *header = &self->headers [i];
        if (strlen (header->key) == key_size
        &&  memcmp (header->key, key, key_size) == 0)
            return (tiers_wire_header_t *) header;
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Constructor and destructor

//  The struct is kept under 1 kB so that glibc serves it from its per-thread
//  cache (bigger requests take the large-bin path and consolidate the fast
//  bins on every call), and it is not zeroed: only the fields below and the
//  headers up to header_count are ever read.
static void
s_init (tiers_wire_t *self, int kind)
{
    self->kind = (uint8_t) kind;
    self->status = 0;
    self->deadline = 0;
    self->trace = 0;
    self->rid [0] = 0;
    self->service [0] = 0;
    self->header_count = 0;
    self->body = NULL;
    self->body_size = 0;
}

static tiers_wire_t *
s_alloc (int kind)
{
    tiers_wire_t *self = (tiers_wire_t *) malloc (sizeof (tiers_wire_t));
    if (self)
        s_init (self, kind);
    return self;
}

//  An empty message with an empty (but allocated, NUL-terminated) body, so
//  self->body is never NULL.
static tiers_wire_t *
s_new (int kind)
{
    tiers_wire_t *self = s_alloc (kind);
    if (!self)
        return NULL;
    self->body = s_copy (NULL, 0);
    if (!self->body) {
        free (self);
        return NULL;
    }
    return self;
}

tiers_wire_t *
tiers_wire_new (int kind)
{
    assert (kind >= 1 && kind <= TIERS_WIRE_KIND_MAX);
    tiers_wire_t *self = s_new (kind);
    assert (self);
    return self;
}

void
tiers_wire_destroy (tiers_wire_t **self_p)
{
    assert (self_p);
    tiers_wire_t *self = *self_p;
    if (self) {
        size_t i;
        for (i = 0; i < self->header_count; i++)
            free (self->headers [i].value);
        free (self->body);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Setters

int
tiers_wire_set_rid (tiers_wire_t *self, const char *rid)
{
    assert (self);
    int length = s_name_length (rid, TIERS_WIRE_MAX_RID);
    if (length < 0)
        return -1;
    memcpy (self->rid, rid, (size_t) length + 1);
    return 0;
}

int
tiers_wire_set_service (tiers_wire_t *self, const char *service)
{
    assert (self);
    int length = s_name_length (service, TIERS_WIRE_MAX_SERVICE);
    if (length < 0)
        return -1;
    memcpy (self->service, service, (size_t) length + 1);
    return 0;
}

int
tiers_wire_set_body (tiers_wire_t *self, const void *data, size_t size)
{
    assert (self);
    if (size > TIERS_WIRE_MAX_BODY || (size && !data))
        return -1;
    //  Copy before freeing: data may point into the current body
    uint8_t *body = s_copy (data, size);
    if (!body)
        return -1;
    free (self->body);
    self->body = body;
    self->body_size = size;
    return 0;
}

int
tiers_wire_take_body (tiers_wire_t *self, uint8_t *data, size_t size)
{
    assert (self);
    if (size > TIERS_WIRE_MAX_BODY || !data)
        return -1;
    data [size] = 0;
    if (data != self->body)
        free (self->body);
    self->body = data;
    self->body_size = size;
    return 0;
}

void
tiers_wire_move_body (tiers_wire_t *to, tiers_wire_t *from)
{
    assert (to && from);
    if (to == from)
        return;
    uint8_t *spare = to->body;          //  at least one byte: the NUL
    to->body = from->body;
    to->body_size = from->body_size;
    from->body = spare;
    from->body [0] = 0;
    from->body_size = 0;
}

int
tiers_wire_set_header (tiers_wire_t *self, const char *key,
                       const void *value, size_t size)
{
    assert (self);
    int key_size = s_name_length (key, TIERS_WIRE_MAX_KEY);
    if (key_size < 1 || size > TIERS_WIRE_MAX_VALUE || (size && !value))
        return -1;
    tiers_wire_header_t *header = s_find (self, key, (size_t) key_size);
    if (!header && self->header_count == TIERS_WIRE_MAX_HEADERS)
        return -1;
    //  Copy before freeing: value may be the header's own current value
    uint8_t *copy = s_copy (value, size);
    if (!copy)
        return -1;
    if (header)
        free (header->value);
    else {
        header = &self->headers [self->header_count++];
        memcpy (header->key, key, (size_t) key_size + 1);
    }
    header->value = (char *) copy;
    header->value_size = (uint32_t) size;
    return 0;
}

int
tiers_wire_set_headerf (tiers_wire_t *self, const char *key,
                        const char *format, ...)
{
    assert (self);
    assert (format);
    char value [TIERS_WIRE_MAX_VALUE + 1];
    va_list args;
    va_start (args, format);
    int size = vsnprintf (value, sizeof (value), format, args);
    va_end (args);
    if (size < 0 || size > TIERS_WIRE_MAX_VALUE)
        return -1;
    return tiers_wire_set_header (self, key, value, (size_t) size);
}

const char *
tiers_wire_header (const tiers_wire_t *self, const char *key)
{
    assert (self);
    if (!key)
        return NULL;
    const tiers_wire_header_t *header = s_find (self, key, strlen (key));
    return header ? header->value : NULL;
}

const char *
tiers_wire_text (const tiers_wire_t *self, const char *key, bool *bad)
{
    assert (self);
    assert (bad);
    const tiers_wire_header_t *header = key ? s_find (self, key, strlen (key)) : NULL;
    if (header && memchr (header->value, 0, header->value_size)) {
        *bad = true;
        return NULL;
    }
    return header ? header->value : NULL;
}

tiers_wire_t *
tiers_wire_reply_to (const tiers_wire_t *request, int status)
{
    assert (request);
    tiers_wire_t *self = tiers_wire_new (TIERS_WIRE_REPLY);
    self->status = (uint16_t) status;
    self->trace = request->trace;
    self->deadline = request->deadline;
    memcpy (self->rid, request->rid, strlen (request->rid) + 1);
    memcpy (self->service, request->service, strlen (request->service) + 1);
    return self;
}

//  --------------------------------------------------------------------------
//  Encoder

size_t
tiers_wire_size (const tiers_wire_t *self)
{
    assert (self);
    size_t size = TIERS_WIRE_FIXED
                + 1 + strlen (self->rid)
                + 1 + strlen (self->service)
                + 4 + self->body_size;
    size_t i;
    for (i = 0; i < self->header_count; i++)
        size += 1 + strlen (self->headers [i].key)
              + 2 + self->headers [i].value_size;
    return size;
}

size_t
tiers_wire_encode (const tiers_wire_t *self, uint8_t *buf)
{
    assert (self);
    assert (buf);
    assert (self->header_count <= TIERS_WIRE_MAX_HEADERS);
    assert (self->body_size <= TIERS_WIRE_MAX_BODY);
    uint8_t *p = buf;
    p [0] = TIERS_WIRE_MAGIC;
    p [1] = TIERS_WIRE_VERSION;
    p [2] = self->kind;
    p [3] = (uint8_t) self->header_count;
    s_put_u16 (p + 4, self->status);
    s_put_u64 (p + 6, (uint64_t) self->deadline);
    s_put_u64 (p + 14, self->trace);
    p += TIERS_WIRE_FIXED;

    size_t length = strlen (self->rid);
    *p++ = (uint8_t) length;
    memcpy (p, self->rid, length);
    p += length;

    length = strlen (self->service);
    *p++ = (uint8_t) length;
    memcpy (p, self->service, length);
    p += length;

    size_t i;
    for (i = 0; i < self->header_count; i++) {
        const tiers_wire_header_t *header = &self->headers [i];
        length = strlen (header->key);
        *p++ = (uint8_t) length;
        memcpy (p, header->key, length);
        p += length;
        s_put_u16 (p, (uint16_t) header->value_size);
        p += 2;
        if (header->value_size)
            memcpy (p, header->value, header->value_size);
        p += header->value_size;
    }
    s_put_u32 (p, (uint32_t) self->body_size);
    p += 4;
    if (self->body_size)
        memcpy (p, self->body, self->body_size);
    p += self->body_size;
    return (size_t) (p - buf);
}

//  --------------------------------------------------------------------------
//  Decoder

//  Reads a u8 length and that many name bytes into `dest` (room for max+1).
//  Returns NULL or the error.
static const char *
s_take_name (s_reader_t *reader, char *dest, size_t max,
             const char *too_long, const char *bad)
{
    const uint8_t *p = s_take (reader, 1);
    if (!p)
        return "truncated";
    size_t length = p [0];
    if (length > max)
        return too_long;
    p = s_take (reader, length);
    if (!p)
        return "truncated";
    if (!s_is_name (p, length))
        return bad;
    memcpy (dest, p, length);
    dest [length] = 0;
    return NULL;
}

//  Decodes into an allocated message; returns NULL or the error.
static const char *
s_decode (tiers_wire_t *self, s_reader_t *reader, bool copy)
{
    const uint8_t *p = s_take (reader, TIERS_WIRE_FIXED);
    if (!p)
        return "too short";
    if (p [0] != TIERS_WIRE_MAGIC)
        return "bad magic";
    if (p [1] != TIERS_WIRE_VERSION)
        return "unknown version";
    if (p [2] == 0 || p [2] > TIERS_WIRE_KIND_MAX)
        return "bad kind";
    if (p [3] > TIERS_WIRE_MAX_HEADERS)
        return "too many headers";
    self->kind = p [2];
    size_t header_count = p [3];
    self->status = s_get_u16 (p + 4);
    self->deadline = (int64_t) s_get_u64 (p + 6);
    self->trace = s_get_u64 (p + 14);

    const char *error = s_take_name (reader, self->rid, TIERS_WIRE_MAX_RID,
                                     "rid too long", "bad rid");
    if (!error)
        error = s_take_name (reader, self->service, TIERS_WIRE_MAX_SERVICE,
                             "service too long", "bad service");
    if (error)
        return error;

    while (self->header_count < header_count) {
        char key [TIERS_WIRE_MAX_KEY + 1];
        error = s_take_name (reader, key, TIERS_WIRE_MAX_KEY,
                             "header key too long", "bad header key");
        if (error)
            return error;
        size_t key_size = strlen (key);
        if (key_size == 0)
            return "empty header key";
        if (s_find (self, key, key_size))
            return "duplicate header key";
        if (!(p = s_take (reader, 2)))
            return "truncated";
        size_t value_size = s_get_u16 (p);
        if (value_size > TIERS_WIRE_MAX_VALUE)
            return "header value too long";
        if (!(p = s_take (reader, value_size)))
            return "truncated";
        uint8_t *value = copy ? s_copy (p, value_size) : NULL;
        if (copy && !value)
            return "out of memory";
        tiers_wire_header_t *header = &self->headers [self->header_count++];
        memcpy (header->key, key, key_size + 1);
        header->value = (char *) value;
        header->value_size = (uint32_t) value_size;
    }

    if (!(p = s_take (reader, 4)))
        return "truncated";
    size_t body_size = s_get_u32 (p);
    if (body_size > TIERS_WIRE_MAX_BODY)
        return "body too long";
    //  Check the exact size before allocating: a lying length costs nothing
    if (reader->left < body_size)
        return "truncated";
    if (reader->left > body_size)
        return "trailing bytes";
    p = s_take (reader, body_size);
    self->body_size = body_size;
    if (!copy)
        return NULL;
    //  The message came from s_alloc: no body yet, nothing to free
    self->body = s_copy (p, body_size);
    if (!self->body)
        return "out of memory";
    return NULL;
}

tiers_wire_t *
tiers_wire_decode (const uint8_t *data, size_t size, const char **error)
{
    const char *reason = NULL;
    tiers_wire_t *self = NULL;
    if (size < TIERS_WIRE_FIXED)
        reason = "too short";
    else
    if (!data)
        reason = "no data";
    else
    if (!(self = s_alloc (TIERS_WIRE_REQUEST)))
        reason = "out of memory";
    else {
        s_reader_t reader = { data, size };
        reason = s_decode (self, &reader, true);
        if (reason)
            tiers_wire_destroy (&self);
    }
    if (error)
        *error = reason;
    return self;
}

void
tiers_wire_set_deadline_at (uint8_t *data, size_t size, int64_t deadline)
{
    assert (data && size >= TIERS_WIRE_FIXED);
    for (int i = 0; i < 8; i++)
        data [6 + i] = (uint8_t) ((uint64_t) deadline >> (56 - 8 * i));
}

const char *
tiers_wire_peek (const uint8_t *data, size_t size, tiers_wire_t *view)
{
    assert (view);
    s_init (view, TIERS_WIRE_REQUEST);     //  not zeroed, like s_alloc
    if (!data || size < TIERS_WIRE_FIXED)
        return "too short";
    s_reader_t reader = { data, size };
    return s_decode (view, &reader, false);
}

//  --------------------------------------------------------------------------
//  Socket helpers

int
tiers_wire_send (const tiers_wire_t *self, void *sock, zmsg_t *envelope)
{
    assert (self);
    assert (sock);
    void *handle = zsock_resolve (sock);
    if (!handle)
        return -1;
    //  Envelope frames go out as shared copies (no zmsg, no zframe_dup);
    //  the encoded message is written straight into the outgoing zmq_msg_t
    if (envelope) {
        zframe_t *frame = zmsg_first (envelope);
        while (frame) {
            if (zframe_send (&frame, handle, ZFRAME_MORE | ZFRAME_REUSE))
                return -1;
            frame = zmsg_next (envelope);
        }
    }
    zmq_msg_t part;
    if (zmq_msg_init_size (&part, tiers_wire_size (self)))
        return -1;
    tiers_wire_encode (self, (uint8_t *) zmq_msg_data (&part));
    tiers_poller_sent (handle);
    if (zmq_msg_send (&part, handle, 0) == -1) {
        zmq_msg_close (&part);
        return -1;
    }
    return 0;
}

//  Receives one message; the first frame with `flags` (0 or ZMQ_DONTWAIT),
//  the rest of a multipart message is already there. Returns -1 when none
//  was taken.
static int
s_recv (void *sock, zmsg_t **envelope_p, tiers_wire_t **msg_p,
        const char **error, int flags)
{
    assert (sock);
    assert (msg_p);
    *msg_p = NULL;
    if (envelope_p)
        *envelope_p = NULL;
    void *handle = zsock_resolve (sock);
    zmsg_t *envelope = NULL;
    zmq_msg_t part;
    zmq_msg_init (&part);
    bool started = false;
    while (true) {
        if (!handle || zmq_msg_recv (&part, handle, started ? 0 : flags) == -1) {
            zmq_msg_close (&part);
            zmsg_destroy (&envelope);
            if (error)
                *error = "interrupted";
            return started ? 0 : -1;    //  mid-message: only on shutdown
        }
        started = true;
        if (!zmq_msg_more (&part))
            break;              //  the last frame is the message
        if (!envelope_p)
            continue;
        if (!envelope)
            envelope = zmsg_new ();
        zframe_t *frame = zframe_new (zmq_msg_data (&part), zmq_msg_size (&part));
        if (envelope && frame)
            zmsg_append (envelope, &frame);
        else
            zframe_destroy (&frame);
    }
    *msg_p = tiers_wire_decode ((const uint8_t *) zmq_msg_data (&part),
                                zmq_msg_size (&part), error);
    zmq_msg_close (&part);
    if (envelope_p)
        *envelope_p = envelope;
    return 0;
}

tiers_wire_t *
tiers_wire_recv (void *sock, zmsg_t **envelope_p, const char **error)
{
    tiers_wire_t *msg;
    s_recv (sock, envelope_p, &msg, error, 0);
    return msg;
}

int
tiers_wire_try_recv (void *sock, zmsg_t **envelope_p, tiers_wire_t **msg_p,
                     const char **error)
{
    return s_recv (sock, envelope_p, msg_p, error, ZMQ_DONTWAIT);
}

//  --------------------------------------------------------------------------
//  Small things

const char *
tiers_wire_kind_name (int kind)
{
    static const char *names [] = {
        NULL, "request", "reply", "ready", "heartbeat", "bye", "status"
    };
    if (kind < 1 || kind > TIERS_WIRE_KIND_MAX)
        return "?";
    return names [kind];
}

int64_t
tiers_wire_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
