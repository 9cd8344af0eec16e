/*  metrics.h — counters, gauges and latency histograms for every actor.

    One registry per process, shared by all actor threads. A metric is
    found or created by name plus a label set (`pool="read"`) and the
    returned handle stays valid until the process ends (or
    tiers_metrics_reset in tests), so hot paths keep the handle and only
    do an atomic add. Histograms use fixed exponential buckets from 50 us to
    ~30 s, enough to read p50 and p99 of any tier. The gateway renders the
    whole registry in Prometheus text format at /metrics.
*/
#ifndef TIERS_METRICS_H
#define TIERS_METRICS_H

#include <stdint.h>
#include <stddef.h>

typedef struct _tiers_counter_t tiers_counter_t;
typedef struct _tiers_gauge_t tiers_gauge_t;
typedef struct _tiers_histogram_t tiers_histogram_t;

//  Find or create. `labels` is the Prometheus label text without braces
//  (`pool="read",status="503"`) or NULL. `help` is used on creation.
//  Names must be [a-zA-Z_:][a-zA-Z0-9_:]*; an invalid name is a program
//  error (assert). Thread-safe.
tiers_counter_t *tiers_metrics_counter (const char *name, const char *labels,
                                        const char *help);
tiers_gauge_t *tiers_metrics_gauge (const char *name, const char *labels,
                                    const char *help);
//  A gauge of seconds kept in milliseconds: set and add in ms, rendered
//  in seconds with three decimals (a replica's lag).
tiers_gauge_t *tiers_metrics_gauge_ms (const char *name, const char *labels,
                                       const char *help);
tiers_histogram_t *tiers_metrics_histogram (const char *name,
                                            const char *labels,
                                            const char *help);

//  A label value from outside the program (a pool name from the wire):
//  escaped for the label text (\\, \", \n), cut short if it must be so
//  that the result fits in `size` bytes with its NUL. Returns `out`.
char *tiers_metrics_label_value (char *out, size_t size, const char *value);

void tiers_counter_add (tiers_counter_t *self, uint64_t delta);
uint64_t tiers_counter_value (const tiers_counter_t *self);

void tiers_gauge_set (tiers_gauge_t *self, int64_t value);
void tiers_gauge_add (tiers_gauge_t *self, int64_t delta);
int64_t tiers_gauge_value (const tiers_gauge_t *self);

//  Record one observation, in seconds.
void tiers_histogram_observe (tiers_histogram_t *self, double seconds);
uint64_t tiers_histogram_count (const tiers_histogram_t *self);
//  Estimated quantile (0 < q < 1) in seconds; 0 when empty. Upper bound of
//  the bucket holding the q-th observation.
double tiers_histogram_quantile (const tiers_histogram_t *self, double q);

//  The whole registry in Prometheus text exposition format (malloc'ed).
//  Histograms appear as _bucket/_sum/_count series.
char *tiers_metrics_render (void);
//  Drop every metric (tests only; no handle may be used afterwards).
void tiers_metrics_reset (void);

//  Monotonic clock in microseconds, for measuring latencies.
int64_t tiers_clock_us (void);

#endif
