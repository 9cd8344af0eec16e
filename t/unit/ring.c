/*  t/unit/ring.c — rendezvous hashing (actors/ring.c): keys spread evenly,
    adding a cache moves about 1/n of them and only to it, taking one out
    (or marking it down) moves only its own, and they come back when it is
    up again.
*/
#include "actors/ring.h"
#include "t/tap.h"
#include <stdio.h>
#include <string.h>

#define KEYS 10000

static int
s_owner (tiers_ring_t *ring, int i, int64_t now)
{
    char key [64];
    snprintf (key, sizeof key, "docs/key-%d", i);
    return tiers_ring_owner (ring, key, strlen (key), now);
}

static tiers_ring_t *
s_ring (int count, const char *const *names)
{
    tiers_ring_t *ring = tiers_ring_new ();
    for (int i = 0; i < count; i++)
        tiers_ring_add (ring, names [i]);
    return ring;
}

int
main (void)
{
    static const char *const names [] = { "c0", "c1", "c2", "c3" };
    static int three [KEYS], four [KEYS];

    tiers_ring_t *empty = tiers_ring_new ();
    is_int (tiers_ring_owner (empty, "a", 1, 0), -1, "an empty ring owns nothing");
    tiers_ring_destroy (&empty);
    ok (empty == NULL, "destroy nulls the pointer");

    tiers_ring_t *ring3 = s_ring (3, names);
    tiers_ring_t *ring4 = s_ring (4, names);
    is_int ((int) tiers_ring_count (ring4), 4, "four members");
    is (tiers_ring_name (ring4, 2), "c2", "a member keeps its name");

    int per3 [3] = { 0 }, per4 [4] = { 0 };
    for (int i = 0; i < KEYS; i++) {
        three [i] = s_owner (ring3, i, 0);
        four [i] = s_owner (ring4, i, 0);
        if (three [i] >= 0)
            per3 [three [i]]++;
        if (four [i] >= 0)
            per4 [four [i]]++;
    }
    //  Even within 10% of the fair share (3,333 and 2,500).
    for (int m = 0; m < 3; m++)
        ok (per3 [m] > KEYS / 3 * 9 / 10 && per3 [m] < KEYS / 3 * 11 / 10,
            "3 caches: %s owns %d of %d keys", names [m], per3 [m], KEYS);
    for (int m = 0; m < 4; m++)
        ok (per4 [m] > KEYS / 4 * 9 / 10 && per4 [m] < KEYS / 4 * 11 / 10,
            "4 caches: %s owns %d of %d keys", names [m], per4 [m], KEYS);

    //  3 -> 4: about a quarter moves, and every key that moves goes to c3.
    int moved = 0, elsewhere = 0;
    for (int i = 0; i < KEYS; i++)
        if (three [i] != four [i]) {
            moved++;
            if (four [i] != 3)
                elsewhere++;
        }
    double fraction = (double) moved / KEYS;
    ok (fraction > 0.22 && fraction < 0.28, "3 -> 4 caches moves %.3f of the keys "
        "(about 1/4)", fraction);
    is_int (elsewhere, 0, "every key that moved went to the new cache");

    //  4 -> 3 (c3 removed): only c3's keys move; the same owners as ring3.
    int differs = 0;
    for (int i = 0; i < KEYS; i++)
        if (four [i] != 3 && three [i] != four [i])
            differs++;
    is_int (differs, 0, "removing a cache moves only the keys it owned");

    //  Down: c1 is skipped until its time; its keys go to their next
    //  highest, the others stay; then they come back.
    tiers_ring_set_down (ring4, 1, 1000);
    ok (tiers_ring_down (ring4, 1, 999) && !tiers_ring_down (ring4, 1, 1000),
        "a member is down until its time");
    int stayed = 0, to_down = 0, back = 0, c1 = 0;
    for (int i = 0; i < KEYS; i++) {
        int owner = s_owner (ring4, i, 500);
        if (owner == 1)
            to_down++;
        if (four [i] == 1)
            c1++;
        else
        if (owner == four [i])
            stayed++;
        if (s_owner (ring4, i, 1000) == four [i])
            back++;
    }
    is_int (to_down, 0, "no key goes to a member that is down");
    is_int (stayed, KEYS - c1, "the keys of the members that are up stay where they were");
    is_int (back, KEYS, "once it is up again every key is back with its owner");
    for (size_t m = 0; m < 4; m++)
        tiers_ring_set_down (ring4, m, 1000);
    is_int (s_owner (ring4, 7, 500), -1, "every member down: no owner");

    //  The hash: the seed counts, one byte changes it, and it is stable.
    ok (tiers_ring_hash ("abc", 3, 0) != tiers_ring_hash ("abc", 3, 1), "the seed counts");
    ok (tiers_ring_hash ("abc", 3, 0) != tiers_ring_hash ("abd", 3, 0), "one byte counts");
    ok (tiers_ring_hash ("abc", 3, 0) == tiers_ring_hash ("abc", 3, 0), "the hash is stable");

    tiers_ring_destroy (&ring3);
    tiers_ring_destroy (&ring4);
    return done_testing ();
}
