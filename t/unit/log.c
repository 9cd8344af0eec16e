/*  t/unit/log.c — tests for runtime/log.c.

    Lines are captured with open_memstream and checked for shape, level
    filtering, the actor name, whole-line writes from two threads, and
    truncation. $TIERS_LOG is read once per process, so the environment
    cases run this same binary again as a child ("--print-level").
*/
#include "log.h"
#include "t/tap.h"
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <unistd.h>

#define LINES_PER_THREAD 2000

//  Capture everything logged between s_capture_start and s_capture_end.
static char *s_text;
static size_t s_size;
static FILE *s_capture;

static void
s_capture_start (void)
{
    s_capture = open_memstream (&s_text, &s_size);
    tiers_log_set_stream (s_capture);
}

//  Returns the captured text; the caller frees it.
static char *
s_capture_end (void)
{
    tiers_log_set_stream (NULL);
    fclose (s_capture);
    char *text = s_text;
    s_text = NULL;
    return text;
}

static size_t
s_count_lines (const char *text)
{
    size_t lines = 0;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    return lines;
}

static bool
s_matches (const char *pattern, const char *text)
{
    regex_t regex;
    int rc = regcomp (&regex, pattern, REG_EXTENDED | REG_NOSUB | REG_NEWLINE);
    if (rc != 0)
        return false;
    rc = regexec (&regex, text, 0, NULL, 0);
    regfree (&regex);
    return rc == 0;
}

static void *
s_writer (void *args)
{
    const char *name = args;
    tiers_log_set_actor (name);
    for (int i = 0; i < LINES_PER_THREAD; i++)
        tiers_info ("line %d from %s with some padding to make it longer", i,
                    name);
    return NULL;
}

//  Each line must be whole and carry the name of the thread that wrote
//  it; a torn or interleaved line fails one of these.
static void
s_test_threads (void)
{
    s_capture_start ();
    pthread_t shard, replica;
    pthread_create (&shard, NULL, s_writer, "shard");
    pthread_create (&replica, NULL, s_writer, "replica");
    pthread_join (shard, NULL);
    pthread_join (replica, NULL);
    char *text = s_capture_end ();

    is_int ((long long) s_count_lines (text), 2 * LINES_PER_THREAD,
            "two threads wrote every line");
    size_t good = 0, shard_lines = 0, replica_lines = 0;
    char *save = NULL;
    for (char *line = strtok_r (text, "\n", &save); line;
         line = strtok_r (NULL, "\n", &save)) {
        char name [16];
        int number;
        char from [16];
        int fields = sscanf (line, "%*s INFO  %15[a-z]: line %d from %15[a-z] "
                             "with some padding to make it longer", name,
                             &number, from);
        if (fields == 3 && strcmp (name, from) == 0) {
            good++;
            shard_lines += strcmp (name, "shard") == 0;
            replica_lines += strcmp (name, "replica") == 0;
        }
    }
    is_int ((long long) good, 2 * LINES_PER_THREAD,
            "every line is whole and names its own thread");
    is_int ((long long) shard_lines, LINES_PER_THREAD, "shard lines");
    is_int ((long long) replica_lines, LINES_PER_THREAD, "replica lines");
    free (text);
}

//  Runs this binary with TIERS_LOG=value; returns what the child printed.
static char *
s_child_level (const char *value)
{
    char self [1024];
    ssize_t length = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (length < 0)
        return NULL;
    self [length] = '\0';
    char command [1200];
    snprintf (command, sizeof command,
              "TIERS_LOG='%s' '%s' --print-level 2>&1", value, self);
    FILE *child = popen (command, "r");
    if (!child)
        return NULL;
    char *output = calloc (1, 4096);
    size_t got = fread (output, 1, 4095, child);
    output [got] = '\0';
    pclose (child);
    return output;
}

