/*  log.c — leveled logging with the actor's name on every line (see log.h).

    Many actor threads write to one stream, so the one idea is: build the
    whole line in a local buffer first, then hand it to the stream with a
    single fwrite + fflush under a mutex. A line is therefore never split
    or interleaved with another thread's, and a crash right after a call
    still leaves the line on disk.

    The level is an atomic int so the filter on the hot path is one load
    and one comparison. It is read from $TIERS_LOG once, on first use; an
    explicit tiers_log_set_level always wins over the environment.
*/
#include "log.h"
#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

//  Longest line written, newline included. Longer messages end in "...".
#define LINE_MAX_BYTES 2048
#define ACTOR_MAX 64

static const char *s_level_words [] = { "error", "warn", "info", "debug" };
//  Padded to five so messages line up in a terminal.
static const char *s_level_tags [] = { "ERROR", "WARN ", "INFO ", "DEBUG" };

static atomic_int s_level = TIERS_LOG_INFO;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *s_stream;          //  NULL means stderr; guarded by s_lock
static __thread char s_actor [ACTOR_MAX];

static void s_write (int level, const char *message);

//  Runs once per process, before the first level check.
static void
s_read_env (void)
{
    const char *word = getenv ("TIERS_LOG");
    if (!word || !*word)
        return;
    int level = tiers_log_level_parse (word);
    if (level >= 0)
        atomic_store_explicit (&s_level, level, memory_order_relaxed);
    else {
        //  A typo in the environment is the operator's input, not a
        //  program error: say so and keep the default.
        char message [128];
        snprintf (message, sizeof message,
                  "ignoring TIERS_LOG=%.60s (want error|warn|info|debug)",
                  word);
        s_write (TIERS_LOG_WARN, message);
    }
}

int
tiers_log_level_parse (const char *word)
{
    if (!word)
        return -1;
    for (int level = TIERS_LOG_ERROR; level <= TIERS_LOG_DEBUG; level++)
        if (strcasecmp (word, s_level_words [level]) == 0)
            return level;
    return -1;
}

void
tiers_log_set_level (int level)
{
    //  Consume the environment first so it cannot override this call later.
    pthread_once (&s_once, s_read_env);
    if (level < TIERS_LOG_ERROR)
        level = TIERS_LOG_ERROR;
    if (level > TIERS_LOG_DEBUG)
        level = TIERS_LOG_DEBUG;
    atomic_store_explicit (&s_level, level, memory_order_relaxed);
}

int
tiers_log_level (void)
{
    pthread_once (&s_once, s_read_env);
    return atomic_load_explicit (&s_level, memory_order_relaxed);
}

void
tiers_log_set_stream (FILE *stream)
{
    pthread_mutex_lock (&s_lock);
    s_stream = stream;
    pthread_mutex_unlock (&s_lock);
}

void
tiers_log_set_actor (const char *name)
{
    if (!name)
        name = "main";
    snprintf (s_actor, sizeof s_actor, "%s", name);
    //  The same name for top -H, ps -L and perf (15 bytes at most)
    char thread [16];
    snprintf (thread, sizeof thread, "%s", name);
    pthread_setname_np (pthread_self (), thread);
}

const char *
tiers_log_actor (void)
{
    //  A thread that never named itself is "main" without paying for a
    //  per-thread initializer.
    return s_actor [0] ? s_actor : "main";
}

//  Formats "2026-11-27T20:45:52.123Z " into `buffer`; returns its length.
static size_t
s_timestamp (char *buffer, size_t size)
{
    struct timespec now;
    struct tm tm;
    clock_gettime (CLOCK_REALTIME, &now);
    gmtime_r (&now.tv_sec, &tm);
    size_t length = strftime (buffer, size, "%Y-%m-%dT%H:%M:%S", &tm);
    int more = snprintf (buffer + length, size - length, ".%03ldZ ",
                         (long) (now.tv_nsec / 1000000));
    return length + (size_t) more;
}

//  Builds one whole line from an already formatted message and writes it.
static void
s_write (int level, const char *message)
{
    if (level < TIERS_LOG_ERROR)
        level = TIERS_LOG_ERROR;
    if (level > TIERS_LOG_DEBUG)
        level = TIERS_LOG_DEBUG;

    char line [LINE_MAX_BYTES];
    //  Keep one byte for the newline and one for the terminating null.
    const size_t room = sizeof line - 1;
    size_t length = s_timestamp (line, room);
    length += (size_t) snprintf (line + length, room - length, "%s %.*s: ",
                                 s_level_tags [level], ACTOR_MAX - 1,
                                 tiers_log_actor ());
    size_t message_length = strlen (message);
    //  One trailing newline is the caller's habit, not part of the text.
    while (message_length > 0 && (message [message_length - 1] == '\n'
                               || message [message_length - 1] == '\r'))
        message_length--;
    if (message_length > room - length) {
        message_length = room - length;
        memcpy (line + length, message, message_length);
        memcpy (line + length + message_length - 3, "...", 3);
    }
    else
        memcpy (line + length, message, message_length);
    length += message_length;
    line [length++] = '\n';

    pthread_mutex_lock (&s_lock);
    FILE *stream = s_stream ? s_stream : stderr;
    fwrite (line, 1, length, stream);
    fflush (stream);
    pthread_mutex_unlock (&s_lock);
}

void
tiers_log (int level, const char *format, ...)
{
    if (level > tiers_log_level ())
        return;
    //  One byte more than a line can hold, so that we can tell truncation
    //  happened and mark it, without formatting twice.
    char message [LINE_MAX_BYTES + 1];
    if (format) {
        va_list args;
        va_start (args, format);
        vsnprintf (message, sizeof message, format, args);
        va_end (args);
    }
    else
        snprintf (message, sizeof message, "(null)");
    s_write (level, message);
}
