/*  test_curve — bf_curve: key text parsing, key files (modes, no
    overwrite, load back, refusal of readable secrets), the allowed-keys
    list parser (every kind of bad line, with its line number), and the ZAP
    handler end to end over loopback TCP: an allowed key's frames carry
    User-Id and X-Role, an unknown key and a plain client get nothing
    through (and the refusal is reported once), and the list is reloaded
    when the file changes.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bf_curve.h"
#include "bf_log.h"
#include "bf_testutil.h"

//  --------------------------------------------------------------------------
//  Helpers

static void
s_write (const char *path, const char *text, size_t len)
{
    /*  0600: an allowed-keys file must be private (bf_secfile.h).  */
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true (fd >= 0);
    assert_int_equal (fchmod (fd, 0600), 0);
    FILE *file = fdopen (fd, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (text, 1, len, file), len);
    assert_int_equal (fclose (file), 0);
}

static void
s_write_str (const char *path, const char *text)
{
    s_write (path, text, strlen (text));
}

static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "rb");
    assert_non_null (file);
    char *text = calloc (1, 65536);
    size_t n = fread (text, 1, 65535, file);
    text[n] = 0;
    fclose (file);
    return text;
}

//  --------------------------------------------------------------------------
//  Key text

static void
test_key_parse (void **state)
{
    (void)state;
    zcert_t *cert = zcert_new ();
    assert_non_null (cert);
    uint8_t key[32];
    assert_true (bf_curve_key_parse (zcert_public_txt (cert), key));
    assert_memory_equal (key, zcert_public_key (cert), 32);
    assert_true (bf_curve_key_parse (zcert_public_txt (cert), NULL));

    char text[64];
    snprintf (text, sizeof text, "%s", zcert_public_txt (cert));
    text[39] = 0; /* 39 characters */
    assert_false (bf_curve_key_parse (text, NULL));
    snprintf (text, sizeof text, "%s0", zcert_public_txt (cert)); /* 41 */
    assert_false (bf_curve_key_parse (text, NULL));
    const char bad_chars[] = " \"',;\\_`|~";
    for (const char *c = bad_chars; *c; c++) {
        snprintf (text, sizeof text, "%s", zcert_public_txt (cert));
        text[17] = *c;
        assert_false (bf_curve_key_parse (text, NULL));
    }
    //  Every character valid, but a group worth more than 32 bits.
    assert_false (bf_curve_key_parse ("%%%%%0000000000000000000000000000000000", NULL));
    assert_false (bf_curve_key_parse ("", NULL));
    assert_false (bf_curve_key_parse (NULL, NULL));
    //  '#' is a Z85 character (never the first of a key).
    assert_true (bf_curve_key_parse ("0#00000000000000000000000000000000000000", NULL));
    zcert_destroy (&cert);
}

//  --------------------------------------------------------------------------
//  Key files

