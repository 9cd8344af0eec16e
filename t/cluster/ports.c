/*  ports.c — free TCP ports for tests, never the same one twice (ports.h). */
#include "ports.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PORTS_KEPT_S    600     //  a port is not handed out again for this long
#define PORTS_MAX       4096    //  entries kept in the file
#define PORTS_TRIES     64

//  The file: t/cluster/.ports beside the program (t/cluster/tool, or a
//  t/cluster/*.t); "." when the program's path is unknown.
static void
s_file (char *path, size_t size)
{
    char self [PATH_MAX];
    ssize_t length = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (length <= 0) {
        snprintf (path, size, ".ports");
        return;
    }
    self [length] = 0;
    char *slash = strrchr (self, '/');
    if (slash)
        *slash = 0;
    snprintf (path, size, "%s/.ports", slash ? self : ".");
}

static int
s_bound (bool v6)
{
    struct sockaddr_storage addr;
    memset (&addr, 0, sizeof addr);
    socklen_t size;
    if (v6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &addr;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        size = sizeof *in6;
    }
    else {
        struct sockaddr_in *in4 = (struct sockaddr_in *) &addr;
        in4->sin_family = AF_INET;
        in4->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        size = sizeof *in4;
    }
    int fd = socket (addr.ss_family, SOCK_STREAM, 0);
    int port = -1;
    if (fd >= 0 && bind (fd, (struct sockaddr *) &addr, size) == 0
    &&  getsockname (fd, (struct sockaddr *) &addr, &size) == 0)
        port = ntohs (v6 ? ((struct sockaddr_in6 *) &addr)->sin6_port
                         : ((struct sockaddr_in *) &addr)->sin_port);
    if (fd >= 0)
        close (fd);
    return port;
}

int
h_port_pick (bool v6)
{
    char path [PATH_MAX + 16];
    s_file (path, sizeof path);
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && flock (fd, LOCK_EX)) {
        close (fd);
        fd = -1;
    }
    if (fd < 0)
        return s_bound (v6);    //  no file to keep them in: as bind(0) gives

    //  What was handed out within PORTS_KEPT_S, oldest first
    static int ports [PORTS_MAX];
    static long long times [PORTS_MAX];
    int count = 0;
    long long now = (long long) time (NULL);
    FILE *file = fdopen (dup (fd), "r");
    if (file) {
        int port;
        long long when;
        while (fscanf (file, "%d %lld\n", &port, &when) == 2)
            if (now - when < PORTS_KEPT_S && count < PORTS_MAX) {
                ports [count] = port;
                times [count++] = when;
            }
        fclose (file);
    }
    int port = -1;
    for (int tries = 0; tries < PORTS_TRIES && port < 0; tries++) {
        port = s_bound (v6);
        for (int i = 0; port > 0 && i < count; i++)
            if (ports [i] == port)
                port = -1;
    }
    if (port > 0) {
        if (count == PORTS_MAX) {
            memmove (ports, ports + 1, (PORTS_MAX - 1) * sizeof ports [0]);
            memmove (times, times + 1, (PORTS_MAX - 1) * sizeof times [0]);
            count--;
        }
        ports [count] = port;
        times [count++] = now;
    }
    //  The file again, without what is over
    if (ftruncate (fd, 0) == 0 && lseek (fd, 0, SEEK_SET) == 0) {
        file = fdopen (dup (fd), "w");
        if (file) {
            for (int i = 0; i < count; i++)
                fprintf (file, "%d %lld\n", ports [i], times [i]);
            fclose (file);
        }
    }
    close (fd);             //  (and the lock with it)
    return port;
}
