/*  log.h — leveled logging with the actor's name on every line.

    czmq's zsys_* logging has no level filter, so tiers has its own: one
    line per call, "2026-11-27T20:45:52.123Z INFO  balancer: message", to
    stderr by default. Each thread (actor) sets its name once; lines below
    the process-wide level cost one comparison.
*/
#ifndef TIERS_LOG_H
#define TIERS_LOG_H

#include <stdio.h>

typedef enum {
    TIERS_LOG_ERROR = 0,
    TIERS_LOG_WARN  = 1,
    TIERS_LOG_INFO  = 2,
    TIERS_LOG_DEBUG = 3
} tiers_log_level_t;

//  Process-wide level (default INFO, or $TIERS_LOG when set).
void tiers_log_set_level (int level);
int tiers_log_level (void);
//  "error", "warn", "info", "debug" -> level; -1 if unknown.
int tiers_log_level_parse (const char *word);
//  Where lines go (default stderr). NULL restores stderr.
void tiers_log_set_stream (FILE *stream);
//  Name shown on this thread's lines (copied; NULL -> "main").
void tiers_log_set_actor (const char *name);
const char *tiers_log_actor (void);

void tiers_log (int level, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

#define tiers_error(...) tiers_log (TIERS_LOG_ERROR, __VA_ARGS__)
#define tiers_warn(...)  tiers_log (TIERS_LOG_WARN, __VA_ARGS__)
#define tiers_info(...)  tiers_log (TIERS_LOG_INFO, __VA_ARGS__)
#define tiers_debug(...) do { if (tiers_log_level () >= TIERS_LOG_DEBUG) \
                              tiers_log (TIERS_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
