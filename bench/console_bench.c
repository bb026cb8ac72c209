/*  console_bench — a browser's load on the console (services/console), over
    HTTP, for bench/console.sh.

        console_bench URL NAME --password-file FILE [--target-ms MS]
                      [--requests FILE] [--rounds N] [--logins N]
                      [--sse CLIENTS --seconds S]

    Logs in as NAME (POST /api/login; the password is the first line of
    FILE), then, as one browser tab does, on one keep-alive connection:

    --requests FILE  times every line "LABEL<TAB>PATH" of FILE (a GET of
                     URL+PATH with the session cookie), the whole list
                     --rounds times (default 1); prints, per label, the
                     count, min / median / p99 / max in milliseconds
                     (curl's total time: request sent to the last byte) and
                     the size of the last answer, and "over" when p99 is
                     above --target-ms (default 100). Any answer other
                     than 200 is an error: reported with its body, exit 1.
    --logins N       times N more logins (POST /api/login: argon2id
                     verification included) and the logout of each (POST
                     /api/logout with the CSRF token).
    --sse C          opens C event streams (GET /api/events, the session
    --seconds S      shared, as the tabs of one browser) at once and keeps
                     them open S seconds; prints the `event: overview`
                     messages received (all, per client min / max), the
                     time to each client's first event (median, p99), and
                     the events per second per client.

    The last line is "console_bench: ok" or "console_bench: N over target"
    (exit 0 in both cases: the script judges); errors exit 1, usage 2.  */

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_bench.h"

#define S_MAX_BODY (8 * 1024 * 1024)

typedef struct {
    const char *url;
    const char *name;
    const char *password_file;
    const char *requests;
    double target_ms;
    int rounds;
    int logins;
    int sse;
    int seconds;
} s_options_t;

/*  A growable answer body, cut at S_MAX_BODY.  */
typedef struct {
    char *data;
    size_t len, cap;
} s_body_t;

static size_t
s_body_write (char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_body_t *body = arg;
    size_t n = size * nmemb;
    if (body->len + n + 1 > body->cap && body->len + n + 1 <= S_MAX_BODY) {
        size_t cap = body->cap ? body->cap : 4096;
        while (cap < body->len + n + 1)
            cap *= 2;
        char *data = realloc (body->data, cap);
        if (!data)
            return 0;
        body->data = data;
        body->cap = cap;
    }
    if (body->len + n + 1 <= body->cap) {
        memcpy (body->data + body->len, ptr, n);
        body->len += n;
        body->data[body->len] = '\0';
    }
    return n;
}

/*  Sorts times and returns its p99.  */
static double
s_p99 (double *times, int n)
{
    bf_bench_sort (times, n);
    return bf_bench_p99 (times, n);
}

static bool
s_parse (int argc, char *argv[], s_options_t *opts)
{
    *opts = (s_options_t){ .target_ms = 100, .rounds = 1 };
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp (a, "--password-file") && more)
            opts->password_file = argv[++i];
        else if (!strcmp (a, "--requests") && more)
            opts->requests = argv[++i];
        else if (!strcmp (a, "--rounds") && more)
            opts->rounds = atoi (argv[++i]);
        else if (!strcmp (a, "--logins") && more)
            opts->logins = atoi (argv[++i]);
        else if (!strcmp (a, "--sse") && more)
            opts->sse = atoi (argv[++i]);
        else if (!strcmp (a, "--seconds") && more)
            opts->seconds = atoi (argv[++i]);
        else if (!strcmp (a, "--target-ms") && more)
            opts->target_ms = atof (argv[++i]);
        else if (a[0] != '-' && positional == 0) {
            opts->url = a;
            positional++;
        } else if (a[0] != '-' && positional == 1) {
            opts->name = a;
            positional++;
        } else
            goto usage;
    }
    if (!opts->url || !opts->name || !opts->password_file)
        goto usage;
    if (opts->rounds < 1 || opts->rounds > 100000 || opts->logins < 0 || opts->logins > 10000
        || opts->sse < 0 || opts->sse > 1000 || (opts->sse && (opts->seconds < 1 || opts->seconds > 3600))
        || opts->target_ms <= 0) {
        fprintf (stderr, "console_bench: --rounds 1..100000, --logins 0..10000, --sse 0..1000 "
                         "with --seconds 1..3600, --target-ms > 0\n");
        return false;
    }
    return true;
