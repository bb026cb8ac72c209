/*  =========================================================================
    itest_sender - bf_sender against real sockets on 127.0.0.1.

    Two scripted in-test servers, each a poll(2) loop in its own thread:
    an HTTP/1.1 responder (keep-alive, Content-Length bodies, a reply
    script with latency or "never answer") that records every request, and
    an SMTP responder (EHLO, AUTH PLAIN, MAIL, RCPT, DATA with dot-unstuffing)
    whose replies per phase are scripted and which records the conversation
    and every message. They count connections and requests in progress, so
    the concurrency and many-in-flight tests measure what reached the wire.

    The real mock provider ($BF_MOCKPROVIDER) is used only for a smoke test,
    and only when it runs and answers --help; otherwise that test skips.
    =========================================================================
*/

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bf_log.h"
#include "bf_sender.h"
#include "bf_testproc.h"
#include "bf_text.h"
#include "unit/bf_testutil.h"

extern char **environ;

#define S_DEADLINE_MS 15000

//  --------------------------------------------------------------------------
//  Helpers: clock, growable buffer (aborts on OOM: also used in threads)

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep (&ts, &ts) != 0 && errno == EINTR)
        ;
}

//  The scripted servers' buffers: bf_text_buf_t, and no test goes on when
//  memory runs out.
typedef bf_text_buf_t s_tbuf_t;

static void
s_tbuf_add (s_tbuf_t *buf, const void *data, size_t len)
{
    if (bf_text_buf_add (buf, data, len) != 0)
        abort ();
}

static void
s_tbuf_str (s_tbuf_t *buf, const char *text)
{
    s_tbuf_add (buf, text, strlen (text));
}

static void
s_tbuf_consume (s_tbuf_t *buf, size_t len)
{
    memmove (buf->data, buf->data + len, buf->len - len);
    buf->len -= len;
    buf->data[buf->len] = '\0';
}

static void
s_tbuf_free (s_tbuf_t *buf)
{
    bf_text_buf_free (buf);
}

static char *
s_xstrdup (const char *text)
{
    char *copy = strdup (text ? text : "");
    if (!copy)
        abort ();
    return copy;
}

//  A loopback port that was free a moment ago (nothing listens on it).
static int
s_free_port (void)
{
    int port = bf_proc_free_port ();
    assert_true (port > 0);
    return port;
}

//  Decodes base64 (padded, RFC 4648) with libsodium, skipping CR/LF;
//  returns a malloc'd NUL-terminated string.
static char *
s_unbase64 (const char *text, size_t len)
{
    char *out = malloc (len + 1);
    size_t out_len = 0;
    assert_non_null (out);
    assert_int_equal (sodium_base642bin ((unsigned char *)out, len, text, len, "\r\n", &out_len,
                                         NULL, sodium_base64_VARIANT_ORIGINAL),
                      0);
    out[out_len] = '\0';
    return out;
}

//  --------------------------------------------------------------------------
//  The scripted servers

typedef enum { S_HTTP, S_SMTP } s_proto_t;

typedef struct {
    char *head; /* request line + headers, CRLFs kept */
    char *body;
    size_t body_len;
    int conn;
} s_request_t;

typedef struct {
    int fd, id;
    s_tbuf_t in, out;
    size_t out_pos;
    bool pending;   /* a request is waiting for its reply */
    int64_t due_ms; /* when the pending reply goes out; -1 never */
    s_tbuf_t reply;
    bool close_after;
    bool in_data, auth_wait;
    s_tbuf_t data;
} s_conn_t;

#define S_MAX_CONNS 2048

typedef struct {
    s_proto_t proto;
    int listen_fd, port;
    int wake[2];
    pthread_t thread;
    pthread_mutex_t lock;
    //  Script (under lock)
    int status;
    char *extra_headers; /* complete lines with CRLF */
    char *body;
    int delay_ms; /* -1: never answer */
    bool close_after;
    char *greeting, *mail, *rcpt, *data, *end; /* SMTP replies; "" = never */
    bool auth;
    bool auth_last;    /* SMTP: AUTH is the last line of the EHLO reply */
    int end_delay_ms;  /* SMTP: the reply after "." goes out this much later */
    bool drop_in_data; /* SMTP: hang up on the first message line */
    int stale_upto;    /* SMTP: connections numbered up to this one answer 421 to
                          MAIL, like sessions that predate a server restart */
    //  Observations (under lock)
    s_request_t *requests;
    int request_count, request_cap;
    s_tbuf_t transcript; /* SMTP client lines, "\n" separated */
    char **messages;
    int message_count;
    int connections, active, max_active;
    //  Thread-only
    s_conn_t *conns[S_MAX_CONNS];
    int conn_count;
} s_server_t;

static void
s_server_set (s_server_t *self, int status, const char *extra_headers, const char *body,
              int delay_ms)
{
    pthread_mutex_lock (&self->lock);
    self->status = status;
    free (self->extra_headers);
    self->extra_headers = s_xstrdup (extra_headers);
    free (self->body);
    self->body = s_xstrdup (body);
    self->delay_ms = delay_ms;
    pthread_mutex_unlock (&self->lock);
}

typedef enum { S_GREETING, S_MAIL, S_RCPT, S_DATA, S_END } s_phase_t;

static void
s_server_smtp (s_server_t *self, s_phase_t phase, const char *reply)
{
    pthread_mutex_lock (&self->lock);
    char **slot = phase == S_GREETING ? &self->greeting
                  : phase == S_MAIL   ? &self->mail
                  : phase == S_RCPT   ? &self->rcpt
                  : phase == S_DATA   ? &self->data
                                      : &self->end;
    free (*slot);
    *slot = s_xstrdup (reply);
    pthread_mutex_unlock (&self->lock);
}

static void
s_conn_close (s_server_t *self, int index)
{
    s_conn_t *conn = self->conns[index];
    close (conn->fd);
    pthread_mutex_lock (&self->lock);
    if (conn->pending)
        self->active--;
    pthread_mutex_unlock (&self->lock);
    s_tbuf_free (&conn->in);
    s_tbuf_free (&conn->out);
    s_tbuf_free (&conn->reply);
    s_tbuf_free (&conn->data);
    free (conn);
    self->conns[index] = self->conns[--self->conn_count];
}

static void
s_send_line (s_conn_t *conn, const char *reply)
{
    s_tbuf_str (&conn->out, reply);
    s_tbuf_str (&conn->out, "\r\n");
}

//  HTTP: parses complete requests (one at a time: no pipelining) and
//  schedules their replies.
static void
s_http_process (s_server_t *self, s_conn_t *conn)
{
    while (!conn->pending) {
        char *end = strstr (conn->in.data ? conn->in.data : "", "\r\n\r\n");
        if (!end)
            return;
        size_t head_len = (size_t)(end - conn->in.data) + 4;
        size_t body_len = 0;
        for (char *line = strstr (conn->in.data, "\r\n"); line && line < end;
             line = strstr (line + 2, "\r\n"))
            if (strncasecmp (line + 2, "Content-Length:", 15) == 0)
                body_len = strtoul (line + 17, NULL, 10);
        if (conn->in.len < head_len + body_len)
            return;
        s_request_t request = { .conn = conn->id, .body_len = body_len };
        request.head = strndup (conn->in.data, head_len);
        request.body = malloc (body_len + 1);
        if (!request.head || !request.body)
            abort ();
        memcpy (request.body, conn->in.data + head_len, body_len);
        request.body[body_len] = '\0';
        s_tbuf_consume (&conn->in, head_len + body_len);

        pthread_mutex_lock (&self->lock);
        if (self->request_count == self->request_cap) {
            self->request_cap = self->request_cap ? self->request_cap * 2 : 64;
            self->requests
                = realloc (self->requests, sizeof (s_request_t) * (size_t)self->request_cap);
            if (!self->requests)
                abort ();
        }
        self->requests[self->request_count++] = request;
        if (++self->active > self->max_active)
            self->max_active = self->active;
        conn->reply.len = 0;
        char head[256];
        snprintf (head, sizeof head, "HTTP/1.1 %d Scripted\r\nContent-Length: %zu\r\n%s",
                  self->status, strlen (self->body),
                  self->close_after ? "Connection: close\r\n" : "");
        s_tbuf_str (&conn->reply, head);
        s_tbuf_str (&conn->reply, self->extra_headers);
        s_tbuf_str (&conn->reply, "\r\n");
        s_tbuf_str (&conn->reply, self->body);
        conn->close_after = self->close_after;
        conn->due_ms = self->delay_ms < 0 ? -1 : s_now_ms () + self->delay_ms;
        conn->pending = true;
        pthread_mutex_unlock (&self->lock);
    }
}

//  SMTP: one client line at a time; replies go out at once.
static void
s_smtp_process (s_server_t *self, s_conn_t *conn)
{
    char *eol;
    while (conn->in.data && (eol = strstr (conn->in.data, "\r\n"))) {
        size_t len = (size_t)(eol - conn->in.data);
        char *line = strndup (conn->in.data, len);
        if (!line)
            abort ();
        s_tbuf_consume (&conn->in, len + 2);
        pthread_mutex_lock (&self->lock);
        if (conn->in_data) {
            if (strcmp (line, ".") == 0) {
                conn->in_data = false;
                self->messages
                    = realloc (self->messages, sizeof (char *) * (size_t)(self->message_count + 1));
                if (!self->messages)
                    abort ();
                self->messages[self->message_count++] = s_xstrdup (conn->data.data);
                conn->data.len = 0;
                if (*self->end && self->end_delay_ms > 0) {
                    conn->reply.len = 0;
                    s_tbuf_str (&conn->reply, self->end);
                    s_tbuf_str (&conn->reply, "\r\n");
                    conn->due_ms = s_now_ms () + self->end_delay_ms;
                    conn->pending = true;
                    if (++self->active > self->max_active)
                        self->max_active = self->active;
                } else if (*self->end)
                    s_send_line (conn, self->end);
            } else if (self->drop_in_data) {
                shutdown (conn->fd, SHUT_RDWR);
            } else {
                const char *text = line[0] == '.' ? line + 1 : line;
                s_tbuf_str (&conn->data, text);
                s_tbuf_str (&conn->data, "\r\n");
            }
        } else {
            s_tbuf_str (&self->transcript, line);
            s_tbuf_str (&self->transcript, "\n");
            if (conn->auth_wait) {
                conn->auth_wait = false;
                s_send_line (conn, "235 2.7.0 Authentication successful");
            } else if (strncasecmp (line, "EHLO", 4) == 0) {
                s_send_line (conn, "250-test.local");
                if (self->auth && self->auth_last) {
                    s_send_line (conn, "250-SIZE 10000000");
                    s_send_line (conn, "250 AUTH PLAIN LOGIN");
                } else {
                    if (self->auth)
                        s_send_line (conn, "250-AUTH PLAIN");
                    s_send_line (conn, "250 SIZE 10000000");
                }
            } else if (strncasecmp (line, "HELO", 4) == 0)
                s_send_line (conn, "250 test.local");
            else if (strncasecmp (line, "AUTH PLAIN", 10) == 0) {
                if (line[10] == ' ')
                    s_send_line (conn, "235 2.7.0 Authentication successful");
                else {
                    conn->auth_wait = true;
                    s_send_line (conn, "334 ");
                }
            } else if (strncasecmp (line, "MAIL FROM:", 10) == 0) {
                if (conn->id <= self->stale_upto) {
                    s_send_line (conn, "421 4.3.2 service shutting down");
                    conn->close_after = true;
                } else if (*self->mail) /* "" = never answer */
                    s_send_line (conn, self->mail);
            } else if (strncasecmp (line, "RCPT TO:", 8) == 0) {
                if (*self->rcpt)
                    s_send_line (conn, self->rcpt);
            } else if (strcasecmp (line, "DATA") == 0) {
                if (*self->data)
                    s_send_line (conn, self->data);
                conn->in_data = self->data[0] == '3';
            } else if (strcasecmp (line, "QUIT") == 0) {
                s_send_line (conn, "221 bye");
                conn->close_after = true;
            } else if (strcasecmp (line, "RSET") == 0 || strcasecmp (line, "NOOP") == 0)
                s_send_line (conn, "250 ok");
            else
                s_send_line (conn, "502 command not implemented");
        }
        pthread_mutex_unlock (&self->lock);
        free (line);
    }
}

