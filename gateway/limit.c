/*  limit.c — token buckets in a bounded table (see limit.h).

    The table is an array of `capacity` entries, allocated once: a hash
    chain per bucket of the index (entry numbers, 0 = none), and a list
    from the most to the least recently used entry. A lookup walks one
    chain; a hit moves its entry to the front; a miss takes a free entry
    or the last one of the list. Nothing is allocated after the start.

    The hash is seeded at random per table, so that the addresses that
    share a chain cannot be chosen from outside.

    Times are in nanoseconds: 1 / rate is exact enough at any rate up to a
    million a second, and int64 nanoseconds of the monotonic clock last
    for centuries.
*/
#include "limit.h"
#include <czmq.h>
#include <netinet/in.h>
#include <sys/random.h>

typedef struct {
    tiers_limit_id_t id;
    int64_t full_at;            //  ns: when the bucket is full again
    uint32_t chain;             //  next in the hash chain (entry + 1, 0 = end)
    uint32_t newer, older;      //  the recency list (entry + 1, 0 = end)
} entry_t;

struct _tiers_limit_t {
    pthread_mutex_t lock;
    unsigned rate, burst;
    int64_t interval;           //  ns per token
    int64_t tolerance;          //  ns: (burst - 1) tokens
    entry_t *entries;
    size_t capacity, used;
    uint32_t *heads;            //  per hash bucket: entry + 1, 0 = empty
    uint64_t mask;              //  hash buckets - 1
    uint32_t newest, oldest;    //  entry + 1
    uint64_t seed [2];
};

tiers_limit_t *
tiers_limit_new (unsigned rate, unsigned burst, size_t capacity)
{
    assert (rate >= 1 && burst >= 1 && capacity >= 1 && capacity < UINT32_MAX);
    tiers_limit_t *self = (tiers_limit_t *) zmalloc (sizeof *self);
    assert (self);
    pthread_mutex_init (&self->lock, NULL);
    self->rate = rate;
    self->burst = burst;
    self->interval = 1000000000LL / rate;
    self->tolerance = (int64_t) (burst - 1) * self->interval;
    self->capacity = capacity;
    self->entries = (entry_t *) calloc (capacity, sizeof (entry_t));
    size_t buckets = 1;
    while (buckets < capacity)
        buckets *= 2;
    self->heads = (uint32_t *) calloc (buckets, sizeof (uint32_t));
    assert (self->entries && self->heads);
    self->mask = buckets - 1;
    if (getrandom (self->seed, sizeof self->seed, 0) != sizeof self->seed) {
        self->seed [0] = (uint64_t) zclock_time () ^ (uint64_t) (uintptr_t) self;
        self->seed [1] = (uint64_t) getpid () * 0x9e3779b97f4a7c15ULL;
    }
    return self;
}

void
tiers_limit_destroy (tiers_limit_t **self_p)
{
    assert (self_p);
    tiers_limit_t *self = *self_p;
    if (self) {
        pthread_mutex_destroy (&self->lock);
        free (self->entries);
        free (self->heads);
        free (self);
        *self_p = NULL;
    }
}

unsigned
tiers_limit_rate (const tiers_limit_t *self)
{
    assert (self);
    return self->rate;
}

unsigned
tiers_limit_burst (const tiers_limit_t *self)
{
    assert (self);
    return self->burst;
}

size_t
tiers_limit_size (tiers_limit_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    size_t used = self->used;
    pthread_mutex_unlock (&self->lock);
    return used;
}

//  splitmix64's finalizer over the seeded halves.
static uint64_t
s_mix (uint64_t value)
{
    value ^= value >> 30;
    value *= 0xbf58476d1ce4e5b9ULL;
    value ^= value >> 27;
    value *= 0x94d049bb133111ebULL;
    return value ^ (value >> 31);
}

static uint64_t
s_hash (const tiers_limit_t *self, tiers_limit_id_t id)
{
    return s_mix (s_mix (id.high ^ self->seed [0]) ^ id.low ^ self->seed [1]);
}

