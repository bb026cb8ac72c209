/*  bf_fault — SIGKILL at a named point, for crash tests (see bf_fault.h).  */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf_fault.h"
#include "bf_log.h"

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static char s_name[128];
static long s_target = 1;
static atomic_long s_hits;
static bool s_armed;

static void
s_init (void)
{
    const char *spec = getenv ("BF_FAULT");
    if (!spec || !*spec)
        return;
    snprintf (s_name, sizeof s_name, "%s", spec);
    char *colon = strchr (s_name, ':');
    if (colon) {
        *colon = 0;
        s_target = atol (colon + 1);
        if (s_target < 1)
            s_target = 1;
    }
    s_armed = true;
    bf_warn ("fault injection armed: SIGKILL at '%s' hit %ld", s_name, s_target);
}

void
bf_fault (const char *name)
{
    pthread_once (&s_once, s_init);
    if (!s_armed || strcmp (name, s_name) != 0)
        return;
    if (atomic_fetch_add (&s_hits, 1) + 1 == s_target) {
        bf_warn ("fault injection: SIGKILL at '%s'", name);
        kill (getpid (), SIGKILL);
    }
}