static void *
s_server_run (void *arg)
{
    s_server_t *self = (s_server_t *)arg;
    static __thread struct pollfd fds[S_MAX_CONNS + 2];
    while (true) {
        int64_t now = s_now_ms ();
        int timeout = 1000;
        fds[0] = (struct pollfd){ .fd = self->wake[0], .events = POLLIN };
        fds[1] = (struct pollfd){ .fd = self->listen_fd, .events = POLLIN };
        for (int i = 0; i < self->conn_count; i++) {
            s_conn_t *conn = self->conns[i];
            fds[i + 2] = (struct pollfd){ .fd = conn->fd, .events = POLLIN };
            if (conn->out_pos < conn->out.len)
                fds[i + 2].events |= POLLOUT;
            if (conn->pending && conn->due_ms >= 0) {
                int64_t wait = conn->due_ms - now;
                if (wait < timeout)
                    timeout = wait < 0 ? 0 : (int)wait;
            }
        }
        int count = self->conn_count;
        if (poll (fds, (nfds_t)count + 2, timeout) < 0 && errno != EINTR)
            break;
        if (fds[0].revents)
            break;
        if (fds[1].revents & POLLIN) {
            int fd;
            while (self->conn_count < S_MAX_CONNS
                   && (fd = accept4 (self->listen_fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                s_conn_t *conn = calloc (1, sizeof *conn);
                if (!conn)
                    abort ();
                conn->fd = fd;
                pthread_mutex_lock (&self->lock);
                conn->id = ++self->connections;
                if (self->proto == S_SMTP && *self->greeting)
                    s_send_line (conn, self->greeting);
                pthread_mutex_unlock (&self->lock);
                self->conns[self->conn_count++] = conn;
            }
        }
        //  Walk backwards: closing moves the last connection into the hole.
        for (int i = count - 1; i >= 0; i--) {
            s_conn_t *conn = self->conns[i];
            short revents = fds[i + 2].revents;
            bool dead = false;
            if (revents & (POLLIN | POLLHUP | POLLERR)) {
                char chunk[16384];
                ssize_t got = read (conn->fd, chunk, sizeof chunk);
                if (got > 0) {
                    s_tbuf_add (&conn->in, chunk, (size_t)got);
                    if (self->proto == S_HTTP)
                        s_http_process (self, conn);
                    else
                        s_smtp_process (self, conn);
                } else if (got == 0 || (errno != EAGAIN && errno != EINTR))
                    dead = true;
            }
            if (!dead && conn->out_pos < conn->out.len) {
                ssize_t put = write (conn->fd, conn->out.data + conn->out_pos,
                                     conn->out.len - conn->out_pos);
                if (put > 0)
                    conn->out_pos += (size_t)put;
                else if (put < 0 && errno != EAGAIN && errno != EINTR)
                    dead = true;
            }
            if (!dead && conn->out_pos == conn->out.len) {
                conn->out.len = conn->out_pos = 0;
                if (conn->close_after && !conn->pending)
                    dead = true;
            }
            if (dead)
                s_conn_close (self, i);
        }
        //  Replies whose latency has passed.
        now = s_now_ms ();
        for (int i = 0; i < self->conn_count; i++) {
            s_conn_t *conn = self->conns[i];
            if (conn->pending && conn->due_ms >= 0 && conn->due_ms <= now) {
                s_tbuf_add (&conn->out, conn->reply.data, conn->reply.len);
                conn->pending = false;
                pthread_mutex_lock (&self->lock);
                self->active--;
                pthread_mutex_unlock (&self->lock);
                if (self->proto == S_HTTP)
                    s_http_process (self, conn);
                else
                    s_smtp_process (self, conn);
            }
        }
    }
    while (self->conn_count > 0)
        s_conn_close (self, self->conn_count - 1);
    return NULL;
}

static s_server_t *
s_server_start (s_proto_t proto)
{
    s_server_t *self = calloc (1, sizeof *self);
    assert_non_null (self);
    self->proto = proto;
    pthread_mutex_init (&self->lock, NULL);
    s_server_set (self, 202, "", "{\"message_id\":\"m-1\"}", 0);
    self->greeting = s_xstrdup ("220 test.local ESMTP scripted");
    self->mail = s_xstrdup ("250 2.1.0 ok");
    self->rcpt = s_xstrdup ("250 2.1.5 ok");
    self->data = s_xstrdup ("354 go ahead");
    self->end = s_xstrdup ("250 2.0.0 queued");
    self->listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true (self->listen_fd >= 0);
    int one = 1;
    setsockopt (self->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (bind (self->listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal (listen (self->listen_fd, 4096), 0);
    socklen_t len = sizeof addr;
    assert_int_equal (getsockname (self->listen_fd, (struct sockaddr *)&addr, &len), 0);
    self->port = ntohs (addr.sin_port);
    assert_int_equal (pipe (self->wake), 0);
    assert_int_equal (pthread_create (&self->thread, NULL, s_server_run, self), 0);
    return self;
}

static void
s_server_stop (s_server_t **self_p)
{
    s_server_t *self = *self_p;
    if (!self)
        return;
    assert_int_equal (write (self->wake[1], "x", 1), 1);
    pthread_join (self->thread, NULL);
    close (self->wake[0]);
    close (self->wake[1]);
    close (self->listen_fd);
    for (int i = 0; i < self->request_count; i++) {
        free (self->requests[i].head);
        free (self->requests[i].body);
    }
    free (self->requests);
    for (int i = 0; i < self->message_count; i++)
        free (self->messages[i]);
    free (self->messages);
    s_tbuf_free (&self->transcript);
    free (self->extra_headers);
    free (self->body);
    free (self->greeting);
    free (self->mail);
    free (self->rcpt);
    free (self->data);
    free (self->end);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

static int
s_server_count (s_server_t *self, int *field)
{
    pthread_mutex_lock (&self->lock);
    int value = *field;
    pthread_mutex_unlock (&self->lock);
    return value;
}

//  The value of header name in a recorded request (copied into out), or NULL.
static char *
s_header (const s_request_t *request, const char *name, char *out, size_t outsize)
{
    size_t name_len = strlen (name);
    for (const char *line = strstr (request->head, "\r\n"); line;
         line = strstr (line + 2, "\r\n")) {
        if (strncasecmp (line + 2, name, name_len) == 0 && line[2 + name_len] == ':') {
            const char *value = line + 3 + name_len;
            while (*value == ' ')
                value++;
            const char *end = strstr (value, "\r\n");
            snprintf (out, outsize, "%.*s", (int)(end - value), value);
            return out;
        }
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Driving the sender like a dispatcher

typedef struct {
    int done;
    int outcomes[5];
    bf_send_result_t last;
    int64_t last_id;
    void *last_cookie;
    int max_inflight;
    bf_sender_t *resubmit; /* test_submit_from_done */
    int resubmit_left;
    int64_t resubmit_id;
} s_sink_t;

static void
s_on_done (void *context, const bf_send_request_t *request, const bf_send_result_t *result)
{
    s_sink_t *sink = (s_sink_t *)context;
    sink->done++;
    sink->outcomes[result->outcome]++;
    sink->last = *result;
    sink->last_id = request->delivery_id;
    sink->last_cookie = request->cookie;
    if (sink->resubmit && sink->resubmit_left > 0) {
        bf_send_request_t next = { .delivery_id = ++sink->resubmit_id,
                                   .kind = BF_SEND_SMS,
                                   .to = "01012345678",
                                   .text = "chained",
                                   .attempt = 1 };
        if (bf_sender_submit (sink->resubmit, &next) == 0)
            sink->resubmit_left--;
    }
}

static bf_sender_config_t
s_config (int http_port, int smtp_port)
{
    static char sms[64], push[64], smtp[64];
    snprintf (sms, sizeof sms, "http://127.0.0.1:%d", http_port);
    snprintf (push, sizeof push, "http://127.0.0.1:%d/", http_port);
    snprintf (smtp, sizeof smtp, "smtp://127.0.0.1:%d/billflow.test", smtp_port);
    bf_sender_config_t config = {
        .smtp_url = smtp_port ? smtp : NULL,
        .smtp_from = "Billflow <billing@billflow.test>",
        .sms_url = http_port ? sms : NULL,
        .sms_token = "tok-sms",
        .push_url = http_port ? push : NULL,
        .push_token = "tok-push",
        .timeout_ms = 5000,
        .breaker_error_pct = 50,
        .breaker_min_samples = 20,
        .breaker_open_ms = 30000,
    };
    for (int i = 0; i < BF_PROVIDER_COUNT; i++)
        config.concurrency[i] = 16;
    return config;
}

static bf_sender_t *
s_sender (const bf_sender_config_t *config)
{
    char err[256];
    bf_sender_t *sender = bf_sender_new (config, err, sizeof err);
    if (!sender)
        fail_msg ("bf_sender_new: %s", err);
    return sender;
}

//  Sends one request (the provider must be ready) and waits for its result.
static bf_send_result_t
s_send (bf_sender_t *sender, const bf_send_request_t *request)
{
    s_sink_t sink = { 0 };
    assert_true (bf_sender_ready (sender, bf_sender_provider_of (request->kind)));
    assert_int_equal (bf_sender_submit (sender, request), 0);
    int64_t deadline = s_now_ms () + S_DEADLINE_MS;
    while (sink.done == 0) {
        assert_true (s_now_ms () < deadline);
        assert_true (bf_sender_poll (sender, 100, s_on_done, &sink) >= 0);
    }
    assert_int_equal (sink.done, 1);
    assert_int_equal (sink.last_id, request->delivery_id);
    assert_true (sink.last.started_ms <= sink.last.finished_ms);
    return sink.last;
}

static bf_send_result_t
s_send_sms (bf_sender_t *sender, int64_t id, const char *to, const char *text)
{
    bf_send_request_t request
        = { .delivery_id = id, .kind = BF_SEND_SMS, .to = to, .text = text, .attempt = 1 };
    return s_send (sender, &request);
}

//  Pushes n SMS (ids first_id..) through the sender as fast as it admits
//  them; returns the elapsed ms. sink collects results and the peak
//  in-flight count seen by the engine.
static int64_t
s_send_many (bf_sender_t *sender, int n, int64_t first_id, s_sink_t *sink)
{
    int64_t start = s_now_ms (), deadline = start + S_DEADLINE_MS;
    int next = 0;
    while (sink->done < n) {
        assert_true (s_now_ms () < deadline);
        while (next < n && bf_sender_ready (sender, BF_PROVIDER_SMS)) {
            bf_send_request_t request = { .delivery_id = first_id + next,
                                          .kind = BF_SEND_SMS,
                                          .to = "010-1234-5678",
                                          .text = "bill ready",
                                          .attempt = 1 };
            assert_int_equal (bf_sender_submit (sender, &request), 0);
            next++;
            int inflight = bf_sender_inflight (sender, BF_PROVIDER_SMS);
            if (inflight > sink->max_inflight)
                sink->max_inflight = inflight;
        }
        int wait = bf_sender_wait_ms (sender, BF_PROVIDER_SMS);
        int timeout = next < n && wait > 0 && wait < 100 ? wait : 100;
        assert_true (bf_sender_poll (sender, timeout, s_on_done, sink) >= 0);
    }
    assert_int_equal (sink->done, n);
    return s_now_ms () - start;
}

//  Log capture into a temporary file.
/*  Log capture around one send: bf_testutil's, at DEBUG while it runs.  */
static void
s_capture_start (void)
{
    bf_log_init ("itest_sender", BF_LOG_DEBUG, false);
    bf_testutil_log_capture ();
}

static char *
s_capture_stop (void)
{
    char *text = bf_testutil_log_captured ();
    bf_log_init ("itest_sender", BF_LOG_WARN, false);
    return text;
}

//  --------------------------------------------------------------------------
//  HTTP: the request on the wire

static void
test_http_request_shape (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_HTTP);
    bf_sender_config_t config = s_config (server->port, 0);
    bf_sender_t *sender = s_sender (&config);

    //  SMS: quotes, backslash, newline, tab, a control byte, Korean, and a
    //  byte that is not UTF-8; title is null for SMS even when given.
    bf_send_request_t request = { .delivery_id = 4242,
                                  .kind = BF_SEND_SMS,
                                  .to = "010-1234-5678",
                                  .title = "ignored",
                                  .text = "안녕하세요 \"고객\"님\n청구\\서\t\x01 end \xff!",
                                  .attempt = 1,
                                  .cookie = &config };
    bf_send_result_t result = s_send (sender, &request);
    assert_int_equal (result.outcome, BF_OUTCOME_DELIVERED);
    assert_int_equal (result.status_code, 202);
    assert_string_equal (result.provider_message_id, "m-1");
    assert_string_equal (result.provider_name, "sms");
    assert_string_equal (result.error, "");

    assert_int_equal (server->request_count, 1);
    s_request_t *seen = &server->requests[0];
    char value[256];
    assert_memory_equal (seen->head, "POST /v1/messages HTTP/1.1\r\n", 28);
    assert_string_equal (s_header (seen, "Content-Type", value, sizeof value), "application/json");
    assert_string_equal (s_header (seen, "Authorization", value, sizeof value), "Bearer tok-sms");
    assert_string_equal (s_header (seen, "Idempotency-Key", value, sizeof value), "4242");
    assert_null (s_header (seen, "Expect", value, sizeof value));
    assert_string_equal (seen->body,
                         "{\"channel\":\"SMS\",\"to\":\"010-1234-5678\",\"title\":null,"
                         "\"body\":\"안녕하세요 \\\"고객\\\"님\\n청구\\\\서\\t\\u0001 end "
                         "\\ufffd!\"}");

    //  LMS with a title; the push provider's base URL ends in '/'.
    request = (bf_send_request_t){ .delivery_id = 4243,
                                   .kind = BF_SEND_LMS,
                                   .to = "01099990000",
                                   .title = "3월 \"요금\"",
                                   .text = "본문",
                                   .attempt = 2 };
    assert_int_equal (s_send (sender, &request).outcome, BF_OUTCOME_DELIVERED);
    request = (bf_send_request_t){ .delivery_id = 4244,
                                   .kind = BF_SEND_PUSH,
                                   .to = "fcm:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ",
                                   .title = "청구서",
                                   .text = "도착했습니다",
                                   .attempt = 1 };
    result = s_send (sender, &request);
    assert_int_equal (result.outcome, BF_OUTCOME_DELIVERED);
    assert_string_equal (result.provider_name, "push");
    assert_int_equal (server->request_count, 3);
    assert_string_equal (
        server->requests[1].body,
        "{\"channel\":\"LMS\",\"to\":\"01099990000\",\"title\":\"3월 \\\"요금\\\"\","
        "\"body\":\"본문\"}");
    assert_string_equal (s_header (&server->requests[1], "Idempotency-Key", value, sizeof value),
                         "4243");
    assert_memory_equal (server->requests[2].head, "POST /v1/messages HTTP/1.1\r\n", 28);
    assert_string_equal (server->requests[2].body,
                         "{\"channel\":\"PUSH\",\"to\":\"fcm:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZ"
                         "jC9KtT8OvPVGJ\",\"title\":\"청구서\",\"body\":\"도착했습니다\"}");
    assert_string_equal (s_header (&server->requests[2], "Authorization", value, sizeof value),
                         "Bearer tok-push");
    bf_sender_destroy (&sender);
    assert_null (sender);
    bf_sender_destroy (&sender);

    //  No token configured: no Authorization header; a base URL with a path.
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/gw//", server->port);
    config.sms_url = url;
    config.sms_token = NULL;
    sender = s_sender (&config);
    assert_int_equal (s_send_sms (sender, 7, "01012345678", "x").outcome, BF_OUTCOME_DELIVERED);
    assert_memory_equal (server->requests[3].head, "POST /gw/v1/messages HTTP/1.1\r\n", 31);
    assert_null (s_header (&server->requests[3], "Authorization", value, sizeof value));
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

//  The same delivery resent carries the same Idempotency-Key; sequential
//  sends reuse one kept-alive connection (and the easy handle pool).
static void
test_http_idempotency_and_keepalive (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_HTTP);
    bf_sender_config_t config = s_config (server->port, 0);
    bf_sender_t *sender = s_sender (&config);
    for (int attempt = 1; attempt <= 3; attempt++) {
        bf_send_request_t request = { .delivery_id = 9001,
                                      .kind = BF_SEND_SMS,
                                      .to = "01012345678",
                                      .text = "retry me",
                                      .attempt = attempt };
        assert_int_equal (s_send (sender, &request).outcome, BF_OUTCOME_DELIVERED);
    }
    for (int i = 0; i < 7; i++)
        assert_int_equal (s_send_sms (sender, 9100 + i, "01012345678", "next").outcome,
                          BF_OUTCOME_DELIVERED);
    char value[64];
    assert_int_equal (server->request_count, 10);
    for (int i = 0; i < 3; i++) {
        assert_string_equal (
            s_header (&server->requests[i], "Idempotency-Key", value, sizeof value), "9001");
        assert_string_equal (server->requests[i].body, server->requests[0].body);
    }
    assert_string_equal (s_header (&server->requests[9], "Idempotency-Key", value, sizeof value),
                         "9106");
    assert_int_equal (s_server_count (server, &server->connections), 1);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

//  After a provider-wide failure (here a 503) the next transfer to that
//  provider opens a fresh connection instead of reusing a keep-alive one
//  from before it; once one succeeds, keep-alive reuse resumes.
static void
test_http_fresh_connection_after_provider_failure (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_HTTP);
    bf_sender_config_t config = s_config (server->port, 0);
    config.backoff_base_ms = 20;
    config.backoff_max_ms = 40;
    bf_sender_t *sender = s_sender (&config);
    assert_int_equal (s_send_sms (sender, 9300, "01012345678", "a").outcome, BF_OUTCOME_DELIVERED);
    s_server_set (server, 503, "", "{\"error\":\"down\"}", 0);
    bf_send_result_t result = s_send_sms (sender, 9301, "01012345678", "b");
    assert_int_equal (result.outcome, BF_OUTCOME_TRANSIENT);
    assert_true (result.provider_wide);
    assert_int_equal (s_server_count (server, &server->connections), 1);
    s_server_set (server, 202, "", "{\"message_id\":\"m-1\"}", 0);
    s_sink_t idle = { 0 };
    int64_t deadline = s_now_ms () + S_DEADLINE_MS;
    while (!bf_sender_ready (sender, BF_PROVIDER_SMS)) { /* the provider's back-off */
        assert_true (s_now_ms () < deadline);
        assert_true (bf_sender_poll (sender, 10, s_on_done, &idle) >= 0);
    }
    assert_int_equal (s_send_sms (sender, 9302, "01012345678", "c").outcome, BF_OUTCOME_DELIVERED);
    assert_int_equal (s_server_count (server, &server->connections), 2);
    assert_int_equal (s_send_sms (sender, 9303, "01012345678", "d").outcome, BF_OUTCOME_DELIVERED);
    assert_int_equal (s_server_count (server, &server->connections), 2);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

//  --------------------------------------------------------------------------
//  HTTP: every reply mapping

typedef struct {
    int status;
    const char *headers;
    const char *body;
    bf_outcome_t outcome;
    const char *message_id;  /* expected provider_message_id */
    const char *error_has;   /* substring of error, or NULL for "" */
    const char *error_lacks; /* must not appear in error */
    int retry_min, retry_max;
} s_http_case_t;

static void
test_http_reply_mappings (void **state)
{
    (void)state;
    char date[128], date_header[160];
    time_t soon = time (NULL) + 5;
    struct tm tm;
    gmtime_r (&soon, &tm);
    strftime (date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf (date_header, sizeof date_header, "Retry-After: %s\r\n", date);
    char *huge = malloc (70 * 1024 + 64);
    assert_non_null (huge);
    strcpy (huge, "{\"message_id\":\"big\",\"pad\":\"");
    memset (huge + strlen (huge), 'x', 70 * 1024);
    strcpy (huge + strlen ("{\"message_id\":\"big\",\"pad\":\"") + 70 * 1024, "\"}");

    const s_http_case_t cases[] = {
        { 200, "", "{\"message_id\":\"a-200\"}", BF_OUTCOME_DELIVERED, "a-200" },
        { 201, "", " {\"message_id\" : \"a-201\"} \n", BF_OUTCOME_DELIVERED, "a-201" },
        { 202, "",
          "{\"status\":\"queued\",\"message_id\":\"a-202\",\"meta\":{\"parts\":[1,2,{\"k\":null}],"
          "\"cost\":-1.5e3,\"ok\":true,\"s\":\"\\u00e9\\ud83d\\ude00\"}}",
          BF_OUTCOME_DELIVERED, "a-202" },
        { 202, "", "{\"message_id\":\"\\u0001ctl\"}", BF_OUTCOME_DELIVERED, "?ctl" },
        { 409, "", "{\"message_id\":\"prev-1\"}", BF_OUTCOME_DUPLICATE, "prev-1" },
        { 409, "", "", BF_OUTCOME_DUPLICATE, "" },
        { 400, "", "{\"error\":\"invalid number 010-1234-5678, also 01099998888 / x@y.kr\"}",
          BF_OUTCOME_PERMANENT, "", "HTTP 400: invalid number", "1234-5678" },
        { 400, "", "{\"error\":\"x\",\"reason\":\"second\"}", BF_OUTCOME_PERMANENT, "",
          "HTTP 400: x", "second" },
        { 404, "", "{\"message\":\"no such route\"}", BF_OUTCOME_PERMANENT, "",
          "HTTP 404: no such route" },
        { 422, "", "{\"detail\":\"body\\ttoo\\nlong\"}", BF_OUTCOME_PERMANENT, "",
          "HTTP 422: body too long" },
        { 422, "", "<html>Unprocessable\r\n\r\nEntity</html>", BF_OUTCOME_PERMANENT, "",
          "HTTP 422: <html>Unprocessable Entity</html>" },
        { 429, "Retry-After: 7\r\n", "{}", BF_OUTCOME_THROTTLED, "", "HTTP 429", NULL, 7000, 7000 },
        { 429, date_header, "", BF_OUTCOME_THROTTLED, "", "HTTP 429", NULL, 3000, 5000 },
        { 429, "", "", BF_OUTCOME_THROTTLED, "", "HTTP 429", NULL, 1000, 1000 },
        { 429, "Retry-After: soon\r\n", "", BF_OUTCOME_THROTTLED, "", "HTTP 429", NULL, 1000,
          1000 },
        { 429, "Retry-After: 999999999999\r\n", "", BF_OUTCOME_THROTTLED, "", "HTTP 429", NULL,
          3600000, 3600000 },
        /*  A date whose milliseconds overflow 64 bits (curl_getdate reads
            it): the longest pause, not a wrapped (negative: none) one.  */
        { 429, "Retry-After: Fri, 31 Dec 999999999 23:59:59 GMT\r\n", "", BF_OUTCOME_THROTTLED, "",
          "HTTP 429", NULL, 3600000, 3600000 },
        { 500, "", "{\"error\":\"boom\"}", BF_OUTCOME_TRANSIENT, "", "HTTP 500: boom" },
        { 503, "", "", BF_OUTCOME_TRANSIENT, "", "HTTP 503" },
        { 200, "", "garbage{", BF_OUTCOME_TRANSIENT, "", "unparsable" },
        { 200, "", "{\"message_id\":\"a\"}}", BF_OUTCOME_TRANSIENT, "", "unparsable" },
        { 200, "", "{\"message_id\":\"a\",}", BF_OUTCOME_TRANSIENT, "", "unparsable" },
        { 200, "", "{\"message_id\":\"a\\x\"}", BF_OUTCOME_TRANSIENT, "", "unparsable" },
        { 200, "", "[\"message_id\",\"a\"]", BF_OUTCOME_TRANSIENT, "", "unparsable" },
        { 200, "", "", BF_OUTCOME_TRANSIENT, "", "unparsable" },
        { 200, "", "{\"status\":\"ok\"}", BF_OUTCOME_TRANSIENT, "", "without message_id" },
        { 200, "", "{\"message_id\":5}", BF_OUTCOME_TRANSIENT, "", "without message_id" },
        { 200, "", "{\"message_id\":\"\"}", BF_OUTCOME_TRANSIENT, "", "without message_id" },
        { 200, "", huge, BF_OUTCOME_TRANSIENT, "", "over 64 KiB" },
        { 204, "", "", BF_OUTCOME_TRANSIENT, "", "HTTP 204" },
        { 302, "Location: http://127.0.0.1:1/\r\n", "", BF_OUTCOME_TRANSIENT, "", "HTTP 302" },
    };
    s_server_t *server = s_server_start (S_HTTP);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const s_http_case_t *c = &cases[i];
        s_server_set (server, c->status, c->headers, c->body, 0);
        bf_sender_config_t config = s_config (server->port, 0);
        bf_sender_t *sender = s_sender (&config);
        bf_send_result_t result = s_send_sms (sender, 100 + (int64_t)i, "010-1234-5678", "hi");
        if ((int)result.outcome != (int)c->outcome)
            fail_msg ("case %zu (HTTP %d): outcome %s, error '%s'", i, c->status,
                      bf_sender_outcome_name (result.outcome), result.error);
        assert_int_equal (result.status_code, c->status);
        assert_string_equal (result.provider_message_id, c->message_id ? c->message_id : "");
        if (c->error_has) {
            if (!strstr (result.error, c->error_has))
                fail_msg ("case %zu: error '%s' lacks '%s'", i, result.error, c->error_has);
        } else
            assert_string_equal (result.error, "");
        if (c->error_lacks && strstr (result.error, c->error_lacks))
            fail_msg ("case %zu: error '%s' leaks '%s'", i, result.error, c->error_lacks);
        assert_false (strstr (result.error, "01099998888") || strstr (result.error, "x@y.kr"));
        if (c->outcome == BF_OUTCOME_THROTTLED) {
            assert_in_range (result.retry_after_ms, c->retry_min, c->retry_max);
            assert_false (bf_sender_ready (sender, BF_PROVIDER_SMS)); /* paused */
            assert_in_range (bf_sender_wait_ms (sender, BF_PROVIDER_SMS), 1, c->retry_max);
            assert_true (bf_sender_ready (sender, BF_PROVIDER_PUSH)); /* other provider not */
        } else
            assert_int_equal (result.retry_after_ms, 0);
        bf_sender_destroy (&sender);
    }
    s_server_stop (&server);
    free (huge);
}

//  A 429 pauses the provider for Retry-After and then lets it go; 429s are
//  not failures for the breaker.
static void
test_http_throttle_pause (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_HTTP);
    s_server_set (server, 429, "Retry-After: 1\r\n", "", 0);
    bf_sender_config_t config = s_config (server->port, 0);
    config.breaker_min_samples = 2;
    bf_sender_t *sender = s_sender (&config);
    int64_t start = s_now_ms ();
    assert_int_equal (s_send_sms (sender, 1, "01012345678", "x").outcome, BF_OUTCOME_THROTTLED);
    assert_false (bf_sender_ready (sender, BF_PROVIDER_SMS));
    bf_send_request_t request
        = { .delivery_id = 2, .kind = BF_SEND_SMS, .to = "01012345678", .text = "x" };
    assert_int_equal (bf_sender_submit (sender, &request), -1);
    while (!bf_sender_ready (sender, BF_PROVIDER_SMS)) {
        assert_true (s_now_ms () - start < 3000);
        bf_sender_poll (sender, 20, NULL, NULL);
    }
    assert_true (s_now_ms () - start >= 950);

    s_server_set (server, 429, "Retry-After: 0\r\n", "", 0);
    for (int i = 0; i < 5; i++) {
        bf_send_result_t result = s_send_sms (sender, 10 + i, "01012345678", "x");
        assert_int_equal (result.outcome, BF_OUTCOME_THROTTLED);
        assert_int_equal (result.retry_after_ms, 0);
    }
    assert_string_equal (bf_sender_breaker_state (sender, BF_PROVIDER_SMS), "closed");
    assert_true (bf_sender_ready (sender, BF_PROVIDER_SMS));
    //  Throttles did not dilute the window: two 503s are 2 of 2 samples.
    s_server_set (server, 503, "", "", 0);
    assert_int_equal (s_send_sms (sender, 20, "01012345678", "x").outcome, BF_OUTCOME_TRANSIENT);
    assert_string_equal (bf_sender_breaker_state (sender, BF_PROVIDER_SMS), "closed");
    assert_int_equal (s_send_sms (sender, 21, "01012345678", "x").outcome, BF_OUTCOME_TRANSIENT);
    assert_string_equal (bf_sender_breaker_state (sender, BF_PROVIDER_SMS), "open");
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

static void
test_http_connection_refused (void **state)
{
    (void)state;
    bf_sender_config_t config = s_config (s_free_port (), 0);
    bf_sender_t *sender = s_sender (&config);
    bf_send_result_t result = s_send_sms (sender, 1, "01012345678", "x");
    assert_int_equal (result.outcome, BF_OUTCOME_TRANSIENT);
    assert_int_equal (result.status_code, 0);
    assert_non_null (strstr (result.error, "connection failed"));
    bf_sender_destroy (&sender);
}

static void
test_http_timeout (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_HTTP);
    s_server_set (server, 202, "", "{\"message_id\":\"late\"}", -1);
    bf_sender_config_t config = s_config (server->port, 0);
    config.timeout_ms = 300;
    bf_sender_t *sender = s_sender (&config);
    int64_t start = s_now_ms ();
    bf_send_result_t result = s_send_sms (sender, 1, "01012345678", "x");
    int64_t elapsed = s_now_ms () - start;
    assert_int_equal (result.outcome, BF_OUTCOME_TRANSIENT);
    assert_int_equal (result.status_code, 0);
    assert_non_null (strstr (result.error, "timeout after 300 ms"));
    assert_in_range (elapsed, 280, 2000);
    assert_in_range (result.finished_ms - result.started_ms, 280, 2000);
    assert_int_equal (server->request_count, 1); /* it was sent, never answered */
    bf_sender_destroy (&sender);

    /*  A provider's own timeout wins over the shared one.  */
    config.timeout_ms = 10000;
    config.provider_timeout_ms[BF_PROVIDER_SMS] = 400;
    sender = s_sender (&config);
    start = s_now_ms ();
    result = s_send_sms (sender, 2, "01012345678", "x");
    elapsed = s_now_ms () - start;
    assert_int_equal (result.outcome, BF_OUTCOME_TRANSIENT);
    assert_non_null (strstr (result.error, "timeout after 400 ms"));
    assert_in_range (elapsed, 380, 2000);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

//  --------------------------------------------------------------------------
//  SMTP

//  The header block of a message (up to the first empty line), unfolded
//  value of header name into out.
static char *
s_mail_header (const char *message, const char *name, char *out, size_t outsize)
{
    size_t name_len = strlen (name);
    const char *end = strstr (message, "\r\n\r\n");
    assert_non_null (end);
    for (const char *line = message; line && line < end;) {
        const char *eol = strstr (line, "\r\n");
        if (strncasecmp (line, name, name_len) == 0 && line[name_len] == ':') {
            s_tbuf_t value = { 0 };
            const char *at = line + name_len + 1;
            while (true) {
                s_tbuf_add (&value, at, (size_t)(eol - at));
                if (eol[2] != ' ' && eol[2] != '\t')
                    break;
                at = eol + 2;
                eol = strstr (at, "\r\n");
            }
            const char *trimmed = value.data;
            while (*trimmed == ' ')
                trimmed++;
            snprintf (out, outsize, "%s", trimmed);
            s_tbuf_free (&value);
            return out;
        }
        line = eol + 2;
    }
    return NULL;
}

//  Decodes a run of RFC 2047 B encoded-words (UTF-8) separated by spaces.
static char *
s_decode_words (const char *value)
{
    s_tbuf_t out = { 0 };
    s_tbuf_add (&out, "", 0);
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        assert_int_equal (strncmp (p, "=?UTF-8?B?", 10), 0);
        const char *end = strstr (p + 10, "?=");
        assert_non_null (end);
        assert_true (end - p + 2 <= 75); /* RFC 2047: an encoded-word is at most 75 chars */
        char *decoded = s_unbase64 (p + 10, (size_t)(end - p - 10));
        s_tbuf_str (&out, decoded);
        free (decoded);
        p = end + 2;
    }
    return out.data;
}

//  The decoded content of the MIME part whose Content-Type starts with type.
static char *
s_mime_part (const char *message, const char *boundary, const char *type)
{
    char delimiter[128];
    snprintf (delimiter, sizeof delimiter, "\r\n--%s\r\n", boundary);
    for (const char *part = strstr (message, delimiter); part;
         part = strstr (part + 1, delimiter)) {
        const char *headers = part + strlen (delimiter);
        const char *body = strstr (headers, "\r\n\r\n");
        assert_non_null (body);
        body += 4;
        char content_type[128];
        char *headers_copy = strndup (headers, (size_t)(body - headers));
        assert_non_null (headers_copy);
        bool match = s_mail_header (headers_copy, "Content-Type", content_type, sizeof content_type)
                     && strncmp (content_type, type, strlen (type)) == 0;
        char encoding[64] = "";
        s_mail_header (headers_copy, "Content-Transfer-Encoding", encoding, sizeof encoding);
        free (headers_copy);
        if (!match)
            continue;
        assert_string_equal (encoding, "base64");
        const char *end = strstr (body, "\r\n--");
        assert_non_null (end);
        return s_unbase64 (body, (size_t)(end - body));
    }
    return NULL;
}

static const char *s_subject
    = "[빌플로우] 2024년 3월 휴대폰 요금 청구서가 도착했습니다 — 납부 기한은 "
      "3월 25일이며 자동이체 고객님은 별도로 납부하지 않으셔도 됩니다";

static void
test_smtp_conversation (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_SMTP);
    bf_sender_config_t config = s_config (0, server->port);
    bf_sender_t *sender = s_sender (&config);
    bf_send_request_t request
        = { .delivery_id = 777,
            .kind = BF_SEND_EMAIL,
            .to = "hong.gildong@example.com",
            .title = s_subject,
            .text = "안녕하세요 홍길동 고객님,\n이번 달 요금은 55,000원입니다.\n.\n",
            .html = "<p>안녕하세요 <b>홍길동</b> 고객님</p>\n<p>55,000원</p>",
            .attempt = 1 };
    bf_send_result_t result = s_send (sender, &request);
    assert_int_equal (result.outcome, BF_OUTCOME_DELIVERED);
    assert_int_equal (result.status_code, 250);
    assert_string_equal (result.provider_name, "email");
    assert_string_equal (result.error, "");

    pthread_mutex_lock (&server->lock);
    const char *transcript = server->transcript.data;
    assert_non_null (strstr (transcript, "EHLO billflow.test\n"));
    assert_non_null (strstr (transcript, "\nMAIL FROM:<billing@billflow.test>"));
    assert_non_null (strstr (transcript, "\nRCPT TO:<hong.gildong@example.com>\n"));
    assert_non_null (strstr (transcript, "\nDATA\n"));
    assert_int_equal (server->message_count, 1);
    char *message = s_xstrdup (server->messages[0]);
    pthread_mutex_unlock (&server->lock);

    //  CRLF everywhere; header lines <= 78, all lines <= 998.
    const char *header_end = strstr (message, "\r\n\r\n");
    assert_non_null (header_end);
    for (const char *line = message; *line;) {
        const char *eol = strstr (line, "\r\n");
        assert_non_null (eol);
        assert_null (memchr (line, '\n', (size_t)(eol - line)));
        assert_null (memchr (line, '\r', (size_t)(eol - line)));
        assert_true (eol - line <= (line < header_end ? 78 : 998));
        line = eol + 2;
    }
    char value[1024];
    assert_string_equal (s_mail_header (message, "Message-ID", value, sizeof value),
                         "<777@billflow>");
    assert_string_equal (s_mail_header (message, "From", value, sizeof value),
                         "Billflow <billing@billflow.test>");
    assert_string_equal (s_mail_header (message, "To", value, sizeof value),
                         "hong.gildong@example.com");
    assert_string_equal (s_mail_header (message, "MIME-Version", value, sizeof value), "1.0");
    s_mail_header (message, "Date", value, sizeof value);
    struct tm tm = { 0 };
    char *rest = strptime (value, "%a, %d %b %Y %H:%M:%S", &tm);
    assert_non_null (rest);
    assert_string_equal (rest, " +0000");
    char *subject = s_decode_words (s_mail_header (message, "Subject", value, sizeof value));
    assert_string_equal (subject, s_subject);
    free (subject);
    assert_non_null (strstr (message, "\r\nSubject: =?UTF-8?B?"));
    assert_non_null (strstr (message, "?=\r\n =?UTF-8?B?")); /* long subject was folded */

    s_mail_header (message, "Content-Type", value, sizeof value);
    const char *prefix = "multipart/alternative; boundary=\"";
    assert_int_equal (strncmp (value, prefix, strlen (prefix)), 0);
    char boundary[1024];
    snprintf (boundary, sizeof boundary, "%s", value + strlen (prefix));
    assert_non_null (strchr (boundary, '"'));
    *strchr (boundary, '"') = '\0';
    char *text = s_mime_part (message, boundary, "text/plain; charset=UTF-8");
    char *html = s_mime_part (message, boundary, "text/html; charset=UTF-8");
    assert_non_null (text);
    assert_non_null (html);
    assert_string_equal (text,
                         "안녕하세요 홍길동 고객님,\r\n이번 달 요금은 55,000원입니다.\r\n.\r\n");
    assert_string_equal (html, "<p>안녕하세요 <b>홍길동</b> 고객님</p>\r\n<p>55,000원</p>");
    free (text);
    free (html);
    char closing[1100];
    snprintf (closing, sizeof closing, "\r\n--%s--\r\n", boundary);
    assert_non_null (strstr (message, closing));

    //  A resend carries the same Message-ID; another delivery its own.
    request.attempt = 2;
    assert_int_equal (s_send (sender, &request).outcome, BF_OUTCOME_DELIVERED);
    request.delivery_id = 778;
    request.html = NULL; /* text only: a single text/plain body */
    assert_int_equal (s_send (sender, &request).outcome, BF_OUTCOME_DELIVERED);
    pthread_mutex_lock (&server->lock);
    assert_int_equal (server->message_count, 3);
    assert_string_equal (s_mail_header (server->messages[1], "Message-ID", value, sizeof value),
                         "<777@billflow>");
    assert_string_equal (s_mail_header (server->messages[2], "Message-ID", value, sizeof value),
                         "<778@billflow>");
    assert_string_equal (s_mail_header (server->messages[2], "Content-Type", value, sizeof value),
                         "text/plain; charset=UTF-8");
    //  Sequential messages went over one SMTP session.
    assert_int_equal (server->connections, 1);
    pthread_mutex_unlock (&server->lock);
    free (message);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

static void
test_smtp_auth (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_SMTP);
    server->auth = true;
    bf_sender_config_t config = s_config (0, server->port);
    config.smtp_username = "relay-user";
    config.smtp_password = "s3cret";
    config.smtp_allow_plain_auth = true; /* a relay on this host */
    bf_sender_t *sender = s_sender (&config);
    bf_send_request_t request = {
        .delivery_id = 5, .kind = BF_SEND_EMAIL, .to = "a@example.com", .title = "t", .text = "x"
    };
    assert_int_equal (s_send (sender, &request).outcome, BF_OUTCOME_DELIVERED);
    pthread_mutex_lock (&server->lock);
    const char *auth = strstr (server->transcript.data, "AUTH PLAIN");
    assert_non_null (auth);
    const char *credentials = strchr (auth, '\n') + 1;
    if (auth[10] == ' ')
        credentials = auth + 11;
    size_t len = strcspn (credentials, "\n");
    char *decoded = s_unbase64 (credentials, len);
    pthread_mutex_unlock (&server->lock);
    assert_memory_equal (decoded, "\0relay-user\0s3cret", 18);
    free (decoded);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

//  Issue 10 defect 3: the EHLO reply's last line is the AUTH line. The
//  client must read every line, the last one included, and authenticate.
static void
test_smtp_auth_listed_last (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_SMTP);
    server->auth = true;
    server->auth_last = true;
    bf_sender_config_t config = s_config (0, server->port);
    config.smtp_username = "relay-user";
    config.smtp_password = "s3cret";
    config.smtp_allow_plain_auth = true;
    config.smtp_command_ms = 2000; /* a stuck EHLO fails here, not after 5 min */
    bf_sender_t *sender = s_sender (&config);
    bf_send_request_t request = {
        .delivery_id = 7, .kind = BF_SEND_EMAIL, .to = "a@example.com", .title = "t", .text = "x"
    };
    bf_send_result_t result = s_send (sender, &request);
    if (result.outcome != BF_OUTCOME_DELIVERED)
        fail_msg ("AUTH listed last: %s '%s'", bf_sender_outcome_name (result.outcome),
                  result.error);
    pthread_mutex_lock (&server->lock);
    assert_non_null (strstr (server->transcript.data, "\nAUTH PLAIN "));
    assert_int_equal (server->message_count, 1);
    pthread_mutex_unlock (&server->lock);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

//  Credentials over plain smtp:// are refused when the sender is created,
//  unless smtp_allow_plain_auth; an empty user name means no AUTH.
static void
test_smtp_plain_auth_refused (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_SMTP);
    server->auth = true;
    bf_sender_config_t config = s_config (0, server->port);
    config.smtp_username = "relay-user";
    config.smtp_password = "s3cret";
    char err[256] = "";
    bf_sender_t *sender = bf_sender_new (&config, err, sizeof err);
    assert_null (sender);
    assert_non_null (strstr (err, "plain smtp://"));
    assert_non_null (strstr (err, "smtp_allow_plain_auth"));
    assert_null (strstr (err, "s3cret"));
    //  With STARTTLS required the credentials go over TLS (libcurl): accepted.
    config.smtp_starttls = true;
    sender = bf_sender_new (&config, err, sizeof err);
    assert_non_null (sender);
    bf_sender_destroy (&sender);
    //  No user name: no AUTH, nothing to refuse.
    config.smtp_starttls = false;
    config.smtp_username = "";
    config.smtp_password = "";
    sender = s_sender (&config);
    bf_send_request_t request = {
        .delivery_id = 8, .kind = BF_SEND_EMAIL, .to = "a@example.com", .title = "t", .text = "x"
    };
    assert_int_equal (s_send (sender, &request).outcome, BF_OUTCOME_DELIVERED);
    pthread_mutex_lock (&server->lock);
    assert_null (strstr (server->transcript.data, "AUTH"));
    pthread_mutex_unlock (&server->lock);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

//  Issue 10 defect 4: per-phase timeouts (RFC 5321 4.5.3.2), each error
//  naming the timeout that fired; a slow reply to the end of the message is
//  "possibly delivered" (the server has the message), not a transient
//  failure to retry.
static void
test_smtp_phase_timeouts (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_SMTP);
    server->end_delay_ms = 1500;
    bf_sender_config_t config = s_config (0, server->port);
    config.timeout_ms = 10000; /* the old whole-message default: not what fires */
    config.smtp_end_ms = 400;
    config.smtp_data_ms = 300;
    config.smtp_command_ms = 300;
    bf_sender_t *sender = s_sender (&config);
    bf_send_request_t request = {
        .delivery_id = 9, .kind = BF_SEND_EMAIL, .to = "a@example.com", .title = "t", .text = "x"
    };
    int64_t start = s_now_ms ();
    bf_send_result_t result = s_send (sender, &request);
    int64_t took = s_now_ms () - start;
    if (result.outcome != BF_OUTCOME_UNKNOWN)
        fail_msg ("slow end of data: %s '%s'", bf_sender_outcome_name (result.outcome),
                  result.error);
    assert_string_equal (result.error,
                         "timeout after 400 ms: waiting for the reply to the end of the message");
    assert_in_range (took, 380, 1400);
    assert_int_equal (s_server_count (server, &server->message_count), 1);

    //  Before the message is complete nothing can have been delivered:
    //  transient, with the phase's own timeout.
    pthread_mutex_lock (&server->lock);
    server->end_delay_ms = 0;
    pthread_mutex_unlock (&server->lock);
    s_server_smtp (server, S_DATA, "");
    start = s_now_ms ();
    result = s_send (sender, &request);
    assert_int_equal (result.outcome, BF_OUTCOME_TRANSIENT);
    assert_string_equal (result.error, "timeout after 300 ms: waiting for the reply to DATA");
    assert_in_range (s_now_ms () - start, 280, 1400);
    s_server_smtp (server, S_DATA, "354 go ahead");
    s_server_smtp (server, S_RCPT, "");
    result = s_send (sender, &request);
    assert_int_equal (result.outcome, BF_OUTCOME_TRANSIENT);
    assert_string_equal (result.error, "timeout after 300 ms: waiting for a reply");
    assert_int_equal (s_server_count (server, &server->message_count), 1);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

typedef struct {
    s_phase_t phase;
    const char *reply;
    bf_outcome_t outcome;
    int code;
} s_smtp_case_t;

//  One email to hong.gildong@example.com through a fresh server that
//  answers reply at phase; its result.
static bf_send_result_t
s_smtp_case (s_phase_t phase, const char *reply, int64_t delivery_id)
{
    s_server_t *server = s_server_start (S_SMTP);
    s_server_smtp (server, phase, reply);
    bf_sender_config_t config = s_config (0, server->port);
    bf_sender_t *sender = s_sender (&config);
    bf_send_request_t request = { .delivery_id = delivery_id,
                                  .kind = BF_SEND_EMAIL,
                                  .to = "hong.gildong@example.com",
                                  .title = "제목",
                                  .text = "본문",
                                  .html = "<p>본문</p>" };
    bf_send_result_t result = s_send (sender, &request);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
    return result;
}

static void
test_smtp_mappings (void **state)
{
    (void)state;
    const s_smtp_case_t cases[] = {
        { S_RCPT, "451 4.7.1 <hong.gildong@example.com> greylisted, try later",
          BF_OUTCOME_TRANSIENT, 451 },
        { S_RCPT, "550 5.1.1 <hong.gildong@example.com>: no such user", BF_OUTCOME_PERMANENT, 550 },
        { S_END, "554 5.7.1 rejected as spam", BF_OUTCOME_PERMANENT, 554 },
        { S_END, "452 4.3.1 insufficient storage", BF_OUTCOME_TRANSIENT, 452 },
        { S_MAIL, "421 4.3.0 shutting down", BF_OUTCOME_TRANSIENT, 421 },
        { S_MAIL, "553 5.7.1 sender rejected", BF_OUTCOME_PERMANENT, 553 },
        { S_DATA, "554 5.5.1 no valid recipients", BF_OUTCOME_PERMANENT, 554 },
        { S_GREETING, "554 no SMTP service here", BF_OUTCOME_TRANSIENT, 554 },
        { S_GREETING, "421 too busy", BF_OUTCOME_TRANSIENT, 421 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bf_send_result_t result = s_smtp_case (cases[i].phase, cases[i].reply, 40 + (int64_t)i);
        if ((int)result.outcome != (int)cases[i].outcome || result.status_code != cases[i].code)
            fail_msg ("case %zu (%s): %s %d '%s'", i, cases[i].reply,
                      bf_sender_outcome_name (result.outcome), result.status_code, result.error);
        char expect[16];
        snprintf (expect, sizeof expect, "SMTP %d", cases[i].code);
        assert_non_null (strstr (result.error, expect));
        assert_null (strstr (result.error, "hong.gildong"));
    }

    //  A long reply line (RFC 5321 allows 512 bytes; a server may send
    //  more) whose address falls where a fixed copy would cut it: masked
    //  whole, never shown in part ("hong.gi" is no address to mask).
    for (size_t at = 236; at < 262; at += 5) {
        char reply[600] = "550 5.1.1";
        memset (reply + 9, ' ', at - 9);
        snprintf (reply + at, sizeof reply - at, "<hong.gildong@example.com> unknown");
        bf_send_result_t result = s_smtp_case (S_RCPT, reply, 70 + (int64_t)at);
        assert_int_equal (result.status_code, 550);
        if (strstr (result.error, "hong") || !strstr (result.error, "<***> unknown"))
            fail_msg ("cut at %zu: '%s'", at, result.error);
    }

    //  Connection refused, and a server that never greets (timeout).
    bf_sender_config_t config = s_config (0, s_free_port ());
    config.timeout_ms = 300;
    bf_sender_t *sender = s_sender (&config);
    bf_send_request_t request = {
        .delivery_id = 60, .kind = BF_SEND_EMAIL, .to = "a@example.com", .title = "t", .text = "x"
    };
    bf_send_result_t result = s_send (sender, &request);
    assert_int_equal (result.outcome, BF_OUTCOME_TRANSIENT);
    assert_int_equal (result.status_code, 0);
    assert_non_null (strstr (result.error, "connection failed"));
    bf_sender_destroy (&sender);

    s_server_t *server = s_server_start (S_SMTP);
    s_server_smtp (server, S_GREETING, "");
    config = s_config (0, server->port);
    config.smtp_greeting_ms = 300;
    sender = s_sender (&config);
    int64_t start = s_now_ms ();
    result = s_send (sender, &request);
    assert_int_equal (result.outcome, BF_OUTCOME_TRANSIENT);
    assert_string_equal (result.error, "timeout after 300 ms: waiting for the greeting");
    assert_in_range (s_now_ms () - start, 280, 2000);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

//  --------------------------------------------------------------------------
//  SMTP: the non-blocking client (bf_smtp) behind plain smtp://

//  Pushes n emails (ids first_id..) through the sender as fast as it admits
//  them; returns the elapsed ms.
static int64_t
s_send_emails (bf_sender_t *sender, int n, int64_t first_id, s_sink_t *sink)
{
    int64_t start = s_now_ms (), deadline = start + S_DEADLINE_MS;
    int next = 0;
    while (sink->done < n) {
        assert_true (s_now_ms () < deadline);
        while (next < n && bf_sender_ready (sender, BF_PROVIDER_EMAIL)) {
            char to[64];
            snprintf (to, sizeof to, "user%d@example.com", next);
            bf_send_request_t request = { .delivery_id = first_id + next,
                                          .kind = BF_SEND_EMAIL,
                                          .to = to,
                                          .title = "청구서",
                                          .text = "본문\n.leading dot\n",
                                          .attempt = 1 };
            assert_int_equal (bf_sender_submit (sender, &request), 0);
            next++;
            int inflight = bf_sender_inflight (sender, BF_PROVIDER_EMAIL);
            if (inflight > sink->max_inflight)
                sink->max_inflight = inflight;
        }
        assert_true (bf_sender_poll (sender, 100, s_on_done, sink) >= 0);
    }
    assert_int_equal (sink->done, n);
    return s_now_ms () - start;
}

static void
test_smtp_parallel_slow_server (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_SMTP);
    server->end_delay_ms = 500;
    bf_sender_config_t config = s_config (0, server->port);
    config.concurrency[BF_PROVIDER_EMAIL] = 300;
    config.timeout_ms = 10000;
    bf_sender_t *sender = s_sender (&config);
    s_sink_t sink = { 0 };
    int64_t elapsed = s_send_emails (sender, 300, 1, &sink);
    int connections = s_server_count (server, &server->connections);
    int max_active = s_server_count (server, &server->max_active);
    printf ("# smtp: 300 emails x 500 ms final reply in %" PRId64 " ms (serial: 150000 ms); "
            "%d sessions, server peak %d waiting at once\n",
            elapsed, connections, max_active);
    assert_int_equal (sink.outcomes[BF_OUTCOME_DELIVERED], 300);
    assert_int_equal (sink.last.status_code, 250);
    assert_int_equal (sink.max_inflight, 300);
    assert_true (max_active >= 250);
    assert_true (connections <= 300);
    assert_true (elapsed < 5000);

    //  A second wave reuses the sessions: no new connection.
    s_sink_t again = { 0 };
    elapsed = s_send_emails (sender, 300, 1000, &again);
    printf ("# smtp second wave: %" PRId64 " ms, new sessions %d\n", elapsed,
            s_server_count (server, &server->connections) - connections);
    assert_int_equal (again.outcomes[BF_OUTCOME_DELIVERED], 300);
    assert_int_equal (s_server_count (server, &server->connections), connections);
    pthread_mutex_lock (&server->lock);
    assert_int_equal (server->message_count, 600);
    //  Dot-stuffing undone by the server: the body is intact.
    assert_null (strstr (server->messages[0], "\r\n..")); /* base64 body has no dots */
    pthread_mutex_unlock (&server->lock);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

static void
test_smtp_multiline_and_reuse (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_SMTP);
    s_server_smtp (server, S_GREETING, "220-test.local ESMTP\r\n220-more greeting\r\n220 ready");
    s_server_smtp (server, S_MAIL, "250-2.1.0 first\r\n250-second\r\n250 2.1.0 ok");
    s_server_smtp (
        server, S_RCPT,
        "550-5.1.1 <hong.gildong@example.com> no such user\r\n550 5.1.1 mailbox unknown");
    bf_sender_config_t config = s_config (0, server->port);
    /*  One session, so that reuse (one connection for every message) does
        not depend on timing: with more, a message submitted while the
        previous session is still resetting may open a second one.  */
    config.concurrency[BF_PROVIDER_EMAIL] = 1;
    bf_sender_t *sender = s_sender (&config);
    bf_send_request_t request = { .delivery_id = 90,
                                  .kind = BF_SEND_EMAIL,
                                  .to = "hong.gildong@example.com",
                                  .title = "t",
                                  .text = "x" };
    //  The 550 at RCPT is reported with its own reply line (libcurl gave
    //  the "221" of its QUIT instead).
    bf_send_result_t result = s_send (sender, &request);
    assert_int_equal (result.outcome, BF_OUTCOME_PERMANENT);
    assert_int_equal (result.status_code, 550);
    assert_string_equal (result.error, "SMTP 550: 550 5.1.1 mailbox unknown");
    s_server_smtp (server, S_RCPT, "550 5.1.1 <hong.gildong@example.com>: no such user");
    result = s_send (sender, &request);
    assert_int_equal (result.status_code, 550);
    assert_non_null (strstr (result.error, "SMTP 550: 550 5.1.1"));
    assert_non_null (strstr (result.error, "no such user"));
    assert_null (strstr (result.error, "hong.gildong"));
    assert_null (strstr (result.error, "221"));
    //  The session is reset and reused for the next messages.
    s_server_smtp (server, S_RCPT, "250 2.1.5 ok");
    for (int i = 0; i < 3; i++) {
        request.delivery_id = 91 + i;
        assert_int_equal (s_send (sender, &request).outcome, BF_OUTCOME_DELIVERED);
    }
    pthread_mutex_lock (&server->lock);
    assert_int_equal (server->connections, 1);
    assert_int_equal (server->message_count, 3);
    assert_non_null (strstr (server->transcript.data, "\nRSET\n"));
    pthread_mutex_unlock (&server->lock);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

static void
test_smtp_broken_session (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_SMTP);
    server->drop_in_data = true;
    bf_sender_config_t config = s_config (0, server->port);
    bf_sender_t *sender = s_sender (&config);
    bf_send_request_t request = {
        .delivery_id = 95, .kind = BF_SEND_EMAIL, .to = "a@example.com", .title = "t", .text = "x"
    };
    //  The whole (small) message was written before the server hung up, and
    //  no final reply came: from here that is possibly delivered.
    bf_send_result_t result = s_send (sender, &request);
    assert_int_equal (result.outcome, BF_OUTCOME_UNKNOWN);
    assert_int_equal (result.status_code, 354);
    assert_non_null (strstr (result.error, "transfer failed"));
    //  The broken session is replaced.
    pthread_mutex_lock (&server->lock);
    server->drop_in_data = false;
    pthread_mutex_unlock (&server->lock);
    assert_int_equal (s_send (sender, &request).outcome, BF_OUTCOME_DELIVERED);
    assert_int_equal (s_server_count (server, &server->connections), 2);
    assert_int_equal (bf_sender_inflight (sender, BF_PROVIDER_EMAIL), 0);

    //  No final reply: the message times out, and only that message. The
    //  whole message went out, so it is possibly delivered (UNKNOWN).
    s_server_smtp (server, S_END, "");
    bf_sender_destroy (&sender);
    config.smtp_end_ms = 300;
    sender = s_sender (&config);
    int64_t start = s_now_ms ();
    result = s_send (sender, &request);
    assert_int_equal (result.outcome, BF_OUTCOME_UNKNOWN);
    assert_string_equal (result.error, "timeout after 300 ms: waiting for the reply to the end "
                                       "of the message");
    assert_in_range (s_now_ms () - start, 280, 2000);
    s_server_smtp (server, S_END, "250 2.0.0 queued");
    assert_int_equal (s_send (sender, &request).outcome, BF_OUTCOME_DELIVERED);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

//  A pooled session that answers 421 to MAIL (it predates a server restart)
//  says nothing about the server now: the message goes out on a fresh
//  connection in the same attempt, once, and the other idle sessions of
//  that time are dropped with it. A 421 on a fresh connection is the
//  provider's answer and fails the message.
static void
test_smtp_stale_session_421 (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_SMTP);
    bf_sender_config_t config = s_config (0, server->port);
    config.concurrency[BF_PROVIDER_EMAIL] = 2;
    bf_sender_t *sender = s_sender (&config);
    bf_send_request_t request = {
        .delivery_id = 97, .kind = BF_SEND_EMAIL, .to = "a@example.com", .title = "t", .text = "x"
    };
    //  Two sessions in the pool: two messages at once.
    s_sink_t sink = { 0 };
    s_send_emails (sender, 2, 97, &sink);
    assert_int_equal (sink.outcomes[BF_OUTCOME_DELIVERED], 2);
    int before = s_server_count (server, &server->connections);
    assert_int_equal (before, 2);
    pthread_mutex_lock (&server->lock);
    server->stale_upto = before;
    pthread_mutex_unlock (&server->lock);
    request.delivery_id = 99;
    bf_send_result_t result = s_send (sender, &request);
    assert_int_equal (result.outcome, BF_OUTCOME_DELIVERED);
    assert_false (result.provider_wide);
    pthread_mutex_lock (&server->lock);
    assert_int_equal (server->message_count, 3); /* the message once */
    assert_int_equal (server->connections, before + 1);
    pthread_mutex_unlock (&server->lock);
    //  The other stale session went with the first: the next message does
    //  not meet a 421 either, and needs no new connection.
    request.delivery_id = 100;
    assert_int_equal (s_send (sender, &request).outcome, BF_OUTCOME_DELIVERED);
    assert_int_equal (s_server_count (server, &server->connections), before + 1);
    //  After the final "." nothing is resent on that session, even a 421
    //  (refused) or a lost connection (possibly delivered): counted once.
    s_server_smtp (server, S_END, "421 4.3.0 closing");
    request.delivery_id = 101;
    result = s_send (sender, &request);
    assert_int_equal (result.outcome, BF_OUTCOME_TRANSIENT);
    assert_int_equal (result.status_code, 421);
    s_server_smtp (server, S_END, "250 2.0.0 queued");
    assert_int_equal (s_send (sender, &request).outcome, BF_OUTCOME_DELIVERED); /* reused */
    pthread_mutex_lock (&server->lock);
    server->drop_in_data = true;
    pthread_mutex_unlock (&server->lock);
    request.delivery_id = 102;
    assert_int_equal (s_send (sender, &request).outcome, BF_OUTCOME_UNKNOWN);
    pthread_mutex_lock (&server->lock);
    server->drop_in_data = false;
    //  97..101, 101 again, and 102, read whole before the hang-up; the 421
    //  after 101's "." closed its session, 102 was not sent a second time.
    assert_int_equal (server->message_count, 7);
    assert_int_equal (server->connections, before + 2);
    pthread_mutex_unlock (&server->lock);
    //  A 421 on a fresh connection is the server's own: provider-wide.
    bf_sender_destroy (&sender);
    pthread_mutex_lock (&server->lock);
    server->stale_upto = S_MAX_CONNS * 100;
    pthread_mutex_unlock (&server->lock);
    sender = s_sender (&config);
    request.delivery_id = 103;
    result = s_send (sender, &request);
    assert_int_equal (result.outcome, BF_OUTCOME_TRANSIENT);
    assert_int_equal (result.status_code, 421);
    assert_true (result.provider_wide);
    pthread_mutex_lock (&server->lock);
    assert_int_equal (server->message_count, 7);
    pthread_mutex_unlock (&server->lock);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

//  --------------------------------------------------------------------------
//  Requests that cannot be sent, programming errors, unconfigured providers

static void
test_invalid_requests (void **state)
{
    (void)state;
    s_server_t *http = s_server_start (S_HTTP);
    s_server_t *smtp = s_server_start (S_SMTP);
    bf_sender_config_t config = s_config (http->port, smtp->port);
    config.push_url = NULL;
    bf_sender_t *sender = s_sender (&config);
    s_capture_start ();
    const bf_send_request_t bad[] = {
        { .delivery_id = 1,
          .kind = BF_SEND_EMAIL,
          .to = "victim@example.com\r\nBcc: x@evil.test",
          .title = "t",
          .text = "x" },
        { .delivery_id = 2, .kind = BF_SEND_EMAIL, .to = "no-at-sign", .text = "x" },
        { .delivery_id = 3, .kind = BF_SEND_EMAIL, .to = "a@example.com" }, /* no body */
        { .delivery_id = 4, .kind = BF_SEND_SMS, .to = "01012345678" },     /* no text */
        { .delivery_id = 5, .kind = BF_SEND_SMS, .to = "", .text = "x" },
        { .delivery_id = 6, .kind = BF_SEND_LMS, .to = "010\n1234", .text = "x" },
    };
    s_sink_t sink = { 0 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal (bf_sender_submit (sender, &bad[i]), 0);
        assert_int_equal (bf_sender_inflight (sender, bf_sender_provider_of (bad[i].kind)), 0);
    }
    assert_int_equal (bf_sender_poll (sender, 5000, s_on_done, &sink), 6);
    assert_int_equal (sink.outcomes[BF_OUTCOME_PERMANENT], 6);
    assert_non_null (strstr (sink.last.error, "invalid request"));
    assert_int_equal (sink.last.status_code, 0);

    //  Programming errors and an unconfigured provider: refused, kept by caller.
    bf_send_request_t request
        = { .delivery_id = 0, .kind = BF_SEND_SMS, .to = "01012345678", .text = "x" };
    assert_int_equal (bf_sender_submit (sender, &request), -1);
    request.delivery_id = 7;
    request.kind = (bf_send_kind_t)99;
    assert_int_equal (bf_sender_submit (sender, &request), -1);
    assert_int_equal (bf_sender_submit (sender, NULL), -1);
    request.kind = BF_SEND_PUSH;
    assert_false (bf_sender_configured (sender, BF_PROVIDER_PUSH));
    assert_false (bf_sender_ready (sender, BF_PROVIDER_PUSH));
    assert_int_equal (bf_sender_wait_ms (sender, BF_PROVIDER_PUSH), -1);
    assert_int_equal (bf_sender_submit (sender, &request), -1);
    assert_int_equal (bf_sender_poll (sender, 0, s_on_done, &sink), 0);
    char *log = s_capture_stop ();
    assert_null (strstr (log, "victim@example.com"));
    assert_non_null (strstr (log, "not sent"));

    //  Nothing reached either server.
    assert_int_equal (s_server_count (http, &http->request_count), 0);
    assert_int_equal (s_server_count (smtp, &smtp->connections), 0);
    free (log);
    bf_sender_destroy (&sender);

    //  Bad configurations are refused with a reason.
    const char *bad_urls[] = { "ftp://127.0.0.1/", "127.0.0.1:80", "http://host\n/" };
    for (size_t i = 0; i < 3; i++) {
        config = s_config (http->port, 0);
        config.sms_url = bad_urls[i];
        char err[128] = "";
        assert_null (bf_sender_new (&config, err, sizeof err));
        assert_true (strlen (err) > 0);
    }
    config = s_config (0, smtp->port);
    config.smtp_from = "no address";
    char err[128] = "";
    assert_null (bf_sender_new (&config, err, sizeof err));
    assert_non_null (strstr (err, "smtp_from"));
    config = s_config (0, 0);
    assert_null (bf_sender_new (&config, err, sizeof err));
    config = s_config (http->port, 0);
    config.breaker_min_samples = 101;
    assert_null (bf_sender_new (&config, err, sizeof err));
    assert_non_null (strstr (err, "breaker_min_samples"));
    s_server_stop (&http);
    s_server_stop (&smtp);
}

//  Contacts never reach the log: per-transfer debug lines and provider
//  reasons that echo the number are masked.
static void
test_logs_mask_contacts (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_HTTP);
    s_server_set (server, 400, "", "{\"error\":\"unknown subscriber 01055557777\"}", 0);
    bf_sender_config_t config = s_config (server->port, 0);
    bf_sender_t *sender = s_sender (&config);
    s_capture_start ();
    bf_send_result_t result = s_send_sms (sender, 1, "01055557777", "x");
    s_server_set (server, 202, "", "{\"message_id\":\"ok\"}", 0);
    bf_send_request_t push = { .delivery_id = 2,
                               .kind = BF_SEND_PUSH,
                               .to = "dQw4w9WgXcQ:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9",
                               .text = "x" };
    s_send (sender, &push);
    char *log = s_capture_stop ();
    assert_int_equal (result.outcome, BF_OUTCOME_PERMANENT);
    assert_null (strstr (result.error, "5555"));
    assert_non_null (strstr (log, "delivery 1 attempt"));
    assert_non_null (strstr (log, "010-****-7777"));
    assert_null (strstr (log, "01055557777"));
    assert_non_null (strstr (log, "dQw4w9\xE2\x80\xA6"));
    assert_null (strstr (log, "APA91b"));
    free (log);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

//  --------------------------------------------------------------------------
//  Circuit breaker

static void
test_breaker_opens_and_recovers (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_HTTP);
    s_server_set (server, 503, "", "", 0);
    bf_sender_config_t config = s_config (server->port, 0);
    config.breaker_min_samples = 4;
    config.breaker_error_pct = 50;
    config.breaker_open_ms = 300;
    bf_sender_t *sender = s_sender (&config);
    s_capture_start ();

    //  One success, then failures: 3 of 4 is 75 % -> opens on the 4th.
    s_server_set (server, 202, "", "{\"message_id\":\"ok\"}", 0);
    assert_int_equal (s_send_sms (sender, 1, "01012345678", "x").outcome, BF_OUTCOME_DELIVERED);
    s_server_set (server, 503, "", "", 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal (s_send_sms (sender, 2 + i, "01012345678", "x").outcome,
                          BF_OUTCOME_TRANSIENT);
        assert_string_equal (bf_sender_breaker_state (sender, BF_PROVIDER_SMS), "closed");
    }
    int64_t opened = s_now_ms ();
    assert_int_equal (s_send_sms (sender, 4, "01012345678", "x").outcome, BF_OUTCOME_TRANSIENT);
    assert_string_equal (bf_sender_breaker_state (sender, BF_PROVIDER_SMS), "open");
    assert_false (bf_sender_ready (sender, BF_PROVIDER_SMS));
    assert_true (bf_sender_ready (sender, BF_PROVIDER_PUSH)); /* per provider */
    assert_in_range (bf_sender_wait_ms (sender, BF_PROVIDER_SMS), 1, 300);
    bf_send_request_t request
        = { .delivery_id = 5, .kind = BF_SEND_SMS, .to = "01012345678", .text = "x" };
    assert_int_equal (bf_sender_submit (sender, &request), -1);
    int requests_when_open = s_server_count (server, &server->request_count);

    //  Half-open after open_ms: one probe; it fails and reopens.
    while (!bf_sender_ready (sender, BF_PROVIDER_SMS)) {
        assert_true (s_now_ms () - opened < 2000);
        bf_sender_poll (sender, 20, NULL, NULL);
    }
    assert_true (s_now_ms () - opened >= 290);
    assert_string_equal (bf_sender_breaker_state (sender, BF_PROVIDER_SMS), "half-open");
    assert_int_equal (s_server_count (server, &server->request_count), requests_when_open);
    s_server_set (server, 503, "", "", 100);
    assert_int_equal (bf_sender_submit (sender, &request), 0);
    assert_false (bf_sender_ready (sender, BF_PROVIDER_SMS)); /* probe out */
    assert_int_equal (bf_sender_wait_ms (sender, BF_PROVIDER_SMS), -1);
    request.delivery_id = 6;
    assert_int_equal (bf_sender_submit (sender, &request), -1);
    s_sink_t sink = { 0 };
    while (sink.done == 0)
        bf_sender_poll (sender, 100, s_on_done, &sink);
    assert_int_equal (sink.last.outcome, BF_OUTCOME_TRANSIENT);
    assert_string_equal (bf_sender_breaker_state (sender, BF_PROVIDER_SMS), "open");
    assert_false (bf_sender_ready (sender, BF_PROVIDER_SMS));

    //  Next probe succeeds: closed, with an empty window (one failure
    //  afterwards does not reopen it).
    opened = s_now_ms ();
    while (!bf_sender_ready (sender, BF_PROVIDER_SMS)) {
        assert_true (s_now_ms () - opened < 2000);
        bf_sender_poll (sender, 20, NULL, NULL);
    }
    s_server_set (server, 202, "", "{\"message_id\":\"ok\"}", 0);
    assert_int_equal (s_send_sms (sender, 7, "01012345678", "x").outcome, BF_OUTCOME_DELIVERED);
    assert_string_equal (bf_sender_breaker_state (sender, BF_PROVIDER_SMS), "closed");
    s_server_set (server, 500, "", "", 0);
    assert_int_equal (s_send_sms (sender, 8, "01012345678", "x").outcome, BF_OUTCOME_TRANSIENT);
    assert_string_equal (bf_sender_breaker_state (sender, BF_PROVIDER_SMS), "closed");
    assert_true (bf_sender_ready (sender, BF_PROVIDER_SMS));
    char *log = s_capture_stop ();
    assert_non_null (strstr (log, "sms breaker opened"));
    assert_non_null (strstr (log, "sms breaker half-open"));
    assert_non_null (strstr (log, "sms breaker reopened"));
    assert_non_null (strstr (log, "sms breaker closed"));
    free (log);
    bf_sender_destroy (&sender);

    //  Permanent failures and timeouts: only the latter open it.
    s_server_set (server, 400, "", "{\"error\":\"bad\"}", 0);
    sender = s_sender (&config);
    for (int i = 0; i < 6; i++)
        assert_int_equal (s_send_sms (sender, 20 + i, "01012345678", "x").outcome,
                          BF_OUTCOME_PERMANENT);
    assert_string_equal (bf_sender_breaker_state (sender, BF_PROVIDER_SMS), "closed");
    bf_sender_destroy (&sender);
    s_server_set (server, 202, "", "{\"message_id\":\"late\"}", -1);
    config.timeout_ms = 150;
    config.concurrency[BF_PROVIDER_SMS] = 4;
    sender = s_sender (&config);
    s_sink_t many = { 0 };
    s_send_many (sender, 4, 30, &many);
    assert_int_equal (many.outcomes[BF_OUTCOME_TRANSIENT], 4);
    assert_string_equal (bf_sender_breaker_state (sender, BF_PROVIDER_SMS), "open");
    //  A probe answered with a permanent failure shows the provider is up.
    opened = s_now_ms ();
    while (!bf_sender_ready (sender, BF_PROVIDER_SMS)) {
        assert_true (s_now_ms () - opened < 2000);
        bf_sender_poll (sender, 20, NULL, NULL);
    }
    s_server_set (server, 422, "", "{\"error\":\"too long\"}", 0);
    assert_int_equal (s_send_sms (sender, 40, "01012345678", "x").outcome, BF_OUTCOME_PERMANENT);
    assert_string_equal (bf_sender_breaker_state (sender, BF_PROVIDER_SMS), "closed");
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

//  --------------------------------------------------------------------------
//  Admission: rate limit, concurrency, many in flight

static void
test_rate_limit (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_HTTP);
    bf_sender_config_t config = s_config (server->port, 0);
    config.rate_per_s[BF_PROVIDER_SMS] = 50;
    config.concurrency[BF_PROVIDER_SMS] = 64;
    bf_sender_t *sender = s_sender (&config);
    s_sink_t sink = { 0 };
    int64_t elapsed = s_send_many (sender, 100, 1, &sink);
    printf ("# rate limit: 100 sends at 50/s took %" PRId64 " ms\n", elapsed);
    assert_int_equal (sink.outcomes[BF_OUTCOME_DELIVERED], 100);
    assert_in_range (elapsed, 1800, 3500);
    //  At most 1.1 x rate in any one second: check the server's view by
    //  counting requests per second over a second run at 100/s.
    bf_sender_destroy (&sender);
    config.rate_per_s[BF_PROVIDER_SMS] = 100;
    sender = s_sender (&config);
    s_sink_t sink2 = { 0 };
    int64_t start = s_now_ms ();
    int before = s_server_count (server, &server->request_count);
    int next = 0;
    while (s_now_ms () - start < 1000) {
        while (bf_sender_ready (sender, BF_PROVIDER_SMS)) {
            bf_send_request_t request = {
                .delivery_id = 1000 + next++, .kind = BF_SEND_SMS, .to = "01012345678", .text = "x"
            };
            assert_int_equal (bf_sender_submit (sender, &request), 0);
        }
        bf_sender_poll (sender, 5, s_on_done, &sink2);
    }
    printf ("# rate limit: %d admitted in one second at 100/s (%d reached the server)\n", next,
            s_server_count (server, &server->request_count) - before);
    assert_in_range (next, 95, 111);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

static void
test_concurrency_limit (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_HTTP);
    s_server_set (server, 202, "", "{\"message_id\":\"ok\"}", 100);
    bf_sender_config_t config = s_config (server->port, 0);
    config.concurrency[BF_PROVIDER_SMS] = 4;
    bf_sender_t *sender = s_sender (&config);
    s_sink_t sink = { 0 };
    int64_t elapsed = s_send_many (sender, 40, 1, &sink);
    int max_active = s_server_count (server, &server->max_active);
    int connections = s_server_count (server, &server->connections);
    printf ("# concurrency 4: 40 x 100 ms took %" PRId64 " ms, server saw %d at once over %d "
            "connections\n",
            elapsed, max_active, connections);
    assert_int_equal (sink.outcomes[BF_OUTCOME_DELIVERED], 40);
    assert_int_equal (sink.max_inflight, 4);
    assert_int_equal (max_active, 4);
    assert_in_range (connections, 4, 4);
    assert_in_range (elapsed, 950, 3000);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

static void
test_many_in_flight (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_HTTP);
    s_server_set (server, 202, "", "{\"message_id\":\"ok\"}", 200);
    bf_sender_config_t config = s_config (server->port, 0);
    config.concurrency[BF_PROVIDER_SMS] = 500;
    config.timeout_ms = 10000;
    bf_sender_t *sender = s_sender (&config);
    s_sink_t sink = { 0 };
    int64_t elapsed = s_send_many (sender, 500, 1, &sink);
    int max_active = s_server_count (server, &server->max_active);
    printf ("# many in flight: 500 x 200 ms took %" PRId64 " ms (serial: 100000 ms); "
            "engine peak %d in flight, server peak %d at once\n",
            elapsed, sink.max_inflight, max_active);
    assert_int_equal (sink.outcomes[BF_OUTCOME_DELIVERED], 500);
    assert_int_equal (sink.max_inflight, 500);
    assert_true (max_active >= 250);
    assert_true (elapsed < 5000);

    //  A second wave reuses the 500 connections (keep-alive, handle pool).
    int connections = s_server_count (server, &server->connections);
    s_sink_t again = { 0 };
    elapsed = s_send_many (sender, 500, 1000, &again);
    printf ("# second wave: %" PRId64 " ms, new connections %d\n", elapsed,
            s_server_count (server, &server->connections) - connections);
    assert_int_equal (again.outcomes[BF_OUTCOME_DELIVERED], 500);
    assert_int_equal (s_server_count (server, &server->connections), connections);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

//  --------------------------------------------------------------------------
//  Lifetime and re-entrancy

static void
test_destroy_aborts_inflight (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_HTTP);
    s_server_set (server, 202, "", "{\"message_id\":\"never\"}", -1);
    bf_sender_config_t config = s_config (server->port, 0);
    bf_sender_t *sender = s_sender (&config);
    s_sink_t sink = { 0 };
    for (int i = 0; i < 10; i++) {
        bf_send_request_t request
            = { .delivery_id = 1 + i, .kind = BF_SEND_SMS, .to = "01012345678", .text = "x" };
        assert_int_equal (bf_sender_submit (sender, &request), 0);
    }
    int64_t start = s_now_ms ();
    while (s_server_count (server, &server->request_count) < 10) {
        assert_true (s_now_ms () - start < 5000);
        assert_int_equal (bf_sender_poll (sender, 20, s_on_done, &sink), 0);
    }
    assert_int_equal (bf_sender_inflight (sender, BF_PROVIDER_SMS), 10);
    bf_sender_destroy (&sender);
    assert_null (sender);
    assert_int_equal (sink.done, 0);
    //  The server sees the connections go.
    while (s_server_count (server, &server->active) > 0) {
        assert_true (s_now_ms () - start < 5000);
        s_sleep_ms (10);
    }
    s_server_stop (&server);
}

static void
test_submit_from_done (void **state)
{
    (void)state;
    s_server_t *server = s_server_start (S_HTTP);
    bf_sender_config_t config = s_config (server->port, 0);
    bf_sender_t *sender = s_sender (&config);
    s_sink_t sink = { .resubmit = sender, .resubmit_left = 5, .resubmit_id = 100 };
    bf_send_request_t first = { .delivery_id = 100,
                                .kind = BF_SEND_SMS,
                                .to = "01012345678",
                                .text = "first",
                                .cookie = &sink };
    assert_int_equal (bf_sender_submit (sender, &first), 0);
    int64_t start = s_now_ms ();
    while (sink.done < 6) {
        assert_true (s_now_ms () - start < 5000);
        bf_sender_poll (sender, 100, s_on_done, &sink);
    }
    assert_int_equal (sink.outcomes[BF_OUTCOME_DELIVERED], 6);
    assert_int_equal (sink.last_id, 105);
    assert_int_equal (s_server_count (server, &server->request_count), 6);
    bf_sender_destroy (&sender);
    s_server_stop (&server);
}

typedef struct {
    bf_sender_t *sender;
} s_waker_t;

static void *
s_waker (void *arg)
{
    s_sleep_ms (100);
    bf_sender_wakeup (((s_waker_t *)arg)->sender);
    return NULL;
}

static void
test_wakeup (void **state)
{
    (void)state;
    bf_sender_config_t config = s_config (s_free_port (), 0);
    bf_sender_t *sender = s_sender (&config);
    s_waker_t waker = { sender };
    pthread_t thread;
    int64_t start = s_now_ms ();
    assert_int_equal (pthread_create (&thread, NULL, s_waker, &waker), 0);
    assert_int_equal (bf_sender_poll (sender, 5000, NULL, NULL), 0);
    int64_t elapsed = s_now_ms () - start;
    pthread_join (thread, NULL);
    assert_in_range (elapsed, 80, 2000);
    //  With nothing in flight and no wakeup, poll waits its timeout.
    start = s_now_ms ();
    assert_int_equal (bf_sender_poll (sender, 150, NULL, NULL), 0);
    assert_in_range (s_now_ms () - start, 140, 1000);
    bf_sender_destroy (&sender);
}

//  --------------------------------------------------------------------------
//  The real mock provider, when it exists and runs (smoke test only)

//  Reads the child's stdout until a line "ready" (true) or EOF / timeout.
static bool
s_wait_ready (int fd, int timeout_ms, int *http_port, int *smtp_port)
{
    s_tbuf_t seen = { 0 };
    int64_t deadline = s_now_ms () + timeout_ms;
    bool ready = false;
    while (!ready && s_now_ms () < deadline) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll (&pfd, 1, 100) <= 0)
            continue;
        char chunk[512];
        ssize_t got = read (fd, chunk, sizeof chunk);
        if (got <= 0)
            break;
        s_tbuf_add (&seen, chunk, (size_t)got);
        ready = strstr (seen.data, "\nready\n") || strncmp (seen.data, "ready\n", 6) == 0;
    }
    //  Its first line: the ports the kernel gave it (--http-port 0 --smtp-port 0).
    if (ready && sscanf (seen.data, "http=%d smtp=%d", http_port, smtp_port) != 2)
        ready = false;
    s_tbuf_free (&seen);
    return ready;
}

static void
s_stop_child (pid_t pid, int out_fd)
{
    kill (pid, SIGTERM);
    char sink[4096];
    while (read (out_fd, sink, sizeof sink) > 0)
        ;
    close (out_fd);
    waitpid (pid, NULL, 0);
}

static void
test_mockprovider_smoke (void **state)
{
    (void)state;
    const char *binary = getenv ("BF_MOCKPROVIDER");
    if (!binary || access (binary, X_OK) != 0)
        skip ();
    char command[1024];
    snprintf (command, sizeof command, "'%s' --help 2>&1", binary);
    FILE *help_pipe = popen (command, "r");
    assert_non_null (help_pipe);
    char help[8192] = "";
    size_t got = fread (help, 1, sizeof help - 1, help_pipe);
    help[got] = '\0';
    int status = pclose (help_pipe);
    if (status != 0 || !strstr (help, "--http-port") || !strstr (help, "--smtp-port")) {
        printf ("# mock provider not usable (--help: exit %d); skipped\n", status);
        skip ();
    }
    //  Ports the kernel picks, read back from its first line (s_wait_ready):
    //  a port picked here could be taken before the mock provider binds it.
    int http_port = 0, smtp_port = 0;
    char *argv[]
        = { (char *)binary, "--http-port",        "0",  "--smtp-port",      "0", "--sms-latency-ms",
            "100",          "--email-latency-ms", "20", "--email-fail-pct", "0", NULL };
    int out[2];
    assert_int_equal (pipe (out), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, out[1], 1);
    posix_spawn_file_actions_addclose (&actions, out[0]);
    pid_t pid;
    assert_int_equal (posix_spawn (&pid, binary, &actions, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy (&actions);
    close (out[1]);
    if (!s_wait_ready (out[0], 5000, &http_port, &smtp_port)) {
        s_stop_child (pid, out[0]);
        fail_msg ("mock provider answered --help but did not become ready");
    }

    //  1000 SMS with 100 ms latency, 200 in flight.
    bf_sender_config_t config = s_config (http_port, smtp_port);
    config.concurrency[BF_PROVIDER_SMS] = 200;
    config.concurrency[BF_PROVIDER_EMAIL] = 8;
    bf_sender_t *sender = s_sender (&config);
    s_sink_t sink = { 0 };
    int64_t elapsed = s_send_many (sender, 1000, 1, &sink);
    printf ("# mock provider: 1000 SMS x 100 ms in %" PRId64 " ms (peak %d in flight): "
            "%d delivered, %d duplicate, %d transient, %d permanent, %d throttled\n",
            elapsed, sink.max_inflight, sink.outcomes[0], sink.outcomes[1], sink.outcomes[2],
            sink.outcomes[3], sink.outcomes[4]);
    bool sms_ok = sink.outcomes[BF_OUTCOME_DELIVERED] == 1000 && elapsed < 10000;

    //  The same deliveries again: the provider already has them (409).
    s_sink_t again = { 0 };
    s_send_many (sender, 10, 1, &again);
    bool duplicates_ok = again.outcomes[BF_OUTCOME_DUPLICATE] == 10
                         && strncmp (again.last.provider_message_id, "m-", 2) == 0;

    //  LMS and push with titles; emails (one resent: same Message-ID).
    bf_send_request_t lms = { .delivery_id = 5001,
                              .kind = BF_SEND_LMS,
                              .to = "01012345678",
                              .title = "3월 청구서",
                              .text = "요금은 55,000원입니다." };
    bf_send_request_t push = { .delivery_id = 5002,
                               .kind = BF_SEND_PUSH,
                               .to = "device-token-0123456789abcdef",
                               .title = "청구서",
                               .text = "도착했습니다" };
    bool other_ok = s_send (sender, &lms).outcome == BF_OUTCOME_DELIVERED
                    && s_send (sender, &push).outcome == BF_OUTCOME_DELIVERED;
    int emails_ok = 0;
    for (int i = 0; i < 21; i++) {
        char to[64];
        snprintf (to, sizeof to, "user%d@example.com", i % 20);
        bf_send_request_t email = { .delivery_id = 6000 + i % 20,
                                    .kind = BF_SEND_EMAIL,
                                    .to = to,
                                    .title = s_subject,
                                    .text = "본문",
                                    .html = "<p>본문</p>",
                                    .attempt = 1 + i / 20 };
        bf_send_result_t result = s_send (sender, &email);
        emails_ok += result.outcome == BF_OUTCOME_DELIVERED;
    }
    printf ("# mock provider: duplicates %d/10, lms+push %s, emails %d/21\n",
            again.outcomes[BF_OUTCOME_DUPLICATE], other_ok ? "ok" : "FAILED", emails_ok);
    bf_sender_destroy (&sender);
    s_stop_child (pid, out[0]);
    assert_true (sms_ok);
    assert_true (duplicates_ok);
    assert_true (other_ok);
    assert_int_equal (emails_ok, 21);
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    bf_log_init ("itest_sender", BF_LOG_WARN, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_http_request_shape),
        cmocka_unit_test (test_http_idempotency_and_keepalive),
        cmocka_unit_test (test_http_fresh_connection_after_provider_failure),
        cmocka_unit_test (test_http_reply_mappings),
        cmocka_unit_test (test_http_throttle_pause),
        cmocka_unit_test (test_http_connection_refused),
        cmocka_unit_test (test_http_timeout),
        cmocka_unit_test (test_smtp_conversation),
        cmocka_unit_test (test_smtp_auth),
        cmocka_unit_test (test_smtp_mappings),
        cmocka_unit_test (test_smtp_parallel_slow_server),
        cmocka_unit_test (test_smtp_multiline_and_reuse),
        cmocka_unit_test (test_smtp_broken_session),
        cmocka_unit_test (test_smtp_stale_session_421),
        cmocka_unit_test (test_invalid_requests),
        cmocka_unit_test (test_logs_mask_contacts),
        cmocka_unit_test (test_breaker_opens_and_recovers),
        cmocka_unit_test (test_rate_limit),
        cmocka_unit_test (test_concurrency_limit),
        cmocka_unit_test (test_many_in_flight),
        cmocka_unit_test (test_destroy_aborts_inflight),
        cmocka_unit_test (test_submit_from_done),
        cmocka_unit_test (test_wakeup),
        cmocka_unit_test (test_mockprovider_smoke),
        cmocka_unit_test (test_smtp_auth_listed_last),
        cmocka_unit_test (test_smtp_plain_auth_refused),
        cmocka_unit_test (test_smtp_phase_timeouts),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
