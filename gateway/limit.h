/*  limit.h — rate limits: a token bucket per key or per client address,
    in a table of bounded size.

    A bucket holds at most `burst` tokens and gains `rate` a second; a
    request takes one, and a request that finds none is refused without
    taking any. The bucket is kept as one number, the time at which it
    will be full again (the generic cell rate algorithm, GCRA): a request
    at `now` is refused when that time is more than (burst - 1) / rate
    seconds ahead, and otherwise pushes it 1 / rate further. A bucket whose
    time has passed is full, the same as one never seen, so an entry only
    matters for (burst / rate) seconds after its last request.

    That is what bounds the table. It holds at most `capacity` buckets;
    when it is full, a new one takes the place of the least recently used
    one, which is the likeliest to be full again already, and which at
    worst gets a full bucket back early. A spray of addresses can make the
    table forget, never make it grow.

    One table may be shared by the instances of a gateway (one thread
    each): every call takes its lock, held for a lookup and a few stores.
*/
#ifndef TIERS_LIMIT_H
#define TIERS_LIMIT_H

#include <stdint.h>
#include <stddef.h>

typedef struct _tiers_limit_t tiers_limit_t;

//  Who a bucket belongs to: a key's index, or a client address (see
//  tiers_limit_address).
typedef struct {
    uint64_t high, low;
} tiers_limit_id_t;

//  `rate` tokens a second (>= 1), at most `burst` (>= 1) held, at most
//  `capacity` (>= 1) buckets.
tiers_limit_t *tiers_limit_new (unsigned rate, unsigned burst, size_t capacity);
void tiers_limit_destroy (tiers_limit_t **self_p);

//  Takes a token from `id`'s bucket at `now_us` (monotonic). Returns 0
//  when it was there, else the microseconds until one will be (> 0), and
//  the bucket is left as it was.
int64_t tiers_limit_take (tiers_limit_t *self, tiers_limit_id_t id, int64_t now_us);

unsigned tiers_limit_rate (const tiers_limit_t *self);
unsigned tiers_limit_burst (const tiers_limit_t *self);
//  Buckets in the table now.
size_t tiers_limit_size (tiers_limit_t *self);

//  The bucket of a client address: an IPv4 address as itself, an IPv6
//  address by its /64 (one subscriber's usual share, which it can fill
//  with addresses at will); an IPv4-mapped IPv6 address as the IPv4 one.
struct sockaddr;
tiers_limit_id_t tiers_limit_address (const struct sockaddr *address);

#endif
