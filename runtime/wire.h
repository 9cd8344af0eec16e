/*  wire.h — the one message format that crosses every socket in tiers.

    A tiers message is a single ZeroMQ frame (ROUTER envelopes travel as
    frames in front of it and are not part of the codec). Everything an actor
    receives from a socket goes through tiers_wire_decode(), which checks
    every length against the bytes really present and returns an error for
    anything malformed; it never aborts and never reads past the buffer.

    Layout, all integers big-endian (version 1):

        0   u8    magic 'T' (0x54)
        1   u8    version (1)
        2   u8    kind        (tiers_wire_kind_t)
        3   u8    header count (0..TIERS_WIRE_MAX_HEADERS)
        4   u16   status      (HTTP-like: 200, 400, 404, 503, 504, ...)
        6   u64   deadline    (absolute, ms since the epoch; 0 = none)
        14  u64   trace id
        22  u8    rid length  (0..TIERS_WIRE_MAX_RID), then the bytes
            u8    service length (0..TIERS_WIRE_MAX_SERVICE), then the bytes
            per header: u8 key length (1..TIERS_WIRE_MAX_KEY), key bytes,
                        u16 value length (0..TIERS_WIRE_MAX_VALUE), value bytes
            u32   body length (0..TIERS_WIRE_MAX_BODY), then the body
        nothing may follow the body.

    Strings (rid, service, header keys) must be printable ASCII without
    spaces; header values and bodies are opaque bytes.
*/
#ifndef TIERS_WIRE_H
#define TIERS_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <czmq.h>

#define TIERS_WIRE_MAGIC        0x54
#define TIERS_WIRE_VERSION      1
#define TIERS_WIRE_MAX_RID      128
#define TIERS_WIRE_MAX_SERVICE  32
#define TIERS_WIRE_MAX_HEADERS  16
#define TIERS_WIRE_MAX_KEY      32
#define TIERS_WIRE_MAX_VALUE    4096
#define TIERS_WIRE_MAX_BODY     (16u * 1024 * 1024)
//  The longest encoded message: the fixed part, rid, service, every header
//  at its longest, the body. Sockets refuse longer frames (sock.c).
#define TIERS_WIRE_MAX_MESSAGE  (23 + 1 + TIERS_WIRE_MAX_RID + 1 + TIERS_WIRE_MAX_SERVICE \
    + TIERS_WIRE_MAX_HEADERS * (1 + TIERS_WIRE_MAX_KEY + 2 + TIERS_WIRE_MAX_VALUE) \
    + 4 + TIERS_WIRE_MAX_BODY)
#define TIERS_WIRE_FIXED        22      //  bytes before the rid length

typedef enum {
    TIERS_WIRE_REQUEST   = 1,   //  caller -> service (through the balancer)
    TIERS_WIRE_REPLY     = 2,   //  service -> caller
    TIERS_WIRE_READY     = 3,   //  worker -> balancer: join pool `service`
    TIERS_WIRE_HEARTBEAT = 4,   //  both ways between balancer and worker
    TIERS_WIRE_BYE       = 5,   //  worker -> balancer: leaving the pool
    TIERS_WIRE_STATUS    = 6,   //  ask an actor for its state; reply is JSON
    TIERS_WIRE_KIND_MAX  = 6
} tiers_wire_kind_t;

typedef struct {
    char key [TIERS_WIRE_MAX_KEY + 1];
    uint32_t value_size;        //  authoritative (value may hold NULs)
    char *value;                //  NUL-terminated copy
} tiers_wire_header_t;          //  48 bytes: keeps tiers_wire_t under 1 kB

typedef struct _tiers_wire_t tiers_wire_t;
struct _tiers_wire_t {
    uint8_t  kind;
    uint16_t status;
    int64_t  deadline;          //  ms since epoch, 0 = none
    uint64_t trace;
    char rid [TIERS_WIRE_MAX_RID + 1];
    char service [TIERS_WIRE_MAX_SERVICE + 1];
    size_t header_count;
    tiers_wire_header_t headers [TIERS_WIRE_MAX_HEADERS];
    uint8_t *body;              //  owned, never NULL; NUL-terminated
    size_t body_size;
};
//  Only headers [0 .. header_count) are initialised; the rest is garbage.

