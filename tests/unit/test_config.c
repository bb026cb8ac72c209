/*  =========================================================================
    test_config - bf_config: defaults, file syntax, precedence, every error
    path, value parsing, secrets, environment names, and that
    docs/configuration.md lists every setting.
    =========================================================================
*/

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf_config.h"

//  A 64-hex value used as a secret: it must never show in output or errors.
#define SECRET "5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2"

//  ---------------------------------------------------------------------------
//  Helpers

//  Writes content to a new temporary file; returns its path (caller frees
//  and unlinks).

static char *
s_write_file (const char *content)
{
    char *path = strdup ("/tmp/bf_test_config_XXXXXX");
    assert_non_null (path);
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    size_t len = strlen (content);
    assert_int_equal (write (fd, content, len), (ssize_t)len);
    close (fd);
    return path;
}

static void
s_remove_file (char *path)
{
    unlink (path);
    free (path);
}

//  Dumps the config into a string (caller frees).

static char *
s_dump (const bf_config_t *config)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert_non_null (out);
    bf_config_dump (config, out);
    fclose (out);
    assert_non_null (text);
    return text;
}

static void
s_assert_contains (const char *text, const char *part)
{
    if (!text || !part || !strstr (text, part))
        fail_msg ("expected '%s' in: %s", part ? part : "(null)", text ? text : "(null)");
}

//  ---------------------------------------------------------------------------
//  Tests

static void
test_table (void **state)
{
    (void)state;
    static const char *const keys[] = {
        "log.level",    "log.format", "db.conninfo",       "db.connect_timeout_ms",
        "pii.key_file", "pii.key",    "import.max_errors", "service.instance",
    };
    size_t count = sizeof keys / sizeof keys[0];
    assert_true (bf_settings_count () >= count);
    for (size_t i = 0; i < count; i++) {
        const bf_setting_t *setting = bf_settings_find (keys[i]);
        if (!setting)
            fail_msg ("missing setting %s", keys[i]);
        assert_string_equal (setting->key, keys[i]);
        assert_non_null (setting->help);
        assert_true (strlen (setting->help) > 10);
    }
    assert_null (bf_settings_find ("db.conninfoo"));
    assert_null (bf_settings_find (""));
    assert_null (bf_settings_find (NULL));
    assert_null (bf_settings_get (bf_settings_count ()));
    for (size_t i = 0; i < bf_settings_count (); i++) {
        const bf_setting_t *setting = bf_settings_get (i);
        assert_non_null (setting);
        assert_ptr_equal (bf_settings_find (setting->key), setting);
        //  Every key maps to a distinct environment name.
        char a[128], b[128];
        bf_setting_env_name (setting->key, a, sizeof a);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal (a,
                                     bf_setting_env_name (bf_settings_get (j)->key, b, sizeof b));
    }
    assert_true (bf_settings_find ("pii.key")->secret);
    assert_false (bf_settings_find ("pii.key_file")->secret);
    assert_false (bf_settings_find ("db.conninfo")->secret);
}

static void
test_defaults (void **state)
{
    (void)state;
    bf_config_t *config = bf_config_new ();
    assert_non_null (config);
    assert_string_equal (bf_config_str (config, "log.level"), "info");
    assert_string_equal (bf_config_str (config, "log.format"), "plain");
    assert_string_equal (bf_config_str (config, "db.conninfo"), "");
    assert_int_equal (bf_config_int (config, "db.connect_timeout_ms"), 30000);
    assert_string_equal (bf_config_str (config, "pii.key_file"), "");
    assert_string_equal (bf_config_str (config, "pii.key"), "");
    assert_int_equal (bf_config_int (config, "import.max_errors"), 100);
    assert_string_equal (bf_config_str (config, "service.instance"), "");
    for (size_t i = 0; i < bf_settings_count (); i++)
        assert_string_equal (bf_config_source (config, bf_settings_get (i)->key), "default");
    bf_config_destroy (&config);
    assert_null (config);
    bf_config_destroy (&config); //  safe twice
}

