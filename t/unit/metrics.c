/*  t/unit/metrics.c — tests for runtime/metrics.c.

    Values, find-or-create identity, histogram quantiles against a known
    distribution, exact totals under four writer threads, and the
    Prometheus text itself, line by line.
*/
#include "metrics.h"
#include "t/tap.h"
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define ADDS_PER_THREAD 100000

//  True when `text` has `line` as a whole line.
static bool
s_has_line (const char *text, const char *line)
{
    size_t length = strlen (line);
    for (const char *at = strstr (text, line); at; at = strstr (at + 1, line))
        if ((at == text || at [-1] == '\n') && at [length] == '\n')
            return true;
    return false;
}

static size_t
s_occurrences (const char *text, const char *needle)
{
    size_t found = 0;
    for (const char *at = strstr (text, needle); at;
         at = strstr (at + 1, needle))
        found++;
    return found;
}

static bool
s_near (double got, double expected)
{
    return fabs (got - expected) < 1e-9;
}

static void *
s_hammer (void *args)
{
    (void) args;
    //  Every thread finds the series itself, as actors do at start.
    tiers_counter_t *counter = tiers_metrics_counter (
        "tiers_test_hammer_total", "pool=\"write\"", "Concurrent adds.");
    tiers_gauge_t *gauge = tiers_metrics_gauge (
        "tiers_test_inflight", NULL, "Up and down.");
    tiers_histogram_t *histogram = tiers_metrics_histogram (
        "tiers_test_hammer_seconds", NULL, "Concurrent observations.");
    for (int i = 0; i < ADDS_PER_THREAD; i++) {
        tiers_counter_add (counter, 1);
        tiers_gauge_add (gauge, 1);
        if (i % 10 == 0)
            tiers_histogram_observe (histogram, 0.001);
        tiers_gauge_add (gauge, -1);
    }
    return NULL;
}

//  Runs `body` in a child and reports whether it died of SIGABRT.
static bool
s_aborts (void (*body) (void))
{
    fflush (stdout);
    pid_t pid = fork ();
    if (pid == 0) {
        //  The assert message is expected; keep the TAP output clean.
        if (!freopen ("/dev/null", "w", stderr))
            _exit (2);
        body ();
        _exit (0);
    }
    int status = 0;
    waitpid (pid, &status, 0);
    return WIFSIGNALED (status) && WTERMSIG (status) == SIGABRT;
}

static void
s_type_clash (void)
{
    tiers_metrics_counter ("tiers_test_clash", NULL, NULL);
    tiers_metrics_gauge ("tiers_test_clash", "a=\"b\"", NULL);
}

static void
s_bad_name (void)
{
    tiers_metrics_counter ("9lives", NULL, NULL);
}

static void
s_bad_labels (void)
{
    tiers_metrics_counter ("tiers_test_labels", "pool=read", NULL);
}

