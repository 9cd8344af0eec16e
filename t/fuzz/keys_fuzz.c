/*  keys_fuzz.c — libFuzzer target for the keys body of the commit stream
    (actors/follow.c, tiers_follow_keys_parse): what a cache or a gateway's
    edge cache reads from a shard's stream for every change.

    Properties: nothing crashes or reads out of bounds (ASan/UBSan watch);
    a body that parses gives exactly as many keys as it says, each a valid
    COLLECTION/ID (runtime/names.h) with a version in (previous,
    sequence]; a body that is refused says why; checking without a
    callback and with one agree. The first 16 input bytes are `previous`
    and the span to `sequence`; the rest is the body.

    CC=clang ./configure --enable-fuzzing && make t/fuzz/keys_fuzz
    mkdir -p /tmp/keys-corpus && ./t/fuzz/keys_fuzz -max_total_time=20 /tmp/keys-corpus
*/
#include "actors/follow.h"
#include "runtime/names.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t previous, sequence;
    long seen;
} check_t;

static void
s_each (void *arg, const char *key, int64_t version)
{
    check_t *check = (check_t *) arg;
    const char *slash = strchr (key, '/');
    if (!slash || !tiers_collection_ok (key, (size_t) (slash - key))
    ||  !tiers_doc_id_ok (slash + 1, strlen (slash + 1))
    ||  version <= check->previous || version > check->sequence)
        abort ();
    check->seen++;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 16 || size > 65536)
        return 0;
    uint64_t a = 0, b = 0;
    memcpy (&a, data, 8);
    memcpy (&b, data + 8, 8);
    check_t check = { (int64_t) (a >> 2), 0, 0 };
    check.sequence = check.previous + (int64_t) (b % 4096);
    const char *why = NULL;
    long keys = tiers_follow_keys_parse ((const char *) data + 16, size - 16,
                                         check.previous, check.sequence, NULL, NULL, &why);
    if (keys < 0 && !why)
        abort ();
    if (keys >= 0) {
        long again = tiers_follow_keys_parse ((const char *) data + 16, size - 16,
                                              check.previous, check.sequence, s_each,
                                              &check, &why);
        if (again != keys || check.seen != keys)
            abort ();
    }
    return 0;
}
