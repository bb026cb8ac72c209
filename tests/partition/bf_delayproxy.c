/*  bf_delayproxy — a TCP proxy of the partition test's own that delays
    what passes through it, for the provider-loss scenario on a kernel
    without the netem qdisc (issue 16 allows "a TCP proxy of our own in the
    test"). It runs in the mock provider's namespace between notify and the
    mock provider, so the test's packet loss (iptables on that link) still
    hits notify's real TCP connections, and the delay is added here.

        bf_delayproxy ADDRESS DELAY_MS PORT...

    For each PORT it listens on ADDRESS with a port the kernel picks,
    prints "PORT LISTEN_PORT" per target and then "ready" on stdout, and
    passes every connection to ADDRESS:PORT. With the delay on, each chunk
    read from one side is written to the other DELAY_MS after it was read,
    in order, both ways; a half close is passed on after the data before
    it, and a reset or error on one side closes both. SIGUSR1 turns the
    delay on, SIGUSR2 off (chunks already queued keep their time); each
    change is logged on stderr with the chunks delayed so far. SIGTERM
    ends it. It starts with the delay off.  */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_TARGETS 8
#define S_CHUNK       16384
/*  A direction stops reading while this much waits to be written.  */
#define S_QUEUE_LIMIT (1024 * 1024)

/*  A chunk waiting for its time.  */
typedef struct s_chunk {
    struct s_chunk *next;
    int64_t due_ms;
    size_t size, sent;
    bool eof; //  a half close, passed on when due
    char data[];
} s_chunk_t;

/*  One direction of a connection: what was read from fd in, to be
    written to fd out.  */
typedef struct {
    int in, out;
    s_chunk_t *head, *tail;
    size_t queued;
    bool read_eof;
} s_flow_t;

typedef struct {
    s_flow_t up, down; //  client -> target, target -> client
    bool dead;
} s_conn_t;

static volatile sig_atomic_t s_delay_on, s_changed, s_stop;
static int64_t s_delay_ms, s_delayed;

static void
s_on_signal (int sig)
{
    if (sig == SIGUSR1 || sig == SIGUSR2) {
        s_delay_on = sig == SIGUSR1;
        s_changed = 1;
    } else
        s_stop = 1;
}

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*  Queues a chunk of size bytes (eof: a half close) on flow, due after
    the delay if it is on, never before the chunk ahead of it.  */
static void
s_queue (s_flow_t *flow, const char *data, size_t size, bool eof)
{
    s_chunk_t *chunk = malloc (sizeof *chunk + size);
    if (!chunk) {
        fprintf (stderr, "bf_delayproxy: out of memory\n");
        exit (1);
    }
    chunk->next = NULL;
    chunk->due_ms = s_now_ms () + (s_delay_on ? s_delay_ms : 0);
    if (flow->tail && flow->tail->due_ms > chunk->due_ms)
        chunk->due_ms = flow->tail->due_ms;
    if (s_delay_on)
        s_delayed++;
    chunk->size = size;
    chunk->sent = 0;
    chunk->eof = eof;
    memcpy (chunk->data, data, size);
    if (flow->tail)
        flow->tail->next = chunk;
    else
        flow->head = chunk;
    flow->tail = chunk;
    flow->queued += size;
}

/*  Reads what fd in has for flow. Returns -1 when the connection is to
    be closed (a reset or an error).  */
static int
s_read (s_flow_t *flow)
{
    if (flow->read_eof)
        return 0; //  POLLHUP repeats after the end was read
    char buffer[S_CHUNK];
    ssize_t got = recv (flow->in, buffer, sizeof buffer, 0);
    if (got > 0) {
        s_queue (flow, buffer, (size_t)got, false);
        return 0;
    }
    if (got == 0) {
        flow->read_eof = true;
        s_queue (flow, NULL, 0, true);
        return 0;
    }
    return errno == EAGAIN || errno == EINTR ? 0 : -1;
}

/*  Writes flow's due chunks to fd out, as far as it takes them. Returns
    -1 when the connection is to be closed.  */
