/*  t/fault/eio.c — a failing disk for the tests, as an LD_PRELOAD shim.

    fsync() and fdatasync() of a file whose name ends in "-wal" (a shard's
    write-ahead log) fail with EIO while the number in the file named by
    $TIERS_FAULT_SYNC is above zero; each failure counts it down. While
    that file says "hang", they wait (a frozen disk, as under fsfreeze),
    and go on when it says something else. The
    bytes written before stay where write() put them, in the page cache,
    which is what a real EIO on fsync leaves behind too: the kernel's copy
    is there, whether the disk has it is unknown. Every other call goes to
    the C library.

        echo 2 > "$dir/fail"; TIERS_FAULT_SYNC="$dir/fail" LD_PRELOAD=t/fault/eio.so tiers run
*/
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;

//  Should this sync of `fd` fail? Counts the control file down if so.
static int
s_fail (int fd)
{
    const char *control = getenv ("TIERS_FAULT_SYNC");
    if (!control)
        return 0;
    char link [64], path [4096];
    snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t size = readlink (link, path, sizeof path - 1);
    if (size < 4)
        return 0;
    path [size] = 0;
    if (strcmp (path + size - 4, "-wal") != 0)
        return 0;
    int fail = 0;
    while (1) {                 //  "hang": wait until it says otherwise
        char word [8] = "";
        FILE *file = fopen (control, "r");
        if (file && fscanf (file, "%7s", word) != 1)
            word [0] = 0;
        if (file)
            fclose (file);
        if (strcmp (word, "hang") != 0)
            break;
        usleep (20000);
    }
    pthread_mutex_lock (&s_lock);
    FILE *file = fopen (control, "r+");
    long left = 0;
    if (file && fscanf (file, "%ld", &left) == 1 && left > 0) {
        fail = 1;
        rewind (file);
        fprintf (file, "%-20ld\n", left - 1);
    }
    if (file)
        fclose (file);
    pthread_mutex_unlock (&s_lock);
    return fail;
}

//  The call of the C library `name`, unless this sync is to fail.
static int
s_sync (int fd, const char *name, int (**real) (int))
{
    if (s_fail (fd)) {
        errno = EIO;
        return -1;
    }
    if (!*real)
        *(void **) real = dlsym (RTLD_NEXT, name);
    return (*real) (fd);
}

int
fsync (int fd)
{
    static int (*real) (int);
    return s_sync (fd, "fsync", &real);
}

int
fdatasync (int fd)
{
    static int (*real) (int);
    return s_sync (fd, "fdatasync", &real);
}
