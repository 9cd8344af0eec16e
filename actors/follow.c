/*  follow.c — the KEYS follower of the shards' commit streams (follow.h).

    One DEALER per shard that binds a `stream` port, from the owner's link
    (tiers_link_connect), all in the owner's reactor. The one idea: the
    position is only ever moved by a change whose `previous` is the
    position (or by a follow answer, which says where the stream starts:
    `from`), so the owner has seen every write after the last on_reset;
    anything else the follower cannot explain — a gap, a 409, another
    incarnation or epoch, a malformed message — is an on_reset and a
    follow from scratch (an empty incarnation, which the primary always
    answers `reset`).

    The states are follow.h's (DOWN, LIVE, STALE). Asking: DOWN asks
    every FOLLOW_ASK_MS; STALE asks too once it has heard nothing for
    silent_ms (a restarted primary does not know this DEALER: only a new
    follow brings the stream back; it is answered from the position when
    the primary's log still holds it). A follow that was not answered is
    never left in a socket's queue to be delivered later (a stopped shard
    would get a pile of them on its return): the socket is made anew
    before the next one. (On inproc, libzmq still delivers the follow of
    a closed socket whose connection was pending when its shard binds
    again; the shard answers it to nobody and forgets it after 3 s.) Acks: every FOLLOW_ACK_EVERY changes, and at
    each heartbeat that finds changes not acknowledged or FOLLOW_ALIVE_MS
    since the last (the primary forgets a follower silent for 3 s).

    Every message from a stream is checked before it moves anything; a
    bad one is counted (tiers_follow_malformed_total), logged once per
    shard, and resets that shard.
*/
#include "follow.h"
#include "map.h"
#include "sock.h"
#include "wire.h"
#include "slot.h"
#include "names.h"
#include "log.h"
#include "metrics.h"
#include "parse.h"
#include <jansson.h>
#include <inttypes.h>

#define FOLLOW_ASK_MS       1000        //  a follow again, while not followed
#define FOLLOW_TICK_MS      100
#define FOLLOW_ACK_EVERY    16          //  changes between two acks
#define FOLLOW_ALIVE_MS     1000        //  an ack at least this often
#define INCARNATION_MAX     15

typedef enum { STREAM_DOWN, STREAM_LIVE, STREAM_STALE } stream_state_t;

typedef struct {
    tiers_follow_t *follow;
    size_t index;               //  the shard index
    const tiers_entry_t *entry; //  the shard's entry
    long target;                //  its target of the link, -1: no stream port
    zsock_t *sock;
    int reader;                 //  the reactor's handle, -1 before attach
    stream_state_t state;
    char incarnation [INCARNATION_MAX + 1];     //  "" after a reset
    int64_t epoch;
    int64_t position;           //  LIVE, STALE: every change up to here given
    int64_t acked;              //  the last position acknowledged
    int64_t acked_at;           //  monotonic ms of the last ack
    int64_t heard;              //  monotonic ms of the last change or heartbeat
    //  Caught up: `told` is the highest sequence the primary said it had
    //  (a follow answer's, a heartbeat's); `current` the monotonic ms at
    //  which the position last reached it. A stream that hears heartbeats
    //  but lags behind them (the primary sends it less than it commits)
    //  is not live once it has not been current for silent_ms.
    int64_t told, current;
    int64_t asked;              //  monotonic ms of the last follow (0: none)
    bool answered;              //  the last follow was answered
    bool fenced;                //  the copy says it was fenced
    bool warned;                //  a malformed message was logged
    int unacked;                //  changes since the last ack
    char asked_incarnation [INCARNATION_MAX + 1];
    tiers_counter_t *resets, *keys, *malformed;
} stream_t;

struct _tiers_follow_t {
    tiers_follow_config_t config;
    char *name, *link;
    tiers_reactor_t *reactor;
    stream_t *streams;
    size_t count;
    uint16_t *owner;            //  slot -> shard index
    uint32_t slots;
};

static int64_t
s_now_ms (void)
{
    return tiers_clock_us () / 1000;
}

static const char *
s_state_name (stream_state_t state)
{
    return state == STREAM_LIVE ? "live" : state == STREAM_STALE ? "stale" : "down";
}


//  --------------------------------------------------------------------------
//  Asking the stream

