/*  bf_overview — the overview poller and its event streams
    (bf_overview.h).

    One mutex guards the snapshot and the list of streams. The poller
    builds a snapshot without it (asking control takes time), then takes
    it to swap the snapshot in and hand the event to every stream, which
    is a copy per stream and a resume: nothing under the mutex waits on a
    socket.  */

#include <czmq.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bf_console_metrics.h"
#include "bf_log.h"
#include "bf_overview.h"
#include "bf_uuid.h"
#include "bf_verbs.h"

typedef struct s_stream_t s_stream_t;

struct s_stream_t {
    bf_overview_t *owner;
    struct MHD_Connection *connection;
    char *cur; /* being written */
    size_t cur_len, cur_pos;
    char *next; /* the newest event, waiting */
    size_t next_len;
    bool suspended;
    char token[80]; /* the session it was opened with */
    s_stream_t *link;
};

struct bf_overview_t {
    bf_overview_args_t args;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    pthread_t thread;
    bool started, stopping, ended;
    char *snapshot;
    size_t snapshot_len;
    s_stream_t *streams;
    size_t nstreams;
    atomic_uint_fast64_t polls;
    int64_t last_ping_ms; /* the poller's own */
    _Atomic int64_t answered_ms; /* monotonic: when control last answered; 0: never */
};

/*  Asks control one query: its parsed result, or NULL with *error set
    (first failure of the round wins). An answer of control, even a
    refusal, marks it reachable (the readiness check).  */
static json_t *
s_ask (bf_overview_t *self, bf_client_t *client, const char *verb, const char *key,
       const char *value, char *error, size_t errsize)
{
    if (!client) {
        if (!*error)
            snprintf (error, errsize, "control unreachable");
        return NULL;
    }
    char id[BF_UUID_LEN + 1], err[256];
    const char *keys[1] = { key }, *values[1] = { value };
    const bf_verb_t *entry = bf_verb_find (verb);
    Billflow__CommandReply *reply = NULL;
    int rc = bf_client_request (client, bf_uuid_v4 (id), entry->target, verb, key ? 1 : 0, keys,
                                values, &reply, NULL, err, sizeof err);
    json_t *result = NULL;
    if (rc == BF_CLIENT_ANSWERED)
        atomic_store (&self->answered_ms, zclock_mono ());
    if (rc != BF_CLIENT_ANSWERED) {
        if (!*error)
            snprintf (error, errsize, "control unreachable");
    } else if (reply->status != BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK) {
        if (!*error)
            snprintf (error, errsize, "control: %s", reply->error ? reply->error : "failed");
    } else
        result = json_loads (reply->result ? reply->result : "", JSON_DECODE_ANY, NULL);
    if (reply)
        billflow__command_reply__free_unpacked (reply, NULL);
    return result;
}

/*  The held notices of the newest run: from run.show of its period.  */
static json_t *
s_held (bf_overview_t *self, bf_client_t *client, const char *period, char *error,
        size_t errsize)
{
    json_t *held = json_array ();
    if (!period)
        return held;
    json_t *show = s_ask (self, client, "run.show", "period", period, error, errsize);
    json_t *notices = json_object_get (show, "notices");
    json_t *count = json_object_get (json_object_get (notices, "by_state"), "HELD");
    json_t *schedule = json_object_get (show, "schedule");
    json_int_t n = json_is_integer (count) ? json_integer_value (count) : 0;
    if (show && (n > 0 || json_is_object (schedule))) {
        json_t *until = json_object_get (notices, "held_until");
        json_t *release = json_object_get (schedule, "release_at");
        json_t *at = json_object_get (schedule, "at");
        json_array_append_new (held,
                               json_pack ("{s:s, s:I, s:O, s:O, s:O}", "period", period, "held", n,
                                          "held_until", until ? until : json_null (), "release_at",
                                          release ? release : json_null (), "scheduled_at",
                                          at ? at : json_null ()));
    }
    json_decref (show);
    return held;
}

/*  One round: the snapshot's JSON text (malloc'd), or NULL.  */
static char *
s_round (bf_overview_t *self, bf_client_t *client)
{
    char error[300] = "";
    const char *limit = "5";
    json_t *services = s_ask (self, client, "services.list", NULL, NULL, error, sizeof error);
    json_t *runs = s_ask (self, client, "runs.list", "limit", limit, error, sizeof error);
    json_t *newest = json_array_get (json_object_get (runs, "runs"), 0);
    const char *period = json_string_value (json_object_get (newest, "period"));
    json_t *deliveries = period ? s_ask (self, client, "deliveries.summary", "period", period,
                                         error, sizeof error)
                                : NULL;
    json_t *held = s_held (self, client, period, error, sizeof error);
    uint64_t polls = atomic_fetch_add (&self->polls, 1) + 1;
    bf_console_metrics_poll ();
    json_t *root = json_pack (
        "{s:I, s:I, s:o, s:o, s:o, s:o, s:o}", "at_ms", (json_int_t)zclock_time (), "polls",
        (json_int_t)polls, "services", services ? services : json_null (), "runs",
        runs ? runs : json_null (), "deliveries", deliveries ? deliveries : json_null (), "held",
        held ? held : json_array (), "error", *error ? json_string (error) : json_null ());
    char *text = root ? json_dumps (root, JSON_COMPACT) : NULL;
    json_decref (root);
    return text;
}