static void
test_env_name (void **state)
{
    (void)state;
    char name[64];
    assert_string_equal (bf_setting_env_name ("db.conninfo", name, sizeof name),
                         "BILLFLOW_DB_CONNINFO");
    assert_string_equal (bf_setting_env_name ("db.connect_timeout_ms", name, sizeof name),
                         "BILLFLOW_DB_CONNECT_TIMEOUT_MS");
    assert_string_equal (bf_setting_env_name ("log.level", name, sizeof name),
                         "BILLFLOW_LOG_LEVEL");
    assert_string_equal (bf_setting_env_name ("pii.key_file", name, sizeof name),
                         "BILLFLOW_PII_KEY_FILE");
    assert_string_equal (bf_setting_env_name ("log.level", name, 12), "BILLFLOW_LO");
}

static void
test_file_parsing (void **state)
{
    (void)state;
    char *path = s_write_file (
        "# billflow test config\n"
        "\n"
        "   \t\n"
        "log.level = debug\n"
        "  # indented comment\n"
        "[db]\n"
        "conninfo = \"host=db port=5432 password=\\\"x#y\\\" dir=c:\\\\t\"   # trailing\n"
        "connect_timeout_ms=  1500   \r\n"
        "[ import ]\n"
        "max_errors = 7 # seven\n"
        "[service]\n"
        "instance = pod-1#a\n"
        "[pii]\n"
        "key_file = \"\"\n");
    bf_config_t *config = bf_config_new ();
    char err[256] = "";
    int rc = bf_config_load_file (config, path, err, sizeof err);
    if (rc != 0)
        fail_msg ("load failed: %s", err);
    assert_string_equal (bf_config_str (config, "log.level"), "debug");
    assert_string_equal (bf_config_str (config, "db.conninfo"),
                         "host=db port=5432 password=\"x#y\" dir=c:\\t");
    assert_int_equal (bf_config_int (config, "db.connect_timeout_ms"), 1500);
    assert_int_equal (bf_config_int (config, "import.max_errors"), 7);
    assert_string_equal (bf_config_str (config, "service.instance"), "pod-1#a");
    assert_string_equal (bf_config_str (config, "pii.key_file"), "");
    assert_string_equal (bf_config_str (config, "log.format"), "plain");

    char where[256];
    snprintf (where, sizeof where, "%s:4", path);
    assert_string_equal (bf_config_source (config, "log.level"), where);
    snprintf (where, sizeof where, "%s:8", path);
    assert_string_equal (bf_config_source (config, "db.connect_timeout_ms"), where);
    assert_string_equal (bf_config_source (config, "log.format"), "default");
    bf_config_destroy (&config);
    s_remove_file (path);

    //  An empty file changes nothing.
    path = s_write_file ("");
    config = bf_config_new ();
    assert_int_equal (bf_config_load_file (config, path, err, sizeof err), 0);
    assert_string_equal (bf_config_str (config, "log.level"), "info");
    bf_config_destroy (&config);
    s_remove_file (path);
}

static void
test_precedence (void **state)
{
    (void)state;
    char *path = s_write_file ("log.level = warn\n"
                               "db.connect_timeout_ms = 1000\n"
                               "import.max_errors = 3\n");
    bf_config_t *config = bf_config_new ();
    char err[256] = "";
    assert_int_equal (bf_config_load_file (config, path, err, sizeof err), 0);
    const char *env[] = {
        "HOME=/root",
        "BILLFLOW_DB_CONNECT_TIMEOUT_MS=2000",
        "BILLFLOW_IMPORT_MAX_ERRORS=5",
        "BILLFLOW_CONFIG=/ignored/here.conf",
        "BILLFLOWX=1",
        "PGHOST=localhost",
        NULL,
    };
    assert_int_equal (bf_config_load_env (config, env, err, sizeof err), 0);
    assert_int_equal (
        bf_config_set (config, "import.max_errors", "9", "--max-errors", err, sizeof err), 0);

    assert_string_equal (bf_config_str (config, "log.format"), "plain");
    assert_string_equal (bf_config_source (config, "log.format"), "default");
    assert_string_equal (bf_config_str (config, "log.level"), "warn");
    char where[256];
    snprintf (where, sizeof where, "%s:1", path);
    assert_string_equal (bf_config_source (config, "log.level"), where);
    assert_int_equal (bf_config_int (config, "db.connect_timeout_ms"), 2000);
    assert_string_equal (bf_config_source (config, "db.connect_timeout_ms"),
                         "env BILLFLOW_DB_CONNECT_TIMEOUT_MS");
    assert_int_equal (bf_config_int (config, "import.max_errors"), 9);
    assert_string_equal (bf_config_source (config, "import.max_errors"), "--max-errors");
    bf_config_destroy (&config);
    s_remove_file (path);
}