usage:
    fprintf (stderr, "usage: console_bench URL NAME --password-file FILE [--target-ms MS] "
                     "[--requests FILE] [--rounds N] [--logins N] [--sse CLIENTS --seconds S]\n");
    return false;
}

/*  The first line of path, without its newline, in buf. false (reported)
    when it cannot be read or is empty.  */
static bool
s_read_password (const char *path, char *buf, size_t size)
{
    FILE *f = fopen (path, "r");
    if (!f || !fgets (buf, (int)size, f)) {
        fprintf (stderr, "console_bench: cannot read the password from %s\n", path);
        if (f)
            fclose (f);
        return false;
    }
    fclose (f);
    buf[strcspn (buf, "\r\n")] = '\0';
    if (!*buf) {
        fprintf (stderr, "console_bench: %s holds an empty password\n", path);
        return false;
    }
    return true;
}

/*  One request on handle h (its connection kept): method GET or POST (with
    body json and the CSRF header when csrf is set). Returns the HTTP status
    (0 on a transport error, reported), the answer in *body, the time in
    *ms.  */
static long
s_request (CURL *h, const char *url, const char *path, const char *json, const char *csrf,
           s_body_t *body, double *ms)
{
    char full[2048];
    snprintf (full, sizeof full, "%s%s", url, path);
    struct curl_slist *headers = NULL;
    char csrf_header[256];
    body->len = 0;
    if (body->data)
        body->data[0] = '\0';
    curl_easy_setopt (h, CURLOPT_URL, full);
    curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, s_body_write);
    curl_easy_setopt (h, CURLOPT_WRITEDATA, body);
    if (json) {
        headers = curl_slist_append (headers, "Content-Type: application/json");
        if (csrf) {
            snprintf (csrf_header, sizeof csrf_header, "X-CSRF-Token: %s", csrf);
            headers = curl_slist_append (headers, csrf_header);
        }
        curl_easy_setopt (h, CURLOPT_POSTFIELDS, json);
    } else
        curl_easy_setopt (h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt (h, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform (h);
    curl_easy_setopt (h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all (headers);
    long status = 0;
    curl_off_t us = 0;
    if (rc != CURLE_OK) {
        fprintf (stderr, "console_bench: %s: %s\n", path, curl_easy_strerror (rc));
        return 0;
    }
    curl_easy_getinfo (h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo (h, CURLINFO_TOTAL_TIME_T, &us);
    *ms = us / 1e3;
    return status;
}

/*  Logs in on h; the CSRF token into csrf. false (reported) on failure.  */
static bool
s_login (CURL *h, const s_options_t *opts, const char *password, char *csrf, size_t size,
         double *ms)
{
    json_t *req = json_pack ("{s:s, s:s}", "name", opts->name, "password", password);
    char *text = req ? json_dumps (req, JSON_COMPACT) : NULL;
    json_decref (req);
    if (!text)
        return false;
    s_body_t body = { 0 };
    long status = s_request (h, opts->url, "/api/login", text, NULL, &body, ms);
    free (text);
    bool ok = false;
    if (status == 200) {
        json_t *answer = json_loads (body.data ? body.data : "", 0, NULL);
        const char *token = json_string_value (json_object_get (answer, "csrf"));
        if (token && strlen (token) < size) {
            snprintf (csrf, size, "%s", token);
            ok = true;
        }
        json_decref (answer);
    }
    if (!ok)
        fprintf (stderr, "console_bench: login as %s: status %ld: %.300s\n", opts->name, status,
                 body.data ? body.data : "");
    free (body.data);
    return ok;
}

static CURL *
s_handle (CURLSH *share)
{
    CURL *h = curl_easy_init ();
    if (!h)
        return NULL;
    curl_easy_setopt (h, CURLOPT_SHARE, share);
    curl_easy_setopt (h, CURLOPT_COOKIEFILE, "");
    curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt (h, CURLOPT_ACCEPT_ENCODING, "");
    return h;
}

/*  The request list: labels and paths of FILE, in order.  */
typedef struct {
    char **labels, **paths;
    int n;
} s_list_t;

static bool
s_list_read (const char *path, s_list_t *list)
{
    memset (list, 0, sizeof *list);
    FILE *f = fopen (path, "r");
    if (!f) {
        fprintf (stderr, "console_bench: cannot open %s\n", path);
        return false;
    }
    char line[2048];
    int cap = 0, lineno = 0;
    bool ok = true;
    while (ok && fgets (line, sizeof line, f)) {
        lineno++;
        line[strcspn (line, "\r\n")] = '\0';
        char *tab = strchr (line, '\t');
        if (!*line || *line == '#')
            continue;
        if (!tab || tab[1] != '/') {
            fprintf (stderr, "console_bench: %s:%d: not \"LABEL<TAB>/PATH\"\n", path, lineno);
            ok = false;
            break;
        }
        *tab = '\0';
        if (list->n == cap) {
            cap = cap ? cap * 2 : 64;
            char **labels = realloc (list->labels, (size_t)cap * sizeof (char *));
            if (labels)
                list->labels = labels;
            char **paths = realloc (list->paths, (size_t)cap * sizeof (char *));
            if (paths)
                list->paths = paths;
            if (!labels || !paths) {
                ok = false;
                break;
            }
        }
        list->labels[list->n] = strdup (line);
        list->paths[list->n] = strdup (tab + 1);
        list->n++;
    }
    fclose (f);
    if (ok && list->n == 0) {
        fprintf (stderr, "console_bench: %s lists no request\n", path);
        ok = false;
    }
    return ok;
}

static void
s_list_free (s_list_t *list)
{
    for (int i = 0; i < list->n; i++) {
        free (list->labels[i]);
        free (list->paths[i]);
    }
    free (list->labels);
    free (list->paths);
    memset (list, 0, sizeof *list);
}

/*  Times the list's requests; returns the number of labels over target,
    or -1 on an error (reported).  */
static int
s_time_requests (CURL *h, const s_options_t *opts)
{
    s_list_t list;
    if (!s_list_read (opts->requests, &list)) {
        s_list_free (&list);
        return -1;
    }
    /*  The distinct labels, in first-seen order, each with its samples.  */
    int nlabels = 0, over = 0, status_rc = 0;
    const char **labels = calloc ((size_t)list.n, sizeof (char *));
    double **times = calloc ((size_t)list.n, sizeof (double *));
    int *count = calloc ((size_t)list.n, sizeof (int));
    size_t *bytes = calloc ((size_t)list.n, sizeof (size_t));
    int *slot = calloc ((size_t)list.n, sizeof (int));
    s_body_t body = { 0 };
    if (!labels || !times || !count || !bytes || !slot) {
        status_rc = -1;
        goto cleanup;
    }
    for (int i = 0; i < list.n; i++) {
        int l = 0;
        while (l < nlabels && strcmp (labels[l], list.labels[i]))
            l++;
        if (l == nlabels) {
            labels[nlabels++] = list.labels[i];
            times[l] = calloc ((size_t)list.n * (size_t)opts->rounds, sizeof (double));
            if (!times[l]) {
                status_rc = -1;
                goto cleanup;
            }
        }
        slot[i] = l;
    }
    for (int r = 0; r < opts->rounds; r++)
        for (int i = 0; i < list.n; i++) {
            double ms = 0;
            long status = s_request (h, opts->url, list.paths[i], NULL, NULL, &body, &ms);
            if (status != 200) {
                fprintf (stderr, "console_bench: GET %s: status %ld: %.300s\n", list.paths[i],
                         status, body.data ? body.data : "");
                status_rc = -1;
                goto cleanup;
            }
            int l = slot[i];
            times[l][count[l]++] = ms;
            bytes[l] = body.len;
        }
    printf ("%-40s %6s %8s %8s %8s %8s %9s\n", "request", "n", "min_ms", "median", "p99_ms",
            "max_ms", "bytes");
    for (int l = 0; l < nlabels; l++) {
        double p99 = s_p99 (times[l], count[l]);
        bool is_over = p99 > opts->target_ms;
        over += is_over;
        printf ("%-40s %6d %8.2f %8.2f %8.2f %8.2f %9zu%s\n", labels[l], count[l], times[l][0],
                times[l][count[l] / 2], p99, times[l][count[l] - 1], bytes[l],
                is_over ? "  over" : "");
    }
cleanup:
    for (int l = 0; times && l < nlabels; l++)
        free (times[l]);
    free (times);
    free (labels);
    free (count);
    free (bytes);
    free (slot);
    free (body.data);
    s_list_free (&list);
    return status_rc < 0 ? -1 : over;
}

/*  Times n logins and their logouts, each on a fresh handle without the
    bench's session (a browser's first visit). Returns 1 when a p99 is
    over target, 0 when not, -1 on an error.  */
static int
s_time_logins (const s_options_t *opts, const char *password)
{
    double *in = calloc ((size_t)opts->logins, sizeof (double));
    double *out = calloc ((size_t)opts->logins, sizeof (double));
    int rc = in && out ? 0 : -1;
    s_body_t body = { 0 };
    for (int i = 0; rc == 0 && i < opts->logins; i++) {
        CURLSH *own = curl_share_init ();
        CURL *h = own ? s_handle (own) : NULL;
        char csrf[256];
        if (!h || !s_login (h, opts, password, csrf, sizeof csrf, &in[i])) {
            curl_easy_cleanup (h);
            curl_share_cleanup (own);
            rc = -1;
            break;
        }
        long status = s_request (h, opts->url, "/api/logout", "{}", csrf, &body, &out[i]);
        curl_easy_cleanup (h);
        curl_share_cleanup (own);
        if (status != 204 && status != 200) {
            fprintf (stderr, "console_bench: logout: status %ld: %.300s\n", status,
                     body.data ? body.data : "");
            rc = -1;
            break;
        }
    }
    if (rc == 0) {
        double p_in = s_p99 (in, opts->logins), p_out = s_p99 (out, opts->logins);
        printf ("%-40s %6d %8.2f %8.2f %8.2f %8.2f %9s%s\n", "POST /api/login (argon2id)",
                opts->logins, in[0], in[opts->logins / 2], p_in, in[opts->logins - 1], "-",
                p_in > opts->target_ms ? "  over" : "");
        printf ("%-40s %6d %8.2f %8.2f %8.2f %8.2f %9s%s\n", "POST /api/logout", opts->logins,
                out[0], out[opts->logins / 2], p_out, out[opts->logins - 1], "-",
                p_out > opts->target_ms ? "  over" : "");
        rc = (p_in > opts->target_ms) + (p_out > opts->target_ms);
    }
    free (in);
    free (out);
    free (body.data);
    return rc;
}

/*  One event stream: its `event: overview` lines, across chunks.  */
typedef struct {
    char line[32];
    size_t len;
    int events;
    double opened_ms, first_ms;
} s_stream_t;

/*  Counts the `event: overview` lines of the n bytes at ptr.  */
static void
s_stream_scan (s_stream_t *s, const char *ptr, size_t n)
{
    static const char want[] = "event: overview";
    for (size_t i = 0; i < n; i++) {
        char c = ptr[i];
        if (c == '\n') {
            if (s->len == sizeof want - 1 && !memcmp (s->line, want, sizeof want - 1)) {
                if (!s->events)
                    s->first_ms = bf_bench_now_ms () - s->opened_ms;
                s->events++;
            }
            s->len = 0;
        } else if (s->len < sizeof s->line)
            s->line[s->len++] = c;
    }
}

static size_t
s_stream_write (char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_stream_scan (arg, ptr, size * nmemb);
    return size * nmemb;
}

/*  C streams for S seconds. Returns 1 when the first events' p99 is over
    target, 0 when not, -1 on an error (reported).  */
static int
s_streams (CURLSH *share, const s_options_t *opts)
{
    int n = opts->sse, rc = 0;
    CURLM *multi = curl_multi_init ();
    CURL **handles = calloc ((size_t)n, sizeof (CURL *));
    s_stream_t *streams = calloc ((size_t)n, sizeof (s_stream_t));
    double *first = calloc ((size_t)n, sizeof (double));
    char url[2048];
    snprintf (url, sizeof url, "%s/api/events", opts->url);
    if (!multi || !handles || !streams || !first) {
        rc = -1;
        goto cleanup;
    }
    double start = bf_bench_now_ms ();
    for (int i = 0; i < n; i++) {
        handles[i] = s_handle (share);
        if (!handles[i]) {
            rc = -1;
            goto cleanup;
        }
        curl_easy_setopt (handles[i], CURLOPT_URL, url);
        curl_easy_setopt (handles[i], CURLOPT_TIMEOUT_MS, 0L);
        curl_easy_setopt (handles[i], CURLOPT_WRITEFUNCTION, s_stream_write);
        curl_easy_setopt (handles[i], CURLOPT_WRITEDATA, &streams[i]);
        streams[i].opened_ms = bf_bench_now_ms ();
        curl_multi_add_handle (multi, handles[i]);
    }
    double end = start + opts->seconds * 1000.0;
    int running = n;
    while (bf_bench_now_ms () < end) {
        curl_multi_perform (multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read (multi, &left)))
            if (msg->msg == CURLMSG_DONE) {
                long status = 0;
                curl_easy_getinfo (msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
                fprintf (stderr, "console_bench: an event stream ended early: %s, status %ld\n",
                         curl_easy_strerror (msg->data.result), status);
                rc = -1;
            }
        if (rc < 0)
            goto cleanup;
        int wait = (int)(end - bf_bench_now_ms ());
        curl_multi_poll (multi, NULL, 0, wait < 100 ? (wait > 0 ? wait : 0) : 100, NULL);
    }
    double elapsed = (bf_bench_now_ms () - start) / 1000.0;
    int total = 0, lo = streams[0].events, hi = streams[0].events, without = 0, nfirst = 0;
    for (int i = 0; i < n; i++) {
        total += streams[i].events;
        lo = streams[i].events < lo ? streams[i].events : lo;
        hi = streams[i].events > hi ? streams[i].events : hi;
        if (streams[i].events)
            first[nfirst++] = streams[i].first_ms;
        else
            without += !streams[i].events;
    }
    printf ("event streams: %d clients for %.1f s: %d overview events (per client %d..%d, "
            "%.2f/s each)\n",
            n, elapsed, total, lo, hi, n ? total / (double)n / elapsed : 0.0);
    if (nfirst) {
        double p99 = s_p99 (first, nfirst);
        printf ("event streams: first event after %.2f ms median, %.2f ms p99%s\n",
                first[nfirst / 2], p99, p99 > opts->target_ms ? "  over" : "");
        rc = p99 > opts->target_ms;
    }
    if (without) {
        fprintf (stderr, "console_bench: %d of %d event streams received no event\n", without, n);
        rc = -1;
    }
cleanup:
    for (int i = 0; handles && i < n; i++)
        if (handles[i]) {
            curl_multi_remove_handle (multi, handles[i]);
            curl_easy_cleanup (handles[i]);
        }
    free (handles);
    free (streams);
    free (first);
    curl_multi_cleanup (multi);
    return rc;
}

int
main (int argc, char *argv[])
{
    s_options_t opts;
    if (!s_parse (argc, argv, &opts))
        return 2;
    char password[1024];
    if (!s_read_password (opts.password_file, password, sizeof password))
        return 1;
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    int status = 1, over = 0;
    /*  The handles of the session share its cookie (set before any handle
        joins the share).  */
    CURLSH *share = curl_share_init ();
    if (share)
        curl_share_setopt (share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
    CURL *h = share ? s_handle (share) : NULL;
    char csrf[256];
    double ms = 0;
    if (!h)
        goto cleanup;
    if (!s_login (h, &opts, password, csrf, sizeof csrf, &ms))
        goto cleanup;
    if (opts.requests) {
        int rc = s_time_requests (h, &opts);
        if (rc < 0)
            goto cleanup;
        over += rc;
    }
    if (opts.logins) {
        int rc = s_time_logins (&opts, password);
        if (rc < 0)
            goto cleanup;
        over += rc;
    }
    if (opts.sse) {
        int rc = s_streams (share, &opts);
        if (rc < 0)
            goto cleanup;
        over += rc;
    }
    if (over)
        printf ("console_bench: %d over target (p99 > %.0f ms)\n", over, opts.target_ms);
    else
        printf ("console_bench: ok\n");
    status = 0;
cleanup:
    curl_easy_cleanup (h);
    curl_share_cleanup (share);
    curl_global_cleanup ();
    return status;
}