static void
s_send (stream_t *stream, tiers_wire_t **message_p)
{
    if (stream->sock)
        tiers_wire_send (*message_p, zsock_resolve (stream->sock), NULL);
    tiers_wire_destroy (message_p);
}

//  The shard's socket made anew (the old one's queue goes with it).
static void
s_reconnect (stream_t *stream)
{
    tiers_follow_t *self = stream->follow;
    char *why = NULL;
    zsock_t *sock = tiers_link_connect (self->config.entry, self->link,
                                        (size_t) stream->target, &why);
    if (!sock) {
        tiers_warn ("follower %s: cannot connect to the stream of %s: %s", self->name,
                    stream->entry->name, why ? why : "?");
        free (why);
    }
    tiers_reactor_set_socket (self->reactor, stream->reader, sock);
    zsock_destroy (&stream->sock);
    stream->sock = sock;
}

//  DOWN, STALE: follow (from the position, or from scratch after a reset).
static void
s_ask (stream_t *stream)
{
    assert (stream->state != STREAM_LIVE);
    if (stream->target < 0 || stream->reader < 0)
        return;
    if (stream->asked && !stream->answered)
        s_reconnect (stream);
    stream->asked = s_now_ms ();
    stream->answered = false;
    snprintf (stream->asked_incarnation, sizeof stream->asked_incarnation, "%s",
              stream->incarnation);
    tiers_wire_t *follow = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_header (follow, "op", "follow", 6);
    tiers_wire_set_header (follow, "name", stream->follow->name, strlen (stream->follow->name));
    tiers_wire_set_header (follow, "want", "keys", 4);
    tiers_wire_set_header (follow, "incarnation", stream->incarnation,
                           strlen (stream->incarnation));
    tiers_wire_set_headerf (follow, "epoch", "%" PRId64, stream->epoch);
    tiers_wire_set_headerf (follow, "applied", "%" PRId64, stream->position);
    s_send (stream, &follow);
}

static void
s_ack (stream_t *stream)
{
    tiers_wire_t *ack = tiers_wire_new (TIERS_WIRE_REQUEST);
    tiers_wire_set_header (ack, "op", "ack", 3);
    tiers_wire_set_headerf (ack, "applied", "%" PRId64, stream->position);
    s_send (stream, &ack);
    stream->acked = stream->position;
    stream->acked_at = s_now_ms ();
    stream->unacked = 0;
}

//  Any state -> DOWN, the owner drops what it holds of the shard, and a
//  follow from scratch goes at once.
static void
s_reset (stream_t *stream, const char *why)
{
    tiers_follow_t *self = stream->follow;
    tiers_info ("follower %s: shard %s reset (%s)", self->name, stream->entry->name, why);
    tiers_counter_add (stream->resets, 1);
    stream->state = STREAM_DOWN;
    stream->incarnation [0] = 0;
    stream->epoch = 0;
    stream->position = 0;
    stream->acked = 0;
    stream->fenced = false;
    if (self->config.on_reset)
        self->config.on_reset (self->config.arg, stream->index);
    s_ask (stream);
}

//  A message the follower cannot read: counted, logged once, a reset.
static void
s_malformed (stream_t *stream, const char *why)
{
    tiers_counter_add (stream->malformed, 1);
    if (!stream->warned)
        tiers_warn ("follower %s: a malformed message on the stream of %s: %s "
                    "(logged once; counted in tiers_follow_malformed_total)",
                    stream->follow->name, stream->entry->name, why);
    stream->warned = true;
    s_reset (stream, "a malformed message");
}


//  --------------------------------------------------------------------------
//  Messages from the stream

//  A non-negative integer header, or -1.
static int64_t
s_number (const tiers_wire_t *msg, const char *key)
{
    bool bad = false;
    const char *text = tiers_wire_text (msg, key, &bad);
    long long value;
    if (!text || bad || tiers_parse_int (text, &value) || value < 0)
        return -1;
    return value;
}

//  The incarnation header: 1 to INCARNATION_MAX bytes, or NULL.
static const char *
s_incarnation (const tiers_wire_t *msg)
{
    bool bad = false;
    const char *text = tiers_wire_text (msg, "incarnation", &bad);
    size_t size = text && !bad ? strlen (text) : 0;
    return size > 0 && size <= INCARNATION_MAX ? text : NULL;
}