//  Each bad file gives -1 and an error with file:line and the given parts.

static void
test_file_errors (void **state)
{
    (void)state;
    static const struct {
        const char *content;
        int line;
        const char *parts[3];
    } cases[] = {
        { "log.level = info\ndb.conninfoo = x\n", 2, { "unknown setting 'db.conninfoo'" } },
        { "[db]\nconninfoo = x\n", 2, { "unknown setting 'db.conninfoo'" } },
        { "[log]\nlog.level = info\n", 2, { "unknown setting 'log.log.level'" } },
        { "db.connect_timeout_ms = abc\n", 1, { "db.connect_timeout_ms", "'abc'", "0..3600000" } },
        { "\n\ndb.connect_timeout_ms = 3600001\n",
          3,
          { "db.connect_timeout_ms", "'3600001'", "0..3600000" } },
        { "import.max_errors = 0\n", 1, { "import.max_errors", "'0'", "1..1000000" } },
        { "import.max_errors = 10 apples\n", 1, { "import.max_errors", "'10 apples'" } },
        { "log.level = verbose\n", 1, { "log.level", "'verbose'", "debug|info|warn|error" } },
        { "log.format = xml\n", 1, { "log.format", "'xml'", "plain|json" } },
        { "log.level\n", 1, { "expected 'key = value'" } },
        { "= info\n", 1, { "bad setting name" } },
        { "log level = info\n", 1, { "bad setting name" } },
        { "db.conninfo = \"host=x\n", 1, { "db.conninfo", "missing closing quote" } },
        { "db.conninfo = \"host=x\" port=1\n",
          1,
          { "db.conninfo", "unexpected text after the closing quote" } },
        { "[db\nconninfo = x\n", 1, { "[name]" } },
        { "[d b]\n", 1, { "bad section name" } },
        { "[]\n", 1, { "bad section name" } },
        { "log.level = info\nlog.level = warn\n", 2, { "log.level", "already set on line 1" } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = s_write_file (cases[i].content);
        bf_config_t *config = bf_config_new ();
        char err[512] = "";
        int rc = bf_config_load_file (config, path, err, sizeof err);
        if (rc != -1)
            fail_msg ("case %zu: accepted: %s", i, cases[i].content);
        char where[256];
        snprintf (where, sizeof where, "%s:%d: ", path, cases[i].line);
        if (strncmp (err, where, strlen (where)) != 0)
            fail_msg ("case %zu: expected '%s' at start of: %s", i, where, err);
        for (int k = 0; k < 3 && cases[i].parts[k]; k++)
            if (!strstr (err, cases[i].parts[k]))
                fail_msg ("case %zu: expected '%s' in: %s", i, cases[i].parts[k], err);
        bf_config_destroy (&config);
        s_remove_file (path);
    }
}

static void
test_missing_file (void **state)
{
    (void)state;
    bf_config_t *config = bf_config_new ();
    char err[256] = "";
    assert_int_equal (bf_config_load_file (config, "/nonexistent/billflow.conf", err, sizeof err),
                      -1);
    s_assert_contains (err, "/nonexistent/billflow.conf");
    s_assert_contains (err, "No such file");
    err[0] = 0;
    assert_int_equal (bf_config_load_file (config, "/tmp", err, sizeof err), -1);
    s_assert_contains (err, "/tmp");
    assert_int_equal (bf_config_load_file (config, "", err, sizeof err), -1);
    bf_config_destroy (&config);

    err[0] = 0;
    assert_null (bf_config_load ("/nonexistent/other.conf", err, sizeof err));
    s_assert_contains (err, "/nonexistent/other.conf");
}

static void
test_int_values (void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        int64_t value;
    } cases[] = {
        { "0", 0, 0 },
        { "3600000", 0, 3600000 },
        { "007", 0, 7 },
        { "1500", 0, 1500 },
        { "3600001", -1, 0 },
        { "-1", -1, 0 },
        { "", -1, 0 },
        { " 12", -1, 0 },
        { "12 ", -1, 0 },
        { "12abc", -1, 0 },
        { "+5", -1, 0 },
        { "0x10", -1, 0 },
        { "1e3", -1, 0 },
        { "1.5", -1, 0 },
        { "-", -1, 0 },
        { "1_000", -1, 0 },
        { "99999999999999999999", -1, 0 },
        { "9223372036854775808", -1, 0 },
    };
    bf_config_t *config = bf_config_new ();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        bf_config_set (config, "db.connect_timeout_ms", "42", "reset", err, sizeof err);
        int rc = bf_config_set (config, "db.connect_timeout_ms", cases[i].text, "--timeout", err,
                                sizeof err);
        if (rc != cases[i].rc)
            fail_msg ("'%s': rc %d", cases[i].text, rc);
        if (rc == 0)
            assert_int_equal (bf_config_int (config, "db.connect_timeout_ms"), cases[i].value);
        else {
            assert_int_equal (bf_config_int (config, "db.connect_timeout_ms"), 42);
            s_assert_contains (err, "--timeout: ");
            s_assert_contains (err, "db.connect_timeout_ms");
            s_assert_contains (err, "0..3600000");
        }
    }
    bf_config_destroy (&config);

    //  The parser on its own, at the int64 limits.
    int64_t value = 5;
    assert_int_equal (bf_config_parse_int ("9223372036854775807", &value), 0);
    assert_true (value == INT64_MAX);
    assert_int_equal (bf_config_parse_int ("-9223372036854775808", &value), 0);
    assert_true (value == INT64_MIN);
    value = 5;
    assert_int_equal (bf_config_parse_int ("9223372036854775808", &value), -1);
    assert_int_equal (bf_config_parse_int ("-9223372036854775809", &value), -1);
    assert_int_equal (bf_config_parse_int ("18446744073709551616", &value), -1);
    assert_int_equal (bf_config_parse_int ("--1", &value), -1);
    assert_int_equal (bf_config_parse_int (NULL, &value), -1);
    assert_int_equal (value, 5);
    assert_int_equal (bf_config_parse_int ("-0", &value), 0);
    assert_int_equal (value, 0);
}

