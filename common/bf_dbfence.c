/*  bf_dbfence — client and server TCP timeouts for a leader's session,
    tighter than every connection's (bf_db.h), applied by bf_db's one
    implementation (bf_db_keepalive_apply).  */

#include "bf_dbfence.h"

#include "bf_db.h"

static int
s_seconds_up (int ms)
{
    return (ms + 999) / 1000;
}

static int
s_guard (int guard_ms)
{
    return guard_ms < 1000 ? 1000 : guard_ms;
}

int
bf_db_fence_server_ms (int guard_ms)
{
    int s = s_seconds_up (s_guard (guard_ms));
    /*  idle s, then s + 1 probes 1 s apart.  */
    return (s + s + 1) * 1000;
}

int
bf_db_fence (PGconn *conn, int guard_ms)
{
    guard_ms = s_guard (guard_ms);
    int s = s_seconds_up (guard_ms);
    /*  Client: keepalive probes from guard/2 of silence, 1 s apart, and
        unanswered data given up after guard_ms. Server: idle s, s + 1
        probes 1 s apart, unacknowledged data after 2 s + 1 (s).  */
    bf_db_keepalive_t client
        = { s_seconds_up (guard_ms / 2), 1, s_seconds_up (guard_ms / 2), guard_ms };
    bf_db_keepalive_t server = { s, 1, s + 1, bf_db_fence_server_ms (guard_ms) };
    return bf_db_keepalive_apply (conn, &client, &server);
}