//  Gives each key of a walked body to the owner's on_key.
typedef struct {
    stream_t *stream;
} deliver_t;

static void
s_deliver (void *arg, const char *key, int64_t version)
{
    stream_t *stream = ((deliver_t *) arg)->stream;
    if (stream->follow->config.on_key)
        stream->follow->config.on_key (stream->follow->config.arg, stream->index, key,
                                       version);
}

//  Checks a change's keys body; with `deliver`, gives each key to on_key.
static long
s_keys_walk (stream_t *stream, const tiers_wire_t *change, int64_t previous,
             int64_t sequence, bool deliver, const char **why)
{
    deliver_t target = { stream };
    return tiers_follow_keys_parse ((const char *) change->body, change->body_size,
                                    previous, sequence, deliver ? s_deliver : NULL,
                                    &target, why);
}

long
tiers_follow_keys_parse (const char *body, size_t size, int64_t previous, int64_t sequence,
                         tiers_follow_each_fn *fn, void *arg, const char **why)
{
    const char *at = body;
    const char *end = at + size;
    long keys = 0;
    char key [TIERS_COLLECTION_MAX + 1 + TIERS_DOC_ID_MAX + 1];
    while (at < end) {
        const char *eol = memchr (at, '\n', (size_t) (end - at));
        const char *slash = eol ? memchr (at, '/', (size_t) (eol - at)) : NULL;
        const char *space = slash ? memchr (slash, ' ', (size_t) (eol - slash)) : NULL;
        if (!space) {
            *why = "a keys line is not COLLECTION/ID VERSION";
            return -1;
        }
        size_t collection = (size_t) (slash - at), id = (size_t) (space - slash - 1);
        if (!tiers_collection_ok (at, collection) || !tiers_doc_id_ok (slash + 1, id)) {
            *why = "a keys line holds a bad collection or id";
            return -1;
        }
        char number [24];
        size_t digits = (size_t) (eol - space - 1);
        long long version;
        if (digits == 0 || digits >= sizeof number) {
            *why = "a keys line holds a bad version";
            return -1;
        }
        memcpy (number, space + 1, digits);
        number [digits] = 0;
        if (tiers_parse_int (number, &version) || version <= previous || version > sequence) {
            *why = "a keys line's version is not of its change";
            return -1;
        }
        if (fn) {
            memcpy (key, at, (size_t) (space - at));
            key [space - at] = 0;
            fn (arg, key, version);
        }
        keys++;
        at = eol + 1;
    }
    return keys;
}

static void
s_on_follow_answer (stream_t *stream, const tiers_wire_t *msg)
{
    stream->answered = true;
    if (msg->status == 409) {
        s_reset (stream, "the primary sent it away (409)");
        return;
    }
    if (msg->status == 421) {
        //  A fenced copy: not the primary; asked again later
        stream->fenced = true;
        if (stream->state == STREAM_LIVE)
            stream->state = STREAM_STALE;
        return;
    }
    if (msg->status != 200) {
        const char *error = tiers_wire_header (msg, "error");
        tiers_warn ("follower %s: the stream of %s answers follow %d: %s",
                    stream->follow->name, stream->entry->name, msg->status,
                    error ? error : "?");
        if (stream->state != STREAM_DOWN)
            s_reset (stream, "follow refused");
        return;
    }
    const char *incarnation = s_incarnation (msg);
    int64_t epoch = s_number (msg, "epoch");
    int64_t sequence = s_number (msg, "sequence");
    int64_t from = s_number (msg, "from");
    bool bad = false;
    const char *reset = tiers_wire_text (msg, "reset", &bad);
    if (!incarnation || epoch < 0 || sequence < 0 || from < 0 || from > sequence || bad) {
        s_malformed (stream, "a follow answer without incarnation, epoch, sequence, from");
        return;
    }
    //  Without `reset` the stream goes on from `from` of the history the
    //  follow named: only good when that is this incarnation.
    bool continues = !(reset && streq (reset, "1")) && *stream->asked_incarnation
                  && streq (incarnation, stream->asked_incarnation)
                  && epoch == stream->epoch;
    if (!continues) {
        tiers_counter_add (stream->resets, 1);
        tiers_info ("follower %s: shard %s reset by its primary, follows from %" PRId64,
                    stream->follow->name, stream->entry->name, from);
        if (stream->follow->config.on_reset)
            stream->follow->config.on_reset (stream->follow->config.arg, stream->index);
    }
    snprintf (stream->incarnation, sizeof stream->incarnation, "%s", incarnation);
    stream->epoch = epoch;
    stream->position = from;
    stream->acked = from;
    stream->acked_at = s_now_ms ();
    stream->heard = s_now_ms ();
    stream->told = sequence;
    if (from >= sequence)
        stream->current = stream->heard;
    stream->fenced = false;
    stream->state = STREAM_LIVE;
}