static void
test_bool_values (void **state)
{
    (void)state;
    static const char *const yes[] = { "true", "yes", "on", "1", "TRUE", "Yes", "ON" };
    static const char *const no[] = { "false", "no", "off", "0", "False", "NO", "Off" };
    static const char *const bad[]
        = { "", "2", "y", "n", "t", "truee", " true", "on ", "enabled", "-1", "01" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        bool value = false;
        assert_int_equal (bf_config_parse_bool (yes[i], &value), 0);
        assert_true (value);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        bool value = true;
        assert_int_equal (bf_config_parse_bool (no[i], &value), 0);
        assert_false (value);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool value = true;
        if (bf_config_parse_bool (bad[i], &value) != -1)
            fail_msg ("accepted '%s'", bad[i]);
        assert_true (value);
    }
    assert_int_equal (bf_config_parse_bool (NULL, NULL), -1);
}

static void
test_enum_values (void **state)
{
    (void)state;
    bf_config_t *config = bf_config_new ();
    char err[256] = "";
    assert_int_equal (bf_config_set (config, "log.level", "DEBUG", "--log-level", err, sizeof err),
                      0);
    assert_string_equal (bf_config_str (config, "log.level"), "debug");
    assert_int_equal (bf_config_set (config, "log.format", "json", "x", err, sizeof err), 0);
    assert_string_equal (bf_config_str (config, "log.format"), "json");
    static const char *const bad[] = { "", "deb", "debugx", "debug|info", "|", "info ", "verbose" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        if (bf_config_set (config, "log.level", bad[i], "--log-level", err, sizeof err) != -1)
            fail_msg ("accepted '%s'", bad[i]);
        s_assert_contains (err, "--log-level: ");
        s_assert_contains (err, "log.level");
        s_assert_contains (err, "debug|info|warn|error");
    }
    assert_string_equal (bf_config_str (config, "log.level"), "debug");
    assert_string_equal (bf_config_source (config, "log.level"), "--log-level");
    bf_config_destroy (&config);
}

