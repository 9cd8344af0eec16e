/*  metrics.c — the process-wide metrics registry (see metrics.h).

    The one idea: the lock protects the *list* of metrics, never their
    values. Finding or creating a metric takes the registry mutex and is
    done once, at actor start; the handle it returns points into a metric
    that never moves, and every update afterwards is a relaxed C11 atomic
    add. Rendering takes the mutex only to walk the list, reading values
    with atomic loads while actors keep writing.

    Histograms count observations in whole microseconds into fixed
    buckets whose upper bounds are 50 us * 2^k, k = 0..20 (50 us .. 52.4 s),
    plus +Inf. Integer bounds make bucket choice exact and the "le" labels
    print without float noise. A histogram keeps no separate count: the
    count is the sum of the buckets, so _count always equals the +Inf
    bucket even while other threads observe.
*/
#include "metrics.h"
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKET_FIRST_US 50
#define BUCKET_FINITE 21                    //  50 us << 20 = 52.4288 s
#define BUCKET_ALL (BUCKET_FINITE + 1)      //  plus +Inf

typedef enum {
    S_COUNTER,
    S_GAUGE,
    S_HISTOGRAM
} s_type_t;

static const char *s_type_names [] = { "counter", "gauge", "histogram" };

struct _tiers_counter_t {
    atomic_uint_fast64_t value;
};

struct _tiers_gauge_t {
    atomic_int_fast64_t value;
    bool milli;                 //  the value is in thousandths (seconds as ms)
};

struct _tiers_histogram_t {
    atomic_uint_fast64_t buckets [BUCKET_ALL];  //  not cumulative
    atomic_uint_fast64_t sum_us;
};

//  One series: a name plus a label set. The handle given to callers is
//  the address of the member of the union that matches `type`.
typedef struct {
    char *name;
    char *labels;               //  NULL when the series has no labels
    char *help;                 //  NULL when the caller gave none
    s_type_t type;
    union {
        tiers_counter_t counter;
        tiers_gauge_t gauge;
        tiers_histogram_t histogram;
    };
} s_metric_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static s_metric_t **s_metrics;  //  guarded by s_lock, in creation order
static size_t s_count;
static size_t s_capacity;

//  A bad name, label text or type is a bug in the caller, like a failed
//  assert, but checked even under NDEBUG: it is only paid at creation, and
//  a broken series would make every scrape of /metrics fail.
static void
s_program_error (const char *what, const char *name, const char *labels)
{
    fprintf (stderr, "metrics: %s: %s{%s}\n", what, name ? name : "(null)",
             labels ? labels : "");
    abort ();
}

static bool
s_name_is_valid (const char *name)
{
    if (!name || !*name)
        return false;
    for (const char *c = name; *c; c++) {
        bool letter = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
                   || *c == '_' || *c == ':';
        bool digit = *c >= '0' && *c <= '9';
        if (!letter && !(digit && c > name))
            return false;
    }
    return true;
}

//  Checks `k="v"(,k="v")*`: label names are [a-zA-Z_][a-zA-Z0-9_]*, values
//  are quoted and may hold \\, \" and \n escapes but no raw newline.
//  Callers pass this text pre-formatted, so a bad one is a program error.
static bool
s_labels_are_valid (const char *labels)
{
    const char *c = labels;
    while (true) {
        const char *start = c;
        while ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
            || *c == '_' || (c > start && *c >= '0' && *c <= '9'))
            c++;
        if (c == start || *c++ != '=' || *c++ != '"')
            return false;
        while (*c != '"') {
            if (*c == '\0' || *c == '\n')
                return false;
            if (*c == '\\') {
                c++;
                if (*c != '\\' && *c != '"' && *c != 'n')
                    return false;
            }
            c++;
        }
        c++;                    //  closing quote
        if (*c == '\0')
            return true;
        if (*c++ != ',')
            return false;
    }
}

