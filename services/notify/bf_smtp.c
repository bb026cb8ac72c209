/*  bf_smtp — the non-blocking SMTP client (contract in bf_smtp.h).

    Sessions live on one list; idle ones also on an idle stack (the most
    recently used is reused first, so a trickle of mail keeps one
    connection). Every socket is registered once, edge-triggered, for
    input and output, so a session's I/O is: write what is pending until
    EAGAIN, read until EAGAIN, act on each complete reply. A session that
    is closed while events for it may still sit in the current epoll batch
    is only marked dead and freed at the end of bf_smtp_perform.

    Messages that find no idle session and no room for a new one wait in
    a FIFO queue. Finished messages wait on a list until bf_smtp_perform
    hands them to the done callback: nothing is ever reported from inside
    bf_smtp_submit.  */

#include "bf_smtp.h"
#include "bf_text.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <czmq.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_EVENTS_MAX 1024
#define S_IN_MAX     BF_SMTP_LINE_MAX /* one reply line must fit */
#define S_NEVER      INT64_MAX

typedef struct s_msg_t s_msg_t;
struct s_msg_t {
    s_msg_t *next;
    void *cookie;
    char *mail_cmd, *rcpt_cmd; /* complete command lines with CRLF */
    bf_text_buf_t wire;        /* dot-stuffed body + ".\r\n" */
    int64_t deadline;          /* while queued: when it stops waiting for a session */
    bool retried;              /* already moved to a fresh session once */
    bf_smtp_result_t result;
};

typedef enum {
    S_CONNECTING,
    S_GREETING,
    S_EHLO,
    S_HELO,
    S_AUTH_PLAIN,
    S_AUTH_LOGIN,
    S_AUTH_USER,
    S_AUTH_PASS,
    S_IDLE,
    S_MAIL,
    S_RCPT,
    S_DATA,
    S_BODY,
    S_RSET,
} s_state_t;

typedef struct s_session_t s_session_t;
struct s_session_t {
    s_session_t *prev, *next;           /* all live sessions */
    s_session_t *idle_prev, *idle_next; /* idle stack */
    s_session_t *dead_next;
    bool idle, dead, reused;
    bool auth_plain, auth_login; /* offered in the EHLO reply */
    int fd;
    s_state_t state;
    s_msg_t *msg;
    int64_t deadline;
    int deadline_ms;   /* the phase timeout behind deadline, for the report */
    int reply_code;    /* first line's code of a multi-line reply in progress */
    bool reply_more;   /* inside a multi-line reply */
    bf_text_buf_t cmd; /* the last command sent */
    const char *out;   /* cmd.data or msg->wire.data */
    size_t out_len, out_pos;
    char in[S_IN_MAX];
    size_t in_len;
};

struct _bf_smtp_t {
    char *host, *port, *ehlo;
    char *username, *password;
    int max_sessions, queue_ms, connect_ms;
    int greeting_ms, command_ms, data_ms, block_ms, end_ms;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    bool resolved;
    int epoll_fd;
    struct epoll_event *events;
    s_session_t *sessions, *idle;
    int session_count;
    s_session_t *dead;
    s_msg_t *queue_head, *queue_tail;
    s_msg_t *done_head, *done_tail;
    int inflight;
    int64_t next_check; /* no deadline passes before this */
    bool pumping;
};

//  --------------------------------------------------------------------------
//  Helpers

//  The message as it goes after DATA: every line break CRLF, a leading
//  '.' doubled, then the terminating ".".
static int
s_stuff (bf_text_buf_t *out, const char *text, size_t len)
{
    bool line_start = true;
    int rc = 0;
    size_t run = 0; //  start of the bytes copied as they are
    for (size_t i = 0; i < len && rc == 0; i++) {
        char c = text[i];
        if (c == '\r' || c == '\n') {
            rc = bf_text_buf_add (out, text + run, i - run);
            if (c == '\r' && i + 1 < len && text[i + 1] == '\n')
                i++;
            rc = rc ? rc : bf_text_buf_add (out, "\r\n", 2);
            run = i + 1;
            line_start = true;
            continue;
        }
        if (line_start && c == '.') {
            rc = bf_text_buf_add (out, text + run, i - run);
            rc = rc ? rc : bf_text_buf_add (out, ".", 1);
            run = i; //  the dot itself goes with the run: doubled
        }
        line_start = false;
    }
    rc = rc ? rc : bf_text_buf_add (out, text + run, len - run);
    if (rc == 0 && !line_start)
        rc = bf_text_buf_add (out, "\r\n", 2);
    return rc ? rc : bf_text_buf_add (out, ".\r\n", 3);
}

static void
s_set_line (bf_smtp_result_t *result, const char *text)
{
    size_t len = strnlen (text, sizeof result->line - 1);
    memcpy (result->line, text, len);
    result->line[len] = '\0';
}

static void
s_watch (bf_smtp_t *self, int64_t deadline)
{
    if (deadline < self->next_check)
        self->next_check = deadline;
}