static int
s_write (s_flow_t *flow, int64_t now)
{
    while (flow->head && flow->head->due_ms <= now) {
        s_chunk_t *chunk = flow->head;
        if (chunk->eof)
            shutdown (flow->out, SHUT_WR);
        else {
            ssize_t put = send (flow->out, chunk->data + chunk->sent, chunk->size - chunk->sent,
                                MSG_NOSIGNAL);
            if (put < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -1;
            chunk->sent += (size_t)put;
            flow->queued -= (size_t)put;
            if (chunk->sent < chunk->size)
                return 0;
        }
        flow->head = chunk->next;
        if (!flow->head)
            flow->tail = NULL;
        free (chunk);
    }
    return 0;
}

static void
s_flow_free (s_flow_t *flow)
{
    while (flow->head) {
        s_chunk_t *next = flow->head->next;
        free (flow->head);
        flow->head = next;
    }
}

/*  A connection ends when both ways have seen their end and written it.  */
static bool
s_conn_finished (const s_conn_t *c)
{
    return c->up.read_eof && !c->up.head && c->down.read_eof && !c->down.head;
}

/*  A listening socket on address with a kernel-picked port, which goes
    to port. Returns the socket or -1.  */
static int
s_listen (const char *address, int *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    if (inet_pton (AF_INET, address, &sa.sin_addr) != 1) {
        fprintf (stderr, "bf_delayproxy: '%s' is not an IPv4 address\n", address);
        return -1;
    }
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    socklen_t length = sizeof sa;
    if (fd < 0 || bind (fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen (fd, 1024) != 0
        || getsockname (fd, (struct sockaddr *)&sa, &length) != 0) {
        fprintf (stderr, "bf_delayproxy: cannot listen on %s: %s\n", address, strerror (errno));
        return -1;
    }
    *port = ntohs (sa.sin_port);
    return fd;
}

/*  A connection to address:port, non-blocking (its connect may still be
    under way: the first write then waits for it). Returns it or -1.  */
static int
s_connect (const char *address, int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
    inet_pton (AF_INET, address, &sa.sin_addr);
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect (fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close (fd);
        return -1;
    }
    return fd;
}

/*  The poll events flow's two ends want: read while the queue is short,
    write while a chunk is due.  */
static void
s_want (const s_flow_t *flow, struct pollfd *in, struct pollfd *out, int64_t now)
{
    if (!flow->read_eof && flow->queued < S_QUEUE_LIMIT)
        in->events |= POLLIN;
    if (flow->head && flow->head->due_ms <= now)
        out->events |= POLLOUT;
}

int
main (int argc, char **argv)
{
    if (argc < 4 || argc - 3 > S_MAX_TARGETS) {
        fprintf (stderr, "usage: bf_delayproxy ADDRESS DELAY_MS PORT... (at most %d ports)\n",
                 S_MAX_TARGETS);
        return 2;
    }
    /*  Two descriptors per connection, and notify opens thousands at
        its default concurrency: as many as the hard limit allows.  */
    struct rlimit files;
    if (getrlimit (RLIMIT_NOFILE, &files) == 0) {
        files.rlim_cur = files.rlim_max;
        setrlimit (RLIMIT_NOFILE, &files);
    }
    const char *address = argv[1];
    s_delay_ms = atoll (argv[2]);
    int targets = argc - 3, listeners[S_MAX_TARGETS], target_port[S_MAX_TARGETS];
    for (int i = 0; i < targets; i++) {
        int port = 0;
        target_port[i] = atoi (argv[3 + i]);
        listeners[i] = s_listen (address, &port);
        if (listeners[i] < 0 || target_port[i] <= 0)
            return 1;
        printf ("%d %d\n", target_port[i], port);
    }
    printf ("ready\n");
    fflush (stdout);
    struct sigaction sa = { .sa_handler = s_on_signal };
    sigaction (SIGUSR1, &sa, NULL);
    sigaction (SIGUSR2, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);

    s_conn_t **conns = NULL;
    size_t nconns = 0;
    struct pollfd *fds = NULL;
    while (!s_stop) {
        if (s_changed) {
            s_changed = 0;
            fprintf (stderr, "bf_delayproxy: delay %s (%lld ms); %lld chunks delayed so far\n",
                     s_delay_on ? "on" : "off", (long long)s_delay_ms, (long long)s_delayed);
        }
        int64_t now = s_now_ms (), next_due = -1;
        fds = realloc (fds, sizeof *fds * ((size_t)targets + 2 * nconns));
        for (int i = 0; i < targets; i++)
            fds[i] = (struct pollfd){ .fd = listeners[i], .events = POLLIN };
        for (size_t i = 0; i < nconns; i++) {
            struct pollfd *client = &fds[targets + 2 * i], *target = client + 1;
            *client = (struct pollfd){ .fd = conns[i]->up.in };
            *target = (struct pollfd){ .fd = conns[i]->down.in };
            s_want (&conns[i]->up, client, target, now);
            s_want (&conns[i]->down, target, client, now);
            const s_flow_t *flows[] = { &conns[i]->up, &conns[i]->down };
            for (int f = 0; f < 2; f++)
                if (flows[f]->head && flows[f]->head->due_ms > now
                    && (next_due < 0 || flows[f]->head->due_ms < next_due))
                    next_due = flows[f]->head->due_ms;
        }
        int timeout = next_due < 0 ? 1000 : (int)(next_due - now);
        if (poll (fds, (nfds_t)targets + 2 * nconns, timeout) < 0 && errno != EINTR) {
            perror ("bf_delayproxy: poll");
            return 1;
        }
        now = s_now_ms ();
        size_t polled = nconns;
        for (size_t i = 0; i < polled; i++) {
            s_conn_t *c = conns[i];
            short client = fds[targets + 2 * i].revents, target = fds[targets + 2 * i + 1].revents;
            if (((client & (POLLIN | POLLHUP | POLLERR)) && s_read (&c->up) < 0)
                || ((target & (POLLIN | POLLHUP | POLLERR)) && s_read (&c->down) < 0)
                || s_write (&c->up, now) < 0 || s_write (&c->down, now) < 0 || s_conn_finished (c))
                c->dead = true;
        }
        for (int i = 0; i < targets; i++) {
            if (!(fds[i].revents & POLLIN))
                continue;
            int client = accept4 (listeners[i], NULL, NULL, SOCK_NONBLOCK);
            if (client < 0)
                continue;
            int target = s_connect (address, target_port[i]);
            if (target < 0) {
                fprintf (stderr, "bf_delayproxy: cannot reach %s:%d: %s\n", address, target_port[i],
                         strerror (errno));
                close (client);
                continue;
            }
            s_conn_t *c = calloc (1, sizeof *c);
            conns = realloc (conns, sizeof *conns * (nconns + 1));
            if (!c || !conns) {
                fprintf (stderr, "bf_delayproxy: out of memory\n");
                return 1;
            }
            c->up = (s_flow_t){ .in = client, .out = target };
            c->down = (s_flow_t){ .in = target, .out = client };
            conns[nconns++] = c;
        }
        /*  A dead connection: both sockets closed with a reset (linger
            0), as the peer that failed would have done to the other.  */
        size_t kept = 0;
        for (size_t i = 0; i < nconns; i++) {
            s_conn_t *c = conns[i];
            if (!c->dead) {
                conns[kept++] = c;
                continue;
            }
            bool clean = s_conn_finished (c);
            int sockets[] = { c->up.in, c->down.in };
            for (int k = 0; k < 2; k++) {
                if (!clean) {
                    struct linger reset = { .l_onoff = 1, .l_linger = 0 };
                    setsockopt (sockets[k], SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
                }
                close (sockets[k]);
            }
            s_flow_free (&c->up);
            s_flow_free (&c->down);
            free (c);
        }
        nconns = kept;
    }
    fprintf (stderr, "bf_delayproxy: stopped; %lld chunks delayed\n", (long long)s_delayed);
    return 0;
}