/*  Gives stream the event text (copied) as its newest, and resumes it.
    Under the mutex.  */
static void
s_offer (s_stream_t *stream, const char *event, size_t len)
{
    char *copy = malloc (len + 1);
    if (!copy)
        return;
    memcpy (copy, event, len + 1);
    free (stream->next);
    stream->next = copy;
    stream->next_len = len;
    if (stream->suspended) {
        stream->suspended = false;
        MHD_resume_connection (stream->connection);
    }
}

/*  Swaps in the snapshot and offers it to every stream, with ": ping"
    after it (or alone, when there is no snapshot) once a ping interval.  */
static void
s_publish (bf_overview_t *self, char *snapshot)
{
    int64_t now = zclock_time ();
    bool ping = now - self->last_ping_ms >= self->args.ping_ms;
    size_t len = (snapshot ? strlen (snapshot) + sizeof "event: overview\ndata: \n\n" - 1 : 0)
                 + (ping ? sizeof ": ping\n\n" - 1 : 0);
    char *event = len ? malloc (len + 1) : NULL;
    if (event)
        snprintf (event, len + 1, "%s%s%s%s", snapshot ? "event: overview\ndata: " : "",
                  snapshot ? snapshot : "", snapshot ? "\n\n" : "", ping ? ": ping\n\n" : "");
    if (ping)
        self->last_ping_ms = now;
    pthread_mutex_lock (&self->mutex);
    if (snapshot) {
        free (self->snapshot);
        self->snapshot = snapshot;
        self->snapshot_len = strlen (snapshot);
    }
    for (s_stream_t *s = self->streams; event && s; s = s->link)
        s_offer (s, event, len);
    pthread_mutex_unlock (&self->mutex);
    free (event);
}

static void *
s_poller (void *arg)
{
    bf_overview_t *self = arg;
    char err[256];
    bf_client_t *client = bf_client_new (&self->args.client, err, sizeof err);
    if (!client)
        bf_error ("console overview: cannot make a client of control: %s", err);
    pthread_mutex_lock (&self->mutex);
    while (!self->stopping) {
        pthread_mutex_unlock (&self->mutex);
        int64_t start = zclock_time ();
        s_publish (self, s_round (self, client));
        int64_t until = start + self->args.interval_ms;
        struct timespec ts = { .tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000 };
        pthread_mutex_lock (&self->mutex);
        while (!self->stopping && zclock_time () < until)
            pthread_cond_timedwait (&self->wake, &self->mutex, &ts);
    }
    pthread_mutex_unlock (&self->mutex);
    bf_client_destroy (&client);
    return NULL;
}

bf_overview_t *
bf_overview_new (const bf_overview_args_t *args, char *err, size_t errsize)
{
    bf_overview_t *self = calloc (1, sizeof *self);
    if (!self) {
        bf_err_set (err, errsize, "out of memory");
        return NULL;
    }
    self->args = *args;
    if (self->args.interval_ms < 100)
        self->args.interval_ms = 100;
    if (self->args.ping_ms < 1000)
        self->args.ping_ms = 1000;
    self->snapshot = strdup ("{\"at_ms\":0,\"polls\":0,\"services\":null,\"runs\":null,"
                             "\"deliveries\":null,\"held\":[],\"error\":\"not polled yet\"}");
    self->snapshot_len = self->snapshot ? strlen (self->snapshot) : 0;
    atomic_init (&self->polls, 0);
    atomic_init (&self->answered_ms, 0);
    pthread_mutex_init (&self->mutex, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_REALTIME);
    pthread_cond_init (&self->wake, &attr);
    pthread_condattr_destroy (&attr);
    if (!self->snapshot || pthread_create (&self->thread, NULL, s_poller, self) != 0) {
        bf_err_set (err, errsize, "cannot start the overview poller");
        bf_overview_destroy (&self);
        return NULL;
    }
    self->started = true;
    return self;
}

void
bf_overview_end_streams (bf_overview_t *self)
{
    pthread_mutex_lock (&self->mutex);
    self->ended = true;
    for (s_stream_t *s = self->streams; s; s = s->link)
        if (s->suspended) {
            s->suspended = false;
            MHD_resume_connection (s->connection);
        }
    pthread_mutex_unlock (&self->mutex);
}

void
bf_overview_destroy (bf_overview_t **self_p)
{
    if (self_p && *self_p) {
        bf_overview_t *self = *self_p;
        pthread_mutex_lock (&self->mutex);
        self->stopping = true;
        pthread_cond_broadcast (&self->wake);
        pthread_mutex_unlock (&self->mutex);
        if (self->started)
            pthread_join (self->thread, NULL);
        bf_overview_end_streams (self);
        /*  Streams still listed belong to a daemon that is gone: their
            connections were closed with it, their callbacks freed them.  */
        pthread_cond_destroy (&self->wake);
        pthread_mutex_destroy (&self->mutex);
        free (self->snapshot);
        free (self);
        *self_p = NULL;
    }
}

