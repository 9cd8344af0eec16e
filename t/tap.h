/*  tap.h — the smallest Test Anything Protocol helper that does the job.

    plan (n) or done_testing () at the end; ok (cond, name...); is (got,
    expected, name...) for strings; is_int for integers; diag (...) writes
    a '#' comment. Tests print to stdout; automake's tap-driver reads it.
*/
#ifndef TIERS_TAP_H
#define TIERS_TAP_H

#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <stdlib.h>

static int tap_count = 0;
static int tap_failed = 0;

static inline void
plan (int n)
{
    printf ("1..%d\n", n);
    fflush (stdout);
}

static inline void
diag (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    printf ("# ");
    vprintf (format, args);
    printf ("\n");
    va_end (args);
    fflush (stdout);
}

static inline int
tap_result (int pass, const char *format, va_list args)
{
    tap_count++;
    if (!pass)
        tap_failed++;
    printf ("%s %d - ", pass ? "ok" : "not ok", tap_count);
    vprintf (format, args);
    printf ("\n");
    fflush (stdout);
    return pass;
}

static inline int
ok (int pass, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    tap_result (pass, format, args);
    va_end (args);
    return pass;
}

static inline int
is (const char *got, const char *expected, const char *format, ...)
{
    int pass = (got == NULL && expected == NULL)
            || (got && expected && strcmp (got, expected) == 0);
    va_list args;
    va_start (args, format);
    tap_result (pass, format, args);
    va_end (args);
    if (!pass) {
        diag ("     got: '%s'", got ? got : "(null)");
        diag ("expected: '%s'", expected ? expected : "(null)");
    }
    return pass;
}

static inline int
is_int (long long got, long long expected, const char *format, ...)
{
    int pass = got == expected;
    va_list args;
    va_start (args, format);
    tap_result (pass, format, args);
    va_end (args);
    if (!pass)
        diag ("got %lld, expected %lld", got, expected);
    return pass;
}

//  Prints the plan after the tests; returns the exit code for main.
static inline int
done_testing (void)
{
    printf ("1..%d\n", tap_count);
    fflush (stdout);
    return tap_failed ? 1 : 0;
}

#endif
