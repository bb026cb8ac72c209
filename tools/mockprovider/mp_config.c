/*  mp_config — the mock's settings: the command line, its defaults and its usage text.  */

#include "mp_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define S_REJECT_MAX 256

/*  What one flag's parser made of it.  */
enum { S_FLAG_UNKNOWN, S_FLAG_BAD, S_FLAG_OK };

static const char *s_reject[S_REJECT_MAX]; /* --reject-recipient values (argv's strings) */

static const mp_config_t s_defaults = {
    .http_port = -1,
    .smtp_port = -1,
    .bind = "127.0.0.1",
    .latency_ms = { 1000, 0, 0, 0 },
    .fail_pct = { 1.0, 0, 0, 0 },
    .reject = s_reject,
    .seed = 1,
    .max_message_size = 1024 * 1024,
};

void
mp_config_usage (FILE *out)
{
    fprintf (
        out,
        "usage: mockprovider --http-port P --smtp-port Q [options]\n"
        "  --http-port P, --smtp-port Q   ports to listen on; 0 picks a free one\n"
        "  --bind ADDR                    IP address to listen on (127.0.0.1)\n"
        "  --token T                      require 'Authorization: Bearer T' on HTTP\n"
        "  --smtp-user U --smtp-password P  require SMTP AUTH (PLAIN or LOGIN)\n"
        "  --CH-latency-ms N              delay replies to CH's messages by N ms\n"
        "  --CH-fail-pct X                X%% of CH's messages fail (0-100)\n"
        "                                 CH: email (1000 ms, 1%%), sms, lms, push (0, 0)\n"
        "  --email-latency-at end|data    delay the reply after the final '.' (end) or\n"
        "                                 the 354 reply to DATA (data; see README)\n"
        "  --smtp-dedup on|off            on: refuse a Message-ID accepted before (off:\n"
        "                                 deliver it again, like a real server)\n"
        "  --email-slow-pct X --email-slow-ms N  X%% of emails get the reply to the\n"
        "                                 final '.' after N ms (taken at once)\n"
        "  --fail-mode transient|permanent  failures are HTTP 503 / SMTP 451 (transient),\n"
        "                                 or HTTP 422 / SMTP 550 at RCPT (permanent)\n"
        "  --throttle-pct X               X%% of HTTP messages get 429, Retry-After: 1\n"
        "  --garbage-pct X                X%% of HTTP messages get 200 with a non-JSON body\n"
        "  --lost-reply-pct X             X%% of HTTP messages are accepted but answered 502\n"
        "  --reject-recipient ADDR        always refuse ADDR (SMTP 550, HTTP 404); repeatable\n"
        "  --seed N                       PRNG seed for failures (1)\n"
        "  --max-message-size BYTES       SMTP size limit (1048576)\n"
        "  --http-threads N               HTTP worker threads (number of CPUs)\n"
        "  --max-connections N            HTTP connection limit (from RLIMIT_NOFILE)\n"
        "  --verbose                      log every message (recipients masked)\n"
        "  --record FILE                  append every accepted message to FILE, one JSON\n"
        "                                 object a line (see README)\n"
        "  --key-reuse reject|accept      a used Idempotency-Key with a different body gets\n"
        "                                 422 (reject, the default) or 409 (accept)\n"
        "  --help                         this text\n");
}

/*  Prints "mockprovider: why" and the usage on stderr. Returns 2, the exit code.  */
static int
s_bad_usage (const char *why)
{
    fprintf (stderr, "mockprovider: %s\n", why);
    mp_config_usage (stderr);
    return 2;
}

