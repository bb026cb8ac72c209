/*  bf_dbfence — bounds how long a network partition can hide from a leader
    that holds a PostgreSQL session advisory lock (the active control, the
    active relay).

    Without it, a leader cut from PostgreSQL blocks in a statement until
    TCP gives up (about 15 minutes), and the server keeps the dead session,
    and with it the lock, until its keepalives notice (2 hours by default):
    no standby can take over. bf_db_fence sets, on one connection:
    - the client side (this process's socket): TCP keepalives and
      TCP_USER_TIMEOUT, so that a statement left without an answer fails
      about guard_ms after the link went silent; the leader then steps
      down (it treats the failure as a lost session);
    - the server side (the session's tcp_keepalives_* and
      tcp_user_timeout): the server drops the session, which releases the
      lock, only after about 2 × guard_ms + 1 s of silence.
    So the cut leader stops acting before its lock can be taken by another
    process (docs/guarantees.md, "Faults"). A connection over a Unix socket
    gets the server settings only (they are ignored there).  */

#ifndef BF_DBFENCE_H_INCLUDED
#define BF_DBFENCE_H_INCLUDED

#include <libpq-fe.h>

/*  Applies the fence to conn with guard_ms (at least 1000). Returns 0, or
    -1 (logged) when a setting could not be applied; the connection is
    usable either way.  */
int bf_db_fence (PGconn *conn, int guard_ms);

/*  The server's silence bound for guard_ms: how long after a partition
    the session and its locks may outlive it (ms).  */
int bf_db_fence_server_ms (int guard_ms);

#endif
