/*  problems.h — "FILE:LINE: message" problems, collected and reported at once.

    A checker that stops at the first mistake makes its user fix a file one
    line per run. So the map loader does not stop: every check adds what it
    found with the line it found it on, and at the end the problems come out
    together, sorted by line (in the order found within one line), up to 50
    of them and a count of the rest.
*/
#ifndef TIERS_PROBLEMS_H
#define TIERS_PROBLEMS_H

#include <stddef.h>

typedef struct _tiers_problems_t tiers_problems_t;

//  Problems of the text named `file` (copied; used in every message).
tiers_problems_t *tiers_problems_new (const char *file);
void tiers_problems_destroy (tiers_problems_t **self_p);

//  Adds a problem at `line` (0 or less: of the whole file, reported without
//  a line). Control and non-ASCII bytes of the text are shown as \xNN so the
//  message stays one readable line. Beyond 50 problems only counts them.
void tiers_problems_add (tiers_problems_t *self, int line, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  How many problems were added, the ones not kept included.
size_t tiers_problems_count (const tiers_problems_t *self);

//  Empties the list; if errors is not NULL, hands the problems over as one
//  malloc'ed string, one "FILE:LINE: message\n" each, sorted by line.
void tiers_problems_report (tiers_problems_t *self, char **errors);

#endif
