/*  bf_testproc — start, watch, kill and restart the real binaries.  */

#include <arpa/inet.h>
#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bf_testproc.h"

#define S_MAX_CHILDREN 64

static pid_t s_children[S_MAX_CHILDREN];
static bool s_atexit_set;

/*  --- sanitizer reports of the children -----------------------------------

    In a sanitizer build (build-asan: the test program itself is built
    with -fsanitize=address), every process a test starts — services,
    billctl, billdata, the mock provider, by bf_proc_start, system() or
    popen() — is the sanitizer build too and inherits ASAN_OPTIONS and
    UBSAN_OPTIONS, to which this harness adds log_path: each report is
    written to a file in a directory of this test program's own
    ($BF_SANITIZER_DIR/<program>-<pid>/, default ./sanitizer-logs/...).
    Leak checking is on (detect_leaks=1), and bf_proc_kill_all stops the
    children with SIGTERM first so that they exit normally and leaks and
    errors of the shutdown path are reported too. A report fails the test
    program: bf_proc_kill_all prints every new report file, and at exit the
    program exits 1 when there was any (bf_proc_sanitizer_reports).  */

#if defined(__SANITIZE_ADDRESS__)
#define S_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_SANITIZED 1
#endif
#endif

#ifdef S_SANITIZED
static char s_report_dir[512];
static int s_reports_seen;

//  Prints every report file not printed yet; returns how many there are.
static int
s_scan_reports (void)
{
    DIR *dir = s_report_dir[0] ? opendir (s_report_dir) : NULL;
    if (!dir)
        return 0;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        count++;
        if (strstr (entry->d_name, ".shown"))
            continue;
        char path[1024], shown[1100];
        snprintf (path, sizeof path, "%s/%s", s_report_dir, entry->d_name);
        snprintf (shown, sizeof shown, "%s.shown", path);
        fprintf (stderr, "==== sanitizer report of a child process: %s\n", path);
        FILE *file = fopen (path, "r");
        if (file) {
            char line[1024];
            while (fgets (line, sizeof line, file))
                fputs (line, stderr);
            fclose (file);
        }
        rename (path, shown);
    }
    closedir (dir);
    return count;
}

static void
s_reports_at_exit (void)
{
    bf_proc_kill_all ();
    s_reports_seen = s_scan_reports ();
    if (s_reports_seen > 0) {
        fprintf (stderr, "==== %d sanitizer report(s) in %s: failing\n", s_reports_seen,
                 s_report_dir);
        fflush (stderr);
        _exit (1);
    }
}

//  Appends ":log_path=..." (and defaults) to the variable for the children.
static void
s_add_options (const char *name, const char *extra)
{
    const char *old = getenv (name);
    char value[1400];
    snprintf (value, sizeof value, "%s%s%s:log_path=%s/%s", old && *old ? old : "",
              old && *old ? ":" : "", extra, s_report_dir,
              strcmp (name, "ASAN_OPTIONS") == 0 ? "asan" : "ubsan");
    setenv (name, value, 1);
}

__attribute__ ((constructor)) static void
s_sanitizer_setup (void)
{
    const char *base = getenv ("BF_SANITIZER_DIR");
    if (!base || !*base)
        base = "sanitizer-logs";
    mkdir (base, 0755);
    char name[64] = "test";
    FILE *comm = fopen ("/proc/self/comm", "r");
    if (comm) {
        if (fgets (name, sizeof name, comm))
            name[strcspn (name, "\n")] = 0;
        fclose (comm);
    }
    snprintf (s_report_dir, sizeof s_report_dir, "%s/%s-%d", base, name, (int)getpid ());
    if (mkdir (s_report_dir, 0755) != 0) {
        s_report_dir[0] = 0;
        return;
    }
    s_add_options ("ASAN_OPTIONS", "detect_leaks=1:log_exe_name=1");
    s_add_options ("UBSAN_OPTIONS", "print_stacktrace=1:log_exe_name=1");
    //  Third-party leaks only (the file says which and why).
    const char *root = getenv ("BF_SOURCE_ROOT");
    if (root && *root) {
        const char *old = getenv ("LSAN_OPTIONS");
        char value[1400];
        snprintf (value, sizeof value,
                  "%s%ssuppressions=%s/tests/sanitizer/lsan.supp:print_suppressions=0",
                  old && *old ? old : "", old && *old ? ":" : "", root);
        setenv ("LSAN_OPTIONS", value, 1);
    }
    atexit (s_reports_at_exit);
}
#endif

int
bf_proc_sanitizer_reports (void)
{
#ifdef S_SANITIZED
    return s_scan_reports ();
#else
    return 0;
#endif
}

bool
bf_proc_sanitized (void)
{
#ifdef S_SANITIZED
    return true;
#else
    return false;
#endif
}

bool
bf_proc_maps (const bf_proc_t *p, const char *text)
{
    char path[64], line[1024];
    snprintf (path, sizeof path, "/proc/%d/maps", (int)p->pid);
    FILE *maps = p->pid > 0 ? fopen (path, "r") : NULL;
    bool found = false;
    while (maps && !found && fgets (line, sizeof line, maps))
        found = strchr (line, '/') && strstr (strchr (line, '/'), text);
    if (maps)
        fclose (maps);
    return found;
}

