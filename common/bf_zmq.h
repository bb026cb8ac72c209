/*  bf_zmq — the settings every ZeroMQ TCP socket between services gets:
    ZMTP heartbeats, so that a connection whose peer went silent (a
    partition, a firewall dropping packets, a host that died or hangs) is
    noticed and closed instead of waiting on TCP for minutes or hours.

    With heartbeats every connection sends a PING every
    zmq.heartbeat_ivl_ms; one that hears nothing (no PONG, no message) for
    zmq.heartbeat_timeout_ms after a PING is closed: a connecting socket
    (DEALER, SUB) reconnects by itself and a SUB subscribes again; a bound
    one (ROUTER, PUB) drops the peer's pipe and what was queued for it.
    The PING also carries a TTL (the timeout) that tells the peer to close
    its end when it hears nothing for as long. A silent peer is thus
    noticed within interval + timeout (30 s by default). The pings are
    answered by libzmq's I/O thread, so a busy actor does not trip them.  */

#ifndef BF_ZMQ_H_INCLUDED
#define BF_ZMQ_H_INCLUDED

#include <czmq.h>

/*  Sets the process's heartbeat interval and timeout (ms) for the sockets
    made after it; bf_service_load calls it with zmq.heartbeat_ivl_ms and
    zmq.heartbeat_timeout_ms. Defaults before a call: 5000 and 25000.
    interval 0: no heartbeats. Any thread.  */
void bf_zmq_configure (int heartbeat_ivl_ms, int heartbeat_timeout_ms);

/*  Gives sock the process's heartbeats. Call on every socket that talks
    TCP to another program, before it binds or connects (libzmq reads the
    options when a connection starts).  */
void bf_zmq_heartbeat (zsock_t *sock);

#endif
