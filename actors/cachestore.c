/*  cachestore.c — the memory of a read cache: a hash table of records under
    a byte cap, evicted by SIEVE, with leases and invalidation floors.

    The one idea: every key the store knows is one RECORD, one allocation
    (the struct, then the key, the tag and the value, each NUL-ended), found
    through an open-addressing table (linear probing, backward-shift
    deletion, the key's seeded hash kept in the slot so a probe rarely
    touches a record it does not want). A record is either
        HELD     an entry (a document, or a negative entry): on the SIEVE
                 queue, which only entries are on; or
        PENDING  no entry, but a live lease and/or a live FLOOR (the highest
                 version an invalidation of the key carried: a fill older
                 than it is stale): on the pending queue, oldest first.
    A record that is neither (its lease and its floor both ran out) is dead
    and goes when it is next touched, or from the old end of the pending
    queue.
    An entry keeps the floor it was filled under (and one an invalidation
    older than the entry raised): when it is evicted, expired or flushed
    while that floor holds, the floor stays behind as a pending record.

    SIEVE (Zhang et al., NSDI'24; doc/cache.md has the measurements against
    LRU that chose it): entries join at the head of a FIFO queue; a hit only
    sets the entry's `visited` bit, so a hit allocates nothing and moves
    nothing. To evict, a hand walks from where it last stopped toward the
    head (wrapping to the tail): a visited entry loses its bit and stays, the
    first unvisited one goes. New entries that are never hit again are thus
    the first to go, which is also what makes it resist scans.

    Bytes: everything the store allocated is counted, by what glibc's malloc
    really takes for it (s_charge: the request plus its chunk header, rounded
    up to 16, or whole pages above the mmap threshold): the store's struct,
    the slot array, every record. A change that needs memory first makes
    room — dead pending records from the old end of the pending queue, then
    entries by SIEVE, then, only when no entry is left, the oldest live
    pending records — and is given up if there is still none. So
        self->bytes <= self->cap        after every call (asserted).
    Dropping a live floor to make room would forget what a fill must not be
    older than; so the store then refuses every fill as STALE until the
    dropped floor would have run out (self->floors_lost_until): safe, and it
    only happens when the cap is full of leases and floors, not entries.

    Time: the store never reads a clock; it keeps the highest now_ms it was
    given (self->now). An invalidation carries no time, so the floor it
    leaves lasts from self->now for lease_ms, and a lease handed out while a
    floor lives extends the floor to the lease's end: any lease that could
    have read storage from before the invalidation (a lagging replica) is
    checked against it for as long as it can fill.
*/
#include "actors/cachestore.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct _record_t record_t;
struct _record_t {
    record_t *newer, *older;    //  on the SIEVE queue (HELD) or the pending queue
    uint64_t hash;
    size_t charge;              //  what this allocation counts in self->bytes
    uint64_t lease;             //  PENDING: the lease's token, 0 when none
    int64_t lease_until;        //  the lease is live while now < lease_until
    int64_t floor;              //  a fill older than this is stale (an entry
    int64_t floor_until;        //  keeps it for when it goes); holds while
                                //  now < floor_until
    int64_t version;            //  HELD: the entry's version
    int64_t expires;            //  HELD: gone at this time (INT64_MAX: never)
    size_t size;                //  HELD: the value's size
    uint32_t key_len, tag_len;
    bool held;                  //  HELD (an entry) or PENDING
    bool negative;              //  HELD: the document does not exist
    bool visited;               //  HELD: hit since the hand last passed
    char data [];               //  key NUL tag NUL value
};

typedef struct {
    uint64_t hash;
    record_t *record;           //  NULL: the slot is free
} slot_t;

typedef struct {
    record_t *head, *tail;      //  head: newest
} queue_t;

struct _tiers_cachestore_t {
    tiers_cachestore_config_t config;
    slot_t *slots;
    size_t capacity;            //  slots, a power of two
    size_t count;               //  records in the table (HELD and PENDING)
    size_t slots_charge;
    queue_t entries;            //  HELD records, SIEVE's FIFO
    record_t *hand;             //  SIEVE's hand, NULL: start at the tail
    queue_t pending;            //  PENDING records, oldest first from the tail
    size_t bytes;
    size_t cap;
    int64_t now;                //  the highest now_ms seen
    int64_t floors_lost_until;  //  fills refused STALE until then (see above)
    uint64_t seed;              //  the table's hash seed
    uint64_t lease_seed;
    uint64_t lease_count;
    tiers_cachestore_stats_t stats;
};