static void
s_test_render (void)
{
    tiers_metrics_reset ();
    tiers_counter_t *reads = tiers_metrics_counter (
        "tiers_test_requests_total", "pool=\"read\"", "Requests\nby \\pool.");
    tiers_gauge_t *depth = tiers_metrics_gauge (
        "tiers_test_queue_depth", NULL, "Jobs waiting.");
    //  Same name again, created after another metric: must join its group.
    tiers_counter_t *writes = tiers_metrics_counter (
        "tiers_test_requests_total", "pool=\"write\",status=\"503\"", NULL);
    tiers_histogram_t *latency = tiers_metrics_histogram (
        "tiers_test_latency_seconds", "tier=\"shard\"", "Commit latency.");
    tiers_histogram_t *bare = tiers_metrics_histogram (
        "tiers_test_bare_seconds", NULL, NULL);
    tiers_gauge_t *lag = tiers_metrics_gauge_ms ("tiers_test_lag_seconds",
        "replica=\"r1\"", "Seconds behind.");
    tiers_gauge_t *early = tiers_metrics_gauge_ms ("tiers_test_early_seconds", NULL, NULL);
    tiers_counter_add (reads, 7);
    tiers_counter_add (writes, 2);
    tiers_gauge_set (depth, -3);
    tiers_gauge_set (lag, 1234);
    tiers_gauge_set (early, -5);
    tiers_histogram_observe (latency, 0.00004);    //  le 0.00005
    tiers_histogram_observe (latency, 0.00008);    //  le 0.0001
    tiers_histogram_observe (latency, 0.0001);     //  le 0.0001 (inclusive)
    tiers_histogram_observe (latency, 1.5);        //  le 1.6384
    tiers_histogram_observe (latency, 100);        //  +Inf
    tiers_histogram_observe (bare, 0.25);

    char *text = tiers_metrics_render ();
    diag ("render is %zu bytes", strlen (text));
    ok (s_has_line (text, "# HELP tiers_test_requests_total Requests\\nby "
                          "\\\\pool."), "HELP escapes newline and backslash");
    ok (s_has_line (text, "# TYPE tiers_test_requests_total counter"),
        "TYPE counter");
    is_int (s_occurrences (text, "# TYPE tiers_test_requests_total "), 1,
            "TYPE printed once per name");
    is_int (s_occurrences (text, "# HELP tiers_test_requests_total "), 1,
            "HELP printed once per name");
    ok (s_has_line (text, "tiers_test_requests_total{pool=\"read\"} 7"),
        "counter series with labels");
    ok (s_has_line (text, "tiers_test_requests_total{pool=\"write\","
                          "status=\"503\"} 2"), "second series, two labels");
    const char *group = strstr (text, "# TYPE tiers_test_requests_total");
    const char *read_line = strstr (text, "tiers_test_requests_total{pool=\"read\"}");
    const char *write_line = strstr (text, "tiers_test_requests_total{pool=\"write\"");
    const char *gauge_type = strstr (text, "# TYPE tiers_test_queue_depth");
    ok (group && read_line && write_line && gauge_type
        && group < read_line && read_line < write_line
        && write_line < gauge_type,
        "series of one name grouped even when created apart");

    ok (s_has_line (text, "# HELP tiers_test_queue_depth Jobs waiting."),
        "gauge HELP");
    ok (s_has_line (text, "# TYPE tiers_test_queue_depth gauge"), "TYPE gauge");
    ok (s_has_line (text, "tiers_test_queue_depth -3"),
        "gauge without labels, negative");
    ok (s_has_line (text, "tiers_test_lag_seconds{replica=\"r1\"} 1.234"),
        "a gauge of seconds kept in ms renders seconds");
    ok (s_has_line (text, "tiers_test_early_seconds -0.005"),
        "... negative too");

    ok (s_has_line (text, "# TYPE tiers_test_latency_seconds histogram"),
        "TYPE histogram");
    ok (s_has_line (text, "tiers_test_latency_seconds_bucket{tier=\"shard\","
                          "le=\"0.00005\"} 1"), "first bucket");
    ok (s_has_line (text, "tiers_test_latency_seconds_bucket{tier=\"shard\","
                          "le=\"0.0001\"} 3"), "bucket bound is inclusive");
    ok (s_has_line (text, "tiers_test_latency_seconds_bucket{tier=\"shard\","
                          "le=\"0.8192\"} 3"), "buckets are cumulative");
    ok (s_has_line (text, "tiers_test_latency_seconds_bucket{tier=\"shard\","
                          "le=\"1.6384\"} 4"), "1.5 s in the 1.6384 bucket");
    ok (s_has_line (text, "tiers_test_latency_seconds_bucket{tier=\"shard\","
                          "le=\"52.4288\"} 4"), "last finite bucket");
    ok (s_has_line (text, "tiers_test_latency_seconds_bucket{tier=\"shard\","
                          "le=\"+Inf\"} 5"), "+Inf bucket equals count");
    ok (s_has_line (text, "tiers_test_latency_seconds_sum{tier=\"shard\"} "
                          "101.50022"), "_sum in seconds");
    ok (s_has_line (text, "tiers_test_latency_seconds_count{tier=\"shard\"} 5"),
        "_count");
    is_int (s_occurrences (text, "tiers_test_latency_seconds_bucket{"), 22,
            "21 finite buckets plus +Inf");

    ok (s_occurrences (text, "# HELP tiers_test_bare_seconds") == 0,
        "no HELP line when none given");
    ok (s_has_line (text, "tiers_test_bare_seconds_bucket{le=\"0.4096\"} 1"),
        "bucket without other labels");
    ok (s_has_line (text, "tiers_test_bare_seconds_bucket{le=\"+Inf\"} 1"),
        "+Inf without other labels");
    ok (s_has_line (text, "tiers_test_bare_seconds_sum 0.25"),
        "_sum without labels");
    ok (s_has_line (text, "tiers_test_bare_seconds_count 1"),
        "_count without labels");
    ok (text [strlen (text) - 1] == '\n', "render ends with a newline");
    free (text);

    tiers_metrics_reset ();
    text = tiers_metrics_render ();
    is (text, "", "reset empties the registry");
    free (text);
}

