/*  bf_testdb — fresh databases and billdata runs for integration tests.  */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bf_curve.h"
#include "bf_migrate.h"
#include "bf_testdb.h"
#include "bf_text.h"
#include "bf_wire.h"

static int s_counter;

static PGconn *
s_admin (void)
{
    PGconn *conn = PQconnectdb ("dbname=postgres");
    if (PQstatus (conn) != CONNECTION_OK) {
        fprintf (stderr, "bf_testdb: cannot reach the test cluster (run under scripts/pgtmp): %s",
                 PQerrorMessage (conn));
        PQfinish (conn);
        return NULL;
    }
    return conn;
}

char *
bf_testdb_create (bool migrate)
{
    PGconn *admin = s_admin ();
    if (!admin)
        return NULL;
    char name[64], sql[128];
    snprintf (name, sizeof name, "bftest_%d_%d", (int)getpid (), ++s_counter);
    snprintf (sql, sizeof sql, "CREATE DATABASE %s", name);
    PGresult *res = PQexec (admin, sql);
    bool ok = PQresultStatus (res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf (stderr, "bf_testdb: %s", PQresultErrorMessage (res));
    PQclear (res);
    PQfinish (admin);
    if (!ok)
        return NULL;
    char *conninfo = malloc (96);
    snprintf (conninfo, 96, "dbname=%s", name);
    if (migrate) {
        PGconn *conn = bf_testdb_connect (conninfo);
        int applied = conn ? bf_migrate (conn) : -1;
        PQfinish (conn);
        if (applied < 0) {
            bf_testdb_drop (&conninfo);
            return NULL;
        }
    }
    return conninfo;
}

void
bf_testdb_drop (char **conninfo_p)
{
    if (!conninfo_p || !*conninfo_p)
        return;
    PGconn *admin = s_admin ();
    if (admin) {
        char sql[160];
        snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)",
                  *conninfo_p + strlen ("dbname="));
        PQclear (PQexec (admin, sql));
        PQfinish (admin);
    }
    free (*conninfo_p);
    *conninfo_p = NULL;
}

PGconn *
bf_testdb_connect (const char *conninfo)
{
    PGconn *conn = PQconnectdb (conninfo);
    if (PQstatus (conn) != CONNECTION_OK) {
        fprintf (stderr, "bf_testdb: connect %s: %s", conninfo, PQerrorMessage (conn));
        PQfinish (conn);
        return NULL;
    }
    PQclear (PQexec (conn, "SET client_min_messages = warning"));
    return conn;
}

int
bf_testdb_text (PGconn *conn, const char *sql, char *out, size_t outsize)
{
    PGresult *res = PQexec (conn, sql);
    int rc = -1;
    if (PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) > 0) {
        snprintf (out, outsize, "%s", PQgetvalue (res, 0, 0));
        rc = 0;
    } else
        fprintf (stderr, "bf_testdb: %s: %s", sql, PQresultErrorMessage (res));
    PQclear (res);
    return rc;
}

int64_t
bf_testdb_scalar (PGconn *conn, const char *sql)
{
    char text[64];
    if (bf_testdb_text (conn, sql, text, sizeof text) != 0)
        return -1;
    return strtoll (text, NULL, 10);
}

int64_t
bf_testdb_wait_scalar (PGconn *conn, const char *sql, int64_t want, int timeout_ms)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    int64_t until = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + timeout_ms, value;
    do {
        value = bf_testdb_scalar (conn, sql);
        if (value >= want)
            return value;
        usleep (50000);
        clock_gettime (CLOCK_MONOTONIC, &now);
    } while ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 < until);
    return value;
}