#define SLOTS_MIN       16
#define MMAP_THRESHOLD  (128 * 1024)

//  The bench (bench/cachesim.c) includes this file with this defined, to
//  measure LRU against SIEVE on the same table and accounting. The store
//  itself evicts by SIEVE: s_lru is the constant false and the LRU lines go.
#ifdef TIERS_CACHESTORE_BENCH
static bool s_lru = false;
#else
#define s_lru false
#endif


//  What malloc (glibc) really takes for a request of n bytes: a chunk of
//  n plus an 8-byte header rounded up to 16, at least 32; above the mmap
//  threshold whole pages and the header. Fragmentation is not counted.
static size_t
s_charge (size_t n)
{
    if (n >= MMAP_THRESHOLD)
        return (n + 16 + 4095) & ~(size_t) 4095;
    size_t chunk = (n + 8 + 15) & ~(size_t) 15;
    return chunk < 32 ? 32 : chunk;
}

static size_t
s_record_charge (size_t key_len, size_t tag_len, size_t size)
{
    return s_charge (sizeof (record_t) + key_len + 1 + tag_len + 1 + size);
}

//  splitmix64's finalizer: a bijection, so distinct counters give distinct
//  tokens.
static uint64_t
s_mix (uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

//  A seeded hash of the key, eight bytes at a time. Not cryptographic: the
//  seed is random per store, so a client cannot aim keys at one chain.
static uint64_t
s_hash (const char *key, size_t len, uint64_t seed)
{
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
    while (len >= 8) {
        uint64_t word;
        memcpy (&word, key, 8);
        h = (h ^ word) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        key += 8;
        len -= 8;
    }
    uint64_t word = 0;
    memcpy (&word, key, len);
    return s_mix (h ^ word);
}

static uint64_t
s_random_seed (void)
{
    uint64_t seed = 0;
    if (getentropy (&seed, sizeof seed) != 0) {
        struct timespec ts;
        clock_gettime (CLOCK_MONOTONIC, &ts);
        seed = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 32)
             ^ (uint64_t) getpid () ^ (uint64_t) (uintptr_t) &seed;
    }
    return s_mix (seed);
}


//  ---------------------------------------------------------------------
//  The two queues (doubly linked; head newest)

static void
s_queue_push (queue_t *queue, record_t *record)
{
    record->older = queue->head;
    record->newer = NULL;
    if (queue->head)
        queue->head->newer = record;
    else
        queue->tail = record;
    queue->head = record;
}

static void
s_queue_remove (queue_t *queue, record_t *record)
{
    if (record->newer)
        record->newer->older = record->older;
    else
        queue->head = record->older;
    if (record->older)
        record->older->newer = record->newer;
    else
        queue->tail = record->newer;
    record->newer = record->older = NULL;
}


//  ---------------------------------------------------------------------
//  The table

static size_t
s_slots_charge (size_t capacity)
{
    return s_charge (capacity * sizeof (slot_t));
}

//  The slot array this many records need: the present one while they fill
//  at most 3/4 of it, else twice as many.
static size_t
s_capacity_for (tiers_cachestore_t *self, size_t records)
{
    size_t capacity = self->capacity;
    while (records > capacity / 4 * 3)
        capacity *= 2;
    return capacity;
}

static void
s_slot_place (slot_t *slots, size_t mask, uint64_t hash, record_t *record)
{
    size_t i = hash & mask;
    while (slots [i].record)
        i = (i + 1) & mask;
    slots [i].hash = hash;
    slots [i].record = record;
}

//  Moves the table to `capacity` slots. Returns -1 when out of memory (the
//  table stays as it was).
static int
s_resize (tiers_cachestore_t *self, size_t capacity)
{
    assert (capacity >= SLOTS_MIN && self->count <= capacity / 4 * 3);
    if (capacity == self->capacity)
        return 0;
    slot_t *slots = (slot_t *) calloc (capacity, sizeof (slot_t));
    if (!slots)
        return -1;
    for (size_t i = 0; i < self->capacity; i++)
        if (self->slots [i].record)
            s_slot_place (slots, capacity - 1, self->slots [i].hash, self->slots [i].record);
    free (self->slots);
    self->slots = slots;
    self->capacity = capacity;
    self->bytes -= self->slots_charge;
    self->slots_charge = s_slots_charge (capacity);
    self->bytes += self->slots_charge;
    return 0;
}

