/*  billdata — the data tool: schema migrations, synthetic data, CSV import
    and bill export. See `billdata --help` and docs/data-import.md.

    Exit codes: 0 done; 1 the input was rejected (nothing loaded) or there was
    nothing to export; 2 bad command line or configuration; 3 database
    unavailable or failed.  */

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bd_export.h"
#include "bd_generate.h"
#include "bd_import.h"
#include "bf_config.h"
#include "bf_db.h"
#include "bf_log.h"
#include "bf_migrate.h"
#include "bf_pii.h"

#define EXIT_REJECTED 1
#define EXIT_USAGE    2
#define EXIT_DATABASE 3

static const char *s_usage
    = "usage: billdata [--config FILE] [--db CONNINFO] COMMAND [ARGS]\n"
      "\n"
      "commands:\n"
      "  migrate                         apply pending schema migrations\n"
      "  generate --subscribers N --period YYYY-MM [--seed S] [--out DIR]\n"
      "                                  synthetic data; loads it into the database,\n"
      "                                  or writes the import CSV files into DIR\n"
      "  import [--replace] [--max-errors N] DIR\n"
      "                                  load DIR/*.csv (docs/data-format.md), all or nothing\n"
      "  export-bills --period YYYY-MM DIR\n"
      "                                  write DIR/bills.csv and DIR/bill_lines.csv\n"
      "  keygen [FILE]                   new PII master key into FILE (mode 0600) or stdout\n"
      "\n"
      "options:\n"
      "  --config FILE    config file (default $BILLFLOW_CONFIG); see docs/configuration.md\n"
      "  --db CONNINFO    libpq connection string or URI (overrides db.conninfo)\n"
      "  -h, --help       this text\n"
      "\n"
      "exit codes: 0 done, 1 input rejected or nothing to export, 2 usage or config error,\n"
      "            3 database error\n";