//  Create an empty message of the given kind (status 0, no body).
tiers_wire_t *tiers_wire_new (int kind);
void tiers_wire_destroy (tiers_wire_t **self_p);

//  Setters return 0, or -1 when the value breaks a limit (message unchanged).
int tiers_wire_set_rid (tiers_wire_t *self, const char *rid);
int tiers_wire_set_service (tiers_wire_t *self, const char *service);
int tiers_wire_set_body (tiers_wire_t *self, const void *data, size_t size);
//  Takes ownership of a malloc'ed buffer (which must have room for size+1;
//  data [size] is set to NUL). On -1 the caller still owns the buffer.
int tiers_wire_take_body (tiers_wire_t *self, uint8_t *data, size_t size);
//  Moves the body of `from` into `to` without a copy; `from` is left with
//  an empty body (a request whose body went on to a shard, say).
void tiers_wire_move_body (tiers_wire_t *to, tiers_wire_t *from);
//  Adds or replaces a header (keys compare exactly, case-sensitive).
int tiers_wire_set_header (tiers_wire_t *self, const char *key,
                           const void *value, size_t size);
int tiers_wire_set_headerf (tiers_wire_t *self, const char *key,
                            const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
//  Returns the header value (NUL-terminated) or NULL.
const char *tiers_wire_header (const tiers_wire_t *self, const char *key);
//  The header as text: NULL when missing; NULL with *bad set when its value
//  holds a NUL byte (it would read as shorter than it is).
const char *tiers_wire_text (const tiers_wire_t *self, const char *key, bool *bad);

//  A reply that carries the caller's rid, trace and deadline.
tiers_wire_t *tiers_wire_reply_to (const tiers_wire_t *request, int status);

//  Encoded size of the message.
size_t tiers_wire_size (const tiers_wire_t *self);
//  Encode into buf (at least tiers_wire_size bytes); returns bytes written.
size_t tiers_wire_encode (const tiers_wire_t *self, uint8_t *buf);

//  Decode; on error returns NULL and sets *error (static string) if error
//  is not NULL. Never aborts on any input.
tiers_wire_t *tiers_wire_decode (const uint8_t *data, size_t size,
                                 const char **error);
//  Checks exactly what decode checks, allocating nothing: fills the
//  caller's *view with kind, status, deadline, trace, rid, service and the
//  header keys; header values and the body stay in `data` (view values
//  and body are NULL, their sizes are set). A view is never destroyed.
//  Returns NULL, or the reason the message is malformed.
const char *tiers_wire_peek (const uint8_t *data, size_t size, tiers_wire_t *view);
//  Rewrites the deadline of an encoded message in place (size must be at
//  least TIERS_WIRE_FIXED: a message that passed decode or peek).
void tiers_wire_set_deadline_at (uint8_t *data, size_t size, int64_t deadline);

//  Socket helpers. send: encodes as one frame, preceded by the envelope
//  frames if envelope is not NULL (the envelope is not consumed). Returns 0
//  or -1. The message is never consumed.
int tiers_wire_send (const tiers_wire_t *self, void *sock, zmsg_t *envelope);
//  recv: receives one ZeroMQ message; all frames before the last form the
//  envelope, returned in *envelope_p when it is not NULL (caller owns it;
//  *envelope_p is NULL when there were no frames before the last).
//  Returns NULL on a malformed message (error set) or interrupted receive
//  (error = "interrupted"). On a malformed message the envelope is STILL
//  returned in *envelope_p, so the caller can send an error reply back to
//  the sender (and must destroy it either way).
tiers_wire_t *tiers_wire_recv (void *sock, zmsg_t **envelope_p,
                               const char **error);
//  try_recv: the same without waiting. Returns -1 when no message was
//  waiting (or the receive was interrupted): nothing is set but *msg_p =
//  NULL. Returns 0 when a message was taken: *msg_p is the message, or
//  NULL with *error set when it was malformed; the envelope as for recv.
int tiers_wire_try_recv (void *sock, zmsg_t **envelope_p,
                         tiers_wire_t **msg_p, const char **error);

//  Name of a kind, for logs ("request", ...); "?" when unknown.
const char *tiers_wire_kind_name (int kind);
//  Milliseconds since the epoch (wall clock, what deadlines use).
int64_t tiers_wire_now (void);

#endif
