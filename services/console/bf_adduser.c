/*  bf_adduser — the adduser command (bf_adduser.h).  */

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "bf_adduser.h"
#include "bf_config.h"
#include "bf_log.h"
#include "bf_users.h"

static const char *s_usage
    = "usage: console adduser NAME --role operator|viewer [--users FILE] [--config FILE]\n"
      "\n"
      "  NAME           1-64 of A-Z a-z 0-9 . _ - (the name control audits as console/NAME)\n"
      "  --role ROLE    operator (queries and commands) or viewer (queries only)\n"
      "  --users FILE   the users file (default console.users_file); created 0600\n"
      "  --config FILE  config file (default $BILLFLOW_CONFIG)\n"
      "\n"
      "The password is asked twice without echo on a terminal; otherwise one line of\n"
      "standard input is the password. At least 10 bytes.\n"
      "Exit status: 0 added, 1 refused, 2 bad usage.\n";

int
bf_adduser_read_password (FILE *in, char *out, size_t size)
{
    int fd = fileno (in);
    struct termios saved, quiet;
    bool tty = isatty (fd) && tcgetattr (fd, &saved) == 0;
    if (tty) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        tcsetattr (fd, TCSAFLUSH, &quiet);
    }
    int rc = -1;
    if (fgets (out, (int)size, in)) {
        size_t len = strlen (out);
        if (len && out[len - 1] == '\n') {
            out[--len] = 0;
            rc = 0;
        } else if (len < size - 1 && feof (in))
            rc = 0; /* the last line, without a newline */
        if (len && out[len - 1] == '\r')
            out[--len] = 0;
    }
    if (tty)
        tcsetattr (fd, TCSAFLUSH, &saved);
    if (rc != 0)
        explicit_bzero (out, size);
    return rc;
}

/*  The password: twice on a terminal, once otherwise. Returns 0 or 1.  */
static int
s_password (char *out, size_t size)
{
    bool tty = isatty (STDIN_FILENO);
    if (tty)
        fputs ("password: ", stderr);
    if (bf_adduser_read_password (stdin, out, size) != 0) {
        fprintf (stderr, "console adduser: no password read (at most %zu bytes)\n", size - 2);
        return 1;
    }
    if (!tty)
        return 0;
    char again[BF_USERS_PASSWORD_MAX + 2];
    fputs ("password again: ", stderr);
    int rc = bf_adduser_read_password (stdin, again, sizeof again) == 0 && !strcmp (again, out) ? 0
                                                                                                : 1;
    explicit_bzero (again, sizeof again);
    if (rc)
        fprintf (stderr, "console adduser: the two passwords differ\n");
    return rc;
}

int
bf_adduser_main (int argc, char **argv)
{
    static const struct option options[] = {
        { "role", required_argument, NULL, 'r' },
        { "users", required_argument, NULL, 'u' },
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *role = NULL, *users = NULL, *config_path = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        if (c == 'r')
            role = optarg;
        else if (c == 'u')
            users = optarg;
        else if (c == 'c')
            config_path = optarg;
        else if (c == 'h') {
            fputs (s_usage, stdout);
            return 0;
        } else
            return bf_usage_error ("console adduser", s_usage, "unknown option");
    }
    if (optind + 1 != argc)
        return bf_usage_error ("console adduser", s_usage, "give one NAME");
    if (!role)
        return bf_usage_error ("console adduser", s_usage, "--role is required");
    char err[512];
    bf_config_t *config = NULL;
    if (!users) {
        config = bf_config_load (config_path, err, sizeof err);
        if (!config) {
            fprintf (stderr, "console adduser: configuration: %s\n", err);
            return 2;
        }
        users = bf_config_str (config, "console.users_file");
        if (!*users) {
            bf_config_destroy (&config);
            return bf_usage_error ("console adduser", s_usage,
                                   "no users file: give --users FILE or set console.users_file");
        }
    }
    char password[BF_USERS_PASSWORD_MAX + 2];
    int rc = s_password (password, sizeof password);
    if (rc == 0 && bf_users_add (users, argv[optind], role, password, err, sizeof err) != 0) {
        fprintf (stderr, "console adduser: %s\n", err);
        rc = 1;
    } else if (rc == 0)
        printf ("console adduser: %s (%s) added to %s\n", argv[optind], role, users);
    explicit_bzero (password, sizeof password);
    bf_config_destroy (&config);
    return rc;
}