static record_t *
s_find (tiers_cachestore_t *self, const char *key, size_t key_len, uint64_t hash)
{
    size_t mask = self->capacity - 1;
    for (size_t i = hash & mask; self->slots [i].record; i = (i + 1) & mask) {
        record_t *record = self->slots [i].record;
        if (self->slots [i].hash == hash && record->key_len == key_len
        &&  memcmp (record->data, key, key_len) == 0)
            return record;
    }
    return NULL;
}

//  Takes the record's slot out; the slots after it in its run move back so
//  that no probe stops early (linear probing needs no tombstones then).
static void
s_slot_remove (tiers_cachestore_t *self, record_t *record)
{
    size_t mask = self->capacity - 1;
    size_t i = record->hash & mask;
    while (self->slots [i].record != record) {
        assert (self->slots [i].record);
        i = (i + 1) & mask;
    }
    size_t hole = i;
    for (size_t j = (hole + 1) & mask; self->slots [j].record; j = (j + 1) & mask) {
        size_t home = self->slots [j].hash & mask;
        //  The entry at j may fill the hole when its home is not in (hole, j].
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            self->slots [hole] = self->slots [j];
            hole = j;
        }
    }
    self->slots [hole].record = NULL;
    self->slots [hole].hash = 0;
    self->count--;
}


//  ---------------------------------------------------------------------
//  Records

//  Frees a record that is in the table and on its queue.
static void
s_record_drop (tiers_cachestore_t *self, record_t *record)
{
    s_slot_remove (self, record);
    if (record->held) {
        if (self->hand == record)
            self->hand = record->newer;
        s_queue_remove (&self->entries, record);
        self->stats.entries--;
    }
    else
        s_queue_remove (&self->pending, record);
    assert (self->bytes >= record->charge);
    self->bytes -= record->charge;
    free (record);
}

static bool
s_pending_dead (record_t *record, int64_t now)
{
    return (record->lease == 0 || now >= record->lease_until) && now >= record->floor_until;
}

//  Raises the record's floor to `version` for lease_ms from now.
static void
s_floor_raise (tiers_cachestore_t *self, record_t *record, int64_t version)
{
    if (self->now >= record->floor_until || version > record->floor)
        record->floor = version;
    if (record->floor_until < self->now + self->config.lease_ms)
        record->floor_until = self->now + self->config.lease_ms;
}

//  Drops an entry (evicted, expired, invalidated, flushed). A floor it
//  still carries — a write seen less than lease_ms ago — stays, as a
//  pending record of the key alone (never larger than the entry was).
//  Returns that record, or NULL.
static record_t *
s_entry_drop (tiers_cachestore_t *self, record_t *entry)
{
    assert (entry->held);
    record_t *floor = NULL;
    if (self->now < entry->floor_until)
        floor = (record_t *) malloc (sizeof (record_t) + entry->key_len + 2);
    if (!floor) {
        s_record_drop (self, entry);
        return NULL;
    }
    memset (floor, 0, sizeof (record_t));
    floor->hash = entry->hash;
    floor->charge = s_record_charge (entry->key_len, 0, 0);
    floor->key_len = entry->key_len;
    floor->floor = entry->floor;
    floor->floor_until = entry->floor_until;
    memcpy (floor->data, entry->data, entry->key_len + 1);
    floor->data [entry->key_len + 1] = 0;
    s_record_drop (self, entry);
    s_slot_place (self->slots, self->capacity - 1, floor->hash, floor);
    self->count++;
    self->bytes += floor->charge;
    s_queue_push (&self->pending, floor);
    return floor;
}

//  Drops one entry chosen by the policy; false when there is none.
static bool
s_evict_entry (tiers_cachestore_t *self)
{
    record_t *victim = self->entries.tail;
    if (!victim)
        return false;
    if (!s_lru) {
        victim = self->hand ? self->hand : self->entries.tail;
        while (victim->visited) {
            victim->visited = false;
            victim = victim->newer ? victim->newer : self->entries.tail;
        }
        self->hand = victim;            //  s_record_drop moves it to the victim's newer
    }
    s_entry_drop (self, victim);
    self->stats.evictions++;
    return true;
}