static void
test_keygen_and_load (void **state)
{
    (void)state;
    char *dir = bf_testutil_tmpdir ("test_curve");
    char pub_txt[BF_CURVE_KEY_TXT], err[512] = "";
    assert_int_equal (bf_curve_keygen (dir, "settle-1", pub_txt, err, sizeof err), 0);
    assert_true (bf_curve_key_parse (pub_txt, NULL));

    char pub[256], sec[256];
    snprintf (pub, sizeof pub, "%s/settle-1.key", dir);
    snprintf (sec, sizeof sec, "%s/settle-1.key_secret", dir);
    struct stat st;
    assert_int_equal (stat (sec, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    assert_int_equal (stat (pub, &st), 0);
    assert_int_equal (st.st_mode & 0077 & ~(S_IRGRP | S_IROTH), 0);
    char *public_file = s_slurp (pub), *secret_file = s_slurp (sec);
    assert_non_null (strstr (public_file, pub_txt));
    assert_null (strstr (public_file, "secret-key"));
    assert_non_null (strstr (public_file, "settle-1"));
    assert_non_null (strstr (secret_file, "secret-key"));

    //  Load back: the same key pair, the name in the metadata.
    zcert_t *cert = bf_curve_load_secret (sec, err, sizeof err);
    assert_non_null (cert);
    assert_string_equal (zcert_public_txt (cert), pub_txt);
    assert_string_equal (zcert_meta (cert, "name"), "settle-1");
    char derived[BF_CURVE_KEY_TXT];
    assert_int_equal (zmq_curve_public (derived, zcert_secret_txt (cert)), 0);
    assert_string_equal (derived, pub_txt);
    zcert_destroy (&cert);

    //  Never overwrites, and leaves both files as they were.
    char again[BF_CURVE_KEY_TXT];
    assert_int_equal (bf_curve_keygen (dir, "settle-1", again, err, sizeof err), -1);
    assert_non_null (strstr (err, "refusing to overwrite"));
    char *after = s_slurp (sec);
    assert_string_equal (after, secret_file);
    free (after);
    //  Only the secret file there: refused too, no public file left behind.
    char lone[256];
    snprintf (lone, sizeof lone, "%s/lone.key_secret", dir);
    s_write_str (lone, "x");
    assert_int_equal (bf_curve_keygen (dir, "lone", again, err, sizeof err), -1);
    snprintf (lone, sizeof lone, "%s/lone.key", dir);
    assert_int_not_equal (access (lone, F_OK), 0);

    //  Bad names.
    assert_int_equal (bf_curve_keygen (dir, "../evil", again, err, sizeof err), -1);
    assert_non_null (strstr (err, "key name"));
    assert_int_equal (bf_curve_keygen (dir, "", again, err, sizeof err), -1);

    //  A secret readable by group or others is refused, with the reason.
    assert_int_equal (chmod (sec, 0644), 0);
    assert_null (bf_curve_load_secret (sec, err, sizeof err));
    assert_non_null (strstr (err, "group or others"));
    assert_non_null (strstr (err, "0644"));
    assert_int_equal (chmod (sec, 0660), 0);
    assert_null (bf_curve_load_secret (sec, err, sizeof err));
    assert_non_null (strstr (err, "chmod 600"));
    assert_int_equal (chmod (sec, 0400), 0);
    cert = bf_curve_load_secret (sec, err, sizeof err);
    assert_non_null (cert);
    zcert_destroy (&cert);

    //  The public file is not a secret key file.
    assert_int_equal (chmod (pub, 0600), 0);
    assert_null (bf_curve_load_secret (pub, err, sizeof err));
    assert_non_null (strstr (err, "no secret key"));
    //  Missing file; a public key that is not the secret's.
    char path[256];
    snprintf (path, sizeof path, "%s/missing.key_secret", dir);
    assert_null (bf_curve_load_secret (path, err, sizeof err));
    assert_non_null (strstr (err, "No such file"));
    zcert_t *a = zcert_new (), *b = zcert_new ();
    char text[512];
    snprintf (text, sizeof text, "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n",
              zcert_public_txt (a), zcert_secret_txt (b));
    snprintf (path, sizeof path, "%s/mixed.key_secret", dir);
    s_write_str (path, text);
    assert_int_equal (chmod (path, 0600), 0);
    assert_null (bf_curve_load_secret (path, err, sizeof err));
    assert_non_null (strstr (err, "does not belong"));
    zcert_destroy (&a);
    zcert_destroy (&b);

    free (public_file);
    free (secret_file);
    bf_testutil_rmdir (&dir);
}

//  --------------------------------------------------------------------------
//  The allowed-keys list

typedef struct {
    const char *text; /* "%1$s", "%2$s": two valid keys */
    int line;
    const char *reason;
} s_bad_list_t;

static void
test_keyring_parse (void **state)
{
    (void)state;
    char *dir = bf_testutil_tmpdir ("test_curve");
    char path[256], text[2048], err[512];
    snprintf (path, sizeof path, "%s/allowed", dir);
    zcert_t *a = zcert_new (), *b = zcert_new ();
    const char *ka = zcert_public_txt (a), *kb = zcert_public_txt (b);

    //  A good list: comments, blank lines, tabs, CRLF, a trailing comment,
    //  a key holding '#'.
    snprintf (text, sizeof text,
              "# name  role  key\n"
              "\n"
              "ops-kim\toperator\t%s\r\n"
              "   # indented comment\n"
              "dashboard viewer %s   # the web dashboard\n"
              "settle-1 service 0#00000000000000000000000000000000000000\n"
              "console-1 console 1#00000000000000000000000000000000000000\n",
              ka, kb);
    s_write_str (path, text);
    bf_keyring_t *ring = bf_keyring_load (path, err, sizeof err);
    if (!ring)
        fail_msg ("%s", err);
    assert_int_equal (bf_keyring_size (ring), 4);
    const bf_keyring_entry_t *entry = bf_keyring_find (ring, zcert_public_key (a));
    assert_non_null (entry);
    assert_string_equal (entry->name, "ops-kim");
    assert_string_equal (entry->role, "operator");
    assert_string_equal (entry->key_txt, ka);
    entry = bf_keyring_find (ring, zcert_public_key (b));
    assert_non_null (entry);
    assert_string_equal (entry->role, "viewer");
    uint8_t console_key[32];
    assert_true (bf_curve_key_parse ("1#00000000000000000000000000000000000000", console_key));
    entry = bf_keyring_find (ring, console_key);
    assert_non_null (entry);
    assert_string_equal (entry->role, "console");
    zcert_t *c = zcert_new ();
    assert_null (bf_keyring_find (ring, zcert_public_key (c)));
    bf_keyring_destroy (&ring);
    bf_keyring_destroy (&ring);
    assert_null (ring);

    //  Service bindings: a service, or a service and an instance glob.
    snprintf (text, sizeof text,
              "settle-1 service %s settle:settle-*   # bound to settle-*\n"
              "notify-1 service %s notify\n"
              "spare    service %s\n",
              ka, kb, zcert_public_txt (c));
    s_write_str (path, text);
    ring = bf_keyring_load (path, err, sizeof err);
    if (!ring)
        fail_msg ("%s", err);
    entry = bf_keyring_find (ring, zcert_public_key (a));
    assert_string_equal (entry->service, "settle");
    assert_string_equal (entry->instance_pattern, "settle-*");
    entry = bf_keyring_find (ring, zcert_public_key (b));
    assert_string_equal (entry->service, "notify");
    assert_string_equal (entry->instance_pattern, "");
    entry = bf_keyring_find (ring, zcert_public_key (c));
    assert_string_equal (entry->role, "service");
    assert_string_equal (entry->service, "");
    bf_keyring_destroy (&ring);

    //  An empty list is a list (control refuses everyone with it).
    s_write_str (path, "# nobody yet\n");
    ring = bf_keyring_load (path, err, sizeof err);
    assert_non_null (ring);
    assert_int_equal (bf_keyring_size (ring), 0);
    bf_keyring_destroy (&ring);

    char long_name[80];
    memset (long_name, 'n', 65);
    long_name[65] = 0;
    const s_bad_list_t bad[] = {
        { "ops-kim operator\n", 1, "expected 'name role key', found 2 fields" },
        { "# c\n\nops-kim\n", 3, "found 1 field" },
        { "# c\nops-kim operator %1$s extra\n", 2, "unexpected 'extra' after the key" },
        { "bad/name operator %1$s\n", 1, "bad name 'bad/name'" },
        { "LONG operator %1$s\n", 1, "bad name" },
        { "ops-kim admin %1$s\n", 1, "unknown role 'admin'" },
        { "ops-kim Operator %1$s\n", 1, "unknown role" },
        { "ops-kim operator short\n", 1, "5 characters, not 40" },
        { "ops-kim operator %%%%%%%%%%00000000000000000000000000000000000\n", 1, "not Z85" },
        { "a operator %1$s\nb viewer ~0000000000000000000000000000000000000000\n", 2,
          "41 characters" },
        { "a operator %1$s\nb viewer %2$s\na service %2$s\n", 3,
          "duplicate name 'a' (also on line 1)" },
        { "a operator %1$s\n\nb viewer %1$s\n", 3, "duplicate key: 'b' has the key of 'a'" },
        /*  Service bindings (issue 11, defect 3).  */
        { "v viewer %1$s notify\n", 1, "only a service key is bound to a service" },
        { "c console %1$s notify\n", 1, "only a service key is bound to a service" },
        { "s service %1$s Settle\n", 1, "bad service binding 'Settle' for 's'" },
        { "s service %1$s settle:\n", 1, "bad service binding 'settle:'" },
        { "s service %1$s :settle-*\n", 1, "bad service binding" },
        { "s service %1$s settle-and-notify-too\n", 1, "bad service binding" },
        { "s service %1$s settle settle-1\n", 1,
          "unexpected 'settle-1' after the service binding" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char format[512];
        snprintf (format, sizeof format, "%s", bad[i].text);
        char *at = strstr (format, "LONG");
        if (at) {
            char rest[512];
            snprintf (rest, sizeof rest, "%s", at + 4);
            snprintf (at, sizeof format - (size_t)(at - format), "%s%s", long_name, rest);
        }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf (text, sizeof text, format, ka, kb);
#pragma GCC diagnostic pop
        s_write_str (path, text);
        err[0] = 0;
        ring = bf_keyring_load (path, err, sizeof err);
        if (ring)
            fail_msg ("case %zu parsed: %s", i, text);
        char prefix[300];
        snprintf (prefix, sizeof prefix, "%s:%d: ", path, bad[i].line);
        if (strncmp (err, prefix, strlen (prefix)) != 0 || !strstr (err, bad[i].reason))
            fail_msg ("case %zu: got '%s', wanted '%s...%s'", i, err, prefix, bad[i].reason);
    }
    //  A NUL byte in a line.
    char nul[256];
    int len = snprintf (nul, sizeof nul, "a operator %s\nb\x01 viewer %s\n", ka, kb);
    *strchr (nul, '\x01') = 0;
    s_write (path, nul, (size_t)len);
    assert_null (bf_keyring_load (path, err, sizeof err));
    snprintf (text, sizeof text, "%s:2: contains a NUL byte", path);
    assert_string_equal (err, text);
    //  No file at all; a directory.
    snprintf (text, sizeof text, "%s/none", dir);
    assert_null (bf_keyring_load (text, err, sizeof err));
    assert_non_null (strstr (err, "No such file"));
    assert_null (bf_keyring_load (dir, err, sizeof err));
    assert_non_null (strstr (err, "not a regular file"));

    zcert_destroy (&a);
    zcert_destroy (&b);
    zcert_destroy (&c);
    bf_testutil_rmdir (&dir);
}

//  --------------------------------------------------------------------------
//  The ZAP handler, end to end

typedef struct {
    char *dir;
    char list[256];
    zcert_t *server;
    zcert_t *allowed; /* "ops-kim", operator */
    zactor_t *zap;
    zsock_t *router;
    int port;
    int refusals; /* REFUSED reports seen on the pipe */
    char refused_key[64], refused_address[64], refused_mechanism[16];
} s_server_t;

static void
s_list_write (s_server_t *self, const char *extra)
{
    char text[1024];
    snprintf (text, sizeof text, "# test list\nops-kim operator %s\n%s",
              zcert_public_txt (self->allowed), extra ? extra : "");
    s_write_str (self->list, text);
}

static void
s_server_start (s_server_t *self)
{
    memset (self, 0, sizeof *self);
    self->dir = bf_testutil_tmpdir ("test_curve");
    snprintf (self->list, sizeof self->list, "%s/allowed_keys", self->dir);
    self->server = zcert_new ();
    self->allowed = zcert_new ();
    s_list_write (self, NULL);
    bf_zap_args_t args = { .allowed_keys = self->list };
    self->zap = zactor_new (bf_zap_actor, &args);
    assert_non_null (self->zap);
    self->router = zsock_new (ZMQ_ROUTER);
    bf_curve_server (self->router, self->server);
    self->port = zsock_bind (self->router, "tcp://127.0.0.1:*[40000-49999]");
    assert_true (self->port > 0);
}

static void
s_server_stop (s_server_t *self)
{
    zsock_destroy (&self->router);
    zactor_destroy (&self->zap);
    zcert_destroy (&self->server);
    zcert_destroy (&self->allowed);
    bf_testutil_rmdir (&self->dir);
}

/*  Reads what the ZAP actor sends: REFUSED reports are recorded; returns
    the first other message (or NULL after timeout_ms).  */
static zmsg_t *
s_zap_recv (s_server_t *self, int timeout_ms)
{
    zsock_set_rcvtimeo (self->zap, timeout_ms);
    while (true) {
        zmsg_t *msg = zmsg_recv (self->zap);
        if (!msg)
            return NULL;
        char *first = zmsg_popstr (msg);
        if (!first || strcmp (first, "REFUSED") != 0) {
            if (first)
                zmsg_pushstr (msg, first);
            free (first);
            return msg;
        }
        free (first);
        assert_int_equal (zmsg_size (msg), 3);
        char *key = zmsg_popstr (msg), *address = zmsg_popstr (msg), *mech = zmsg_popstr (msg);
        snprintf (self->refused_key, sizeof self->refused_key, "%s", key);
        snprintf (self->refused_address, sizeof self->refused_address, "%s", address);
        snprintf (self->refused_mechanism, sizeof self->refused_mechanism, "%s", mech);
        free (key);
        free (address);
        free (mech);
        self->refusals++;
        zmsg_destroy (&msg);
    }
}

/*  allowed, refused, reloads, entries.  */
static void
s_zap_stats (s_server_t *self, uint64_t out[4])
{
    zstr_send (self->zap, "STATS");
    zmsg_t *msg = s_zap_recv (self, 2000);
    assert_non_null (msg);
    assert_int_equal (zmsg_size (msg), 4);
    for (int i = 0; i < 4; i++) {
        char *value = zmsg_popstr (msg);
        out[i] = strtoull (value, NULL, 10);
        free (value);
    }
    zmsg_destroy (&msg);
}

/*  A DEALER to the server: CURVE with cert, or plain when cert is NULL.  */
static zsock_t *
s_client (s_server_t *self, zcert_t *cert)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    char err[256];
    if (cert)
        assert_int_equal (
            bf_curve_client (dealer, cert, zcert_public_txt (self->server), err, sizeof err), 0);
    assert_int_equal (zsock_connect (dealer, "tcp://127.0.0.1:%d", self->port), 0);
    return dealer;
}

/*  Sends "hello" from dealer; the content frame the server receives within
    timeout_ms (caller destroys), or NULL.  */
static zframe_t *
s_through (s_server_t *self, zsock_t *dealer, int timeout_ms)
{
    zstr_send (dealer, "hello");
    zsock_set_rcvtimeo (self->router, timeout_ms);
    zmsg_t *msg = zmsg_recv (self->router);
    if (!msg)
        return NULL;
    assert_int_equal (zmsg_size (msg), 2);
    zframe_t *identity = zmsg_pop (msg);
    zframe_t *content = zmsg_pop (msg);
    zframe_destroy (&identity);
    zmsg_destroy (&msg);
    assert_int_equal (zframe_size (content), 5);
    return content;
}

static void
test_zap_allowed_key_carries_name_and_role (void **state)
{
    (void)state;
    s_server_t s;
    s_server_start (&s);
    zsock_t *dealer = s_client (&s, s.allowed);
    zframe_t *frame = s_through (&s, dealer, 3000);
    assert_non_null (frame);
    assert_non_null (zframe_meta (frame, "User-Id"));
    assert_string_equal (zframe_meta (frame, "User-Id"), "ops-kim");
    assert_non_null (zframe_meta (frame, "X-Role"));
    assert_string_equal (zframe_meta (frame, "X-Role"), "operator");
    zframe_destroy (&frame);
    //  Every frame of the connection carries them.
    frame = s_through (&s, dealer, 3000);
    assert_non_null (frame);
    assert_string_equal (zframe_meta (frame, "X-Role"), "operator");
    zframe_destroy (&frame);
    uint64_t stats[4];
    s_zap_stats (&s, stats);
    assert_int_equal (stats[0], 1);
    assert_int_equal (stats[1], 0);
    assert_int_equal (stats[3], 1);
    zsock_destroy (&dealer);
    s_server_stop (&s);
}

static void
test_zap_unknown_key_and_plain_client_get_nothing (void **state)
{
    (void)state;
    s_server_t s;
    s_server_start (&s);
    zcert_t *stranger = zcert_new ();
    zsock_t *dealer = s_client (&s, stranger);
    zframe_t *frame = s_through (&s, dealer, 500);
    assert_null (frame);
    //  The refusal is reported, with the key, the address and CURVE.
    for (int i = 0; i < 20 && s.refusals == 0; i++) {
        zmsg_t *other = s_zap_recv (&s, 100);
        assert_null (other);
    }
    assert_int_equal (s.refusals, 1);
    assert_string_equal (s.refused_key, zcert_public_txt (stranger));
    assert_string_equal (s.refused_address, "127.0.0.1");
    assert_string_equal (s.refused_mechanism, "CURVE");
    //  The same key again (a second connection): refused, not reported
    //  again (one report a minute per key); another key is reported.
    zsock_t *again = s_client (&s, stranger);
    assert_null (s_through (&s, again, 500));
    uint64_t stats[4];
    s_zap_stats (&s, stats);
    assert_int_equal (s.refusals, 1);
    assert_true (stats[1] >= 2);
    assert_int_equal (stats[0], 0);
    zcert_t *other = zcert_new ();
    zsock_t *third = s_client (&s, other);
    assert_null (s_through (&s, third, 500));
    for (int i = 0; i < 20 && s.refusals == 1; i++) {
        zmsg_t *msg = s_zap_recv (&s, 100);
        assert_null (msg);
    }
    assert_int_equal (s.refusals, 2);
    assert_string_equal (s.refused_key, zcert_public_txt (other));
    s_zap_stats (&s, stats);
    assert_true (stats[1] >= 3);
    zsock_destroy (&third);
    zsock_destroy (&again);
    zsock_destroy (&dealer);
    zcert_destroy (&other);

    //  No CURVE at all: the handshake fails before ZAP; nothing through.
    dealer = s_client (&s, NULL);
    frame = s_through (&s, dealer, 500);
    assert_null (frame);
    zsock_destroy (&dealer);

    //  The allowed key still works beside them.
    dealer = s_client (&s, s.allowed);
    frame = s_through (&s, dealer, 3000);
    assert_non_null (frame);
    zframe_destroy (&frame);
    zsock_destroy (&dealer);
    zcert_destroy (&stranger);
    s_server_stop (&s);
}

/*  Waits (up to 4 s) until the actor has reloaded the list `reloads` times.  */
static void
s_wait_reloads (s_server_t *s, uint64_t reloads)
{
    uint64_t stats[4] = { 0 };
    for (int i = 0; i < 40; i++) {
        s_zap_stats (s, stats);
        if (stats[2] >= reloads)
            return;
        zclock_sleep (100);
    }
    fail_msg ("the list was reloaded %llu times, not %llu", (unsigned long long)stats[2],
              (unsigned long long)reloads);
}

static void
test_zap_reloads_the_list (void **state)
{
    (void)state;
    s_server_t s;
    s_server_start (&s);
    zcert_t *newcomer = zcert_new ();
    zsock_t *dealer = s_client (&s, newcomer);
    assert_null (s_through (&s, dealer, 500));
    zsock_destroy (&dealer);

    //  Added to the file: a new connection gets through, with its name.
    char line[128];
    snprintf (line, sizeof line, "dashboard viewer %s\n", zcert_public_txt (newcomer));
    s_list_write (&s, line);
    s_wait_reloads (&s, 1);
    dealer = s_client (&s, newcomer);
    zframe_t *frame = s_through (&s, dealer, 3000);
    assert_non_null (frame);
    assert_string_equal (zframe_meta (frame, "User-Id"), "dashboard");
    assert_string_equal (zframe_meta (frame, "X-Role"), "viewer");
    zframe_destroy (&frame);
    zsock_destroy (&dealer);
    uint64_t stats[4];
    s_zap_stats (&s, stats);
    assert_int_equal (stats[3], 2);

    //  Revoked: new connections are refused again.
    s_list_write (&s, NULL);
    s_wait_reloads (&s, 2);
    dealer = s_client (&s, newcomer);
    assert_null (s_through (&s, dealer, 500));
    zsock_destroy (&dealer);

    //  A list that no longer parses keeps the previous one.
    s_write_str (s.list, "ops-kim operator not-a-key\n");
    zclock_sleep (1500);
    s_zap_stats (&s, stats);
    assert_int_equal (stats[2], 2);
    assert_int_equal (stats[3], 1);
    dealer = s_client (&s, s.allowed);
    frame = s_through (&s, dealer, 3000);
    assert_non_null (frame);
    assert_string_equal (zframe_meta (frame, "User-Id"), "ops-kim");
    zframe_destroy (&frame);
    zsock_destroy (&dealer);
    //  Fixed again: read again.
    s_list_write (&s, line);
    s_wait_reloads (&s, 3);
    s_zap_stats (&s, stats);
    assert_int_equal (stats[3], 2);

    zcert_destroy (&newcomer);
    s_server_stop (&s);
}

/*  True when the actor has ended: what comes back on its pipe is the
    shim's final signal, not an answer to STATS.  */
static bool
s_actor_ended (zactor_t *actor)
{
    zsock_set_sndtimeo (actor, 100);
    zsock_set_rcvtimeo (actor, 2000);
    zstr_send (actor, "STATS");
    zmsg_t *msg = zmsg_recv (actor);
    bool ended = !msg || zmsg_signal (msg) >= 0;
    zmsg_destroy (&msg);
    return ended;
}

static void
test_zap_start_failures (void **state)
{
    (void)state;
    char *dir = bf_testutil_tmpdir ("test_curve");
    char path[256];
    //  No list: the actor ends.
    snprintf (path, sizeof path, "%s/none", dir);
    bf_zap_args_t args = { .allowed_keys = path };
    zactor_t *zap = zactor_new (bf_zap_actor, &args);
    assert_true (s_actor_ended (zap));
    zactor_destroy (&zap);
    //  A list with an error: the same.
    s_write_str (path, "who knows\n");
    zap = zactor_new (bf_zap_actor, &args);
    assert_true (s_actor_ended (zap));
    zactor_destroy (&zap);
    //  Two handlers: the second cannot bind; the first carries on.
    s_write_str (path, "");
    zactor_t *first = zactor_new (bf_zap_actor, &args);
    assert_false (s_actor_ended (first));
    zap = zactor_new (bf_zap_actor, &args);
    assert_true (s_actor_ended (zap));
    zactor_destroy (&zap);
    assert_false (s_actor_ended (first));
    zactor_destroy (&first);
    //  Once the first has stopped, the endpoint is free again.
    first = zactor_new (bf_zap_actor, &args);
    assert_false (s_actor_ended (first));
    zactor_destroy (&first);
    bf_testutil_rmdir (&dir);
}

static void
test_client_setup_errors (void **state)
{
    (void)state;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zcert_t *cert = zcert_new ();
    char err[256];
    assert_int_equal (bf_curve_client (dealer, cert, "too short", err, sizeof err), -1);
    assert_non_null (strstr (err, "40 Z85"));
    assert_int_equal (bf_curve_client (dealer, cert, NULL, err, sizeof err), -1);
    assert_int_equal (bf_curve_client (dealer, cert, zcert_public_txt (cert), err, sizeof err), 0);
    zcert_destroy (&cert);
    zsock_destroy (&dealer);
}

int
main (void)
{
    bf_log_init ("test_curve", BF_LOG_ERROR, false);
    if (!zsys_has_curve ()) {
        fprintf (stderr, "libzmq without CURVE: nothing to test\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_key_parse),
        cmocka_unit_test (test_keygen_and_load),
        cmocka_unit_test (test_keyring_parse),
        cmocka_unit_test (test_client_setup_errors),
        cmocka_unit_test (test_zap_allowed_key_carries_name_and_role),
        cmocka_unit_test (test_zap_unknown_key_and_plain_client_get_nothing),
        cmocka_unit_test (test_zap_reloads_the_list),
        cmocka_unit_test (test_zap_start_failures),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
