/*  tls.h — HTTPS for a face: the certificate and key files, checked at
    start, and a probe that tells plain HTTP on the TLS port.

    libmicrohttpd serves TLS itself, with GnuTLS (MHD_USE_TLS and the PEM
    text in MHD_OPTION_HTTPS_MEM_CERT / _KEY). Its own check of the files
    is a failed start and a GnuTLS error code in its log. So the files are
    read and checked here first, with GnuTLS's x509 functions, and a
    gateway that cannot serve them does not start, saying why: a file that
    cannot be read, one that holds no PEM certificate or key, a
    certificate not valid yet or expired, a key that is not the
    certificate's.

    The probe: a client that speaks plain HTTP to the TLS port sends a
    request line where a TLS ClientHello should be, GnuTLS fails the
    handshake, and the client sees the connection close without a word.
    The probe reads the connection's first bytes for GnuTLS (its pull
    function), and when they are the start of a request line it answers
    in plain HTTP (400: this port speaks HTTPS) and ends the connection.
    After the first bytes GnuTLS reads the socket itself again: the probe
    costs nothing once the handshake has started.
*/
#ifndef TIERS_TLS_H
#define TIERS_TLS_H

#include <stddef.h>

#include <stdbool.h>

typedef struct _tiers_tls_t tiers_tls_t;

//  Reads and checks the PEM files. NULL + *why (malloc'ed) when they
//  cannot be served.
tiers_tls_t *tiers_tls_load (const char *cert_path, const char *key_path, char **why);
//  A small file of secrets (a key, a certificate, api_keys) read whole,
//  NUL-terminated: a regular file of at most 1 MiB. NULL + *why (named
//  `what`) otherwise. The caller wipes (explicit_bzero) and frees it.
char *tiers_secret_file_read (const char *what, const char *path, size_t *size,
                              char **why);
//  Zeroes the key's text and frees.
void tiers_tls_destroy (tiers_tls_t **self_p);

//  The PEM texts, for MHD (valid until destroy).
const char *tiers_tls_cert (const tiers_tls_t *self);
const char *tiers_tls_key (const tiers_tls_t *self);
//  One line for the log: the subject, the expiry and the days left.
const char *tiers_tls_summary (const tiers_tls_t *self);
//  The GnuTLS priorities the face serves: TLS 1.2 and 1.3.
const char *tiers_tls_priorities (void);

//  The probe of one connection, kept by the caller until its first bytes
//  came or tiers_tls_probe_stop.
typedef struct _tiers_tls_probe_t tiers_tls_probe_t;
struct _tiers_tls_probe_t {
    void *session;              //  gnutls_session_t; NULL once done
    int fd;
    //  Plain HTTP came: answer on fd (no TLS), and shut it down.
    void (*plain) (tiers_tls_probe_t *probe);
};

//  Reads the first bytes of `session` (MHD's, for the socket `fd`).
void tiers_tls_probe_start (tiers_tls_probe_t *probe, void *session, int fd);
//  Gives the session back to the socket (when it closes first).
void tiers_tls_probe_stop (tiers_tls_probe_t *probe);

#endif