static void
test_string_values (void **state)
{
    (void)state;
    bf_config_t *config = bf_config_new ();
    char err[256] = "";
    assert_int_equal (
        bf_config_set (config, "db.conninfo", "postgresql://u@h/db?x=1", "a", err, sizeof err), 0);
    assert_string_equal (bf_config_str (config, "db.conninfo"), "postgresql://u@h/db?x=1");
    assert_int_equal (
        bf_config_set (config, "db.conninfo", "host=a\nhost=b", "--db", err, sizeof err), -1);
    s_assert_contains (err, "--db: ");
    s_assert_contains (err, "db.conninfo");
    s_assert_contains (err, "control characters");
    assert_string_equal (bf_config_str (config, "db.conninfo"), "postgresql://u@h/db?x=1");
    assert_int_equal (bf_config_set (config, "service.instance", "", "b", err, sizeof err), 0);
    assert_string_equal (bf_config_str (config, "service.instance"), "");
    bf_config_destroy (&config);
}

static void
test_set_errors (void **state)
{
    (void)state;
    bf_config_t *config = bf_config_new ();
    char err[256] = "";
    assert_int_equal (bf_config_set (config, "db.workers", "4", "--workers", err, sizeof err), -1);
    assert_string_equal (err, "--workers: unknown setting 'db.workers'");
    assert_int_equal (bf_config_set (config, NULL, "4", "--x", err, sizeof err), -1);
    assert_int_equal (bf_config_set (config, "log.level", NULL, "--x", err, sizeof err), -1);
    s_assert_contains (err, "log.level");
    //  A NULL err is allowed.
    assert_int_equal (bf_config_set (config, "nope", "1", NULL, NULL, 0), -1);
    bf_config_destroy (&config);
}

static void
test_env (void **state)
{
    (void)state;
    bf_config_t *config = bf_config_new ();
    char err[256] = "";
    const char *good[] = {
        "BILLFLOW_LOG_LEVEL=error",
        "BILLFLOW_LOG_FORMAT=json",
        "BILLFLOW_DB_CONNINFO=host=db dbname=billflow",
        "BILLFLOW_SERVICE_INSTANCE=",
        "BILLFLOW_CONFIG=/etc/billflow.conf",
        "NOT_BILLFLOW_X=1",
        "BILLFLOW_NO_EQUALS_SIGN",
        NULL,
    };
    assert_int_equal (bf_config_load_env (config, good, err, sizeof err), 0);
    assert_string_equal (bf_config_str (config, "log.level"), "error");
    assert_string_equal (bf_config_str (config, "log.format"), "json");
    assert_string_equal (bf_config_str (config, "db.conninfo"), "host=db dbname=billflow");
    assert_string_equal (bf_config_source (config, "db.conninfo"), "env BILLFLOW_DB_CONNINFO");
    assert_string_equal (bf_config_source (config, "service.instance"),
                         "env BILLFLOW_SERVICE_INSTANCE");

    const char *unknown[] = { "BILLFLOW_DB_CONNINFOO=x", NULL };
    assert_int_equal (bf_config_load_env (config, unknown, err, sizeof err), -1);
    s_assert_contains (err, "BILLFLOW_DB_CONNINFOO");
    s_assert_contains (err, "unknown setting");

    //  The env name must match exactly, including case.
    const char *lower[] = { "BILLFLOW_log_level=info", NULL };
    assert_int_equal (bf_config_load_env (config, lower, err, sizeof err), -1);
    s_assert_contains (err, "BILLFLOW_log_level");

    const char *bad[] = { "BILLFLOW_IMPORT_MAX_ERRORS=lots", NULL };
    assert_int_equal (bf_config_load_env (config, bad, err, sizeof err), -1);
    s_assert_contains (err, "env BILLFLOW_IMPORT_MAX_ERRORS: ");
    s_assert_contains (err, "import.max_errors");
    s_assert_contains (err, "'lots'");
    s_assert_contains (err, "1..1000000");
    assert_int_equal (bf_config_int (config, "import.max_errors"), 100);
    bf_config_destroy (&config);
}