//  Makes room for one more record of `charge` bytes. Returns -1 when even
//  an empty store has none.
static int
s_make_room (tiers_cachestore_t *self, size_t charge)
{
    bool emptied = false;
    for (;;) {
        size_t capacity = s_capacity_for (self, self->count + 1);
        size_t need = self->bytes - self->slots_charge + s_slots_charge (capacity) + charge;
        if (need <= self->cap)
            return s_resize (self, capacity);
        record_t *oldest = self->pending.tail;
        if (oldest && s_pending_dead (oldest, self->now))
            s_record_drop (self, oldest);
        else
        if (s_evict_entry (self))
            ;
        else
        if (oldest) {
            if (self->now < oldest->floor_until && oldest->floor_until > self->floors_lost_until)
                self->floors_lost_until = oldest->floor_until;
            s_record_drop (self, oldest);
        }
        else
        if (!emptied && self->capacity > SLOTS_MIN) {
            //  Nothing is held: a slot array grown for many records may go.
            emptied = true;
            if (s_resize (self, SLOTS_MIN))
                return -1;
        }
        else
            return -1;
    }
}

//  Makes a record for `key` with room for a tag and a value of these sizes,
//  and puts it in the table; the caller fills it and queues it. NULL when
//  there is no room.
static record_t *
s_record_new (tiers_cachestore_t *self, const char *key, size_t key_len, uint64_t hash,
              size_t tag_len, size_t size)
{
    size_t charge = s_record_charge (key_len, tag_len, size);
    if (s_make_room (self, charge))
        return NULL;
    record_t *record = (record_t *) malloc (sizeof (record_t) + key_len + 1 + tag_len + 1 + size);
    if (!record)
        return NULL;
    memset (record, 0, sizeof (record_t));
    record->hash = hash;
    record->charge = charge;
    record->key_len = (uint32_t) key_len;
    record->tag_len = (uint32_t) tag_len;
    record->floor_until = INT64_MIN;
    memcpy (record->data, key, key_len);
    record->data [key_len] = 0;
    s_slot_place (self->slots, self->capacity - 1, hash, record);
    self->count++;
    self->bytes += charge;
    return record;
}

//  A new lease on the pending record, which goes to the queue's head (its
//  end is now the latest of all).
static uint64_t
s_lease (tiers_cachestore_t *self, record_t *record, int64_t now)
{
    uint64_t token;
    do
        token = s_mix (++self->lease_count ^ self->lease_seed);
    while (token == 0);
    record->lease = token;
    record->lease_until = now + self->config.lease_ms;
    if (now < record->floor_until && record->floor_until < record->lease_until)
        record->floor_until = record->lease_until;
    s_queue_remove (&self->pending, record);
    s_queue_push (&self->pending, record);
    return token;
}

//  Ends the record's lease; the record goes when no floor holds it.
static void
s_lease_end (tiers_cachestore_t *self, record_t *record, int64_t now)
{
    record->lease = 0;
    if (s_pending_dead (record, now))
        s_record_drop (self, record);
}

//  Drops dead records from the head of the pending queue, a few at a time,
//  so that floors of keys never looked up again do not stay.
static void
s_reap (tiers_cachestore_t *self, int limit)
{
    while (limit-- > 0 && self->pending.tail
       &&  s_pending_dead (self->pending.tail, self->now))
        s_record_drop (self, self->pending.tail);
}


//  ---------------------------------------------------------------------
//  The API

tiers_cachestore_t *
tiers_cachestore_new (const tiers_cachestore_config_t *config)
{
    assert (config);
    if (config->cap_bytes < TIERS_CACHESTORE_CAP_MIN || config->ttl_ms < 0
    ||  config->negative_ttl_ms <= 0 || config->lease_ms <= 0)
        return NULL;
    tiers_cachestore_t *self = (tiers_cachestore_t *) calloc (1, sizeof (tiers_cachestore_t));
    if (!self)
        return NULL;
    self->config = *config;
    self->cap = config->cap_bytes;
    self->slots = (slot_t *) calloc (SLOTS_MIN, sizeof (slot_t));
    if (!self->slots) {
        free (self);
        return NULL;
    }
    self->capacity = SLOTS_MIN;
    self->slots_charge = s_slots_charge (SLOTS_MIN);
    self->bytes = s_charge (sizeof (tiers_cachestore_t)) + self->slots_charge;
    self->now = 0;
    self->floors_lost_until = INT64_MIN;
    self->seed = s_random_seed ();
    self->lease_seed = s_mix (self->seed + 1);
    assert (self->bytes <= self->cap);
    return self;
}