char *
tiers_metrics_label_value (char *out, size_t size, const char *value)
{
    assert (out && size > 0);
    size_t used = 0;
    for (const char *c = value ? value : ""; *c; c++) {
        const char *piece = *c == '\\' ? "\\\\" : *c == '"' ? "\\\"" : *c == '\n' ? "\\n" : NULL;
        size_t length = piece ? 2 : 1;
        if (used + length + 1 > size)
            break;
        if (piece)
            memcpy (out + used, piece, 2);
        else
            out [used] = *c;
        used += length;
    }
    out [used] = 0;
    return out;
}

static bool
s_same (const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp (a, b) == 0);
}

static char *
s_strdup_or_null (const char *text)
{
    if (!text)
        return NULL;
    char *copy = strdup (text);
    assert (copy);
    return copy;
}

//  Finds or creates the series (name, labels). Aborts rather than fails:
//  every argument comes from the program's own source.
static s_metric_t *
s_find_or_create (s_type_t type, const char *name, const char *labels,
                  const char *help)
{
    if (!s_name_is_valid (name))
        s_program_error ("invalid metric name", name, labels);
    if (labels && !*labels)
        labels = NULL;          //  "" and NULL are the same empty label set
    if (labels && !s_labels_are_valid (labels))
        s_program_error ("invalid label text", name, labels);

    pthread_mutex_lock (&s_lock);
    s_metric_t *found = NULL;
    for (size_t i = 0; i < s_count && !found; i++) {
        s_metric_t *metric = s_metrics [i];
        if (strcmp (metric->name, name) != 0)
            continue;
        //  One name, one type: Prometheus cannot render anything else.
        if (metric->type != type)
            s_program_error ("metric created again with another type",
                             name, labels);
        if (s_same (metric->labels, labels))
            found = metric;
    }
    if (!found) {
        if (s_count == s_capacity) {
            s_capacity = s_capacity ? s_capacity * 2 : 32;
            s_metrics = realloc (s_metrics, s_capacity * sizeof *s_metrics);
            assert (s_metrics);
        }
        found = calloc (1, sizeof *found);
        assert (found);
        found->name = s_strdup_or_null (name);
        found->labels = s_strdup_or_null (labels);
        found->help = s_strdup_or_null (help);
        found->type = type;
        //  calloc left every value at zero; atomic_init makes that formal.
        switch (type) {
            case S_COUNTER:
                atomic_init (&found->counter.value, 0);
                break;
            case S_GAUGE:
                atomic_init (&found->gauge.value, 0);
                break;
            case S_HISTOGRAM:
                for (size_t b = 0; b < BUCKET_ALL; b++)
                    atomic_init (&found->histogram.buckets [b], 0);
                atomic_init (&found->histogram.sum_us, 0);
                break;
        }
        s_metrics [s_count++] = found;
    }
    pthread_mutex_unlock (&s_lock);
    return found;
}

tiers_counter_t *
tiers_metrics_counter (const char *name, const char *labels, const char *help)
{
    return &s_find_or_create (S_COUNTER, name, labels, help)->counter;
}

tiers_gauge_t *
tiers_metrics_gauge (const char *name, const char *labels, const char *help)
{
    return &s_find_or_create (S_GAUGE, name, labels, help)->gauge;
}

tiers_gauge_t *
tiers_metrics_gauge_ms (const char *name, const char *labels, const char *help)
{
    tiers_gauge_t *gauge = &s_find_or_create (S_GAUGE, name, labels, help)->gauge;
    pthread_mutex_lock (&s_lock);
    gauge->milli = true;
    pthread_mutex_unlock (&s_lock);
    return gauge;
}

tiers_histogram_t *
tiers_metrics_histogram (const char *name, const char *labels,
                         const char *help)
{
    return &s_find_or_create (S_HISTOGRAM, name, labels, help)->histogram;
}

//  Values are independent numbers with no ordering between them, so
//  relaxed atomics are enough and cost the same as a plain add on x86.

void
tiers_counter_add (tiers_counter_t *self, uint64_t delta)
{
    assert (self);
    atomic_fetch_add_explicit (&self->value, delta, memory_order_relaxed);
}

uint64_t
tiers_counter_value (const tiers_counter_t *self)
{
    assert (self);
    return atomic_load_explicit (&self->value, memory_order_relaxed);
}

void
tiers_gauge_set (tiers_gauge_t *self, int64_t value)
{
    assert (self);
    atomic_store_explicit (&self->value, value, memory_order_relaxed);
}