static void
test_env_kubernetes_services (void **state)
{
    (void)state;
    bf_config_t *config = bf_config_new ();
    char err[256] = "";
    //  What the kubelet injects for Services billflow-notify (port http),
    //  billflow-settle-pub, and billflow itself: ignored.
    const char *injected[] = {
        "BILLFLOW_NOTIFY_SERVICE_HOST=10.96.0.12",
        "BILLFLOW_NOTIFY_SERVICE_PORT=9102",
        "BILLFLOW_NOTIFY_SERVICE_PORT_HTTP=9102",
        "BILLFLOW_NOTIFY_PORT=tcp://10.96.0.12:9102",
        "BILLFLOW_NOTIFY_PORT_9102_TCP=tcp://10.96.0.12:9102",
        "BILLFLOW_NOTIFY_PORT_9102_TCP_PROTO=tcp",
        "BILLFLOW_NOTIFY_PORT_9102_TCP_PORT=9102",
        "BILLFLOW_NOTIFY_PORT_9102_TCP_ADDR=10.96.0.12",
        "BILLFLOW_SETTLE_PUB_SERVICE_HOST=fd00::1:2",
        "BILLFLOW_SETTLE_PUB_SERVICE_PORT_EVENT_STREAM=7101",
        "BILLFLOW_SETTLE_PUB_PORT_7101_UDP=udp://[fd00::1:2]:7101",
        "BILLFLOW_SETTLE_PUB_PORT_7101_SCTP_PROTO=sctp",
        "BILLFLOW_SERVICE_HOST=10.96.0.1",
        "BILLFLOW_PORT=tcp://10.96.0.1:80",
        "BILLFLOW_LOG_LEVEL=warn",
        NULL,
    };
    assert_int_equal (bf_config_load_env (config, injected, err, sizeof err), 0);
    assert_string_equal (bf_config_str (config, "log.level"), "warn");
    //  A real setting still wins over the shape (service.instance).
    const char *real[] = { "BILLFLOW_SERVICE_INSTANCE=settle-1", NULL };
    assert_int_equal (bf_config_load_env (config, real, err, sizeof err), 0);
    assert_string_equal (bf_config_str (config, "service.instance"), "settle-1");

    //  A real unknown setting is still refused, and so is each near miss:
    //  a name of the wrong shape, or a Kubernetes name with a value that is
    //  not Kubernetes' own.
    const char *refused[][2] = {
        { "BILLFLOW_NOTIFY_BATCHSIZE=10", "BILLFLOW_NOTIFY_BATCHSIZE" },
        { "BILLFLOW_NOTIFY_PORTS=tcp://10.96.0.12:9102", "BILLFLOW_NOTIFY_PORTS" },
        { "BILLFLOW_NOTIFY_SERVICE_HOSTS=10.96.0.12", "BILLFLOW_NOTIFY_SERVICE_HOSTS" },
        { "BILLFLOW_NOTIFY_PORT_9102_TCP_HOST=10.96.0.12", "BILLFLOW_NOTIFY_PORT_9102_TCP_HOST" },
        { "BILLFLOW_NOTIFY_PORT_9102_HTTP=tcp://10.96.0.12:9102",
          "BILLFLOW_NOTIFY_PORT_9102_HTTP" },
        { "BILLFLOW_NOTIFY_PORT_9102_TCP=tcp://10.96.0.12:9103", "BILLFLOW_NOTIFY_PORT_9102_TCP" },
        { "BILLFLOW_NOTIFY_PORT_9102_TCP_PORT=9103", "BILLFLOW_NOTIFY_PORT_9102_TCP_PORT" },
        { "BILLFLOW_NOTIFY_PORT_9102_TCP_PROTO=udp", "BILLFLOW_NOTIFY_PORT_9102_TCP_PROTO" },
        { "BILLFLOW_NOTIFY_PORT_70000_TCP_PORT=70000", "BILLFLOW_NOTIFY_PORT_70000_TCP_PORT" },
        { "BILLFLOW_SMTP_PORT=587", "BILLFLOW_SMTP_PORT" },
        { "BILLFLOW_SMTP_SERVICE_PORT=smtp", "BILLFLOW_SMTP_SERVICE_PORT" },
        { "BILLFLOW_DB_SERVICE_HOST=db.example", "BILLFLOW_DB_SERVICE_HOST" },
        { "BILLFLOW_notify_SERVICE_HOST=10.96.0.12", "BILLFLOW_notify_SERVICE_HOST" },
        { "BILLFLOW__SERVICE_HOSTX=10.96.0.12", "BILLFLOW__SERVICE_HOSTX" },
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *env[] = { refused[i][0], NULL };
        if (bf_config_load_env (config, env, err, sizeof err) != -1)
            fail_msg ("%s was accepted", refused[i][0]);
        s_assert_contains (err, refused[i][1]);
        s_assert_contains (err, "unknown setting");
    }
    bf_config_destroy (&config);
}

