/*  console — the operators' web console (services/console/README.md).

    `console [--config FILE] [--listen HOST:PORT]` serves the web UI and
    its JSON API (bf_console.h) until SIGTERM/SIGINT; `console adduser`
    adds a person to the users file (bf_adduser.h).  */

#include <stdio.h>
#include <string.h>

#include "bf_adduser.h"
#include "bf_console.h"
#include "bf_log.h"
#include "bf_service.h"

static const char *s_usage
    = "usage: console [--config FILE] [--listen HOST:PORT] [--users FILE]\n"
      "       console adduser NAME --role operator|viewer [--users FILE] [--config FILE]\n"
      "\n"
      "  --config FILE      config file (default $BILLFLOW_CONFIG); docs/configuration.md\n"
      "  --listen HOST:PORT where to serve (default console.listen)\n"
      "  --users FILE       the users file (default console.users_file)\n"
      "\n"
      "The console needs console.users_file, console.key_file (its key pair, from\n"
      "`billctl keygen`, listed with role console in control.allowed_keys),\n"
      "control.endpoint and control.server_key; services/console/README.md.\n"
      "Exit status: 0 stopped by a signal, 2 bad usage or configuration or failed to start.\n";

int
main (int argc, char **argv)
{
    if (argc >= 2 && !strcmp (argv[1], "adduser"))
        return bf_adduser_main (argc - 1, argv + 1);
    const char *config_path = NULL;
    bf_config_override_t overrides[] = {
        { "console.listen", NULL, "--listen" },
        { "console.users_file", NULL, "--users" },
    };
    int rc = bf_service_options (argc, argv, "console", s_usage, &config_path, overrides, 2);
    if (rc >= 0)
        return rc;
    bf_service_t service = { 0 };
    rc = bf_service_load (&service, "console", config_path, overrides, 2);
    bf_console_args_t args;
    char err[512];
    if (rc == 0 && bf_console_args_from_config (&args, service.config, err, sizeof err) != 0)
        rc = bf_service_config_error (&service, "%s", err);
    /*  No database: /readyz checks control instead (bf_overview.h).  */
    service.no_database = true;
    if (rc == 0)
        rc = bf_service_start (&service);
    bf_console_t *console = NULL;
    if (rc == 0) {
        console = bf_console_new (&args, err, sizeof err);
        if (!console) {
            bf_error ("console %s: cannot start: %s", service.instance, err);
            fprintf (stderr, "console: start-up stopped: %s\n", err);
            rc = BF_SERVICE_EXIT_CONFIG;
        }
    }
    if (rc == 0)
        bf_service_wait (&service, NULL, NULL);
    bf_console_destroy (&console);
    bf_service_end (&service);
    return rc;
}