void
tiers_gauge_add (tiers_gauge_t *self, int64_t delta)
{
    assert (self);
    atomic_fetch_add_explicit (&self->value, delta, memory_order_relaxed);
}

int64_t
tiers_gauge_value (const tiers_gauge_t *self)
{
    assert (self);
    return atomic_load_explicit (&self->value, memory_order_relaxed);
}

static uint64_t
s_bucket_bound_us (size_t bucket)
{
    return (uint64_t) BUCKET_FIRST_US << bucket;
}

//  The smallest k with 50 << k >= us, or the +Inf bucket past the last.
static size_t
s_bucket_of (uint64_t us)
{
    uint64_t steps = (us + BUCKET_FIRST_US - 1) / BUCKET_FIRST_US;
    if (steps <= 1)
        return 0;
    size_t bucket = 64 - (size_t) __builtin_clzll (steps - 1);
    return bucket < BUCKET_FINITE ? bucket : BUCKET_FINITE;
}

void
tiers_histogram_observe (tiers_histogram_t *self, double seconds)
{
    assert (self);
    //  A negative or NaN latency means a clock went backwards: count the
    //  event as instant rather than lose it. Cap absurd values so the
    //  conversion to integer stays defined.
    uint64_t us = 0;
    if (seconds > 1e12)
        us = (uint64_t) 1e18;
    else if (seconds > 0)
        us = (uint64_t) llround (seconds * 1e6);
    atomic_fetch_add_explicit (&self->buckets [s_bucket_of (us)], 1,
                               memory_order_relaxed);
    atomic_fetch_add_explicit (&self->sum_us, us, memory_order_relaxed);
}

//  Copies the bucket counts once so that all readers see one consistent
//  set even while observations keep arriving. Returns the total.
static uint64_t
s_histogram_snapshot (const tiers_histogram_t *self,
                      uint64_t counts [BUCKET_ALL])
{
    uint64_t total = 0;
    for (size_t b = 0; b < BUCKET_ALL; b++) {
        counts [b] = atomic_load_explicit (&self->buckets [b],
                                           memory_order_relaxed);
        total += counts [b];
    }
    return total;
}

uint64_t
tiers_histogram_count (const tiers_histogram_t *self)
{
    assert (self);
    uint64_t counts [BUCKET_ALL];
    return s_histogram_snapshot (self, counts);
}

double
tiers_histogram_quantile (const tiers_histogram_t *self, double q)
{
    assert (self);
    uint64_t counts [BUCKET_ALL];
    uint64_t total = s_histogram_snapshot (self, counts);
    if (total == 0)
        return 0;
    //  Rank of the q-th observation, 1-based, kept inside [1, total].
    double wanted = ceil (q * (double) total);
    uint64_t rank = wanted < 1 ? 1
                  : wanted > (double) total ? total : (uint64_t) wanted;
    uint64_t seen = 0;
    size_t bucket = 0;
    for (; bucket < BUCKET_FINITE; bucket++) {
        seen += counts [bucket];
        if (seen >= rank)
            break;
    }
    //  Past the last bound we know only "more than 52 s": report the
    //  largest finite bound rather than infinity.
    if (bucket == BUCKET_FINITE)
        bucket = BUCKET_FINITE - 1;
    return (double) s_bucket_bound_us (bucket) / 1e6;
}

//  Microseconds as decimal seconds with no trailing zeros: 50 -> 0.00005,
//  1500000 -> 1.5, 2000000 -> 2. Exact, unlike printf ("%g").
static void
s_print_seconds (FILE *out, uint64_t us)
{
    char fraction [8];
    snprintf (fraction, sizeof fraction, "%06" PRIu64, us % 1000000);
    size_t length = strlen (fraction);
    while (length > 0 && fraction [length - 1] == '0')
        fraction [--length] = '\0';
    fprintf (out, "%" PRIu64 "%s%s", us / 1000000, length ? "." : "",
             fraction);
}