int
main (void)
{
    //  Counters.
    tiers_counter_t *counter = tiers_metrics_counter (
        "tiers_test_jobs_total", "queue=\"mail\"", "Jobs done.");
    is_int ((long long) tiers_counter_value (counter), 0, "counter starts at 0");
    tiers_counter_add (counter, 1);
    tiers_counter_add (counter, 41);
    is_int ((long long) tiers_counter_value (counter), 42, "counter adds");
    ok (tiers_metrics_counter ("tiers_test_jobs_total", "queue=\"mail\"", NULL)
        == counter, "same name and labels -> same handle");
    tiers_counter_t *other = tiers_metrics_counter (
        "tiers_test_jobs_total", "queue=\"sms\"", NULL);
    ok (other != counter, "different labels -> different series");
    is_int ((long long) tiers_counter_value (other), 0,
            "other series has its own value");
    tiers_counter_t *plain = tiers_metrics_counter ("tiers_test_jobs_total",
                                                    NULL, NULL);
    ok (plain != counter && plain != other, "no labels is its own series");
    ok (tiers_metrics_counter ("tiers_test_jobs_total", "", NULL) == plain,
        "empty label text equals NULL labels");

    //  Gauges.
    tiers_gauge_t *gauge = tiers_metrics_gauge ("tiers_test_lag", NULL, NULL);
    tiers_gauge_set (gauge, 10);
    tiers_gauge_add (gauge, -25);
    is_int (tiers_gauge_value (gauge), -15, "gauge set and negative add");
    tiers_gauge_set (gauge, 0);
    is_int (tiers_gauge_value (gauge), 0, "gauge set to zero");

    //  Histograms: 1 ms .. 1000 ms, uniform.
    tiers_histogram_t *histogram = tiers_metrics_histogram (
        "tiers_test_seconds", NULL, NULL);
    is_int ((long long) tiers_histogram_count (histogram), 0, "empty count");
    ok (tiers_histogram_quantile (histogram, 0.5) == 0, "empty quantile is 0");
    for (int i = 1; i <= 1000; i++)
        tiers_histogram_observe (histogram, i * 1e-3);
    is_int ((long long) tiers_histogram_count (histogram), 1000, "count 1000");
    //  Bucket bounds are 50 us * 2^k; 500 ms lies in (0.4096, 0.8192].
    double p10 = tiers_histogram_quantile (histogram, 0.10);
    double p50 = tiers_histogram_quantile (histogram, 0.50);
    double p99 = tiers_histogram_quantile (histogram, 0.99);
    ok (s_near (p10, 0.1024), "p10 = 0.1024 (got %g)", p10);
    ok (s_near (p50, 0.8192), "p50 = 0.8192 (got %g)", p50);
    ok (s_near (p99, 1.6384), "p99 = 1.6384 (got %g)", p99);
    ok (s_near (tiers_histogram_quantile (histogram, 0.409), 0.4096)
        && s_near (tiers_histogram_quantile (histogram, 0.410), 0.8192),
        "rank 409 is the last of its bucket, 410 the first of the next");

    tiers_histogram_t *edges = tiers_metrics_histogram (
        "tiers_test_edges_seconds", NULL, NULL);
    tiers_histogram_observe (edges, -1);
    ok (s_near (tiers_histogram_quantile (edges, 0.5), 0.00005),
        "negative observation counts as instant");
    tiers_histogram_observe (edges, 1e300);
    tiers_histogram_observe (edges, 1e300);
    ok (s_near (tiers_histogram_quantile (edges, 0.9), 52.4288),
        "+Inf bucket reports the largest finite bound");
    is_int ((long long) tiers_histogram_count (edges), 3, "edge count");

    //  Four threads, exact totals, no lost updates.
    pthread_t threads [THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create (&threads [i], NULL, s_hammer, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join (threads [i], NULL);
    is_int ((long long) tiers_counter_value (tiers_metrics_counter (
                "tiers_test_hammer_total", "pool=\"write\"", NULL)),
            THREADS * ADDS_PER_THREAD, "4 x 100k concurrent adds exact");
    is_int (tiers_gauge_value (tiers_metrics_gauge (
                "tiers_test_inflight", NULL, NULL)), 0,
            "concurrent gauge +1/-1 nets to zero");
    is_int ((long long) tiers_histogram_count (tiers_metrics_histogram (
                "tiers_test_hammer_seconds", NULL, NULL)),
            THREADS * ADDS_PER_THREAD / 10, "concurrent observations exact");

    //  Clock.
    int64_t before = tiers_clock_us ();
    usleep (2000);
    int64_t elapsed = tiers_clock_us () - before;
    ok (elapsed >= 2000 && elapsed < 2000000,
        "clock measures microseconds (%lld)", (long long) elapsed);

    //  Program errors assert.
    ok (s_aborts (s_type_clash), "same name, other type asserts");
    ok (s_aborts (s_bad_name), "invalid name asserts");
    ok (s_aborts (s_bad_labels), "unquoted label value asserts");

    s_test_render ();
    return done_testing ();
}
