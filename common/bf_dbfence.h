/*  bf_dbfence — bounds how long a network partition can hide from a leader
    that holds a PostgreSQL session advisory lock (the active control, the
    active relay).

    Every connection notices a silent link within db.keepalives_* (about
    30 s, bf_db.h), but both ends alike: the server could free the lock
    while the cut leader still believes it leads, and a standby waits as
    long. bf_db_fence sets, on one connection, a shorter bound on the
    leader's end than on the server's:
    - the client side (this process's socket): TCP keepalives and
      TCP_USER_TIMEOUT, so that a statement left without an answer fails
      about guard_ms after the link went silent; the leader then steps
      down (it treats the failure as a lost session);
    - the server side (the session's tcp_keepalives_* and
      tcp_user_timeout): the server drops the session, which releases the
      lock, only after about 2 × guard_ms + 1 s of silence.
    So the cut leader stops acting before its lock can be taken by another
    process (docs/guarantees.md, "Faults"). A connection over a Unix socket
    gets the server settings only (they are ignored there). Every other
    connection has the looser timeouts of bf_db_configure_keepalive
    (bf_db.h, db.keepalives_*); the fence overrides them on its own.  */

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