//  The timeout of the phase s is in now (RFC 5321 4.5.3.2); 0 = none.
static int
s_phase_ms (const bf_smtp_t *self, const s_session_t *s)
{
    switch (s->state) {
        case S_CONNECTING:
            return self->connect_ms;
        case S_GREETING:
            return self->greeting_ms;
        case S_IDLE:
            return 0;
        case S_DATA:
            return self->data_ms;
        case S_BODY:
            return s->out_pos < s->out_len ? self->block_ms : self->end_ms;
        default:
            return self->command_ms;
    }
}

//  Starts the timeout of s's current phase from now.
static void
s_arm (bf_smtp_t *self, s_session_t *s)
{
    s->deadline_ms = s_phase_ms (self, s);
    s->deadline = s->deadline_ms > 0 ? zclock_mono () + s->deadline_ms : S_NEVER;
    s_watch (self, s->deadline);
}

//  --------------------------------------------------------------------------
//  URL

//  Splits url into host, port and EHLO domain (each malloc'ed when out is
//  not NULL). Returns 0 or -1.
static int
s_parse_url (const char *url, char **host_out, char **port_out, char **ehlo_out)
{
    if (strncmp (url, "smtp://", 7) != 0)
        return -1;
    const char *p = url + 7;
    for (const unsigned char *c = (const unsigned char *)p; *c; c++)
        if (*c <= 0x20 || *c >= 0x7F || strchr ("@?#%\\", *c))
            return -1;
    const char *host = p, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr (host, ']');
        if (!host_end)
            return -1;
        p = host_end + 1;
    } else {
        host_end = p + strcspn (p, ":/");
        p = host_end;
    }
    if (host_end == host)
        return -1;
    char port[8] = "25";
    if (*p == ':') {
        p++;
        size_t digits = strspn (p, "0123456789");
        if (digits == 0 || digits > 5)
            return -1;
        memcpy (port, p, digits);
        port[digits] = '\0';
        long value = strtol (port, NULL, 10);
        if (value < 1 || value > 65535)
            return -1;
        p += digits;
    }
    if (*p != '\0' && *p != '/')
        return -1;
    const char *ehlo = *p == '/' && p[1] ? p + 1 : "localhost";
    if (strchr (ehlo, '/'))
        return -1;
    if (!host_out)
        return 0;
    *host_out = strndup (host, (size_t)(host_end - host));
    *port_out = strdup (port);
    *ehlo_out = strdup (ehlo);
    return *host_out && *port_out && *ehlo_out ? 0 : -1;
}

bool
bf_smtp_url_ok (const char *url)
{
    return url && s_parse_url (url, NULL, NULL, NULL) == 0;
}

static int
s_resolve (bf_smtp_t *self)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *found = NULL;
    if (getaddrinfo (self->host, self->port, &hints, &found) != 0 || !found)
        return -1;
    memcpy (&self->addr, found->ai_addr, found->ai_addrlen);
    self->addr_len = found->ai_addrlen;
    self->resolved = true;
    freeaddrinfo (found);
    return 0;
}

//  --------------------------------------------------------------------------
//  Messages

static void
s_msg_free (s_msg_t *msg)
{
    if (!msg)
        return;
    free (msg->mail_cmd);
    free (msg->rcpt_cmd);
    bf_text_buf_free (&msg->wire);
    free (msg);
}

static void
s_queue_push (bf_smtp_t *self, s_msg_t *msg, bool front)
{
    if (front) {
        msg->next = self->queue_head;
        self->queue_head = msg;
        if (!self->queue_tail)
            self->queue_tail = msg;
    } else {
        msg->next = NULL;
        if (self->queue_tail)
            self->queue_tail->next = msg;
        else
            self->queue_head = msg;
        self->queue_tail = msg;
    }
    s_watch (self, msg->deadline);
}

//  Moves msg to the finished list with its result as set.
static void
s_msg_done (bf_smtp_t *self, s_msg_t *msg)
{
    msg->next = NULL;
    if (self->done_tail)
        self->done_tail->next = msg;
    else
        self->done_head = msg;
    self->done_tail = msg;
}

static void
s_msg_fail (bf_smtp_t *self, s_msg_t *msg, bf_smtp_error_t error, const char *line)
{
    msg->result.error = error;
    if (line)
        s_set_line (&msg->result, line);
    s_msg_done (self, msg);
}

//  --------------------------------------------------------------------------
//  Sessions

static void s_pump (bf_smtp_t *self);

static void
s_idle_remove (bf_smtp_t *self, s_session_t *s)
{
    if (!s->idle)
        return;
    if (s->idle_prev)
        s->idle_prev->idle_next = s->idle_next;
    else
        self->idle = s->idle_next;
    if (s->idle_next)
        s->idle_next->idle_prev = s->idle_prev;
    s->idle_prev = s->idle_next = NULL;
    s->idle = false;
}