char *
bf_overview_snapshot (bf_overview_t *self, size_t *len)
{
    pthread_mutex_lock (&self->mutex);
    char *copy = malloc (self->snapshot_len + 1);
    if (copy) {
        memcpy (copy, self->snapshot, self->snapshot_len + 1);
        if (len)
            *len = self->snapshot_len;
    }
    pthread_mutex_unlock (&self->mutex);
    return copy;
}

uint64_t
bf_overview_polls (bf_overview_t *self)
{
    return atomic_load (&self->polls);
}

bool
bf_overview_ready_at (int64_t answered_ms, int64_t now_ms, int64_t stale_ms, char *reason,
                      size_t reasonsize)
{
    if (answered_ms <= 0) {
        snprintf (reason, reasonsize, "control has not answered yet");
        return false;
    }
    int64_t age = now_ms > answered_ms ? now_ms - answered_ms : 0;
    bool ok = age <= stale_ms;
    snprintf (reason, reasonsize, "%s %.1f s ago", ok ? "control answered" : "control last answered",
              (double)age / 1000.0);
    return ok;
}

int64_t
bf_overview_stale_ms (int interval_ms)
{
    int64_t stale = 3 * (int64_t)interval_ms;
    return stale < BF_OVERVIEW_STALE_MIN_MS ? BF_OVERVIEW_STALE_MIN_MS : stale;
}

bool
bf_overview_ready (void *arg, char *reason, size_t reasonsize)
{
    bf_overview_t *self = arg;
    return bf_overview_ready_at (atomic_load (&self->answered_ms), zclock_mono (),
                                 bf_overview_stale_ms (self->args.interval_ms), reason, reasonsize);
}

/*  libmicrohttpd asks for more of the stream: the rest of the event being
    written, else the waiting one, else nothing yet (the connection is
    suspended until s_offer resumes it).  */
static ssize_t
s_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    s_stream_t *stream = cls;
    bf_overview_t *self = stream->owner;
    ssize_t n = 0;
    pthread_mutex_lock (&self->mutex);
    if (self->ended)
        n = MHD_CONTENT_READER_END_OF_STREAM;
    else if (!stream->cur && stream->next && self->args.live
             && !self->args.live (self->args.live_context, stream->token))
        n = MHD_CONTENT_READER_END_OF_STREAM; /* its session ended */
    else {
        if (!stream->cur && stream->next) {
            stream->cur = stream->next;
            stream->cur_len = stream->next_len;
            stream->cur_pos = 0;
            stream->next = NULL;
        }
        if (stream->cur) {
            size_t left = stream->cur_len - stream->cur_pos;
            size_t take = left < max ? left : max;
            memcpy (buf, stream->cur + stream->cur_pos, take);
            stream->cur_pos += take;
            if (stream->cur_pos == stream->cur_len) {
                free (stream->cur);
                stream->cur = NULL;
            }
            n = (ssize_t)take;
        } else {
            stream->suspended = true;
            MHD_suspend_connection (stream->connection);
        }
    }
    pthread_mutex_unlock (&self->mutex);
    return n;
}

static void
s_stream_free (void *cls)
{
    s_stream_t *stream = cls;
    bf_overview_t *self = stream->owner;
    pthread_mutex_lock (&self->mutex);
    for (s_stream_t **p = &self->streams; *p; p = &(*p)->link)
        if (*p == stream) {
            *p = stream->link;
            self->nstreams--;
            break;
        }
    pthread_mutex_unlock (&self->mutex);
    bf_console_metrics_streams (-1);
    free (stream->cur);
    free (stream->next);
    explicit_bzero (stream->token, sizeof stream->token);
    free (stream);
}

struct MHD_Response *
bf_overview_stream (bf_overview_t *self, struct MHD_Connection *connection, const char *token)
{
    s_stream_t *stream = calloc (1, sizeof *stream);
    if (!stream)
        return NULL;
    stream->owner = self;
    stream->connection = connection;
    snprintf (stream->token, sizeof stream->token, "%s", token ? token : "");
    pthread_mutex_lock (&self->mutex);
    bool refuse = self->ended || self->nstreams >= self->args.max_streams;
    if (!refuse) {
        size_t len = self->snapshot_len + sizeof "event: overview\ndata: \n\n" - 1;
        stream->next = malloc (len + 1);
        if (stream->next) {
            snprintf (stream->next, len + 1, "event: overview\ndata: %s\n\n", self->snapshot);
            stream->next_len = len;
        }
    }
    pthread_mutex_unlock (&self->mutex);
    if (refuse || !stream->next) {
        free (stream->next);
        free (stream);
        return NULL;
    }
    struct MHD_Response *response
        = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 4096, s_read, stream, s_stream_free);
    if (!response) {
        free (stream->next);
        free (stream);
        return NULL;
    }
    pthread_mutex_lock (&self->mutex);
    stream->link = self->streams;
    self->streams = stream;
    self->nstreams++;
    pthread_mutex_unlock (&self->mutex);
    bf_console_metrics_streams (1);
    return response;
}