void
tiers_cachestore_destroy (tiers_cachestore_t **self_p)
{
    assert (self_p);
    tiers_cachestore_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->capacity; i++)
        free (self->slots [i].record);
    free (self->slots);
    free (self);
    *self_p = NULL;
}

tiers_cache_lookup_t
tiers_cachestore_get (tiers_cachestore_t *self, const char *key, int64_t now_ms,
                      tiers_cache_entry_t *entry, uint64_t *lease)
{
    assert (self && key && entry && lease);
    if (now_ms > self->now)
        self->now = now_ms;
    *lease = 0;
    size_t key_len = strlen (key);
    uint64_t hash = s_hash (key, key_len, self->seed);
    record_t *record = s_find (self, key, key_len, hash);
    if (record && record->held) {
        if (now_ms < record->expires) {
            //  The hit: a bit is set, nothing moves, nothing is allocated.
            if (s_lru) {
                s_queue_remove (&self->entries, record);
                s_queue_push (&self->entries, record);
            }
            else
                record->visited = true;
            entry->negative = record->negative;
            entry->version = record->version;
            entry->tag = record->data + record->key_len + 1;
            entry->value = record->negative ? NULL
                         : record->data + record->key_len + 1 + record->tag_len + 1;
            entry->size = record->size;
            self->stats.hits++;
            return TIERS_CACHE_HIT;
        }
        record = s_entry_drop (self, record);
        self->stats.expirations++;
    }
    if (record && record->lease && now_ms < record->lease_until) {
        self->stats.leased++;
        return TIERS_CACHE_LEASED;
    }
    self->stats.misses++;
    if (record && s_pending_dead (record, now_ms)) {
        s_record_drop (self, record);
        record = NULL;
    }
    s_reap (self, 2);
    if (!record) {
        record = s_record_new (self, key, key_len, hash, 0, 0);
        if (record)
            s_queue_push (&self->pending, record);
    }
    if (record)
        *lease = s_lease (self, record, now_ms);
    else {
        //  No room even for the lease (a cap far too small for this key):
        //  the caller reads storage; its fill will be refused.
        *lease = s_mix (++self->lease_count ^ self->lease_seed) | 1;
    }
    assert (self->bytes <= self->cap);
    return TIERS_CACHE_MISS;
}

void
tiers_cachestore_time (tiers_cachestore_t *self, int64_t now_ms)
{
    assert (self);
    if (now_ms > self->now)
        self->now = now_ms;
}

bool
tiers_cachestore_release (tiers_cachestore_t *self, const char *key, uint64_t lease,
                          int64_t now_ms)
{
    assert (self && key);
    if (now_ms > self->now)
        self->now = now_ms;
    size_t key_len = strlen (key);
    record_t *record = s_find (self, key, key_len, s_hash (key, key_len, self->seed));
    if (!record || record->held || lease == 0 || record->lease != lease
    ||  now_ms >= record->lease_until)
        return false;
    s_lease_end (self, record, now_ms);
    assert (self->bytes <= self->cap);
    return true;
}

