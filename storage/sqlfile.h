/*  sqlfile.h — what the storage tiers (shard, replica, their reads) do
    alike with SQLite and with the files beside a database: statements
    prepared with a readable reason, the lock file that makes one file one
    server, and small files written durably (marks of a fence, a
    promotion).
*/
#ifndef TIERS_SQLFILE_H
#define TIERS_SQLFILE_H

#include <stdbool.h>
#include <sqlite3.h>

//  Prepares `sql` (persistent); 0, or -1 + *why (malloc'ed).
int tiers_sql_prepare (sqlite3 *db, const char *sql, sqlite3_stmt **stmt_p, char **why);
//  Runs `sql` (several statements); 0, or -1 + *why (malloc'ed).
int tiers_sql_exec (sqlite3 *db, const char *sql, char **why);
//  Steps a statement that returns no rows, then resets it and clears its
//  bindings. True when it ran to the end.
bool tiers_sql_step_done (sqlite3_stmt *stmt);

//  The bytes of the pid at the head of a lock file ("%-10d\n"): what the
//  file holds after it (a shard's mark) stays where it is.
#define TIERS_LOCK_PID 11

//  Takes the exclusive flock of <db_path>.lock and writes this pid at its
//  head. Returns the descriptor (held while serving; the kernel drops the
//  lock when the process dies), or -1 + *why, which names the holder's pid
//  when another `who` ("shard", "replica") holds it.
int tiers_file_lock (const char *db_path, const char *who, char **why);

//  Writes `text` to `path` (replacing it), fsyncs it and its directory.
//  0, or -1 (logged).
int tiers_file_put_durable (const char *path, const char *text);
//  Fsyncs the directory that holds `path` (a rename in it is durable then).
int tiers_file_sync_dir (const char *path);

#endif