static bool
s_same (tiers_limit_id_t a, tiers_limit_id_t b)
{
    return a.high == b.high && a.low == b.low;
}

//  Out of the recency list.
static void
s_unlink (tiers_limit_t *self, uint32_t number)
{
    entry_t *entry = &self->entries [number - 1];
    if (entry->newer)
        self->entries [entry->newer - 1].older = entry->older;
    else
        self->newest = entry->older;
    if (entry->older)
        self->entries [entry->older - 1].newer = entry->newer;
    else
        self->oldest = entry->newer;
    entry->newer = entry->older = 0;
}

//  At the front of the recency list.
static void
s_push (tiers_limit_t *self, uint32_t number)
{
    entry_t *entry = &self->entries [number - 1];
    entry->older = self->newest;
    entry->newer = 0;
    if (self->newest)
        self->entries [self->newest - 1].newer = number;
    self->newest = number;
    if (!self->oldest)
        self->oldest = number;
}

//  Out of its hash chain.
static void
s_unchain (tiers_limit_t *self, uint32_t number)
{
    entry_t *entry = &self->entries [number - 1];
    uint32_t *link = &self->heads [s_hash (self, entry->id) & self->mask];
    while (*link && *link != number)
        link = &self->entries [*link - 1].chain;
    assert (*link == number);
    *link = entry->chain;
    entry->chain = 0;
}

int64_t
tiers_limit_take (tiers_limit_t *self, tiers_limit_id_t id, int64_t now_us)
{
    assert (self);
    int64_t now = now_us * 1000;
    pthread_mutex_lock (&self->lock);
    uint32_t *head = &self->heads [s_hash (self, id) & self->mask];
    uint32_t number = *head;
    while (number && !s_same (self->entries [number - 1].id, id))
        number = self->entries [number - 1].chain;
    int64_t full_at = number ? self->entries [number - 1].full_at : now;
    if (full_at < now)
        full_at = now;
    int64_t wait = full_at - now - self->tolerance;
    if (wait > 0) {
        //  Refused: the bucket keeps its tokens (none), and its entry (a
        //  bucket without one is full) counts as used: a client that keeps
        //  asking is the last one the table should forget.
        if (self->newest != number) {
            s_unlink (self, number);
            s_push (self, number);
        }
        pthread_mutex_unlock (&self->lock);
        return (wait + 999) / 1000;
    }
    //  Every entry in use is on the recency list; a free one is not.
    bool listed = number != 0;
    if (!number) {
        if (self->used < self->capacity)
            number = (uint32_t) ++self->used;
        else {
            number = self->oldest;          //  the least recently used
            s_unchain (self, number);
            listed = true;
        }
        entry_t *entry = &self->entries [number - 1];
        entry->id = id;
        entry->chain = *head;
        *head = number;
    }
    if (self->newest != number) {
        if (listed)
            s_unlink (self, number);
        s_push (self, number);
    }
    self->entries [number - 1].full_at = full_at + self->interval;
    pthread_mutex_unlock (&self->lock);
    return 0;
}

tiers_limit_id_t
tiers_limit_address (const struct sockaddr *address)
{
    tiers_limit_id_t id = { 0, 0 };
    if (!address)
        return id;
    //  IPv4 as the low half with a mark bit above the address; an IPv6 /64
    //  as the high half with the low one 0, so the two never meet.
    if (address->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *) address;
        id.low = (1ULL << 32) | ntohl (in4->sin_addr.s_addr);
    }
    else
    if (address->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) address;
        const uint8_t *bytes = in6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED (&in6->sin6_addr)) {
            uint32_t four = (uint32_t) bytes [12] << 24 | (uint32_t) bytes [13] << 16
                          | (uint32_t) bytes [14] << 8 | bytes [15];
            id.low = (1ULL << 32) | four;
        }
        else {
            for (int i = 0; i < 8; i++)
                id.high = id.high << 8 | bytes [i];
            //  ::/64 would meet "no address" (0, 0): mark it.
            if (id.high == 0)
                id.low = 1ULL << 33;
        }
    }
    return id;
}
