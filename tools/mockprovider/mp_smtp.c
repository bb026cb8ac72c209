/*  mp_smtp — the SMTP server: one thread, epoll, non-blocking sockets.  */

#include "mp_smtp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mp_buf.h"
#include "mp_clock.h"
#include "mp_esmtp.h"
#include "mp_log.h"
#include "mp_mail.h"
#include "mp_outage.h"

#define S_SMTP_LINE_MAX 2048        /* command line, AUTH response included */
#define S_SMTP_IDLE_MS  300000      /* an idle session is closed after 5 minutes */
#define S_SMTP_OUT_MAX  (64 * 1024) /* replies a client does not read before we drop it */
#define S_SMTP_TICK_MS  100         /* longest epoll wait: an outage set over HTTP starts soon */

static struct {
    const mp_config_t *cfg;
    int epfd;
    int listen_fd; /* -1 while an outage refuses connections */
    int wake_fd;
    struct sockaddr_storage addr; /* the bound address and port, to listen again after an outage */
    socklen_t addr_len;
    mp_outage_phase_t phase; /* the outage phase the server is in */
    mp_smtp_session_t *all;
    mp_smtp_session_t *wait_head, *wait_tail;
    mp_smtp_session_t *dead; /* closed in this round; freed once no event can refer to them */
    size_t sessions;
    int64_t accept_paused_until; /* 0 while accepting */
    int64_t next_idle_scan;
    bool stop;
    pthread_t thread;
    char rbuf[64 * 1024];
} s_smtp = { .epfd = -1, .listen_fd = -1, .wake_fd = -1 };

static int s_tag_listen, s_tag_wake; /* epoll data for the two non-session descriptors */