static void
test_load (void **state)
{
    (void)state;
    char *path = s_write_file ("log.level = warn\nimport.max_errors = 12\n");
    char err[256] = "";
    setenv ("BILLFLOW_CONFIG", path, 1);
    setenv ("BILLFLOW_IMPORT_MAX_ERRORS", "13", 1);
    bf_config_t *config = bf_config_load (NULL, err, sizeof err);
    if (!config)
        fail_msg ("load: %s", err);
    assert_string_equal (bf_config_str (config, "log.level"), "warn");
    assert_int_equal (bf_config_int (config, "import.max_errors"), 13);
    bf_config_destroy (&config);

    //  An explicit path wins over $BILLFLOW_CONFIG.
    setenv ("BILLFLOW_CONFIG", "/nonexistent/env.conf", 1);
    config = bf_config_load (path, err, sizeof err);
    assert_non_null (config);
    assert_string_equal (bf_config_str (config, "log.level"), "warn");
    bf_config_destroy (&config);

    config = bf_config_load (NULL, err, sizeof err);
    assert_null (config);
    s_assert_contains (err, "/nonexistent/env.conf");

    //  No file at all: defaults and environment.
    unsetenv ("BILLFLOW_CONFIG");
    config = bf_config_load (NULL, err, sizeof err);
    assert_non_null (config);
    assert_string_equal (bf_config_str (config, "log.level"), "info");
    assert_int_equal (bf_config_int (config, "import.max_errors"), 13);
    bf_config_destroy (&config);

    setenv ("BILLFLOW_NOT_A_SETTING", "1", 1);
    config = bf_config_load (NULL, err, sizeof err);
    assert_null (config);
    s_assert_contains (err, "BILLFLOW_NOT_A_SETTING");
    unsetenv ("BILLFLOW_NOT_A_SETTING");
    unsetenv ("BILLFLOW_IMPORT_MAX_ERRORS");
    s_remove_file (path);
}

static void
test_secret_hidden (void **state)
{
    (void)state;
    bf_config_t *config = bf_config_new ();
    char *text = s_dump (config);
    s_assert_contains (text, "pii.key = (unset)  # default\n");
    free (text);

    char err[512] = "";
    const char *env[] = { "BILLFLOW_PII_KEY=" SECRET, NULL };
    assert_int_equal (bf_config_load_env (config, env, err, sizeof err), 0);
    assert_string_equal (bf_config_str (config, "pii.key"), SECRET);
    text = s_dump (config);
    s_assert_contains (text, "pii.key = (set)  # env BILLFLOW_PII_KEY\n");
    assert_null (strstr (text, SECRET));
    assert_null (strstr (text, "5ec2e7"));
    free (text);

    //  Errors about a secret never quote it: bad value, bad quoting, a line
    //  without '=', an unknown key next to it.
    assert_int_equal (
        bf_config_set (config, "pii.key", SECRET "\x01", "--pii-key", err, sizeof err), -1);
    s_assert_contains (err, "pii.key");
    s_assert_contains (err, "--pii-key");
    assert_null (strstr (err, "5ec2e7"));

    const char *bad_env[] = { "BILLFLOW_PII_KEY=" SECRET "\n", NULL };
    assert_int_equal (bf_config_load_env (config, bad_env, err, sizeof err), -1);
    s_assert_contains (err, "BILLFLOW_PII_KEY");
    assert_null (strstr (err, "5ec2e7"));

    static const char *const files[] = {
        "pii.key = \"" SECRET "\n",
        "pii.key = \"" SECRET "\" junk\n",
        SECRET "\n",
        "pii.kee = " SECRET "\n",
        "[pii]\nkey = " SECRET "\nkey = " SECRET "\n",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *path = s_write_file (files[i]);
        err[0] = 0;
        assert_int_equal (bf_config_load_file (config, path, err, sizeof err), -1);
        assert_true (strlen (err) > 0);
        if (strstr (err, "5ec2e7"))
            fail_msg ("case %zu leaks the secret: %s", i, err);
        s_remove_file (path);
    }
    bf_config_destroy (&config);
}