static void
s_on_change (stream_t *stream, const tiers_wire_t *msg)
{
    if (stream->state == STREAM_DOWN)
        return;                 //  sent before the follow being answered
    const char *incarnation = s_incarnation (msg);
    int64_t epoch = s_number (msg, "epoch");
    int64_t previous = s_number (msg, "previous");
    int64_t sequence = s_number (msg, "sequence");
    if (msg->status != 200 || !incarnation || epoch < 0 || previous < 0
    ||  sequence <= previous) {
        s_malformed (stream, "a change without incarnation, epoch, previous, sequence");
        return;
    }
    if (!streq (incarnation, stream->incarnation) || epoch != stream->epoch) {
        s_reset (stream, "a change of another incarnation or epoch");
        return;
    }
    if (previous != stream->position) {
        s_reset (stream, "a gap in the changes");
        return;
    }
    const char *why = NULL;
    long keys = s_keys_walk (stream, msg, previous, sequence, false, &why);
    if (keys < 0) {
        s_malformed (stream, why);
        return;
    }
    s_keys_walk (stream, msg, previous, sequence, true, &why);
    tiers_counter_add (stream->keys, (uint64_t) keys);
    stream->position = sequence;
    stream->heard = s_now_ms ();
    if (stream->position >= stream->told)
        stream->current = stream->heard;
    if (stream->state == STREAM_STALE && !stream->fenced)
        stream->state = STREAM_LIVE;
    if (++stream->unacked >= FOLLOW_ACK_EVERY)
        s_ack (stream);
}

static void
s_on_heartbeat (stream_t *stream, const tiers_wire_t *msg)
{
    if (stream->state == STREAM_DOWN)
        return;
    const char *incarnation = s_incarnation (msg);
    int64_t epoch = s_number (msg, "epoch");
    int64_t sequence = s_number (msg, "sequence");
    if (msg->status != 200 || !incarnation || epoch < 0 || sequence < 0) {
        s_malformed (stream, "a heartbeat without incarnation, epoch, sequence");
        return;
    }
    if (!streq (incarnation, stream->incarnation) || epoch != stream->epoch) {
        s_reset (stream, "the primary is another incarnation or epoch");
        return;
    }
    if (sequence < stream->position) {
        s_reset (stream, "the primary is behind the follower");
        return;
    }
    stream->heard = s_now_ms ();
    if (sequence > stream->told)
        stream->told = sequence;
    if (stream->position >= stream->told)
        stream->current = stream->heard;
    stream->fenced = tiers_wire_header (msg, "fenced") != NULL;
    stream->state = stream->fenced ? STREAM_STALE : STREAM_LIVE;
    if (stream->position > stream->acked || stream->heard - stream->acked_at >= FOLLOW_ALIVE_MS)
        s_ack (stream);
}

static bool
s_on_stream (void *arg)
{
    stream_t *stream = (stream_t *) arg;
    tiers_wire_t *msg = NULL;
    const char *error = NULL;
    if (!stream->sock || tiers_wire_try_recv (zsock_resolve (stream->sock), NULL, &msg, &error))
        return false;
    bool bad = false;
    const char *op = msg ? tiers_wire_text (msg, "op", &bad) : NULL;
    if (!msg)
        s_malformed (stream, error ? error : "undecodable");
    else
    if (msg->kind != TIERS_WIRE_REPLY || !op || bad)
        s_malformed (stream, "not a stream answer with an op");
    else
    if (streq (op, "change"))
        s_on_change (stream, msg);
    else
    if (streq (op, "heartbeat"))
        s_on_heartbeat (stream, msg);
    else
    if (streq (op, "follow"))
        s_on_follow_answer (stream, msg);
    else
    if (streq (op, "ack") && msg->status != 200)
        s_reset (stream, "the primary refused an ack");
    else
        s_malformed (stream, "an unknown op");
    tiers_wire_destroy (&msg);
    return true;
}