int
main (int argc, char *argv [])
{
    //  Child mode for the environment tests below.
    if (argc > 1 && strcmp (argv [1], "--print-level") == 0) {
        printf ("level=%d\n", tiers_log_level ());
        return 0;
    }
    //  The parent runs with a known environment, whatever the caller set.
    unsetenv ("TIERS_LOG");

    //  Level words.
    is_int (tiers_log_level_parse ("error"), TIERS_LOG_ERROR, "parse error");
    is_int (tiers_log_level_parse ("warn"), TIERS_LOG_WARN, "parse warn");
    is_int (tiers_log_level_parse ("info"), TIERS_LOG_INFO, "parse info");
    is_int (tiers_log_level_parse ("debug"), TIERS_LOG_DEBUG, "parse debug");
    is_int (tiers_log_level_parse ("DEBUG"), TIERS_LOG_DEBUG,
            "parse is case-insensitive");
    is_int (tiers_log_level_parse ("verbose"), -1, "unknown word -> -1");
    is_int (tiers_log_level_parse (""), -1, "empty word -> -1");
    is_int (tiers_log_level_parse (NULL), -1, "NULL word -> -1");

    //  Default level and actor.
    is_int (tiers_log_level (), TIERS_LOG_INFO, "default level is INFO");
    is (tiers_log_actor (), "main", "default actor is main");

    //  Level filter.
    tiers_log_set_actor ("balancer");
    is (tiers_log_actor (), "balancer", "actor name set");
    s_capture_start ();
    tiers_debug ("hidden %d", 1);
    tiers_log (TIERS_LOG_DEBUG, "hidden %d", 2);
    tiers_info ("shown at info");
    tiers_warn ("a warning");
    tiers_error ("an error");
    char *text = s_capture_end ();
    is_int ((long long) s_count_lines (text), 3, "debug hidden at INFO");
    ok (strstr (text, "hidden") == NULL, "no debug text at INFO");
    ok (s_matches ("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                   "\\.[0-9]{3}Z INFO  balancer: shown at info$", text),
        "info line has timestamp, padded level, actor, message");
    ok (s_matches ("Z WARN  balancer: a warning$", text), "warn line");
    ok (s_matches ("Z ERROR balancer: an error$", text), "error line");
    free (text);

    tiers_log_set_level (TIERS_LOG_DEBUG);
    is_int (tiers_log_level (), TIERS_LOG_DEBUG, "set level DEBUG");
    s_capture_start ();
    tiers_debug ("visible %d", 3);
    text = s_capture_end ();
    ok (s_matches ("^[0-9-]{10}T[0-9:]{8}\\.[0-9]{3}Z DEBUG balancer: "
                   "visible 3\n$", text), "debug shown at DEBUG");
    free (text);

    tiers_log_set_level (TIERS_LOG_ERROR);
    s_capture_start ();
    tiers_warn ("quiet");
    tiers_info ("quiet");
    tiers_error ("loud");
    text = s_capture_end ();
    ok (strstr (text, "quiet") == NULL && strstr (text, "loud") != NULL,
        "only errors at ERROR");
    free (text);
    tiers_log_set_level (TIERS_LOG_INFO);

    //  Trailing newline stripped; NULL actor means main.
    tiers_log_set_actor (NULL);
    s_capture_start ();
    tiers_info ("with newline\n");
    tiers_info ("%s", "");
    text = s_capture_end ();
    ok (s_matches ("Z INFO  main: with newline\n[^\n]+Z INFO  main: \n$", text),
        "trailing newline stripped, empty message is one line");
    free (text);

    //  Long actor names are cut, not overflowed.
    char long_name [200];
    memset (long_name, 'a', sizeof long_name - 1);
    long_name [sizeof long_name - 1] = '\0';
    tiers_log_set_actor (long_name);
    is_int ((long long) strlen (tiers_log_actor ()), 63, "actor name capped");
    tiers_log_set_actor ("read-api");

    //  Long message truncated with "...".
    size_t big = 10000;
    char *huge = malloc (big + 1);
    memset (huge, 'x', big);
    huge [big] = '\0';
    s_capture_start ();
    tiers_info ("%s", huge);
    tiers_info ("after");
    text = s_capture_end ();
    char *newline = strchr (text, '\n');
    ok (newline && newline - text < 2048 && newline - text > 1900,
        "long line capped near 2 KB (%ld bytes)",
        newline ? (long) (newline - text) : -1L);
    ok (newline && memcmp (newline - 3, "...", 3) == 0,
        "truncated line ends with ...");
    ok (s_matches ("Z INFO  read-api: x+\\.\\.\\.\n[^\n]+ read-api: after\n$",
                   text), "next line intact after a truncated one");
    free (text);
    free (huge);

    //  A message that just fits is not marked.
    s_capture_start ();
    tiers_info ("%s", "exact");
    text = s_capture_end ();
    ok (strstr (text, "...") == NULL, "short message not marked truncated");
    free (text);

    s_test_threads ();

    //  $TIERS_LOG, read on first use in a fresh process.
    char *output = s_child_level ("debug");
    is (output, "level=3\n", "TIERS_LOG=debug honoured");
    free (output);
    output = s_child_level ("warn");
    is (output, "level=1\n", "TIERS_LOG=warn honoured");
    free (output);
    output = s_child_level ("bogus");
    ok (output && strstr (output, "WARN  main: ignoring TIERS_LOG=bogus")
               && strstr (output, "level=2\n"),
        "unknown TIERS_LOG warned about and ignored");
    free (output);

    return done_testing ();
}
