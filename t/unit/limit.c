/*  t/unit/limit.c — tests for gateway/limit.c, the token buckets.

    A burst, then one token per 1/rate; a refusal takes nothing and says
    when a token is back; buckets are apart; the table stays within its
    capacity under a spray of ids and forgets the least recently used
    first; addresses map to buckets (IPv6 by /64, IPv4-mapped as IPv4).
*/
#include "gateway/limit.h"
#include "t/tap.h"
#include <czmq.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#define SECOND  1000000     //  us

static tiers_limit_id_t
s_id (uint64_t n)
{
    tiers_limit_id_t id = { 7, n };
    return id;
}

int
main (void)
{
    tiers_limit_t *limit = tiers_limit_new (2, 3, 16);      //  2/s, burst 3
    int64_t now = 1000 * (int64_t) SECOND;
    int passed = 0;
    for (int i = 0; i < 3; i++)
        passed += tiers_limit_take (limit, s_id (1), now) == 0;
    is_int (passed, 3, "a burst of 3 passes at once");
    int64_t wait = tiers_limit_take (limit, s_id (1), now);
    is_int (wait, SECOND / 2, "the 4th waits 1/rate = 500 ms");
    is_int (tiers_limit_take (limit, s_id (1), now), SECOND / 2,
            "a refusal takes nothing: the 5th waits the same");
    is_int (tiers_limit_take (limit, s_id (2), now), 0, "another id has its own bucket");
    is_int (tiers_limit_take (limit, s_id (1), now + SECOND / 2 - 1), 1,
            "1 us before the token: still refused");
    is_int (tiers_limit_take (limit, s_id (1), now + SECOND / 2), 0, "at 500 ms: one passes");
    ok (tiers_limit_take (limit, s_id (1), now + SECOND / 2) > 0, "... and only one");
    passed = 0;
    for (int i = 0; i < 5; i++)
        passed += tiers_limit_take (limit, s_id (1), now + 100 * (int64_t) SECOND) == 0;
    is_int (passed, 3, "idle for long: a full burst again, never more");
    is_int (tiers_limit_rate (limit), 2, "rate");
    is_int (tiers_limit_burst (limit), 3, "burst");
    tiers_limit_destroy (&limit);
    ok (limit == NULL, "destroy nulls the pointer");

    //  The table's bound: capacity 64 under 100000 ids.
    limit = tiers_limit_new (1, 1, 64);
    for (uint64_t n = 0; n < 100000; n++)
        tiers_limit_take (limit, s_id (n), now);
    is_int ((long long) tiers_limit_size (limit), 64, "a spray of 100000 ids: 64 buckets kept");
    ok (tiers_limit_take (limit, s_id (99999), now) > 0, "the most recent id is still limited");
    is_int (tiers_limit_take (limit, s_id (0), now), 0,
            "the least recent one was forgotten: a full bucket");
    //  Recency, not age: an id used again survives a spray of others.
    tiers_limit_destroy (&limit);
    limit = tiers_limit_new (1, 1, 8);
    tiers_limit_take (limit, s_id (1000), now);
    for (uint64_t n = 0; n < 100; n++) {
        tiers_limit_take (limit, s_id (n), now);
        tiers_limit_take (limit, s_id (1000), now);     //  refused, but used
    }
    ok (tiers_limit_take (limit, s_id (1000), now) > 0,
        "an id asking all along stays limited through a spray");
    tiers_limit_destroy (&limit);

    //  A million a second: the interval is 1 us, exact.
    limit = tiers_limit_new (1000000, 1, 4);
    is_int (tiers_limit_take (limit, s_id (1), now), 0, "1000000/s: one passes");
    is_int (tiers_limit_take (limit, s_id (1), now), 1, "... the next in 1 us");
    tiers_limit_destroy (&limit);

    //  Addresses.
    struct sockaddr_in a4 = { .sin_family = AF_INET };
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 }, b6 = a6, m6 = a6;
    inet_pton (AF_INET, "192.0.2.7", &a4.sin_addr);
    inet_pton (AF_INET6, "2001:db8:1:2::1", &a6.sin6_addr);
    inet_pton (AF_INET6, "2001:db8:1:2:ffff::9", &b6.sin6_addr);
    inet_pton (AF_INET6, "::ffff:192.0.2.7", &m6.sin6_addr);
    tiers_limit_id_t i4 = tiers_limit_address ((struct sockaddr *) &a4);
    tiers_limit_id_t i6 = tiers_limit_address ((struct sockaddr *) &a6);
    tiers_limit_id_t j6 = tiers_limit_address ((struct sockaddr *) &b6);
    tiers_limit_id_t k6 = tiers_limit_address ((struct sockaddr *) &m6);
    ok (i6.high == j6.high && i6.low == j6.low, "two addresses of one IPv6 /64: one bucket");
    ok (i4.high == k6.high && i4.low == k6.low, "an IPv4-mapped address: the IPv4 bucket");
    ok (i4.high != i6.high || i4.low != i6.low, "IPv4 and IPv6 apart");
    inet_pton (AF_INET6, "2001:db8:1:3::1", &b6.sin6_addr);
    j6 = tiers_limit_address ((struct sockaddr *) &b6);
    ok (i6.high != j6.high, "the next /64: another bucket");
    return done_testing ();
}