static void
s_session_close (mp_smtp_session_t *s)
{
    if (s->fd < 0)
        return;
    close (s->fd);
    s->fd = -1;
    if (s->waiting) {
        if (s->wprev)
            s->wprev->wnext = s->wnext;
        else
            s_smtp.wait_head = s->wnext;
        if (s->wnext)
            s->wnext->wprev = s->wprev;
        else
            s_smtp.wait_tail = s->wprev;
        s->waiting = false;
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        s_smtp.all = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = NULL;
    s->next = s_smtp.dead;
    s_smtp.dead = s;
    s_smtp.sessions--;
}

static void
s_session_free_dead (void)
{
    while (s_smtp.dead) {
        mp_smtp_session_t *s = s_smtp.dead;
        s_smtp.dead = s->next;
        free (s->in);
        free (s->out);
        free (s->rcpt);
        free (s->hdr);
        free (s->msg);
        free (s);
    }
}

void
mp_smtp_send (mp_smtp_session_t *s, const char *data, size_t len)
{
    if (s->fd < 0)
        return;
    if (s->out_off == s->out_len) {
        s->out_off = s->out_len = 0;
        while (len > 0) {
            ssize_t w = send (s->fd, data, len, MSG_NOSIGNAL);
            if (w > 0) {
                data += w;
                len -= (size_t)w;
                continue;
            }
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            s_session_close (s);
            return;
        }
        if (len == 0)
            return;
    }
    if (mp_buf_bytes_add (&s->out, &s->out_len, &s->out_cap, data, len, S_SMTP_OUT_MAX) != 0)
        s_session_close (s); /* the client does not read its replies */
}

void
mp_smtp_sendf (mp_smtp_session_t *s, const char *format, ...)
{
    char line[512];
    va_list args;
    va_start (args, format);
    int n = vsnprintf (line, sizeof line, format, args);
    va_end (args);
    if (n > 0)
        mp_smtp_send (s, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/*  Sends what waits in the output buffer (EPOLLOUT).  */
static void
s_flush (mp_smtp_session_t *s)
{
    while (s->fd >= 0 && s->out_off < s->out_len) {
        ssize_t w = send (s->fd, s->out + s->out_off, s->out_len - s->out_off, MSG_NOSIGNAL);
        if (w > 0)
            s->out_off += (size_t)w;
        else if (w < 0 && errno == EINTR)
            continue;
        else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        else
            s_session_close (s);
    }
    if (s->fd >= 0 && s->closing)
        s_session_close (s);
}

void
mp_smtp_finish (mp_smtp_session_t *s)
{
    s->closing = true;
    if (s->out_off == s->out_len)
        s_session_close (s);
}

void
mp_smtp_reply_later (mp_smtp_session_t *s, const char *reply, size_t len, bool delay,
                     unsigned slow_ms)
{
    unsigned ms = slow_ms ? slow_ms : s->cfg->latency_ms[MP_EMAIL];
    if (!delay || ms == 0 || s_smtp.stop) {
        mp_smtp_send (s, reply, len);
        return;
    }
    if (len > sizeof s->reply)
        len = sizeof s->reply;
    memcpy (s->reply, reply, len);
    s->reply_len = len;
    s->waiting = true;
    s->due_ms = mp_clock_ms () + ms;
    /*  The list stays in due order: walk back from the tail (one latency: appended at once;
        --email-slow-ms replies are due later than the ones after them).  */
    mp_smtp_session_t *after = s_smtp.wait_tail;
    while (after && after->due_ms > s->due_ms)
        after = after->wprev;
    s->wprev = after;
    s->wnext = after ? after->wnext : s_smtp.wait_head;
    if (s->wnext)
        s->wnext->wprev = s;
    else
        s_smtp.wait_tail = s;
    if (after)
        after->wnext = s;
    else
        s_smtp.wait_head = s;
}

/*  Runs the protocol over p[0..n). Returns the bytes used; stops early while a reply is
    delayed, when the session closes, or at an incomplete command line.  */
static size_t
s_process (mp_smtp_session_t *s, const char *p, size_t n)
{
    size_t off = 0;
    while (off < n && !s->waiting && !s->closing && s->fd >= 0) {
        if (s->mode == MP_SMTP_DATA) {
            off += mp_mail_consume (s, p + off, n - off);
            continue;
        }
        const char *nl = memchr (p + off, '\n', n - off);
        if (!nl) {
            if (n - off > S_SMTP_LINE_MAX) {
                mp_smtp_sendf (s, "500 5.5.2 Line too long\r\n");
                mp_smtp_finish (s);
                return n;
            }
            break;
        }
        size_t len = (size_t)(nl - (p + off));
        if (len > 0 && p[off + len - 1] == '\r')
            len--;
        if (len > S_SMTP_LINE_MAX)
            mp_smtp_sendf (s, "500 5.5.2 Line too long\r\n");
        else {
            char line[S_SMTP_LINE_MAX + 1];
            memcpy (line, p + off, len);
            line[len] = '\0';
            if (memchr (line, '\0', len))
                mp_smtp_sendf (s, "500 5.5.2 NUL in command\r\n");
            else
                mp_esmtp_command (s, line);
        }
        off = (size_t)(nl - p) + 1;
    }
    return off;
}

/*  Processes newly read bytes (n may be 0: only the carried ones), keeping what is left.  */
static void
s_feed (mp_smtp_session_t *s, const char *p, size_t n)
{
    if (s->in_len == 0) {
        size_t used = s_process (s, p, n);
        if (used < n && s->fd >= 0 && !s->closing
            && mp_buf_bytes_add (&s->in, &s->in_len, &s->in_cap, p + used, n - used, SIZE_MAX) != 0)
            s_session_close (s);
        return;
    }
    if (n > 0 && mp_buf_bytes_add (&s->in, &s->in_len, &s->in_cap, p, n, SIZE_MAX) != 0) {
        s_session_close (s);
        return;
    }
    size_t used = s_process (s, s->in, s->in_len);
    if (s->fd < 0)
        return;
    memmove (s->in, s->in + used, s->in_len - used);
    s->in_len -= used;
}

/*  Processes carried input, then reads until the socket is drained (edge-triggered) or the
    session must wait for a delayed reply (then the rest stays in the kernel's buffer).  */
static void
s_pump (mp_smtp_session_t *s)
{
    if (s->in_len > 0)
        s_feed (s, NULL, 0);
    while (s->fd >= 0 && !s->waiting && !s->closing) {
        ssize_t n = recv (s->fd, s_smtp.rbuf, sizeof s_smtp.rbuf, 0);
        if (n > 0) {
            s->active_ms = mp_clock_ms ();
            s_feed (s, s_smtp.rbuf, (size_t)n);
        } else if (n == 0)
            s_session_close (s);
        else if (errno == EINTR)
            continue;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        else
            s_session_close (s);
    }
}

/*  Out of descriptors: stop accepting for a moment instead of spinning.  */
static void
s_pause_accepts (void)
{
    static int64_t logged_ms;
    int64_t now = mp_clock_ms ();
    if (now - logged_ms >= 10000) {
        mp_log ("smtp: accept: %s (%zu sessions); pausing accepts", strerror (errno),
                s_smtp.sessions);
        logged_ms = now;
    }
    epoll_ctl (s_smtp.epfd, EPOLL_CTL_DEL, s_smtp.listen_fd, NULL);
    s_smtp.accept_paused_until = now + 100;
}

static void
s_accept (void)
{
    for (;;) {
        int fd = accept4 (s_smtp.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                s_pause_accepts ();
            return;
        }
        int one = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        mp_smtp_session_t *s = calloc (1, sizeof *s);
        if (!s) {
            close (fd);
            continue;
        }
        s->cfg = s_smtp.cfg;
        s->fd = fd;
        s->active_ms = mp_clock_ms ();
        struct epoll_event ev
            = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = s };
        if (epoll_ctl (s_smtp.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close (fd);
            free (s);
            continue;
        }
        s->next = s_smtp.all;
        if (s_smtp.all)
            s_smtp.all->prev = s;
        s_smtp.all = s;
        s_smtp.sessions++;
        if (s_smtp.phase == MP_OUTAGE_ERROR) {
            mp_smtp_sendf (s, "554 5.3.2 mockprovider: service unavailable (outage)\r\n");
            mp_smtp_finish (s);
            continue;
        }
        mp_smtp_sendf (s, "220 mockprovider ESMTP ready\r\n");
    }
}

/*  Sends the delayed replies that are due and lets those sessions go on.  */
static void
s_fire_timers (int64_t now)
{
    mp_smtp_session_t *s;
    while ((s = s_smtp.wait_head) && (s->due_ms <= now || s_smtp.stop)) {
        s_smtp.wait_head = s->wnext;
        if (s->wnext)
            s->wnext->wprev = NULL;
        else
            s_smtp.wait_tail = NULL;
        s->wnext = s->wprev = NULL;
        s->waiting = false;
        mp_smtp_send (s, s->reply, s->reply_len);
        s->active_ms = now;
        s_pump (s);
    }
}

static void
s_idle_scan (int64_t now)
{
    mp_smtp_session_t *s = s_smtp.all;
    while (s) {
        mp_smtp_session_t *next = s->next;
        if (!s->waiting && now - s->active_ms > S_SMTP_IDLE_MS) {
            mp_smtp_sendf (s, "421 4.4.2 Idle for too long, closing\r\n");
            s_session_close (s);
        }
        s = next;
    }
}

/*  How long epoll may wait: until the next idle scan, delayed reply or end of an accept
    pause.  */
static int
s_timeout (void)
{
    int64_t now = mp_clock_ms ();
    int64_t wake = s_smtp.next_idle_scan;
    if (s_smtp.wait_head && s_smtp.wait_head->due_ms < wake)
        wake = s_smtp.wait_head->due_ms;
    if (s_smtp.accept_paused_until && s_smtp.accept_paused_until < wake)
        wake = s_smtp.accept_paused_until;
    int64_t outage = mp_outage_next_ms (now);
    if (outage >= 0 && now + outage < wake)
        wake = now + outage;
    if (wake > now + S_SMTP_TICK_MS)
        wake = now + S_SMTP_TICK_MS;
    return wake > now ? (int)(wake - now) : 0;
}

static void
s_event (const struct epoll_event *event)
{
    void *tag = event->data.ptr;
    if (tag == &s_tag_listen)
        s_accept ();
    else if (tag == &s_tag_wake)
        s_smtp.stop = true;
    else {
        mp_smtp_session_t *s = tag;
        if (s->fd < 0)
            return; /* closed earlier in this batch */
        if (event->events & EPOLLOUT)
            s_flush (s);
        if (s->fd >= 0 && (event->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            s_pump (s);
        if (s->fd >= 0 && (event->events & (EPOLLHUP | EPOLLERR)))
            s_session_close (s);
    }
}

/*  A listening socket on the server's address (s_smtp.addr). Returns it, or -1 (errno set).  */
static int
s_listen (void)
{
    int fd = socket (s_smtp.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind (fd, (struct sockaddr *)&s_smtp.addr, s_smtp.addr_len) != 0
        || listen (fd, 4096) != 0) {
        int saved = errno;
        close (fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/*  Moves the server into the outage phase in force at now. Going down, as a server that
    stops cleanly: an idle session gets 421 and is closed; one in the middle of a message
    finishes it (its reply included) and gets 421 at its next MAIL (mp_esmtp), so no client
    is left not knowing whether its message was taken. Refusing closes the listener, so
    connections are refused; coming out of it listens again on the same port (retried next
    round when that fails).  */
static void
s_outage_step (int64_t now)
{
    mp_outage_phase_t phase = mp_outage_phase (now);
    if (phase == s_smtp.phase)
        return;
    if (s_smtp.phase == MP_OUTAGE_NONE)
        for (mp_smtp_session_t *s = s_smtp.all, *next; s; s = next) {
            next = s->next;
            s->shutting = true;
            if (!s->waiting && !s->in_mail && s->mode == MP_SMTP_COMMAND) {
                mp_smtp_sendf (s, "421 4.3.2 mockprovider: service shutting down\r\n");
                mp_smtp_finish (s);
            }
        }
    if (phase == MP_OUTAGE_REFUSE && s_smtp.listen_fd >= 0) {
        close (s_smtp.listen_fd); /* leaves the epoll set with it */
        s_smtp.listen_fd = -1;
        s_smtp.accept_paused_until = 0;
    }
    if (phase != MP_OUTAGE_REFUSE && s_smtp.listen_fd < 0) {
        int fd = s_listen ();
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s_tag_listen };
        if (fd < 0 || epoll_ctl (s_smtp.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            mp_log ("smtp: outage: cannot listen again: %s; retrying", strerror (errno));
            if (fd >= 0)
                close (fd);
            return;
        }
        s_smtp.listen_fd = fd;
    }
    int64_t next = mp_outage_next_ms (now);
    if (phase == MP_OUTAGE_NONE)
        mp_log ("smtp: outage over: accepting mail again");
    else
        mp_log ("smtp: outage: %s for %lld ms",
                phase == MP_OUTAGE_REFUSE ? "refusing connections" : "greeting with 554",
                (long long)next);
    s_smtp.phase = phase;
}

/*  After the events of one round: due replies, the end of an accept pause, the outage phase,
    the idle scan.  */
static void
s_housekeeping (void)
{
    int64_t now = mp_clock_ms ();
    s_fire_timers (now);
    s_outage_step (now);
    if (s_smtp.accept_paused_until && now >= s_smtp.accept_paused_until && s_smtp.listen_fd >= 0) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s_tag_listen };
        epoll_ctl (s_smtp.epfd, EPOLL_CTL_ADD, s_smtp.listen_fd, &ev);
        s_smtp.accept_paused_until = 0;
    }
    if (now >= s_smtp.next_idle_scan) {
        s_idle_scan (now);
        s_smtp.next_idle_scan = now + 1000;
    }
}

static void *
s_smtp_run (void *arg)
{
    (void)arg;
    struct epoll_event events[512];
    s_smtp.next_idle_scan = mp_clock_ms () + 1000;
    while (!s_smtp.stop) {
        int n = epoll_wait (s_smtp.epfd, events, 512, s_timeout ());
        if (n < 0 && errno != EINTR) {
            mp_log ("smtp: epoll_wait: %s", strerror (errno));
            break;
        }
        for (int i = 0; i < n; i++)
            s_event (&events[i]);
        s_housekeeping ();
        s_session_free_dead ();
    }
    s_fire_timers (mp_clock_ms ()); /* stop is set: every delayed reply goes out now */
    while (s_smtp.all)
        s_session_close (s_smtp.all);
    s_session_free_dead ();
    return NULL;
}

int
mp_smtp_open (const mp_config_t *cfg)
{
    s_smtp.cfg = cfg;
    struct sockaddr_storage addr;
    socklen_t len;
    mp_config_sockaddr (cfg, cfg->smtp_port, &addr, &len);
    int fd = socket (addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        mp_log ("smtp: socket: %s", strerror (errno));
        return -1;
    }
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind (fd, (struct sockaddr *)&addr, len) != 0 || listen (fd, 4096) != 0) {
        mp_log ("smtp: cannot listen on %s port %d: %s", cfg->bind, cfg->smtp_port,
                strerror (errno));
        close (fd);
        return -1;
    }
    len = sizeof addr;
    getsockname (fd, (struct sockaddr *)&addr, &len);
    int port = ntohs (addr.ss_family == AF_INET ? ((struct sockaddr_in *)&addr)->sin_port
                                                : ((struct sockaddr_in6 *)&addr)->sin6_port);
    s_smtp.listen_fd = fd;
    s_smtp.addr = addr;
    s_smtp.addr_len = len;
    s_smtp.epfd = epoll_create1 (EPOLL_CLOEXEC);
    s_smtp.wake_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s_tag_listen };
    struct epoll_event wake = { .events = EPOLLIN, .data.ptr = &s_tag_wake };
    if (s_smtp.epfd < 0 || s_smtp.wake_fd < 0
        || epoll_ctl (s_smtp.epfd, EPOLL_CTL_ADD, fd, &ev) != 0
        || epoll_ctl (s_smtp.epfd, EPOLL_CTL_ADD, s_smtp.wake_fd, &wake) != 0) {
        mp_log ("smtp: epoll: %s", strerror (errno));
        return -1;
    }
    return port;
}

int
mp_smtp_start (void)
{
    if (pthread_create (&s_smtp.thread, NULL, s_smtp_run, NULL) != 0) {
        mp_log ("cannot start the SMTP thread");
        return -1;
    }
    return 0;
}

void
mp_smtp_stop (void)
{
    uint64_t one = 1;
    if (write (s_smtp.wake_fd, &one, sizeof one) != sizeof one)
        mp_log ("smtp: cannot wake the SMTP thread");
    pthread_join (s_smtp.thread, NULL);
}