static bool
s_parse_u64 (const char *text, uint64_t max, uint64_t *out)
{
    if (!text || !*text || *text == '-' || *text == '+')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull (text, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

static bool
s_parse_pct (const char *text, double *out)
{
    if (!text || !*text)
        return false;
    char *end;
    errno = 0;
    double v = strtod (text, &end);
    if (errno || *end || !(v >= 0.0 && v <= 100.0))
        return false;
    *out = v;
    return true;
}

/*  Fills addr for host and port. Returns 0, or -1 when host is no IP literal.  */
static int
s_sockaddr (const char *host, int port, struct sockaddr_storage *addr, socklen_t *len)
{
    memset (addr, 0, sizeof *addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (inet_pton (AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons ((uint16_t)port);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton (AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons ((uint16_t)port);
        *len = sizeof *v6;
        return 0;
    }
    return -1;
}

static int
s_ok (bool ok)
{
    return ok ? S_FLAG_OK : S_FLAG_BAD;
}

/*  --CH-latency-ms and --CH-fail-pct, CH a channel name.  */
static int
s_flag_channel (mp_config_t *self, const char *name, const char *value)
{
    for (int ch = 0; ch < MP_CHANNELS; ch++) {
        char flag[64];
        snprintf (flag, sizeof flag, "--%s-latency-ms", mp_store_channel_name (ch));
        if (strcmp (name, flag) == 0) {
            uint64_t u = 0;
            bool ok = s_parse_u64 (value, 3600000, &u);
            self->latency_ms[ch] = (unsigned)u;
            return s_ok (ok);
        }
        snprintf (flag, sizeof flag, "--%s-fail-pct", mp_store_channel_name (ch));
        if (strcmp (name, flag) == 0)
            return s_ok (s_parse_pct (value, &self->fail_pct[ch]));
    }
    return S_FLAG_UNKNOWN;
}

/*  Flags whose value is a text: addresses, credentials, file names.  */
static int
s_flag_text (mp_config_t *self, const char *name, const char *value)
{
    if (strcmp (name, "--bind") == 0) {
        struct sockaddr_storage addr;
        socklen_t len;
        self->bind = value;
        return s_ok (s_sockaddr (value, 0, &addr, &len) == 0);
    }
    if (strcmp (name, "--token") == 0)
        return s_ok (*(self->token = value) != '\0');
    if (strcmp (name, "--smtp-user") == 0)
        return s_ok (*(self->smtp_user = value) != '\0');
    if (strcmp (name, "--smtp-password") == 0) {
        self->smtp_password = value;
        return S_FLAG_OK;
    }
    if (strcmp (name, "--record") == 0)
        return s_ok (*(self->record_path = value) != '\0');
    if (strcmp (name, "--reject-recipient") == 0) {
        if (!*value || self->reject_count >= S_REJECT_MAX)
            return S_FLAG_BAD;
        s_reject[self->reject_count++] = value;
        return S_FLAG_OK;
    }
    return S_FLAG_UNKNOWN;
}

/*  Flags that choose one of two words; *on is set when value is the second.  */
static int
s_flag_choice (const char *value, const char *first, const char *second, bool *on)
{
    *on = strcmp (value, second) == 0;
    return s_ok (strcmp (value, first) == 0 || *on);
}

static int
s_flag_mode (mp_config_t *self, const char *name, const char *value)
{
    if (strcmp (name, "--fail-mode") == 0)
        return s_flag_choice (value, "transient", "permanent", &self->fail_permanent);
    if (strcmp (name, "--key-reuse") == 0)
        return s_flag_choice (value, "reject", "accept", &self->key_reuse_ok);
    if (strcmp (name, "--email-latency-at") == 0)
        return s_flag_choice (value, "end", "data", &self->latency_at_data);
    if (strcmp (name, "--smtp-dedup") == 0)
        return s_flag_choice (value, "off", "on", &self->smtp_dedup);
    return S_FLAG_UNKNOWN;
}

/*  Flags whose value is a share in percent.  */
static int
s_flag_pct (mp_config_t *self, const char *name, const char *value)
{
    double *pct = strcmp (name, "--email-slow-pct") == 0   ? &self->email_slow_pct
                  : strcmp (name, "--throttle-pct") == 0   ? &self->throttle_pct
                  : strcmp (name, "--garbage-pct") == 0    ? &self->garbage_pct
                  : strcmp (name, "--lost-reply-pct") == 0 ? &self->lost_reply_pct
                                                           : NULL;
    return pct ? s_ok (s_parse_pct (value, pct)) : S_FLAG_UNKNOWN;
}

/*  Flags whose value is a whole number.  */
static int
s_flag_number (mp_config_t *self, const char *name, const char *value)
{
    uint64_t u = 0;
    bool ok;
    if (strcmp (name, "--http-port") == 0 || strcmp (name, "--smtp-port") == 0) {
        ok = s_parse_u64 (value, 65535, &u);
        *(name[2] == 'h' ? &self->http_port : &self->smtp_port) = (int)u;
    } else if (strcmp (name, "--email-slow-ms") == 0) {
        ok = s_parse_u64 (value, 3600000, &u);
        self->email_slow_ms = (unsigned)u;
    } else if (strcmp (name, "--seed") == 0)
        ok = s_parse_u64 (value, UINT64_MAX, &self->seed);
    else if (strcmp (name, "--max-message-size") == 0) {
        ok = s_parse_u64 (value, (uint64_t)1 << 40, &u) && u > 0;
        self->max_message_size = (size_t)u;
    } else if (strcmp (name, "--http-threads") == 0) {
        ok = s_parse_u64 (value, 64, &u) && u > 0;
        self->http_threads = (unsigned)u;
    } else if (strcmp (name, "--max-connections") == 0) {
        ok = s_parse_u64 (value, 1000000, &u) && u > 0;
        self->max_connections = (unsigned)u;
    } else
        return S_FLAG_UNKNOWN;
    return s_ok (ok);
}

/*  Applies one flag with its value.  */
static int
s_flag (mp_config_t *self, const char *name, const char *value)
{
    int rc = s_flag_channel (self, name, value);
    if (rc == S_FLAG_UNKNOWN)
        rc = s_flag_text (self, name, value);
    if (rc == S_FLAG_UNKNOWN)
        rc = s_flag_mode (self, name, value);
    if (rc == S_FLAG_UNKNOWN)
        rc = s_flag_pct (self, name, value);
    if (rc == S_FLAG_UNKNOWN)
        rc = s_flag_number (self, name, value);
    return rc;
}

/*  The rules between flags, once all are read. Returns 0, or 2 (usage printed).  */
static int
s_check (const mp_config_t *self)
{
    char why[200];
    if (self->http_port < 0 || self->smtp_port < 0)
        return s_bad_usage ("--http-port and --smtp-port are required");
    if (!self->smtp_user != !self->smtp_password)
        return s_bad_usage ("--smtp-user and --smtp-password go together");
    for (int ch = MP_SMS; ch < MP_CHANNELS; ch++)
        if (self->fail_pct[ch] + self->throttle_pct + self->garbage_pct + self->lost_reply_pct
            > 100.0) {
            snprintf (why, sizeof why,
                      "fail, throttle, garbage and lost-reply percentages of %s exceed 100",
                      mp_store_channel_name (ch));
            return s_bad_usage (why);
        }
    return 0;
}

int
mp_config_parse (mp_config_t *self, int argc, char **argv)
{
    char why[200];
    *self = s_defaults;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0)
            return 1;
        if (strcmp (arg, "--verbose") == 0) {
            self->verbose = true;
            continue;
        }
        if (strncmp (arg, "--", 2) != 0) {
            snprintf (why, sizeof why, "unexpected argument '%s'", arg);
            return s_bad_usage (why);
        }
        /*  --name=value or --name value.  */
        char name[64];
        const char *value;
        const char *eq = strchr (arg, '=');
        if (eq) {
            snprintf (name, sizeof name, "%.*s", (int)(eq - arg), arg);
            value = eq + 1;
        } else {
            snprintf (name, sizeof name, "%s", arg);
            if (i + 1 >= argc) {
                snprintf (why, sizeof why, "%s needs a value", arg);
                return s_bad_usage (why);
            }
            value = argv[++i];
        }
        int rc = s_flag (self, name, value);
        if (rc == S_FLAG_UNKNOWN) {
            snprintf (why, sizeof why, "unknown flag %s", name);
            return s_bad_usage (why);
        }
        if (rc == S_FLAG_BAD) {
            snprintf (why, sizeof why, "bad value for %s: '%s'", name, value);
            return s_bad_usage (why);
        }
    }
    return s_check (self);
}

void
mp_config_limits (mp_config_t *self, rlim_t nofile)
{
    if (self->http_threads == 0) {
        long cpus = sysconf (_SC_NPROCESSORS_ONLN);
        self->http_threads = cpus < 1 ? 1 : cpus > 16 ? 16 : (unsigned)cpus;
    }
    if (self->max_connections == 0) {
        /*  Half the descriptors for HTTP, the rest for SMTP sessions and ourselves.  */
        rlim_t half = nofile > 256 ? (nofile - 128) / 2 : 64;
        self->max_connections = half > 1000000 ? 1000000 : (unsigned)half;
    }
}

bool
mp_config_rejects (const mp_config_t *self, const char *recipient)
{
    for (size_t i = 0; i < self->reject_count; i++)
        if (strcasecmp (self->reject[i], recipient) == 0)
            return true;
    return false;
}

int
mp_config_sockaddr (const mp_config_t *self, int port, struct sockaddr_storage *addr,
                    socklen_t *len)
{
    return s_sockaddr (self->bind, port, addr, len);
}