static void
s_on_tick (void *arg)
{
    tiers_follow_t *self = (tiers_follow_t *) arg;
    int64_t now = s_now_ms ();
    for (size_t i = 0; i < self->count; i++) {
        stream_t *stream = &self->streams [i];
        if (stream->target < 0)
            continue;
        if (stream->state == STREAM_LIVE && now - stream->heard > self->config.silent_ms) {
            tiers_warn ("follower %s: the stream of %s is silent: stale", self->name,
                        stream->entry->name);
            stream->state = STREAM_STALE;
        }
        bool silent = now - stream->heard > self->config.silent_ms;
        if ((stream->state == STREAM_DOWN || (stream->state == STREAM_STALE && silent))
        &&  now - stream->asked >= FOLLOW_ASK_MS)
            s_ask (stream);
        if (stream->state != STREAM_DOWN && stream->position > stream->acked)
            s_ack (stream);
    }
}


//  --------------------------------------------------------------------------
//  The API

//  The map's entries of the kind that `link` reaches, in map order.
static int
s_streams (tiers_follow_t *self, const tiers_link_t *link)
{
    const tiers_map_t *map = self->config.map;
    size_t entries = tiers_map_entry_count (map);
    self->streams = (stream_t *) calloc (entries + 1, sizeof (stream_t));
    const char **ranges = (const char **) calloc (entries + 1, sizeof (const char *));
    if (!self->streams || !ranges) {
        free (ranges);
        return -1;
    }
    char follower [96];
    tiers_metrics_label_value (follower, sizeof follower, self->name);
    for (size_t i = 0; i < entries; i++) {
        const tiers_entry_t *entry = tiers_map_entry (map, i);
        if (!streq (entry->kind->name, link->kind))
            continue;
        stream_t *stream = &self->streams [self->count];
        stream->follow = self;
        stream->index = self->count;
        stream->entry = entry;
        stream->target = -1;
        stream->reader = -1;
        ranges [self->count] = tiers_entry_get (entry, "slots", NULL);
        char labels [256];
        snprintf (labels, sizeof labels, "follower=\"%s\",shard=\"%s\"", follower,
                  entry->name);
        stream->resets = tiers_metrics_counter ("tiers_follow_resets_total", labels,
            "Times a keys follower dropped what it held of a shard (start, gap, restart)");
        stream->malformed = tiers_metrics_counter ("tiers_follow_malformed_total", labels,
            "Malformed messages a keys follower got on a shard's stream");
        snprintf (labels, sizeof labels, "follower=\"%s\"", follower);
        stream->keys = tiers_metrics_counter ("tiers_follow_keys_total", labels,
            "Keys (committed writes) a keys follower heard of");
        self->count++;
    }
    self->slots = (uint32_t) tiers_map_cluster_number (map, "slots");
    self->owner = self->count ? tiers_slot_owners (ranges, self->count, self->slots) : NULL;
    free (ranges);
    return self->owner ? 0 : -1;
}

tiers_follow_t *
tiers_follow_new (const tiers_follow_config_t *config, char **why)
{
    assert (config && config->name && config->map && config->entry && config->link);
    assert (config->silent_ms > 0);
    if (why)
        *why = NULL;
    const tiers_link_t *link = tiers_kind_link (config->entry->kind, config->link, NULL);
    if (!link) {
        if (why)
            *why = zsys_sprintf ("the kind %s has no link %s", config->entry->kind->name,
                                 config->link);
        return NULL;
    }
    tiers_follow_t *self = (tiers_follow_t *) zmalloc (sizeof *self);
    self->config = *config;
    self->name = strdup (config->name);
    self->link = strdup (config->link);
    self->config.name = self->name;
    self->config.link = self->link;
    if (s_streams (self, link)) {
        if (why)
            *why = zsys_sprintf ("the map has no %s to follow (or out of memory)",
                                 link->kind);
        tiers_follow_destroy (&self);
        return NULL;
    }
    const tiers_target_t *targets;
    size_t count = tiers_entry_targets (config->entry, config->link, &targets);
    for (size_t t = 0; t < count; t++)
        for (size_t i = 0; i < self->count; i++)
            if (streq (self->streams [i].entry->name, targets [t].entry->name)) {
                stream_t *stream = &self->streams [i];
                stream->target = (long) t;
                stream->sock = tiers_link_connect (config->entry, config->link, t, why);
                if (!stream->sock) {
                    tiers_follow_destroy (&self);
                    return NULL;
                }
            }
    return self;
}