static void
s_idle_push (bf_smtp_t *self, s_session_t *s)
{
    s->state = S_IDLE;
    s->deadline = S_NEVER;
    s->out_len = s->out_pos = 0;
    s->idle = true;
    s->idle_prev = NULL;
    s->idle_next = self->idle;
    if (self->idle)
        self->idle->idle_prev = s;
    self->idle = s;
}

//  Closes s. Its message (if any) fails with error/line, or goes back to
//  the queue when the session was a stale pooled one (see below). s is freed later (it may be in
//  the epoll batch being processed).
static void
s_session_close (bf_smtp_t *self, s_session_t *s, bf_smtp_error_t error, const char *line)
{
    if (s->dead)
        return;
    s_idle_remove (self, s);
    if (s->fd >= 0)
        close (s->fd);
    s->fd = -1;
    s->dead = true;
    if (s->prev)
        s->prev->next = s->next;
    else
        self->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->dead_next = self->dead;
    self->dead = s;
    self->session_count--;
    s_msg_t *msg = s->msg;
    s->msg = NULL;
    //  The whole message went out and no final reply came: the server may
    //  have taken it (RFC 1047). A reply, even a refusal, is not this case.
    if (msg && s->state == S_BODY && s->out == msg->wire.data && s->out_pos >= s->out_len
        && (error == BF_SMTP_TIMEOUT || error == BF_SMTP_BROKEN))
        msg->result.possibly_delivered = true;
    if (msg && error == BF_SMTP_TIMEOUT)
        msg->result.timeout_ms = s->deadline_ms;
    bool whole_sent
        = msg && s->state == S_BODY && s->out == msg->wire.data && s->out_pos >= s->out_len;
    s->out = NULL;
    s->out_len = s->out_pos = 0;
    //  A pooled session that broke or answered 421 (closing) before the
    //  final "." went out: it predates what the server is now (restarted,
    //  or an idle connection closed under us), and the server has not
    //  taken the message. It goes again, once, on a fresh connection; the
    //  other idle sessions are as old and go too. After the final "." the
    //  message may have been taken: never resent here.
    bool stale = s->reused
                 && (error == BF_SMTP_BROKEN
                     || (error == BF_SMTP_REPLY && msg && msg->result.code == 421));
    if (msg && stale && !msg->retried && !whole_sent) {
        msg->retried = true;
        memset (&msg->result, 0, sizeof msg->result);
        msg->deadline = zclock_mono () + self->queue_ms;
        s_queue_push (self, msg, true);
        bf_smtp_drop_idle (self);
    } else if (msg)
        s_msg_fail (self, msg, error, line);
    s_pump (self);
}

static void
s_free_dead (bf_smtp_t *self)
{
    while (self->dead) {
        s_session_t *s = self->dead;
        self->dead = s->dead_next;
        bf_text_buf_wipe (&s->cmd); /* it may have held an AUTH line */
        free (s);
    }
}

//  Writes what is pending. Returns 0, or -1 when the session was closed.
static int
s_flush (bf_smtp_t *self, s_session_t *s)
{
    while (s->out_pos < s->out_len) {
        ssize_t put = send (s->fd, s->out + s->out_pos, s->out_len - s->out_pos, MSG_NOSIGNAL);
        if (put > 0) {
            s->out_pos += (size_t)put;
            if (s->state == S_BODY) /* data block timeout per write; then end of data */
                s_arm (self, s);
            continue;
        }
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        s_session_close (self, s, BF_SMTP_BROKEN, "connection lost while sending");
        return -1;
    }
    return 0;
}

