/*  fuzz_smtp — fuzz target for the SMTP client's reply parser and state
    machine (services/notify/bf_smtp.c), driven through its public API
    against a fake server on loopback TCP that sends the fuzzed bytes.

    Input: byte 0 = flags (bit 0: a username is configured, so AUTH PLAIN or
    LOGIN is tried when offered; bit 1: submit two messages, so the session
    is reused and RSET follows a failure); the rest is everything the
    server sends on the first connection (greeting, EHLO lines, replies),
    written at once, after which the server stops sending. Later
    connections are closed at once. What the client sends is read and
    dropped.

    Contract checked: every submitted message is reported exactly once
    (none lost, none twice), within the client's timeout; a report has a
    known error kind, a NUL-terminated line, and a code of 0 or 200-599;
    BF_SMTP_OK only with a final 2xx reply.  */

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <czmq.h>

#include "bf_smtp.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define S_MAX_CONNS 8
/*  Longer than any legitimate session here (each stage times out after
    2 s, and the server stops sending at once), shorter than scripts/fuzz's
    -timeout=10, so a hang is reported with this contract's line.  */
#define S_HANG_MS 8000

static int s_listener = -1;
static char s_url[64];

static void
s_listen (void)
{
    s_listener = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    bf_fuzz_require (s_listener >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    bf_fuzz_require (bind (s_listener, (struct sockaddr *)&addr, sizeof addr) == 0);
    bf_fuzz_require (listen (s_listener, 16) == 0);
    bf_fuzz_require (getsockname (s_listener, (struct sockaddr *)&addr, &len) == 0);
    snprintf (s_url, sizeof s_url, "smtp://127.0.0.1:%u/fuzz.example", ntohs (addr.sin_port));
}

typedef struct {
    int reported[2];
} s_seen_t;

static void
s_done (void *context, void *cookie, const bf_smtp_result_t *result)
{
    s_seen_t *seen = context;
    intptr_t which = (intptr_t)cookie;
    bf_fuzz_require (which == 0 || which == 1);
    seen->reported[which]++;
    if (getenv ("BF_FUZZ_VERBOSE"))
        fprintf (stderr, "message %d: error %d, code %d, in_setup %d: %s\n", (int)which,
                 (int)result->error, result->code, (int)result->in_setup, result->line);
    bf_fuzz_require (result->error >= BF_SMTP_OK && result->error <= BF_SMTP_UNEXPECTED);
    bf_fuzz_require (memchr (result->line, 0, sizeof result->line) != NULL);
    bf_fuzz_require (result->code == 0 || (result->code >= 200 && result->code <= 599));
    if (result->error == BF_SMTP_OK)
        bf_fuzz_require (result->code / 100 == 2 && !result->in_setup);
}

//  Writes all of data to a non-blocking socket (the peer keeps reading).
static void
s_write_all (int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t n = send (fd, data, size, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            size -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            (void)poll (&p, 1, 10);
        } else
            return; //  the client closed: the rest is not needed
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (s_listener < 0)
        s_listen ();
    uint8_t flags = data[0];
    bf_smtp_config_t config = {
        .url = s_url,
        .username = (flags & 1) ? "fuzz-user" : NULL,
        .password = "fuzz-password",
        .allow_plain_auth = true, /* loopback: the fuzzed server is this process */
        .max_sessions = 1,
        .queue_ms = 2000,
        .connect_ms = 1000,
        .greeting_ms = 2000,
        .command_ms = 2000,
        .data_ms = 2000,
        .block_ms = 2000,
        .end_ms = 2000,
    };
    char err[256];
    bf_smtp_t *smtp = bf_smtp_new (&config, err, sizeof err);
    bf_fuzz_require (smtp != NULL);
    static const char message[] = "Subject: fuzz\r\n\r\nline one\r\n.leading dot\r\n";
    int submitted = (flags & 2) ? 2 : 1;
    for (intptr_t i = 0; i < submitted; i++)
        bf_fuzz_require (bf_smtp_submit (smtp, "from@fuzz.example", "to@fuzz.example", message,
                                         sizeof message - 1, (void *)i)
                         == 0);

    s_seen_t seen = { { 0, 0 } };
    int conns[S_MAX_CONNS];
    size_t nconns = 0, accepted = 0;
    //  2 s per stall plus slack: a hang past that is a finding. Timed by
    //  the clock, not by loop rounds: a round's time depends on the
    //  machine, so a bound on rounds broke the contract on a fast one.
    const int64_t deadline = zclock_mono () + S_HANG_MS;
    while (bf_smtp_inflight (smtp) > 0) {
        bf_fuzz_require (zclock_mono () < deadline);
        bf_smtp_perform (smtp, s_done, &seen);
        if (bf_smtp_inflight (smtp) == 0)
            break;
        int fd;
        while ((fd = accept4 (s_listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
            if (accepted++ == 0) {
                s_write_all (fd, data + 1, size - 1);
                shutdown (fd, SHUT_WR);
            } else
                shutdown (fd, SHUT_WR);
            if (nconns < S_MAX_CONNS)
                conns[nconns++] = fd;
            else
                close (fd);
        }
        struct pollfd fds[S_MAX_CONNS + 2];
        fds[0] = (struct pollfd){ .fd = bf_smtp_fd (smtp), .events = POLLIN };
        fds[1] = (struct pollfd){ .fd = s_listener, .events = POLLIN };
        for (size_t i = 0; i < nconns; i++)
            fds[2 + i] = (struct pollfd){ .fd = conns[i], .events = POLLIN };
        int timeout = bf_smtp_timeout_ms (smtp);
        if (timeout < 0 || timeout > 50)
            timeout = 50;
        (void)poll (fds, 2 + nconns, timeout);
        //  What the client sends is dropped; a connection it closed is
        //  closed here too (left in the set, its end of file would make
        //  every poll return at once while the client waits on a timer).
        size_t kept = 0;
        for (size_t i = 0; i < nconns; i++) {
            if (fds[2 + i].revents) {
                char sink[4096];
                ssize_t got = recv (conns[i], sink, sizeof sink, 0);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                    close (conns[i]);
                    continue;
                }
            }
            conns[kept++] = conns[i];
        }
        nconns = kept;
    }
    bf_fuzz_require (seen.reported[0] == 1);
    bf_fuzz_require (seen.reported[1] == (submitted == 2 ? 1 : 0));
    bf_smtp_destroy (&smtp);
    for (size_t i = 0; i < nconns; i++)
        close (conns[i]);
    //  A connection the client opened and gave up before we accepted it.
    int fd;
    while ((fd = accept4 (s_listener, NULL, NULL, SOCK_CLOEXEC)) >= 0)
        close (fd);
    return 0;
}
