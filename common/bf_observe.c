/*  bf_observe — start and stop of a program's observability endpoint.  */

#include <stdatomic.h>
#include <stdio.h>

#include "bf_health.h"
#include "bf_http.h"
#include "bf_log.h"
#include "bf_metrics.h"
#include "bf_observe.h"

static bf_http_t *s_http;
static atomic_bool s_config_loaded;
static atomic_bool s_actors_ready;
static _Atomic uint64_t s_ended_when_ready;

/*  "actors": main said they are up, and no actor thread has ended since
    (an actor's sockets live and die with its thread).  */
static bool
s_actors_check (void *arg, char *reason, size_t reasonsize)
{
    (void)arg;
    if (!atomic_load (&s_actors_ready)) {
        snprintf (reason, reasonsize, "no");
        return false;
    }
    char last[48];
    uint64_t ended = bf_health_actors_ended (last, sizeof last);
    uint64_t lost = ended - atomic_load (&s_ended_when_ready);
    if (lost == 0) {
        snprintf (reason, reasonsize, "yes");
        return true;
    }
    snprintf (reason, reasonsize, "no: %llu actor%s ended, last %s", (unsigned long long)lost,
              lost == 1 ? "" : "s", last);
    return false;
}

int
bf_observe_start (const bf_config_t *config, const char *program, bool database, char *err,
                  size_t errsize)
{
    char key[64];
    snprintf (key, sizeof key, "%s.http", program);
    const char *address = bf_config_str (config, key);
    bf_metrics_init ();
    if (bf_http_is_off (address))
        return 0;
    char why[256];
    if (bf_http_check_address (address, why, sizeof why) != 0)
        return bf_err_set (err, errsize, "%s: %s", key, why);
    atomic_store (&s_config_loaded, true);
    bf_health_ready_add ("config", bf_health_flag_check, &s_config_loaded);
    if (database)
        bf_health_ready_add ("postgresql", bf_health_ready_db, NULL);
    bf_health_ready_add ("actors", s_actors_check, NULL);
    bf_http_args_t args = { .address = address,
                            .program = program,
                            .stale_ms = bf_config_int (config, "http.stuck_ms") };
    s_http = bf_http_start (&args, err, errsize);
    return s_http ? 0 : -1;
}

void
bf_observe_ready (bool ready)
{
    if (ready)
        atomic_store (&s_ended_when_ready, bf_health_actors_ended (NULL, 0));
    atomic_store (&s_actors_ready, ready);
}

int
bf_observe_port (void)
{
    return bf_http_port (s_http);
}

void
bf_observe_stop (void)
{
    bf_http_stop (&s_http);
}