//  Sends one command line (format without CRLF). Returns 0 or -1 (closed).
static int s_command (bf_smtp_t *self, s_session_t *s, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_command (bf_smtp_t *self, s_session_t *s, const char *format, ...)
{
    char line[512];
    va_list args;
    va_start (args, format);
    int need = vsnprintf (line, sizeof line, format, args);
    va_end (args);
    bf_text_buf_reset (&s->cmd);
    if (need < 0 || (size_t)need >= sizeof line || bf_text_buf_add (&s->cmd, line, (size_t)need)
        || bf_text_buf_add (&s->cmd, "\r\n", 2)) {
        s_session_close (self, s, BF_SMTP_BROKEN, "out of memory or command too long");
        return -1;
    }
    s->out = s->cmd.data;
    s->out_len = s->cmd.len;
    s->out_pos = 0;
    s_arm (self, s);
    return s_flush (self, s);
}

//  Sends a prepared buffer (not copied: it must outlive the write) and
//  starts the timeout of the state set before the call.
static int
s_send_raw (bf_smtp_t *self, s_session_t *s, const char *data, size_t len)
{
    s->out = data;
    s->out_len = len;
    s->out_pos = 0;
    s_arm (self, s);
    return s_flush (self, s);
}

static int
s_start_message (bf_smtp_t *self, s_session_t *s)
{
    s->state = S_MAIL;
    return s_send_raw (self, s, s->msg->mail_cmd, strlen (s->msg->mail_cmd));
}

//  Opens a session for msg. On a failure msg is reported.
static void
s_session_open (bf_smtp_t *self, s_msg_t *msg)
{
    if (!self->resolved && s_resolve (self)) {
        s_msg_fail (self, msg, BF_SMTP_CONNECT, "could not resolve the host");
        return;
    }
    s_session_t *s = calloc (1, sizeof *s);
    if (!s) {
        s_msg_fail (self, msg, BF_SMTP_CONNECT, "out of memory");
        return;
    }
    s->fd = socket (self->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        s_msg_fail (self, msg, BF_SMTP_CONNECT, strerror (errno));
        free (s);
        return;
    }
    int one = 1;
    setsockopt (s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt (s->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = s };
    int rc = connect (s->fd, (struct sockaddr *)&self->addr, self->addr_len);
    if ((rc != 0 && errno != EINPROGRESS)
        || epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, s->fd, &ev)) {
        s_msg_fail (self, msg, BF_SMTP_CONNECT, strerror (errno));
        close (s->fd);
        free (s);
        return;
    }
    s->state = rc == 0 ? S_GREETING : S_CONNECTING;
    s->msg = msg;
    s_arm (self, s);
    s->next = self->sessions;
    if (self->sessions)
        self->sessions->prev = s;
    self->sessions = s;
    self->session_count++;
}

//  Gives queued messages to idle sessions or new ones, up to max_sessions.
static void
s_pump (bf_smtp_t *self)
{
    if (self->pumping)
        return;
    self->pumping = true;
    while (self->queue_head && (self->idle || self->session_count < self->max_sessions)) {
        s_msg_t *msg = self->queue_head;
        self->queue_head = msg->next;
        if (!self->queue_head)
            self->queue_tail = NULL;
        msg->next = NULL;
        //  A message retried after a stale session takes a fresh one: an
        //  idle session makes room when all are open.
        if (msg->retried && self->idle && self->session_count >= self->max_sessions)
            s_session_close (self, self->idle, BF_SMTP_BROKEN, NULL);
        if (self->idle && !msg->retried) {
            s_session_t *s = self->idle;
            s_idle_remove (self, s);
            s->msg = msg;
            s_start_message (self, s);
        } else
            s_session_open (self, msg);
    }
    self->pumping = false;
}

//  --------------------------------------------------------------------------
//  Replies

//  The session is set up: AUTH if wanted and offered, else the message.
static int
s_setup_done (bf_smtp_t *self, s_session_t *s)
{
    return s_start_message (self, s);
}

//  Appends the AUTH PLAIN response (RFC 4616): the base64 of
//  "\0username\0password". The plain form is wiped before it is freed.
static int
s_auth_plain_b64 (bf_smtp_t *self, bf_text_buf_t *out)
{
    const char *password = self->password ? self->password : "";
    size_t user_len = strlen (self->username), pass_len = strlen (password);
    bf_text_buf_t plain = { 0 };
    //  All the room at once, so no realloc leaves a copy behind.
    int rc = bf_text_buf_reserve (&plain, user_len + pass_len + 2);
    rc = rc ? rc : bf_text_buf_add (&plain, "", 1);
    rc = rc ? rc : bf_text_buf_add (&plain, self->username, user_len);
    rc = rc ? rc : bf_text_buf_add (&plain, "", 1);
    rc = rc ? rc : bf_text_buf_add (&plain, password, pass_len);
    rc = rc ? rc : bf_text_buf_base64 (out, plain.data, plain.len, false);
    bf_text_buf_wipe (&plain);
    return rc;
}

//  Makes room in cmd for any AUTH line at once, so that no realloc leaves
//  a copy of the credential behind (bf_text_buf_wipe reaches only the
//  last block). The line is wiped once its reply came (s_on_setup_reply).
static int
s_reserve_secret (bf_smtp_t *self, bf_text_buf_t *cmd)
{
    size_t user_len = strlen (self->username);
    size_t pass_len = self->password ? strlen (self->password) : 0;
    if (user_len > SIZE_MAX / 4 - pass_len - 64)
        return -1;
    return bf_text_buf_reserve (cmd, (user_len + pass_len + 2) / 3 * 4 + 4 + 32);
}

//  Sends AUTH PLAIN with the response on the same line, or AUTH LOGIN.
static int
s_auth (bf_smtp_t *self, s_session_t *s)
{
    s->state = s->auth_plain ? S_AUTH_PLAIN : S_AUTH_LOGIN;
    bf_text_buf_reset (&s->cmd);
    int rc = s_reserve_secret (self, &s->cmd);
    rc = rc ? rc : bf_text_buf_str (&s->cmd, s->auth_plain ? "AUTH PLAIN " : "AUTH LOGIN");
    if (rc == 0 && s->auth_plain)
        rc = s_auth_plain_b64 (self, &s->cmd);
    rc = rc ? rc : bf_text_buf_add (&s->cmd, "\r\n", 2);
    if (rc) {
        s_session_close (self, s, BF_SMTP_BROKEN, "out of memory");
        return -1;
    }
    return s_send_raw (self, s, s->cmd.data, s->cmd.len);
}

//  The AUTH PLAIN response on its own line, after a 334 to "AUTH PLAIN ...".
static int
s_auth_plain_line (bf_smtp_t *self, s_session_t *s)
{
    s->state = S_AUTH_PASS;
    bf_text_buf_reset (&s->cmd);
    if (s_reserve_secret (self, &s->cmd) || s_auth_plain_b64 (self, &s->cmd)
        || bf_text_buf_add (&s->cmd, "\r\n", 2)) {
        s_session_close (self, s, BF_SMTP_BROKEN, "out of memory");
        return -1;
    }
    return s_send_raw (self, s, s->cmd.data, s->cmd.len);
}

//  An AUTH LOGIN answer: base64 of text.
static int
s_auth_line (bf_smtp_t *self, s_session_t *s, const char *text)
{
    bf_text_buf_reset (&s->cmd);
    if (s_reserve_secret (self, &s->cmd) || bf_text_buf_base64 (&s->cmd, text, strlen (text), false)
        || bf_text_buf_add (&s->cmd, "\r\n", 2)) {
        s_session_close (self, s, BF_SMTP_BROKEN, "out of memory");
        return -1;
    }
    return s_send_raw (self, s, s->cmd.data, s->cmd.len);
}

//  A failure of the session set-up: the message fails TRANSIENT-ly (the
//  caller's mapping) and the session goes.
static int
s_setup_failed (bf_smtp_t *self, s_session_t *s, int code, const char *line)
{
    if (s->msg) {
        s->msg->result.code = code;
        s->msg->result.in_setup = true;
    }
    s_session_close (self, s, code >= 400 ? BF_SMTP_REPLY : BF_SMTP_UNEXPECTED, line);
    return -1;
}

//  The message on s failed with a reply: report it, then RSET (or close
//  when the server is going away or the body was not fully sent).
static int
s_message_failed (bf_smtp_t *self, s_session_t *s, int code, const char *line)
{
    s_msg_t *msg = s->msg;
    msg->result.code = code;
    bool complete = s->out_pos >= s->out_len;
    if (code < 400 || code >= 600 || code == 421 || !complete) {
        s_session_close (self, s, code >= 400 && code < 600 ? BF_SMTP_REPLY : BF_SMTP_UNEXPECTED,
                         line);
        return -1;
    }
    s->msg = NULL;
    s_msg_fail (self, msg, BF_SMTP_REPLY, line);
    s->reused = true;
    s->state = S_RSET;
    return s_command (self, s, "RSET");
}

//  A reply while the session is set up (greeting, EHLO / HELO, AUTH).
static int
s_on_setup_reply (bf_smtp_t *self, s_session_t *s, int code, const char *line)
{
    //  The reply to an AUTH line: the line (the credential, base64) is
    //  sent and goes now, not when the session ends.
    bool auth = s->state == S_AUTH_PLAIN || s->state == S_AUTH_LOGIN || s->state == S_AUTH_USER
                || s->state == S_AUTH_PASS;
    if (auth && s->out_pos >= s->out_len)
        bf_text_buf_wipe (&s->cmd);
    switch (s->state) {
        case S_CONNECTING:
        case S_GREETING:
            if (code != 220)
                return s_setup_failed (self, s, code, line);
            s->state = S_EHLO;
            return s_command (self, s, "EHLO %s", self->ehlo);
        case S_EHLO:
            if (code / 100 != 2) {
                s->state = S_HELO;
                return s_command (self, s, "HELO %s", self->ehlo);
            }
            if (self->username && (s->auth_plain || s->auth_login))
                return s_auth (self, s);
            return s_setup_done (self, s);
        case S_HELO:
            if (code / 100 != 2)
                return s_setup_failed (self, s, code, line);
            return s_setup_done (self, s);
        case S_AUTH_PLAIN:
            if (code == 334) /* the server wants the response on its own line */
                return s_auth_plain_line (self, s);
            /* fall through */
        case S_AUTH_PASS:
            if (code / 100 != 2)
                return s_setup_failed (self, s, code, line);
            return s_setup_done (self, s);
        case S_AUTH_LOGIN:
            if (code != 334)
                return s_setup_failed (self, s, code, line);
            s->state = S_AUTH_USER;
            return s_auth_line (self, s, self->username);
        case S_AUTH_USER:
            if (code != 334)
                return s_setup_failed (self, s, code, line);
            s->state = S_AUTH_PASS;
            return s_auth_line (self, s, self->password ? self->password : "");
        default:
            return 0;
    }
}

//  The server accepted the body: the message is done, the session idle.
static int
s_message_sent (bf_smtp_t *self, s_session_t *s, const char *line)
{
    s_msg_t *msg = s->msg;
    s->msg = NULL;
    msg->result.error = BF_SMTP_OK;
    s_set_line (&msg->result, line);
    s_msg_done (self, msg);
    s->reused = true;
    s_idle_push (self, s);
    s_pump (self);
    return 0;
}

//  A reply while the session is idle or carries a message (MAIL, RCPT,
//  DATA, the body, RSET).
static int
s_on_message_reply (bf_smtp_t *self, s_session_t *s, int code, const char *line)
{
    switch (s->state) {
        case S_IDLE:
            //  An idle session spoke (421 shutting down, usually): drop it.
            s_session_close (self, s, BF_SMTP_BROKEN, line);
            return -1;
        case S_MAIL:
            //  530: the server wants AUTH (not offered, or not configured):
            //  a session problem, not this message's (transient, like AUTH).
            if (code == 530)
                s->msg->result.in_setup = true;
            if (code / 100 != 2)
                return s_message_failed (self, s, code, line);
            s->state = S_RCPT;
            return s_send_raw (self, s, s->msg->rcpt_cmd, strlen (s->msg->rcpt_cmd));
        case S_RCPT:
            if (code != 250 && code != 251)
                return s_message_failed (self, s, code, line);
            s->state = S_DATA;
            return s_command (self, s, "DATA");
        case S_DATA:
            if (code != 354)
                return s_message_failed (self, s, code, line);
            s->state = S_BODY;
            return s_send_raw (self, s, s->msg->wire.data, s->msg->wire.len);
        case S_BODY:
            if (code / 100 != 2 || s->out_pos < s->out_len)
                return s_message_failed (self, s, code, line);
            return s_message_sent (self, s, line);
        case S_RSET:
            if (code / 100 != 2) {
                s_session_close (self, s, BF_SMTP_BROKEN, line);
                return -1;
            }
            s_idle_push (self, s);
            s_pump (self);
            return 0;
        default:
            return 0;
    }
}

//  Acts on one complete reply (code, its last line). Returns 0, or -1
//  when the session was closed.
static int
s_on_reply (bf_smtp_t *self, s_session_t *s, int code, const char *line)
{
    if (s->msg)
        s->msg->result.code = code;
    if (s->state < S_IDLE)
        return s_on_setup_reply (self, s, code, line);
    return s_on_message_reply (self, s, code, line);
}

//  One EHLO keyword line (after the code): notes the AUTH mechanisms
//  offered ("AUTH PLAIN LOGIN", or the old "AUTH=PLAIN LOGIN").
static void
s_ehlo_keyword (s_session_t *s, const char *text)
{
    if (strncasecmp (text, "AUTH", 4) != 0 || (text[4] != ' ' && text[4] != '='))
        return;
    char words[S_IN_MAX + 1];
    snprintf (words, sizeof words, "%s", text + 5);
    char *save = NULL;
    for (char *word = strtok_r (words, " ", &save); word; word = strtok_r (NULL, " ", &save)) {
        if (strcasecmp (word, "PLAIN") == 0)
            s->auth_plain = true;
        else if (strcasecmp (word, "LOGIN") == 0)
            s->auth_login = true;
    }
}

//  Splits the input into lines; a reply ends with "ddd " or "ddd" (every
//  line before it "ddd-"); only the complete reply is acted on.
static int
s_parse_input (bf_smtp_t *self, s_session_t *s)
{
    size_t start = 0;
    while (true) {
        char *eol = memchr (s->in + start, '\n', s->in_len - start);
        if (!eol)
            break;
        size_t len = (size_t)(eol - (s->in + start));
        char line[S_IN_MAX + 1];
        memcpy (line, s->in + start, len);
        line[len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        start += (size_t)(eol - (s->in + start)) + 1;
        bool digits = len >= 3 && line[0] >= '2' && line[0] <= '5' && line[1] >= '0'
                      && line[1] <= '9' && line[2] >= '0' && line[2] <= '9';
        if (!digits || (len > 3 && line[3] != ' ' && line[3] != '-')) {
            s_session_close (self, s, BF_SMTP_BROKEN, "malformed reply from server");
            return -1;
        }
        int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        //  RFC 5321 4.2.1: every line of a multi-line reply has the same code.
        if (s->reply_more && code != s->reply_code) {
            s_session_close (self, s, BF_SMTP_BROKEN, "malformed multi-line reply from server");
            return -1;
        }
        //  EHLO keywords are on every line after the first, the last one
        //  included, in any order (RFC 5321 4.1.1.1).
        if (s->state == S_EHLO && s->reply_more && len > 4)
            s_ehlo_keyword (s, line + 4);
        s->reply_code = code;
        s->reply_more = len > 3 && line[3] == '-';
        if (s->reply_more)
            continue;
        if (s_on_reply (self, s, code, line))
            return -1;
    }
    memmove (s->in, s->in + start, s->in_len - start);
    s->in_len -= start;
    if (s->in_len == sizeof s->in) {
        s_session_close (self, s, BF_SMTP_BROKEN, "reply line too long");
        return -1;
    }
    return 0;
}

//  Handles readiness of s. Returns 0, or -1 when the session was closed.
static int
s_session_io (bf_smtp_t *self, s_session_t *s, uint32_t events)
{
    if (s->state == S_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return 0;
        int error = 0;
        socklen_t len = sizeof error;
        if (getsockopt (s->fd, SOL_SOCKET, SO_ERROR, &error, &len) || error) {
            s_session_close (self, s, BF_SMTP_CONNECT, strerror (error ? error : errno));
            return -1;
        }
        s->state = S_GREETING;
        s_arm (self, s);
    }
    if (s_flush (self, s))
        return -1;
    while (true) {
        ssize_t got = recv (s->fd, s->in + s->in_len, sizeof s->in - s->in_len, 0);
        if (got > 0) {
            s->in_len += (size_t)got;
            if (s_parse_input (self, s))
                return -1;
            continue;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        s_session_close (self, s, BF_SMTP_BROKEN,
                         got == 0 ? "connection closed by the server" : "connection lost");
        return -1;
    }
}

static void
s_check_timeouts (bf_smtp_t *self, int64_t now)
{
    if (now < self->next_check)
        return;
    self->next_check = S_NEVER;
    for (s_session_t *s = self->sessions, *next; s; s = next) {
        next = s->next;
        if (s->deadline > now) {
            s_watch (self, s->deadline);
            continue;
        }
        const char *what = s->state == S_CONNECTING ? "while connecting"
                           : s->state == S_GREETING ? "waiting for the greeting"
                           : s->state < S_IDLE      ? "while setting the session up"
                           : s->state == S_DATA     ? "waiting for the reply to DATA"
                           : s->state == S_BODY && s->out_pos < s->out_len
                               ? "while sending the message"
                           : s->state == S_BODY ? "waiting for the reply to the end of the message"
                           : s->state == S_RSET ? "waiting for RSET"
                                                : "waiting for a reply";
        if (s->msg && s->state < S_IDLE)
            s->msg->result.in_setup = true;
        s_session_close (self, s, BF_SMTP_TIMEOUT, what);
        next = self->sessions; /* the list may have changed (pump) */
    }
    for (s_msg_t **at = &self->queue_head; *at;) {
        s_msg_t *msg = *at;
        if (msg->deadline > now) {
            s_watch (self, msg->deadline);
            at = &msg->next;
            continue;
        }
        *at = msg->next;
        if (self->queue_tail == msg) {
            self->queue_tail = NULL;
            for (s_msg_t *m = self->queue_head; m; m = m->next)
                self->queue_tail = m;
        }
        msg->result.timeout_ms = self->queue_ms;
        s_msg_fail (self, msg, BF_SMTP_TIMEOUT, "waiting for a free session");
    }
}

//  --------------------------------------------------------------------------
//  Public API

bf_smtp_t *
bf_smtp_new (const bf_smtp_config_t *config, char *err, size_t errsize)
{
    if (err && errsize)
        err[0] = '\0';
    if (!config || !config->url || config->max_sessions <= 0 || config->queue_ms <= 0
        || config->connect_ms <= 0 || config->greeting_ms < 0 || config->command_ms < 0
        || config->data_ms < 0 || config->block_ms < 0 || config->end_ms < 0
        || !bf_smtp_url_ok (config->url)) {
        if (err && errsize)
            snprintf (err, errsize, "bf_smtp: bad configuration");
        return NULL;
    }
    if (config->username && !config->allow_plain_auth) {
        if (err && errsize)
            snprintf (err, errsize,
                      "SMTP AUTH over plain smtp:// (no TLS) refused: the password would cross "
                      "the network in clear");
        return NULL;
    }
    bf_smtp_t *self = calloc (1, sizeof *self);
    if (!self) {
        if (err && errsize)
            snprintf (err, errsize, "out of memory");
        return NULL;
    }
    self->epoll_fd = -1;
    self->max_sessions = config->max_sessions;
    self->queue_ms = config->queue_ms;
    self->connect_ms = config->connect_ms;
    self->greeting_ms = config->greeting_ms ? config->greeting_ms : BF_SMTP_GREETING_MS;
    self->command_ms = config->command_ms ? config->command_ms : BF_SMTP_COMMAND_MS;
    self->data_ms = config->data_ms ? config->data_ms : BF_SMTP_DATA_MS;
    self->block_ms = config->block_ms ? config->block_ms : BF_SMTP_BLOCK_MS;
    self->end_ms = config->end_ms ? config->end_ms : BF_SMTP_END_MS;
    self->next_check = S_NEVER;
    bool ok = s_parse_url (config->url, &self->host, &self->port, &self->ehlo) == 0;
    if (ok && config->username && !(self->username = strdup (config->username)))
        ok = false;
    if (ok && config->password && !(self->password = strdup (config->password)))
        ok = false;
    if (ok && !(self->events = calloc (S_EVENTS_MAX, sizeof *self->events)))
        ok = false;
    if (ok && (self->epoll_fd = epoll_create1 (EPOLL_CLOEXEC)) < 0)
        ok = false;
    if (!ok) {
        if (err && errsize)
            snprintf (err, errsize, "bf_smtp: out of memory or no epoll descriptor");
        bf_smtp_destroy (&self);
        return NULL;
    }
    s_resolve (self); /* retried on connect when it fails now */
    return self;
}

int
bf_smtp_drop_idle (bf_smtp_t *self)
{
    //  No message may take an idle session while they are being dropped.
    bool pumping = self->pumping;
    self->pumping = true;
    int dropped = 0;
    while (self->idle) {
        s_session_t *s = self->idle;
        if (s->fd >= 0) /* best effort; never waits */
            (void)!send (s->fd, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
        s_session_close (self, s, BF_SMTP_BROKEN, NULL);
        dropped++;
    }
    self->pumping = pumping;
    if (!pumping)
        s_pump (self);
    return dropped;
}

void
bf_smtp_destroy (bf_smtp_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bf_smtp_t *self = *self_p;
    while (self->sessions) {
        s_session_t *s = self->sessions;
        if (s->state == S_IDLE && s->fd >= 0) /* best effort; never waits */
            (void)!send (s->fd, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
        s_msg_free (s->msg);
        s->msg = NULL;
        s_idle_remove (self, s);
        if (s->fd >= 0)
            close (s->fd);
        self->sessions = s->next;
        bf_text_buf_wipe (&s->cmd); /* it may have held an AUTH line */
        free (s);
    }
    s_free_dead (self);
    for (s_msg_t *m = self->queue_head, *next; m; m = next) {
        next = m->next;
        s_msg_free (m);
    }
    for (s_msg_t *m = self->done_head, *next; m; m = next) {
        next = m->next;
        s_msg_free (m);
    }
    if (self->epoll_fd >= 0)
        close (self->epoll_fd);
    free (self->events);
    free (self->host);
    free (self->port);
    free (self->ehlo);
    free (self->username);
    if (self->password)
        memset (self->password, 0, strlen (self->password));
    free (self->password);
    free (self);
    *self_p = NULL;
}

int
bf_smtp_submit (bf_smtp_t *self, const char *mail_from, const char *rcpt, const char *message,
                size_t len, void *cookie)
{
    if (!self || !mail_from || !rcpt || !message)
        return -1;
    s_msg_t *msg = calloc (1, sizeof *msg);
    if (!msg)
        return -1;
    msg->cookie = cookie;
    size_t mail_len = strlen (mail_from) + 16, rcpt_len = strlen (rcpt) + 16;
    msg->mail_cmd = malloc (mail_len);
    msg->rcpt_cmd = malloc (rcpt_len);
    if (!msg->mail_cmd || !msg->rcpt_cmd || s_stuff (&msg->wire, message, len)) {
        s_msg_free (msg);
        return -1;
    }
    snprintf (msg->mail_cmd, mail_len, "MAIL FROM:<%s>\r\n", mail_from);
    snprintf (msg->rcpt_cmd, rcpt_len, "RCPT TO:<%s>\r\n", rcpt);
    msg->deadline = zclock_mono () + self->queue_ms;
    self->inflight++;
    s_queue_push (self, msg, false);
    s_pump (self);
    return 0;
}

int
bf_smtp_perform (bf_smtp_t *self, bf_smtp_done_fn done, void *context)
{
    if (!self)
        return 0;
    for (int round = 0; round < 8; round++) {
        int count = epoll_wait (self->epoll_fd, self->events, S_EVENTS_MAX, 0);
        for (int i = 0; i < count; i++) {
            s_session_t *s = (s_session_t *)self->events[i].data.ptr;
            if (!s->dead)
                s_session_io (self, s, self->events[i].events);
        }
        if (count < S_EVENTS_MAX)
            break;
    }
    s_check_timeouts (self, zclock_mono ());
    s_free_dead (self);
    int reported = 0;
    while (self->done_head) {
        s_msg_t *msg = self->done_head;
        self->done_head = msg->next;
        if (!self->done_head)
            self->done_tail = NULL;
        self->inflight--;
        reported++;
        if (done)
            done (context, msg->cookie, &msg->result);
        s_msg_free (msg);
    }
    s_free_dead (self);
    return reported;
}

int
bf_smtp_fd (const bf_smtp_t *self)
{
    return self ? self->epoll_fd : -1;
}

int
bf_smtp_timeout_ms (bf_smtp_t *self)
{
    if (!self)
        return -1;
    if (self->done_head)
        return 0;
    if (self->next_check == S_NEVER)
        return -1;
    int64_t wait = self->next_check - zclock_mono ();
    return wait <= 0 ? 0 : wait > 3600000 ? 3600000 : (int)wait;
}

int
bf_smtp_inflight (const bf_smtp_t *self)
{
    return self ? self->inflight : 0;
}

int
bf_smtp_sessions (const bf_smtp_t *self)
{
    return self ? self->session_count : 0;
}