void
tiers_follow_destroy (tiers_follow_t **self_p)
{
    tiers_follow_t *self = *self_p;
    if (!self)
        return;
    //  The reactor is the owner's and may be gone already: not touched.
    for (size_t i = 0; i < self->count; i++)
        zsock_destroy (&self->streams [i].sock);
    free (self->streams);
    free (self->owner);
    free (self->name);
    free (self->link);
    free (self);
    *self_p = NULL;
}

void
tiers_follow_attach (tiers_follow_t *self, tiers_reactor_t *reactor)
{
    assert (self && reactor && !self->reactor);
    self->reactor = reactor;
    for (size_t i = 0; i < self->count; i++) {
        stream_t *stream = &self->streams [i];
        if (stream->target < 0)
            continue;
        stream->reader = tiers_reactor_reader (reactor, stream->sock, 0, s_on_stream, stream);
        s_ask (stream);
    }
    tiers_reactor_timer (reactor, FOLLOW_TICK_MS, s_on_tick, self);
}

size_t
tiers_follow_shard_count (tiers_follow_t *self)
{
    return self->count;
}

size_t
tiers_follow_shard_of (tiers_follow_t *self, const char *collection, const char *id)
{
    return self->owner [tiers_slot_of (collection, id, self->slots)];
}

const char *
tiers_follow_shard_name (tiers_follow_t *self, size_t shard)
{
    assert (shard < self->count);
    return self->streams [shard].entry->name;
}

size_t
tiers_follow_shard_of_key (tiers_follow_t *self, const char *key)
{
    const char *slash = strchr (key, '/');
    size_t length = slash ? (size_t) (slash - key) : 0;
    if (!slash || length > TIERS_COLLECTION_MAX)
        return self->count;
    char collection [TIERS_COLLECTION_MAX + 1];
    memcpy (collection, key, length);
    collection [length] = 0;
    return tiers_follow_shard_of (self, collection, slash + 1);
}

bool
tiers_follow_match (const char *key, void *match_)
{
    tiers_follow_match_t *match = (tiers_follow_match_t *) match_;
    size_t shard = tiers_follow_shard_of_key (match->follow, key);
    return shard == match->shard || shard == match->follow->count;
}

bool
tiers_follow_live (tiers_follow_t *self, size_t shard)
{
    assert (shard < self->count);
    stream_t *stream = &self->streams [shard];
    int64_t now = s_now_ms ();
    return stream->state == STREAM_LIVE && !stream->fenced
        && now - stream->heard <= self->config.silent_ms
        && now - stream->current <= self->config.silent_ms;
}

int64_t
tiers_follow_position (tiers_follow_t *self, size_t shard, const char **incarnation)
{
    assert (shard < self->count);
    stream_t *stream = &self->streams [shard];
    if (incarnation)
        *incarnation = stream->incarnation;
    return stream->state == STREAM_DOWN ? -1 : stream->position;
}

char *
tiers_follow_status (tiers_follow_t *self)
{
    json_t *streams = json_array ();
    int64_t now = s_now_ms ();
    for (size_t i = 0; i < self->count; i++) {
        stream_t *stream = &self->streams [i];
        json_array_append_new (streams, json_pack ("{s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:I}",
            "shard", stream->entry->name,
            "state", stream->target < 0 ? "none"
                   : stream->state == STREAM_LIVE && !tiers_follow_live (self, i) ? "stale"
                   : s_state_name (stream->state),
            "incarnation", stream->incarnation,
            "epoch", (json_int_t) stream->epoch,
            "position", (json_int_t) (stream->state == STREAM_DOWN ? -1 : stream->position),
            "heard_ms", (json_int_t) (stream->heard ? now - stream->heard : -1),
            "fenced", stream->fenced,
            "resets", (json_int_t) tiers_counter_value (stream->resets)));
    }
    char *text = json_dumps (streams, JSON_COMPACT);
    json_decref (streams);
    char *members = zsys_sprintf ("\"streams\":%s", text ? text : "[]");
    free (text);
    return members;
}
