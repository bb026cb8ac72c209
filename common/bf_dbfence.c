/*  bf_dbfence — client and server TCP timeouts for a leader's session.  */

#include "bf_dbfence.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "bf_log.h"

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

//  Client side: keepalive probes from guard/2 of silence, 1 s apart, and
//  unanswered data given up after guard_ms.
static int
s_client (PGconn *conn, int guard_ms)
{
    int fd = PQsocket (conn);
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (fd < 0 || getsockname (fd, (struct sockaddr *)&addr, &len) != 0)
        return -1;
    if (addr.ss_family != AF_INET && addr.ss_family != AF_INET6)
        return 0; //  a Unix socket: no partition to bound
    int on = 1, idle = s_seconds_up (guard_ms / 2), interval = 1;
    int count = s_seconds_up (guard_ms / 2);
    unsigned int timeout = (unsigned int)guard_ms;
    if (setsockopt (fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0
        || setsockopt (fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0
        || setsockopt (fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) != 0
        || setsockopt (fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) != 0
        || setsockopt (fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof timeout) != 0) {
        bf_error ("database fence: cannot set the socket's TCP timeouts: %s", strerror (errno));
        return -1;
    }
    return 0;
}

int
bf_db_fence (PGconn *conn, int guard_ms)
{
    guard_ms = s_guard (guard_ms);
    if (!conn || PQstatus (conn) != CONNECTION_OK)
        return -1;
    int rc = s_client (conn, guard_ms);
    int s = s_seconds_up (guard_ms);
    char sql[256];
    snprintf (sql, sizeof sql,
              "SET tcp_keepalives_idle = %d; SET tcp_keepalives_interval = 1;"
              " SET tcp_keepalives_count = %d; SET tcp_user_timeout = %d",
              s, s + 1, bf_db_fence_server_ms (guard_ms));
    PGresult *res = PQexec (conn, sql);
    if (PQresultStatus (res) != PGRES_COMMAND_OK) {
        bf_error ("database fence: cannot set the session's TCP timeouts: %s",
                  PQresultErrorMessage (res));
        rc = -1;
    }
    PQclear (res);
    return rc;
}