const char *
bf_testdb_exec (PGconn *conn, const char *sql)
{
    static char state[6];
    PGresult *res = PQexec (conn, sql);
    ExecStatusType st = PQresultStatus (res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        strcpy (state, "00000");
    else {
        const char *s = PQresultErrorField (res, PG_DIAG_SQLSTATE);
        snprintf (state, sizeof state, "%s", s ? s : "XX000");
    }
    PQclear (res);
    return state;
}

int
bf_testdb_billdata (const char *conninfo, char **output, const char *args_format, ...)
{
    const char *binary = getenv ("BF_BILLDATA");
    if (!binary) {
        fprintf (stderr, "bf_testdb: BF_BILLDATA is not set (run through meson test)\n");
        return -1;
    }
    char args[2048], command[4096];
    va_list ap;
    va_start (ap, args_format);
    vsnprintf (args, sizeof args, args_format, ap);
    va_end (ap);
    snprintf (command, sizeof command,
              "BILLFLOW_DB_CONNINFO='%s' BILLFLOW_PII_KEY=" BF_TEST_PII_KEY
              " BILLFLOW_DB_CONNECT_TIMEOUT_MS=5000 '%s' %s 2>&1",
              conninfo ? conninfo : "", binary, args);
    FILE *pipe = popen (command, "r");
    if (!pipe)
        return -1;
    bf_text_buf_t out = { 0 };
    size_t n;
    while (bf_text_buf_reserve (&out, 4096) == 0
           && (n = fread (out.data + out.len, 1, 4096, pipe)) > 0)
        out.len += n;
    bf_text_buf_add (&out, "", 0); /* terminated, also when nothing came */
    char *buf = out.data;
    int status = pclose (pipe);
    if (output)
        *output = buf;
    else
        free (buf);
    fprintf (stderr, "# billdata %s -> %d\n", args, WIFEXITED (status) ? WEXITSTATUS (status) : -1);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

int
bf_testdb_settle_once (const char *conninfo, const char *period)
{
    /*  settle serves its event stream over CURVE only: a throwaway key pair
        and an empty allowed list (nobody reads this run's stream).  */
    char *dir = bf_test_mkdtemp ();
    char pub[BF_CURVE_KEY_TXT], err[256], list[600];
    if (!dir || bf_curve_keygen (dir, "settle", pub, err, sizeof err) != 0) {
        fprintf (stderr, "bf_testdb: settle key: %s\n", dir ? err : "no temporary directory");
        bf_test_rmdir (&dir);
        return -1;
    }
    snprintf (list, sizeof list, "%s/allowed_keys", dir);
    bf_test_write (list, "# nobody reads\n");
    char command[4096];
    snprintf (command, sizeof command,
              "BILLFLOW_DB_CONNINFO='%s' BILLFLOW_DB_CONNECT_TIMEOUT_MS=5000"
              " BILLFLOW_PII_KEY=" BF_TEST_PII_KEY
              " BILLFLOW_SETTLE_PUB_ENDPOINT='tcp://127.0.0.1:*' BILLFLOW_SETTLE_POLL_MS=50"
              " BILLFLOW_SETTLE_KEY_FILE='%s/settle.key_secret' BILLFLOW_SETTLE_ALLOWED_KEYS='%s'"
              " sh -c 'exec \"$BF_SETTLE\" --once --period %s' >/dev/null 2>&1",
              conninfo ? conninfo : "", dir, list, period);
    int status = system (command);
    bf_test_rmdir (&dir);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

int
bf_test_settle_keys_env (const char *dir)
{
    char pub[BF_CURVE_KEY_TXT], err[256], path[600];
    if (bf_curve_keygen (dir, "settle", pub, err, sizeof err) != 0) {
        fprintf (stderr, "bf_test: settle key: %s\n", err);
        return -1;
    }
    snprintf (path, sizeof path, "%s/settle.key_secret", dir);
    setenv ("BILLFLOW_SETTLE_KEY_FILE", path, 1);
    snprintf (path, sizeof path, "%s/stream_allowed_keys", dir);
    if (bf_test_write (path, "# nobody reads\n") != 0)
        return -1;
    setenv ("BILLFLOW_SETTLE_ALLOWED_KEYS", path, 1);
    return 0;
}

int
bf_test_stream_keys (const char *dir, char *settle_pub)
{
    char path[600], err[256];
    snprintf (path, sizeof path, "%s/settle.key", dir);
    zcert_t *cert = zcert_load (path);
    if (cert) {
        snprintf (settle_pub, BF_CURVE_KEY_TXT, "%s", zcert_public_txt (cert));
        zcert_destroy (&cert);
        return 0;
    }
    char notify_pub[BF_CURVE_KEY_TXT], list[600];
    if (bf_curve_keygen (dir, "settle", settle_pub, err, sizeof err) != 0
        || bf_curve_keygen (dir, "notify", notify_pub, err, sizeof err) != 0) {
        fprintf (stderr, "bf_test: stream keys: %s\n", err);
        return -1;
    }
    snprintf (list, sizeof list, "notify service %s notify\n", notify_pub);
    snprintf (path, sizeof path, "%s/stream_allowed_keys", dir);
    return bf_test_write (path, list);
}

char *
bf_test_mkdtemp (void)
{
    char *path = strdup ("/tmp/bftest.XXXXXX");
    if (!mkdtemp (path)) {
        free (path);
        return NULL;
    }
    return path;
}

void
bf_test_rmdir (char **path_p)
{
    if (!path_p || !*path_p)
        return;
    char command[512];
    snprintf (command, sizeof command, "rm -rf '%s'", *path_p);
    if (system (command) != 0)
        fprintf (stderr, "bf_testdb: could not remove %s\n", *path_p);
    free (*path_p);
    *path_p = NULL;
}

static char *s_ipc_dir;

static void
s_ipc_dir_remove (void)
{
    bf_test_rmdir (&s_ipc_dir);
}

void
bf_test_ipc_endpoint (char *out, size_t outsize)
{
    static int count;
    if (!s_ipc_dir) {
        s_ipc_dir = bf_test_mkdtemp ();
        if (!s_ipc_dir) {
            fprintf (stderr, "bf_testdb: no temporary directory for ipc endpoints\n");
            abort ();
        }
        atexit (s_ipc_dir_remove);
    }
    snprintf (out, outsize, "ipc://%s/endpoint-%d", s_ipc_dir, ++count);
}

char *
bf_test_slurp (const char *path)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return NULL;
    fseek (f, 0, SEEK_END);
    long size = ftell (f);
    fseek (f, 0, SEEK_SET);
    char *buf = malloc ((size_t)size + 1);
    size_t got = fread (buf, 1, (size_t)size, f);
    fclose (f);
    buf[got] = 0;
    return buf;
}

int
bf_test_write (const char *path, const char *text)
{
    /*  0600: tests write key lists and config files with secrets here,
        which billflow refuses unless private (bf_secfile.h).  */
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || fchmod (fd, 0600) != 0) {
        if (fd >= 0)
            close (fd);
        return -1;
    }
    FILE *f = fdopen (fd, "wb");
    if (!f) {
        close (fd);
        return -1;
    }
    size_t len = strlen (text);
    int rc = fwrite (text, 1, len, f) == len ? 0 : -1;
    return fclose (f) == 0 ? rc : -1;
}

/*  The stand-in's actor. Pipe in: "$TERM"; ["ANSWER"]["0"|"1"];
    ["SEND"][peer][frames...] (to the ROUTER). Pipe out: [peer][frames...]
    for everything the ROUTER receives except the heartbeats it answers.  */
static void
s_control_actor (zsock_t *pipe, void *args)
{
    zsock_t *router = args;
    bool answer = true;
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            zmsg_t *msg = zmsg_recv (pipe);
            char *command = msg ? zmsg_popstr (msg) : NULL;
            bool stop = !command || streq (command, "$TERM");
            if (command && streq (command, "ANSWER")) {
                char *flag = zmsg_popstr (msg);
                answer = flag && streq (flag, "1");
                free (flag);
            } else if (command && streq (command, "SEND"))
                zmsg_send (&msg, router);
            free (command);
            zmsg_destroy (&msg);
            if (stop)
                break;
        } else if (which == router) {
            zmsg_t *msg = zmsg_recv (router);
            if (!msg)
                continue;
            const uint8_t *frames[3] = { NULL };
            size_t sizes[3] = { 0 };
            zframe_t *frame = zmsg_first (msg); /* the peer */
            for (int i = 0; i < 3 && (frame = zmsg_next (msg)); i++) {
                frames[i] = zframe_data (frame);
                sizes[i] = zframe_size (frame);
            }
            bf_wire_msg_t in = BF_WIRE_MSG_INIT;
            bool heartbeat = zmsg_size (msg) == 4
                             && bf_wire_decode (frames, sizes, 3, 0, &in, NULL, 0) == BF_WIRE_OK
                             && in.type == BF_MSG_SVC_HB;
            bf_wire_msg_reset (&in);
            if (!heartbeat)
                zmsg_send (&msg, pipe);
            else if (answer) {
                Billflow__ServiceHeartbeat hb = BILLFLOW__SERVICE_HEARTBEAT__INIT;
                char event_id[40];
                snprintf (event_id, sizeof event_id, "hb-%lld", (long long)zclock_usecs ());
                hb.schema_version = BF_SCHEMA_VERSION;
                hb.event_id = event_id;
                hb.service = "control";
                hb.instance_id = "stand-in";
                hb.sent_at_ms = zclock_time ();
                zmsg_t *reply = bf_wire_encode (BF_MSG_SVC_HB, 0, &hb.base);
                zframe_t *peer = zmsg_pop (msg);
                if (reply && peer) {
                    zmsg_prepend (reply, &peer);
                    zmsg_send (&reply, router);
                }
                zmsg_destroy (&reply);
                zframe_destroy (&peer);
            }
            zmsg_destroy (&msg);
        } else if (zpoller_terminated (poller))
            break;
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

int
bf_test_control_bind (bf_test_control_t *self)
{
    return bf_test_control_bind_curve (self, NULL);
}

int
bf_test_control_bind_curve (bf_test_control_t *self, zcert_t *cert)
{
    memset (self, 0, sizeof *self);
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (!router)
        return -1;
    if (cert)
        bf_curve_server (router, cert);
    self->port = zsock_bind (router, "tcp://127.0.0.1:*[50000-59999]");
    if (self->port <= 0) {
        zsock_destroy (&router);
        return -1;
    }
    /*  The actor owns the socket from here on.  */
    self->actor = zactor_new (s_control_actor, router);
    zsock_set_rcvtimeo (self->actor, 10000);
    return 0;
}

void
bf_test_control_answer_heartbeats (bf_test_control_t *self, bool answer)
{
    zstr_sendx (self->actor, "ANSWER", answer ? "1" : "0", NULL);
}

/*  One message from the ROUTER, or NULL after timeout_ms: the peer goes to
    *peer_p, the rest is decoded into in. Returns the decode result, or 1 on
    timeout.  */
static int
s_control_recv (bf_test_control_t *self, int timeout_ms, zframe_t **peer_p, bf_wire_msg_t *in)
{
    zsock_set_rcvtimeo (self->actor, timeout_ms > 0 ? timeout_ms : 0);
    zmsg_t *msg = zmsg_recv (self->actor);
    if (!msg)
        return 1;
    *peer_p = zmsg_pop (msg);
    char err[256];
    return bf_wire_recv (&msg, 0, in, err, sizeof err);
}

/*  True when in is [SVC.REG] from self's service: remembers the peer.  */
static bool
s_control_note_register (bf_test_control_t *self, zframe_t **peer_p, const bf_wire_msg_t *in)
{
    const Billflow__ServiceRegister *reg = bf_wire_service_register (in);
    if (!reg || strcmp (reg->service, self->service) != 0)
        return false;
    zframe_destroy (&self->peer);
    self->peer = *peer_p;
    *peer_p = NULL;
    return true;
}

int
bf_test_control_registered (bf_test_control_t *self, const char *service, int timeout_ms)
{
    snprintf (self->service, sizeof self->service, "%s", service);
    int64_t deadline = zclock_mono () + timeout_ms;
    int64_t left;
    while ((left = deadline - zclock_mono ()) > 0) {
        zframe_t *peer = NULL;
        bf_wire_msg_t in = BF_WIRE_MSG_INIT;
        int rc = s_control_recv (self, (int)left, &peer, &in);
        bool registered = rc == BF_WIRE_OK && s_control_note_register (self, &peer, &in);
        bf_wire_msg_reset (&in);
        zframe_destroy (&peer);
        if (registered)
            return 0;
        if (rc == 1)
            return -1;
    }
    return -1;
}

static int
s_control_send (bf_test_control_t *self, const Billflow__Command *cmd)
{
    zmsg_t *msg = bf_wire_encode (BF_MSG_CMD, 0, &cmd->base);
    if (!msg || !self->peer) {
        zmsg_destroy (&msg);
        return -1;
    }
    zmsg_pushmem (msg, zframe_data (self->peer), zframe_size (self->peer));
    zmsg_pushstr (msg, "SEND");
    return zmsg_send (&msg, self->actor);
}

struct Billflow__CommandReply *
bf_test_control_command (bf_test_control_t *self, const char *conninfo, void *in_p, const char *id,
                         const char *target, const char *verb, const char *key, const char *value,
                         bool store)
{
    bf_wire_msg_t *in = in_p;
    if (store) {
        PGconn *conn = bf_testdb_connect (conninfo);
        const char *params[] = { id, target, verb };
        PGresult *res = PQexecParams (conn,
                                      "INSERT INTO command (command_id, client, target, verb)"
                                      " VALUES ($1, 'test', $2, $3) ON CONFLICT DO NOTHING",
                                      3, NULL, params, NULL, NULL, 0);
        PQclear (res);
        PQfinish (conn);
    }
    Billflow__Command cmd = BILLFLOW__COMMAND__INIT;
    Billflow__Argument arg = BILLFLOW__ARGUMENT__INIT;
    Billflow__Argument *args[] = { &arg };
    arg.key = (char *)key;
    arg.value = (char *)value;
    cmd.schema_version = BF_SCHEMA_VERSION;
    cmd.command_id = (char *)id;
    cmd.target = (char *)target;
    cmd.verb = (char *)verb;
    cmd.n_args = key ? 1 : 0;
    cmd.args = args;
    if (s_control_send (self, &cmd) != 0)
        return NULL;
    int64_t deadline = zclock_mono () + 10000;
    int64_t left;
    while ((left = deadline - zclock_mono ()) > 0) {
        zframe_t *peer = NULL;
        int rc = s_control_recv (self, (int)left, &peer, in);
        if (rc == 1)
            return NULL;
        if (rc == BF_WIRE_OK && s_control_note_register (self, &peer, in)) {
            /*  The link reconnected: what went to the old peer is lost.  */
            fprintf (stderr, "# %s registered again; command %s sent again\n", self->service, id);
            if (s_control_send (self, &cmd) != 0) {
                zframe_destroy (&peer);
                return NULL;
            }
        }
        zframe_destroy (&peer);
        if (rc == BF_WIRE_OK && in->type == BF_MSG_CMD_REPLY
            && !strcmp (bf_wire_command_reply (in)->command_id, id))
            return bf_wire_command_reply (in);
    }
    return NULL;
}

void
bf_test_control_send_raw (bf_test_control_t *self, const char *const *frames, int count)
{
    if (!self->peer)
        return;
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "SEND");
    zmsg_addmem (msg, zframe_data (self->peer), zframe_size (self->peer));
    for (int i = 0; i < count; i++)
        zmsg_addstr (msg, frames[i]);
    zmsg_send (&msg, self->actor);
}

void
bf_test_control_close (bf_test_control_t *self)
{
    zframe_destroy (&self->peer);
    zactor_destroy (&self->actor);
}
