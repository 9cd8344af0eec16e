/*  probe.c — a stranger at a CURVE port, for t/cluster/security.sh.

        probe ENDPOINT SERVER_CERT [CLIENT_CERT]
            connect a DEALER to ENDPOINT (a shard's port) and send it a
            shard request: a put of {"probe":true} as d/probe, then a get.
            With CLIENT_CERT (a file of `tiers keys`, its _secret beside it,
            or "new" for a key nobody knows) the DEALER is a CURVE client of
            the server key in SERVER_CERT; without, it speaks plain ZMTP.
            Prints "answered STATUS" for the put's answer within 5 s (a
            CURVE handshake and a commit on a loaded machine), or "silent"
            (what a refused peer sees: it waits the 5 s out). Exits 0
            either way.
        probe garbage HOST PORT
            write a ZMTP greeting for a mechanism that does not exist, and
            junk after it, then close
        probe http HOST PORT
            write an HTTP request (no ZMTP at all), then close
        probe status ENDPOINT SERVER_CERT CLIENT_CERT
            send STATUS to ENDPOINT as CLIENT_CERT's node and print the
            JSON answer (nothing within 10 s: prints nothing, exits 1)
        probe truncated HOST PORT
            write the first 10 bytes of a ZMTP greeting, then stall: wait
            until the server drops the connection (at most 6 s); prints
            "dropped" or "open"
*/
#include "wire.h"
#include <czmq.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>

static int
s_raw (const char *host, int port, const void *bytes, size_t size, bool stall)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    if (fd < 0 || inet_pton (AF_INET, host, &addr.sin_addr) != 1
    ||  connect (fd, (struct sockaddr *) &addr, sizeof addr)) {
        fprintf (stderr, "probe: cannot connect to %s:%d\n", host, port);
        return 1;
    }
    if (write (fd, bytes, size) != (ssize_t) size)
        fprintf (stderr, "probe: short write\n");
    if (stall) {                    //  until the server hangs up
        struct pollfd item = { fd, POLLIN, 0 };
        char byte;
        bool dropped = false;
        int64_t until = zclock_mono () + 6000;
        while (!dropped && zclock_mono () < until)
            if (poll (&item, 1, 100) > 0)
                dropped = read (fd, &byte, 1) <= 0;
        printf ("%s\n", dropped ? "dropped" : "open");
    }
    else {
        zclock_sleep (300);         //  let the server read it, then hang up
        printf ("sent %zu bytes\n", size);
    }
    close (fd);
    return 0;
}

int
main (int argc, char **argv)
{
    if (argc == 4 && streq (argv [1], "garbage")) {
        //  A ZMTP 3.0 greeting for a mechanism nobody has, then junk.
        uint8_t junk [128] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0,
                               'G', 'A', 'R', 'B', 'A', 'G', 'E' };
        for (size_t i = 64; i < sizeof junk; i++)
            junk [i] = (uint8_t) (i * 37 + 11);
        return s_raw (argv [2], atoi (argv [3]), junk, sizeof junk, false);
    }
    if (argc == 4 && streq (argv [1], "http")) {
        static const char request [] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        return s_raw (argv [2], atoi (argv [3]), request, sizeof request - 1, false);
    }
    if (argc == 4 && streq (argv [1], "truncated")) {
        static const uint8_t greeting [10] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f };
        return s_raw (argv [2], atoi (argv [3]), greeting, sizeof greeting, true);
    }
    if (argc == 5 && streq (argv [1], "status")) {
        zsock_t *dealer = zsock_new (ZMQ_DEALER);
        zsock_set_linger (dealer, 0);
        zcert_t *server = zcert_load (argv [3]);
        zcert_t *client = zcert_load (argv [4]);
        if (!server || !client || !dealer) {
            fprintf (stderr, "probe: cannot load %s\n", server ? argv [4] : argv [3]);
            return 2;
        }
        zcert_apply (client, zsock_resolve (dealer));
        zsock_set_curve_serverkey (dealer, zcert_public_txt (server));
        zcert_destroy (&server);
        zcert_destroy (&client);
        if (zsock_connect (dealer, "%s", argv [2])) {
            fprintf (stderr, "probe: cannot connect to %s\n", argv [2]);
            return 2;
        }
        tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_STATUS);
        tiers_wire_set_rid (request, "status");
        tiers_wire_send (request, zsock_resolve (dealer), NULL);
        tiers_wire_destroy (&request);
        zpoller_t *poller = zpoller_new (dealer, NULL);
        int rc = 1;
        if (zpoller_wait (poller, 10000)) {
            tiers_wire_t *answer = tiers_wire_recv (zsock_resolve (dealer), NULL, NULL);
            if (answer && answer->status == 200) {
                printf ("%s\n", (char *) answer->body);
                rc = 0;
            }
            tiers_wire_destroy (&answer);
        }
        zpoller_destroy (&poller);
        zsock_destroy (&dealer);
        return rc;
    }
    if (argc != 3 && argc != 4) {
        fprintf (stderr, "usage: probe ENDPOINT SERVER_CERT [CLIENT_CERT|new]\n"
                         "       probe garbage|truncated HOST PORT\n");
        return 2;
    }
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    if (argc == 4) {
        zcert_t *server = zcert_load (argv [2]);
        zcert_t *client = streq (argv [3], "new") ? zcert_new () : zcert_load (argv [3]);
        if (!server || !client) {
            fprintf (stderr, "probe: cannot load %s\n", server ? argv [3] : argv [2]);
            return 2;
        }
        zcert_apply (client, zsock_resolve (dealer));
        zsock_set_curve_serverkey (dealer, zcert_public_txt (server));
        zcert_destroy (&server);
        zcert_destroy (&client);
    }
    if (zsock_connect (dealer, "%s", argv [1])) {
        fprintf (stderr, "probe: cannot connect to %s\n", argv [1]);
        return 2;
    }
    const char *ops [] = { "put", "get" };
    for (int i = 0; i < 2; i++) {
        tiers_wire_t *request = tiers_wire_new (TIERS_WIRE_REQUEST);
        tiers_wire_set_rid (request, ops [i]);
        tiers_wire_set_service (request, "probe");
        tiers_wire_set_header (request, "op", ops [i], 3);
        tiers_wire_set_header (request, "collection", "d", 1);
        tiers_wire_set_header (request, "id", "probe", 5);
        if (i == 0)
            tiers_wire_set_body (request, "{\"probe\":true}", 14);
        tiers_wire_send (request, zsock_resolve (dealer), NULL);
        tiers_wire_destroy (&request);
    }
    //  The put's answer (the get may come first: reads do not wait for
    //  the commit), or silence.
    zpoller_t *poller = zpoller_new (dealer, NULL);
    int put = 0, answers = 0;
    //  The whole budget, not a silence: the first answer may well take
    //  longer than a moment to come.
    int64_t until = zclock_mono () + 5000;
    while (!put) {
        int64_t left = until - zclock_mono ();
        if (left <= 0 || !zpoller_wait (poller, (int) left)) {
            if (zpoller_terminated (poller) || zclock_mono () >= until)
                break;
            continue;
        }
        tiers_wire_t *answer = tiers_wire_recv (zsock_resolve (dealer), NULL, NULL);
        answers++;
        if (answer && streq (answer->rid, "put"))
            put = answer->status;
        tiers_wire_destroy (&answer);
    }
    if (put)
        printf ("answered %d\n", put);
    else
        printf ("%s\n", answers ? "answered, but not the put" : "silent");
    zpoller_destroy (&poller);
    zsock_destroy (&dealer);
    return 0;
}