//  HELP text escapes backslash and newline, per exposition format 0.0.4.
static void
s_print_help (FILE *out, const char *name, const char *help)
{
    fprintf (out, "# HELP %s ", name);
    for (const char *c = help; *c; c++) {
        if (*c == '\\')
            fputs ("\\\\", out);
        else
        if (*c == '\n')
            fputs ("\\n", out);
        else
            fputc (*c, out);
    }
    fputc ('\n', out);
}

static void
s_print_series (FILE *out, const s_metric_t *metric)
{
    const char *name = metric->name;
    const char *labels = metric->labels;
    //  "{labels}" or nothing, for the plain series of each type.
    const char *open = labels ? "{" : "";
    const char *close = labels ? "}" : "";
    if (!labels)
        labels = "";

    if (metric->type == S_COUNTER)
        fprintf (out, "%s%s%s%s %" PRIu64 "\n", name, open, labels, close,
                 tiers_counter_value (&metric->counter));
    else
    if (metric->type == S_GAUGE && metric->gauge.milli) {
        int64_t value = tiers_gauge_value (&metric->gauge);
        uint64_t magnitude = value < 0 ? (uint64_t) 0 - (uint64_t) value : (uint64_t) value;
        fprintf (out, "%s%s%s%s %s%" PRIu64 ".%03" PRIu64 "\n", name, open, labels, close,
                 value < 0 ? "-" : "", magnitude / 1000, magnitude % 1000);
    }
    else
    if (metric->type == S_GAUGE)
        fprintf (out, "%s%s%s%s %" PRId64 "\n", name, open, labels, close,
                 tiers_gauge_value (&metric->gauge));
    else {
        uint64_t counts [BUCKET_ALL];
        uint64_t total = s_histogram_snapshot (&metric->histogram, counts);
        const char *comma = *labels ? "," : "";
        uint64_t cumulative = 0;
        for (size_t b = 0; b < BUCKET_FINITE; b++) {
            cumulative += counts [b];
            fprintf (out, "%s_bucket{%s%sle=\"", name, labels, comma);
            s_print_seconds (out, s_bucket_bound_us (b));
            fprintf (out, "\"} %" PRIu64 "\n", cumulative);
        }
        fprintf (out, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n",
                 name, labels, comma, total);
        fprintf (out, "%s_sum%s%s%s ", name, open, labels, close);
        s_print_seconds (out, atomic_load_explicit (
            &metric->histogram.sum_us, memory_order_relaxed));
        fprintf (out, "\n%s_count%s%s%s %" PRIu64 "\n",
                 name, open, labels, close, total);
    }
}

char *
tiers_metrics_render (void)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert (out);

    pthread_mutex_lock (&s_lock);
    //  Prometheus wants all series of one name in one block under a single
    //  HELP/TYPE, but actors create their series whenever they start. So
    //  walk names in order of first creation and gather each name's series.
    bool *done = calloc (s_count ? s_count : 1, sizeof *done);
    assert (done);
    for (size_t i = 0; i < s_count; i++) {
        if (done [i])
            continue;
        const s_metric_t *first = s_metrics [i];
        const char *help = NULL;
        for (size_t j = i; j < s_count && !help; j++)
            if (strcmp (s_metrics [j]->name, first->name) == 0)
                help = s_metrics [j]->help;
        if (help)
            s_print_help (out, first->name, help);
        fprintf (out, "# TYPE %s %s\n", first->name,
                 s_type_names [first->type]);
        for (size_t j = i; j < s_count; j++)
            if (!done [j] && strcmp (s_metrics [j]->name, first->name) == 0) {
                s_print_series (out, s_metrics [j]);
                done [j] = true;
            }
    }
    pthread_mutex_unlock (&s_lock);
    free (done);

    fclose (out);
    return text;
}

void
tiers_metrics_reset (void)
{
    pthread_mutex_lock (&s_lock);
    for (size_t i = 0; i < s_count; i++) {
        free (s_metrics [i]->name);
        free (s_metrics [i]->labels);
        free (s_metrics [i]->help);
        free (s_metrics [i]);
    }
    free (s_metrics);
    s_metrics = NULL;
    s_count = 0;
    s_capacity = 0;
    pthread_mutex_unlock (&s_lock);
}

int64_t
tiers_clock_us (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
}