static void
test_dump (void **state)
{
    (void)state;
    bf_config_t *config = bf_config_new ();
    char err[256];
    assert_int_equal (
        bf_config_set (config, "db.conninfo", "host=db password=\"p\"", "--db", err, sizeof err),
        0);
    assert_int_equal (bf_config_set (config, "import.max_errors", "0042", "--max", err, sizeof err),
                      0);
    char *text = s_dump (config);
    s_assert_contains (text, "log.level = info  # default\n");
    s_assert_contains (text, "db.conninfo = \"host=db password=\\\"p\\\"\"  # --db\n");
    s_assert_contains (text, "import.max_errors = 42  # --max\n");
    s_assert_contains (text, "db.connect_timeout_ms = 30000  # default\n");
    s_assert_contains (text, "service.instance = \"\"  # default\n");
    //  One line per setting.
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal (lines, bf_settings_count ());
    free (text);
    bf_config_destroy (&config);
}

//  docs/configuration.md must mention every setting (key and environment
//  name, each in backticks).

static void
test_docs_cover_every_setting (void **state)
{
    (void)state;
    const char *root = getenv ("BF_SOURCE_ROOT");
    if (!root)
        fail_msg ("BF_SOURCE_ROOT is not set (meson test sets it)");
    char path[4096];
    snprintf (path, sizeof path, "%s/docs/configuration.md", root);
    FILE *file = fopen (path, "r");
    if (!file)
        fail_msg ("cannot open %s", path);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    char chunk[4096];
    size_t n;
    while ((n = fread (chunk, 1, sizeof chunk, file)) > 0)
        fwrite (chunk, 1, n, out);
    fclose (out);
    fclose (file);
    for (size_t i = 0; i < bf_settings_count (); i++) {
        const bf_setting_t *setting = bf_settings_get (i);
        char needle[160];
        snprintf (needle, sizeof needle, "`%s`", setting->key);
        if (!strstr (text, needle))
            fail_msg ("%s does not document %s", path, needle);
        char env[128];
        snprintf (needle, sizeof needle, "`%s`",
                  bf_setting_env_name (setting->key, env, sizeof env));
        if (!strstr (text, needle))
            fail_msg ("%s does not name %s", path, needle);
    }
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_table),
        cmocka_unit_test (test_defaults),
        cmocka_unit_test (test_env_name),
        cmocka_unit_test (test_file_parsing),
        cmocka_unit_test (test_precedence),
        cmocka_unit_test (test_file_errors),
        cmocka_unit_test (test_missing_file),
        cmocka_unit_test (test_int_values),
        cmocka_unit_test (test_bool_values),
        cmocka_unit_test (test_enum_values),
        cmocka_unit_test (test_string_values),
        cmocka_unit_test (test_set_errors),
        cmocka_unit_test (test_env),
        cmocka_unit_test (test_env_kubernetes_services),
        cmocka_unit_test (test_load),
        cmocka_unit_test (test_secret_hidden),
        cmocka_unit_test (test_dump),
        cmocka_unit_test (test_docs_cover_every_setting),
    };
    return cmocka_run_group_tests_name ("bf_config", tests, NULL, NULL);
}
