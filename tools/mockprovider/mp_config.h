/*  mp_config — the mock's settings: the command line, its defaults and its usage text.

    main fills one mp_config_t with mp_config_parse and mp_config_limits before any thread
    starts; the servers then read it and nobody writes it again, so it needs no lock. The flags
    and defaults are listed in README.md.  */

#ifndef MP_CONFIG_H_INCLUDED
#define MP_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "mp_store.h"

typedef struct {
    int http_port;
    int smtp_port;
    const char *bind;
    const char *token;
    const char *smtp_user;
    const char *smtp_password;
    unsigned latency_ms[MP_CHANNELS];
    double fail_pct[MP_CHANNELS];
    bool fail_permanent;
    bool latency_at_data;  /* email latency delays the 354 to DATA, not the final reply */
    bool smtp_dedup;       /* refuse a Message-ID accepted before (real servers do not) */
    double email_slow_pct; /* share of emails whose final reply waits email_slow_ms */
    unsigned email_slow_ms;
    double throttle_pct;
    double garbage_pct;
    double lost_reply_pct; /* HTTP: accepted, but the client gets 502 (the reply was lost) */
    const char **reject;   /* --reject-recipient, reject_count of them */
    size_t reject_count;
    uint64_t seed;
    size_t max_message_size;
    unsigned http_threads;    /* 0 until mp_config_limits */
    unsigned max_connections; /* 0 until mp_config_limits */
    bool verbose;
    const char *record_path; /* --record: every accepted message, one JSON line each */
    bool key_reuse_ok;       /* --key-reuse accept: a changed body under a used key gets 409 */
} mp_config_t;

/*  Sets the defaults, then parses argv into self (the strings stay argv's). Returns 0, 1 for
    --help, or 2 (the reason and the usage printed on stderr) on a bad flag or value.  */
int mp_config_parse (mp_config_t *self, int argc, char **argv);

/*  Prints the usage text on out.  */
void mp_config_usage (FILE *out);

/*  Fills what was not given from the machine: HTTP threads from the CPUs (at most 16), the
    HTTP connection limit from nofile, the descriptor limit in force (half of it for HTTP, the
    rest for SMTP sessions and the process).  */
void mp_config_limits (mp_config_t *self, rlim_t nofile);

/*  True when recipient is a --reject-recipient address (compared case-insensitively).  */
bool mp_config_rejects (const mp_config_t *self, const char *recipient);

/*  Fills addr and len for the --bind address with port. Returns 0, or -1 when --bind is no
    IPv4 or IPv6 literal (mp_config_parse refused that already).  */
int mp_config_sockaddr (const mp_config_t *self, int port, struct sockaddr_storage *addr,
                        socklen_t *len);

#endif