static long
s_peak_rss_mb (void)
{
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

#define s_usage_error(...) bf_usage_error ("billdata", s_usage, __VA_ARGS__)

static PGconn *
s_connect (const bf_config_t *config)
{
    return bf_db_connect (bf_config_str (config, "db.conninfo"), "billdata",
                          (int)bf_config_int (config, "db.connect_timeout_ms"));
}

static bf_pii_t *
s_pii (const bf_config_t *config)
{
    char err[256];
    bf_pii_t *pii = bf_pii_load (bf_config_str (config, "pii.key_file"),
                                 bf_config_str (config, "pii.key"), err, sizeof err);
    if (!pii)
        fprintf (stderr, "billdata: PII key: %s\n", err);
    return pii;
}

static void
s_print_rows (const bd_import_t *import, double seconds)
{
    int64_t total = 0;
    for (int t = 0; t < BD_TABLE_COUNT; t++) {
        int64_t rows = bd_import_rows (import, (bd_table_t)t);
        total += rows;
        printf ("  %-26s %10lld rows %7.1f s\n", bd_tables[t].file, (long long)rows,
                bd_import_seconds (import, (bd_table_t)t));
    }
    printf ("  %-26s %10lld rows in %.1f s (%.0f rows/s), peak RSS %ld MB\n", "total",
            (long long)total, seconds, seconds > 0 ? (double)total / seconds : 0.0,
            s_peak_rss_mb ());
}

/*  Finishes an import: prints its errors or its counts. Returns an exit code. */
static int
s_finish_import (bd_import_t *import, double started, const char *what)
{
    int rc = bd_import_finish (import);
    if (rc == 1) {
        fprintf (stderr, "billdata: %s rejected, nothing loaded: %ld error%s\n", what,
                 bd_import_error_count (import), bd_import_error_count (import) == 1 ? "" : "s");
        bd_import_report (import, stderr);
        return EXIT_REJECTED;
    }
    if (rc < 0) {
        fprintf (stderr, "billdata: %s failed (database error: %s %s); nothing loaded\n", what,
                 bf_db_last_sqlstate (), bf_db_last_message ());
        return EXIT_DATABASE;
    }
    printf ("%s committed:\n", what);
    s_print_rows (import, (zclock_usecs () / 1e6) - started);
    return 0;
}

static int
s_cmd_migrate (const bf_config_t *config)
{
    PGconn *conn = s_connect (config);
    if (!conn)
        return EXIT_DATABASE;
    int applied = bf_migrate (conn);
    char current[128] = "none";
    if (applied >= 0)
        bf_migrate_current (conn, current, sizeof current);
    PQfinish (conn);
    if (applied < 0) {
        fprintf (stderr, "billdata: migrate failed (see log)\n");
        return EXIT_DATABASE;
    }
    printf ("migrate: %d applied, schema at %s\n", applied, current);
    return 0;
}

static int
s_cmd_import (const bf_config_t *config, int argc, char **argv)
{
    static const struct option options[] = {
        { "replace", no_argument, NULL, 'r' },
        { "max-errors", required_argument, NULL, 'm' },
        { NULL, 0, NULL, 0 },
    };
    bd_import_opts_t opts = { .max_errors = bf_config_int (config, "import.max_errors") };
    int c;
    while ((c = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (c == 'r')
            opts.replace = true;
        else if (c == 'm') {
            char *end;
            errno = 0;
            opts.max_errors = strtol (optarg, &end, 10);
            if (errno || *end || opts.max_errors < 1)
                return s_usage_error ("--max-errors needs a positive number, not '%s'", optarg);
        } else
            return s_usage_error ("import: unknown option");
    }
    if (optind != argc - 1)
        return s_usage_error ("import needs exactly one directory");
    bf_pii_t *pii = s_pii (config);
    if (!pii)
        return EXIT_USAGE;
    opts.pii = pii;
    int rc = EXIT_DATABASE;
    PGconn *conn = s_connect (config);
    bd_import_t *import = conn ? bd_import_new (conn, &opts) : NULL;
    if (import) {
        double started = (zclock_usecs () / 1e6);
        bd_import_dir (import, argv[optind]);
        rc = s_finish_import (import, started, "import");
        bd_import_destroy (&import);
    }
    PQfinish (conn);
    bf_pii_destroy (&pii);
    return rc;
}

static int
s_cmd_generate (const bf_config_t *config, int argc, char **argv)
{
    static const struct option options[] = {
        { "subscribers", required_argument, NULL, 'n' },
        { "period", required_argument, NULL, 'p' },
        { "seed", required_argument, NULL, 's' },
        { "out", required_argument, NULL, 'o' },
        { NULL, 0, NULL, 0 },
    };
    bd_gen_opts_t opts = { .subscribers = 0, .seed = 1 };
    const char *out = NULL, *period = NULL;
    int c;
    while ((c = getopt_long (argc, argv, "", options, NULL)) != -1) {
        char *end = NULL;
        errno = 0;
        switch (c) {
            case 'n':
                opts.subscribers = strtoll (optarg, &end, 10);
                if (errno || *end || opts.subscribers < 1 || opts.subscribers > 100000000)
                    return s_usage_error ("--subscribers needs 1..100000000, not '%s'", optarg);
                break;
            case 'p':
                period = optarg;
                break;
            case 's':
                opts.seed = strtoull (optarg, &end, 10);
                if (errno || *end || optarg[0] == '-')
                    return s_usage_error ("--seed needs a non-negative integer, not '%s'", optarg);
                break;
            case 'o':
                out = optarg;
                break;
            default:
                return s_usage_error ("generate: unknown option");
        }
    }
    if (optind != argc)
        return s_usage_error ("generate: unexpected argument '%s'", argv[optind]);
    if (opts.subscribers < 1)
        return s_usage_error ("generate needs --subscribers N");
    if (!period || bf_period_parse (period, &opts.period) != 0)
        return s_usage_error ("generate needs --period YYYY-MM, not '%s'", period ? period : "");
    double started = (zclock_usecs () / 1e6);
    if (out) {
        if (mkdir (out, 0755) != 0 && errno != EEXIST) {
            fprintf (stderr, "billdata: cannot create %s: %s\n", out, strerror (errno));
            return EXIT_USAGE;
        }
        bd_sink_t *sink = bd_csv_sink_new (out);
        if (!sink)
            return EXIT_USAGE;
        int rc = bd_generate (&opts, sink);
        if (bd_csv_sink_destroy (&sink) != 0 || rc != 0) {
            fprintf (stderr, "billdata: writing %s failed\n", out);
            return EXIT_USAGE;
        }
        printf ("generate: %lld subscribers for %s (seed %llu) written to %s in %.1f s, "
                "peak RSS %ld MB\n",
                (long long)opts.subscribers, period, (unsigned long long)opts.seed, out,
                (zclock_usecs () / 1e6) - started, s_peak_rss_mb ());
        return 0;
    }
    bf_pii_t *pii = s_pii (config);
    if (!pii)
        return EXIT_USAGE;
    bd_import_opts_t iopts
        = { .max_errors = bf_config_int (config, "import.max_errors"), .pii = pii };
    int rc = EXIT_DATABASE;
    PGconn *conn = s_connect (config);
    bd_import_t *import = conn ? bd_import_new (conn, &iopts) : NULL;
    if (import) {
        /*  A generator that stops early (sink refused a row, or bad options)
            leaves the import open: roll it back, never commit half a month.  */
        if (bd_generate (&opts, bd_import_sink (import)) != 0
            && bd_import_error_count (import) == 0) {
            fprintf (stderr, "billdata: generate failed (see log); nothing loaded\n");
            rc = EXIT_DATABASE;
        } else
            rc = s_finish_import (import, started, "generate");
        bd_import_destroy (&import);
    }
    PQfinish (conn);
    bf_pii_destroy (&pii);
    return rc;
}

static int
s_cmd_export (const bf_config_t *config, int argc, char **argv)
{
    static const struct option options[] = {
        { "period", required_argument, NULL, 'p' },
        { NULL, 0, NULL, 0 },
    };
    const char *period = NULL;
    int c;
    while ((c = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (c == 'p')
            period = optarg;
        else
            return s_usage_error ("export-bills: unknown option");
    }
    if (!period)
        return s_usage_error ("export-bills needs --period YYYY-MM");
    if (optind != argc - 1)
        return s_usage_error ("export-bills needs exactly one directory");
    const char *dir = argv[optind];
    struct stat st;
    if (stat (dir, &st) != 0 || !S_ISDIR (st.st_mode)) {
        fprintf (stderr, "billdata: %s is not a directory\n", dir);
        return EXIT_USAGE;
    }
    PGconn *conn = s_connect (config);
    if (!conn)
        return EXIT_DATABASE;
    double started = (zclock_usecs () / 1e6);
    bd_export_stats_t stats;
    int rc = bd_export_bills (conn, period, dir, &stats);
    PQfinish (conn);
    if (rc != 0)
        return rc > 0 ? EXIT_REJECTED : EXIT_DATABASE;
    printf ("export-bills: %lld bills, %lld lines of %s written to %s in %.1f s, "
            "peak RSS %ld MB\n",
            (long long)stats.bills, (long long)stats.lines, period, dir,
            (zclock_usecs () / 1e6) - started, s_peak_rss_mb ());
    return 0;
}

static int
s_cmd_keygen (int argc, char **argv)
{
    char key[BF_PII_KEY_HEX_LEN + 1];
    bf_pii_keygen (key, sizeof key);
    if (argc <= 1) {
        printf ("%s\n", key);
        return 0;
    }
    int fd = open (argv[1], O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        fprintf (stderr, "billdata: cannot create %s: %s (an existing key is never overwritten)\n",
                 argv[1], strerror (errno));
        return EXIT_USAGE;
    }
    bool ok = write (fd, key, strlen (key)) == (ssize_t)strlen (key) && write (fd, "\n", 1) == 1;
    ok = close (fd) == 0 && ok;
    if (!ok) {
        fprintf (stderr, "billdata: writing %s failed\n", argv[1]);
        return EXIT_USAGE;
    }
    printf ("keygen: new key written to %s\n", argv[1]);
    return 0;
}

int
main (int argc, char **argv)
{
    const char *config_path = NULL, *db = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp (argv[i], "-h") || !strcmp (argv[i], "--help")) {
            fputs (s_usage, stdout);
            return 0;
        } else if (!strcmp (argv[i], "--config") && i + 1 < argc)
            config_path = argv[++i];
        else if (!strcmp (argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else
            return s_usage_error ("unknown or incomplete option '%s'", argv[i]);
    }
    if (i == argc)
        return s_usage_error ("no command given");
    const char *command = argv[i];
    if (!strcmp (command, "keygen"))
        return s_cmd_keygen (argc - i, argv + i);

    char err[512];
    bf_config_t *config = bf_config_load (config_path, err, sizeof err);
    if (config && db && bf_config_set (config, "db.conninfo", db, "--db", err, sizeof err) != 0)
        bf_config_destroy (&config);
    if (!config) {
        fprintf (stderr, "billdata: configuration: %s\n", err);
        return EXIT_USAGE;
    }
    bf_config_log_init (config, "billdata");

    /*  Subcommands parse their own options from their name on.  */
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    optind = 1;
    int rc;
    if (!strcmp (command, "migrate") && sub_argc == 1)
        rc = s_cmd_migrate (config);
    else if (!strcmp (command, "import"))
        rc = s_cmd_import (config, sub_argc, sub_argv);
    else if (!strcmp (command, "generate"))
        rc = s_cmd_generate (config, sub_argc, sub_argv);
    else if (!strcmp (command, "export-bills"))
        rc = s_cmd_export (config, sub_argc, sub_argv);
    else
        rc = s_usage_error ("unknown command or arguments: '%s'", command);
    bf_config_destroy (&config);
    return rc;
}
