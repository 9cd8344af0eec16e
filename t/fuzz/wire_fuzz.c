/*  wire_fuzz.c — libFuzzer target for the wire codec.

    The format is canonical, so the property is strong: any input that
    decodes must re-encode to exactly the same bytes, and that encoding must
    decode again. Everything else must be rejected without a crash, a leak
    or an out-of-bounds read (ASan/UBSan watch that).

    clang -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iruntime \
        t/fuzz/wire_fuzz.c runtime/wire.c runtime/poller.c \
        $(pkg-config --cflags --libs libczmq libzmq) -o wire_fuzz
    mkdir -p /tmp/wire-corpus
    ./wire_fuzz -max_total_time=60 /tmp/wire-corpus t/fuzz/corpus

    (libFuzzer writes new inputs into the first directory: give it a scratch
    one so the committed seed corpus stays small.) The build does the same
    with `CC=clang ./configure --enable-fuzzing` and `make t/fuzz/wire_fuzz`;
    .ci/run runs it for 60 s on every CI run.
*/
#include "wire.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *error = NULL;
    tiers_wire_t *wire = tiers_wire_decode (data, size, &error);
    if (!wire) {
        if (!error)
            abort ();           //  a rejection always says why
        return 0;
    }
    if (error)
        abort ();
    size_t encoded_size = tiers_wire_size (wire);
    if (encoded_size != size)
        abort ();
    uint8_t *buf = (uint8_t *) malloc (encoded_size ? encoded_size : 1);
    if (!buf)
        abort ();
    if (tiers_wire_encode (wire, buf) != size || memcmp (buf, data, size) != 0)
        abort ();
    if (wire->body [wire->body_size] != 0)
        abort ();
    tiers_wire_t *again = tiers_wire_decode (buf, encoded_size, &error);
    if (!again)
        abort ();
    tiers_wire_destroy (&again);
    tiers_wire_destroy (&wire);
    free (buf);
    return 0;
}