static void
s_track (pid_t pid, bool add)
{
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (add ? s_children[i] == 0 : s_children[i] == pid) {
            s_children[i] = add ? pid : 0;
            return;
        }
}

void
bf_proc_kill_all (void)
{
#ifdef S_SANITIZED
    //  A normal exit first, so that the sanitizers check it (leaks too).
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] > 0)
            kill (s_children[i], SIGTERM);
    for (int tries = 0; tries < 250; tries++) {
        bool running = false;
        for (int i = 0; i < S_MAX_CHILDREN; i++)
            if (s_children[i] > 0) {
                if (waitpid (s_children[i], NULL, WNOHANG) == s_children[i])
                    s_children[i] = 0;
                else
                    running = true;
            }
        if (!running)
            break;
        usleep (20000);
    }
#endif
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] > 0) {
            kill (s_children[i], SIGKILL);
            waitpid (s_children[i], NULL, 0);
            s_children[i] = 0;
        }
#ifdef S_SANITIZED
    s_scan_reports ();
#endif
}

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
bf_proc_init (bf_proc_t *p, const char *binary, const char *log)
{
    memset (p, 0, sizeof *p);
    p->binary = binary;
    snprintf (p->log, sizeof p->log, "%s", log);
}

void
bf_proc_env (bf_proc_t *p, const char *format, ...)
{
    if (p->nenv >= BF_PROC_MAX_ENV) {
        fprintf (stderr, "bf_proc_env: too many entries\n");
        abort ();
    }
    va_list args;
    va_start (args, format);
    vsnprintf (p->env[p->nenv++], sizeof p->env[0], format, args);
    va_end (args);
}

pid_t
bf_proc_start (bf_proc_t *p)
{
    if (!s_atexit_set) {
        atexit (bf_proc_kill_all);
        s_atexit_set = true;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        perror ("fork");
        abort ();
    }
    if (pid == 0) {
        for (int i = 0; i < p->nenv; i++)
            putenv (p->env[i]);
        int fd = open (p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
            close (fd);
        }
        if (p->shell)
            execl ("/bin/sh", "sh", "-c", p->shell, (char *)NULL);
        else
            execl (p->binary, p->binary, p->argv1, (char *)NULL);
        _exit (127);
    }
    s_track (pid, true);
    p->pid = pid;
    return pid;
}

static int
s_code (int status)
{
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

int
bf_proc_kill (bf_proc_t *p)
{
    if (p->pid <= 0)
        return -1;
    kill (p->pid, SIGKILL);
    int status = 0;
    waitpid (p->pid, &status, 0);
    s_track (p->pid, false);
    p->pid = 0;
    return s_code (status);
}

int
bf_proc_wait (bf_proc_t *p, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    int64_t until = s_now_ms () + timeout_ms;
    do {
        int status = 0;
        if (waitpid (p->pid, &status, WNOHANG) == p->pid) {
            s_track (p->pid, false);
            p->pid = 0;
            return s_code (status);
        }
        usleep (20000);
    } while (s_now_ms () < until);
    return -1;
}

int
bf_proc_stop (bf_proc_t *p, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    kill (p->pid, SIGTERM);
    int rc = bf_proc_wait (p, timeout_ms);
    return rc >= 0 ? rc : bf_proc_kill (p);
}

long
bf_proc_log_size (const bf_proc_t *p)
{
    struct stat st;
    return stat (p->log, &st) == 0 ? (long)st.st_size : 0;
}

//  p's log from byte from to its end (malloc'd), or NULL when there is none.
static char *
s_log_from (const bf_proc_t *p, long from)
{
    FILE *file = fopen (p->log, "r");
    if (!file)
        return NULL;
    char *buffer = NULL;
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    if (size > from && (buffer = malloc ((size_t)(size - from) + 1))) {
        fseek (file, from, SEEK_SET);
        size_t got = fread (buffer, 1, (size_t)(size - from), file);
        buffer[got] = 0;
    }
    fclose (file);
    return buffer;
}

bool
bf_proc_wait_log (const bf_proc_t *p, const char *text, long from, int timeout_ms)
{
    int64_t until = s_now_ms () + timeout_ms;
    do {
        char *buffer = s_log_from (p, from);
        bool found = buffer && strstr (buffer, text) != NULL;
        free (buffer);
        if (found)
            return true;
        usleep (50000);
    } while (s_now_ms () < until);
    return false;
}

int
bf_proc_log_port (const bf_proc_t *p, const char *text, long from, int timeout_ms)
{
    int64_t until = s_now_ms () + timeout_ms;
    do {
        char *buffer = s_log_from (p, from);
        const char *line = buffer ? strstr (buffer, text) : NULL;
        const char *end = line ? strchr (line, '\n') : NULL;
        const char *mark = line ? strstr (line, "(port ") : NULL;
        int port = -1;
        if (mark && end && mark < end && sscanf (mark, "(port %d)", &port) == 1
            && (port <= 0 || port > 65535))
            port = -1;
        free (buffer);
        if (port > 0)
            return port;
        usleep (50000);
    } while (s_now_ms () < until);
    return -1;
}

int
bf_proc_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = -1;
    if (fd >= 0 && bind (fd, (struct sockaddr *)&addr, sizeof addr) == 0
        && getsockname (fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs (addr.sin_port);
    if (fd >= 0)
        close (fd);
    return port;
}
