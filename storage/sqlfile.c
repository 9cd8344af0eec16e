/*  sqlfile.c — SQLite statements and files beside a database, for the
    storage tiers (sqlfile.h).
*/
#include "storage/sqlfile.h"
#include "log.h"
#include <czmq.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/file.h>
#include <unistd.h>

int
tiers_sql_prepare (sqlite3 *db, const char *sql, sqlite3_stmt **stmt_p, char **why)
{
    if (sqlite3_prepare_v3 (db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                            stmt_p, NULL) == SQLITE_OK)
        return 0;
    *why = zsys_sprintf ("cannot prepare \"%s\": %s", sql, sqlite3_errmsg (db));
    return -1;
}

int
tiers_sql_exec (sqlite3 *db, const char *sql, char **why)
{
    char *message = NULL;
    if (sqlite3_exec (db, sql, NULL, NULL, &message) == SQLITE_OK)
        return 0;
    *why = zsys_sprintf ("%s: %s", sql, message ? message : sqlite3_errmsg (db));
    sqlite3_free (message);
    return -1;
}

bool
tiers_sql_step_done (sqlite3_stmt *stmt)
{
    int rc = sqlite3_step (stmt);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return rc == SQLITE_DONE;
}

//  One file, one server: a second process (or a second map in this one)
//  serving the same file would hand out the same versions, or apply a
//  stream twice. The lock is an flock on <file>.lock, not on the database
//  (SQLite's own POSIX locks on it would be dropped by any close of
//  another descriptor of the file), with the pid inside so that the one
//  refused can say who holds it.
int
tiers_file_lock (const char *db_path, const char *who, char **why)
{
    char *lock_path = zsys_sprintf ("%s.lock", db_path);
    int fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        *why = zsys_sprintf ("cannot open %s: %s", lock_path, strerror (errno));
        free (lock_path);
        return -1;
    }
    if (flock (fd, LOCK_EX | LOCK_NB)) {
        int error = errno;
        char holder [32] = "";
        ssize_t size = pread (fd, holder, sizeof holder - 1, 0);
        holder [size > 0 ? size : 0] = 0;
        holder [strcspn (holder, " \n")] = 0;
        *why = error == EWOULDBLOCK
             ? zsys_sprintf ("%s is served by another %s (pid %s, holding %s); "
                             "one file has one %s", db_path, who, *holder ? holder : "?",
                             lock_path, who)
             : zsys_sprintf ("cannot lock %s: %s", lock_path, strerror (error));
        close (fd);
        free (lock_path);
        return -1;
    }
    char pid [TIERS_LOCK_PID + 1];
    snprintf (pid, sizeof pid, "%-10d\n", (int) getpid ());
    if (pwrite (fd, pid, TIERS_LOCK_PID, 0) != TIERS_LOCK_PID)
        tiers_warn ("cannot write the pid into %s: %s", lock_path, strerror (errno));
    free (lock_path);
    return fd;
}

int
tiers_file_sync_dir (const char *path)
{
    char *copy = strdup (path);
    assert (copy);
    int fd = open (dirname (copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync (fd) == 0 ? 0 : -1;
    if (rc)
        tiers_warn ("cannot sync the directory of %s: %s", path, strerror (errno));
    if (fd >= 0)
        close (fd);
    free (copy);
    return rc;
}

int
tiers_file_put_durable (const char *path, const char *text)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t size = strlen (text);
    int rc = fd >= 0 && write (fd, text, size) == (ssize_t) size && fsync (fd) == 0 ? 0 : -1;
    if (rc)
        tiers_error ("cannot write %s: %s", path, strerror (errno));
    if (fd >= 0)
        close (fd);
    return rc || tiers_file_sync_dir (path) ? -1 : 0;
}