tiers_fill_t
tiers_cachestore_fill (tiers_cachestore_t *self, const char *key, uint64_t lease,
                       const void *value, size_t size, const char *tag, int64_t version,
                       int64_t now_ms)
{
    assert (self && key);
    if (now_ms > self->now)
        self->now = now_ms;
    size_t key_len = strlen (key);
    uint64_t hash = s_hash (key, key_len, self->seed);
    record_t *record = s_find (self, key, key_len, hash);
    if (!record || record->held || lease == 0 || record->lease != lease
    ||  now_ms >= record->lease_until) {
        if (record && !record->held && s_pending_dead (record, now_ms))
            s_record_drop (self, record);
        self->stats.refused++;
        return TIERS_FILL_NO_LEASE;
    }
    //  The lease is the caller's: it ends here, whatever comes of the fill.
    bool stale = (now_ms < record->floor_until && version < record->floor)
              || now_ms < self->floors_lost_until;
    if (!value) {
        size = 0;
        tag = "";
    }
    if (!tag)
        tag = "";
    size_t tag_len = strlen (tag);
    size_t charge = s_record_charge (key_len, tag_len, size);
    bool too_large = charge + s_charge (sizeof (tiers_cachestore_t)) + s_slots_charge (SLOTS_MIN)
                   > self->cap;
    if (stale || too_large) {
        s_lease_end (self, record, now_ms);
        self->stats.refused++;
        assert (self->bytes <= self->cap);
        return stale ? TIERS_FILL_STALE : TIERS_FILL_TOO_LARGE;
    }
    //  The pending record goes; the entry is a new record, which keeps the
    //  floor (<= version) for when it goes.
    int64_t floor = record->floor, floor_until = record->floor_until;
    s_record_drop (self, record);
    record = s_record_new (self, key, key_len, hash, tag_len, size);
    if (!record) {
        //  Out of memory only: the room was checked above.
        self->stats.refused++;
        return TIERS_FILL_TOO_LARGE;
    }
    record->held = true;
    record->floor = floor;
    record->floor_until = floor_until;
    record->negative = value == NULL;
    record->version = version;
    record->size = size;
    int64_t ttl = value ? self->config.ttl_ms : self->config.negative_ttl_ms;
    record->expires = ttl > 0 ? now_ms + ttl : INT64_MAX;
    char *text = record->data + key_len + 1;
    memcpy (text, tag, tag_len + 1);
    if (size)
        memcpy (text + tag_len + 1, value, size);
    s_queue_push (&self->entries, record);
    self->stats.entries++;
    self->stats.fills++;
    assert (self->bytes <= self->cap);
    return TIERS_FILL_STORED;
}

bool
tiers_cachestore_invalidate (tiers_cachestore_t *self, const char *key, int64_t version)
{
    assert (self && key);
    size_t key_len = strlen (key);
    uint64_t hash = s_hash (key, key_len, self->seed);
    record_t *record = s_find (self, key, key_len, hash);
    bool changed = false;
    if (record && record->held) {
        if (record->version >= version) {
            //  What is held is newer than the write; it remembers the write
            //  for when it goes.
            s_floor_raise (self, record, version);
            return false;
        }
        record = s_entry_drop (self, record);
        changed = true;
    }
    if (record && s_pending_dead (record, self->now)) {
        s_record_drop (self, record);
        record = NULL;
    }
    s_reap (self, 2);
    if (record) {
        if (record->lease && self->now < record->lease_until)
            changed = true;
        record->lease = 0;
        s_queue_remove (&self->pending, record);
    }
    else {
        //  Never more than the entry just dropped takes, so there is room
        //  unless the key was not held and the store is full of floors.
        record = s_record_new (self, key, key_len, hash, 0, 0);
        if (!record) {
            if (self->now + self->config.lease_ms > self->floors_lost_until)
                self->floors_lost_until = self->now + self->config.lease_ms;
            if (changed)
                self->stats.invalidations++;
            return changed;
        }
    }
    s_floor_raise (self, record, version);
    s_queue_push (&self->pending, record);
    if (changed)
        self->stats.invalidations++;
    assert (self->bytes <= self->cap);
    return changed;
}

void
tiers_cachestore_flush (tiers_cachestore_t *self, tiers_cachestore_match_fn *match,
                        void *arg)
{
    assert (self);
    record_t *record = self->entries.head;
    while (record) {
        record_t *older = record->older;
        if (!match || match (record->data, arg))
            s_entry_drop (self, record);
        record = older;
    }
    record = self->pending.head;
    while (record) {
        record_t *older = record->older;
        if (!match || match (record->data, arg))
            s_lease_end (self, record, self->now);
        record = older;
    }
    if (self->count == 0)
        s_resize (self, SLOTS_MIN);
    assert (self->bytes <= self->cap);
}

void
tiers_cachestore_stats (tiers_cachestore_t *self, tiers_cachestore_stats_t *stats)
{
    assert (self && stats);
    *stats = self->stats;
    stats->bytes = self->bytes;
    stats->cap = self->cap;
}
