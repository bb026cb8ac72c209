/*  mp_outage — a mail server outage on demand (see mp_outage.h).  */

#include "mp_outage.h"

#include <pthread.h>

static struct {
    pthread_mutex_t lock;
    int64_t refuse_until, error_until; /* monotonic ms; 0 = no outage set */
} s_outage = { .lock = PTHREAD_MUTEX_INITIALIZER };

void
mp_outage_begin (int64_t now_ms, unsigned refuse_ms, unsigned error_ms)
{
    pthread_mutex_lock (&s_outage.lock);
    s_outage.refuse_until = now_ms + refuse_ms;
    s_outage.error_until = s_outage.refuse_until + error_ms;
    pthread_mutex_unlock (&s_outage.lock);
}

mp_outage_phase_t
mp_outage_phase (int64_t now_ms)
{
    pthread_mutex_lock (&s_outage.lock);
    mp_outage_phase_t phase = now_ms < s_outage.refuse_until  ? MP_OUTAGE_REFUSE
                              : now_ms < s_outage.error_until ? MP_OUTAGE_ERROR
                                                              : MP_OUTAGE_NONE;
    pthread_mutex_unlock (&s_outage.lock);
    return phase;
}

int64_t
mp_outage_next_ms (int64_t now_ms)
{
    pthread_mutex_lock (&s_outage.lock);
    int64_t next = now_ms < s_outage.refuse_until  ? s_outage.refuse_until - now_ms
                   : now_ms < s_outage.error_until ? s_outage.error_until - now_ms
                                                   : -1;
    pthread_mutex_unlock (&s_outage.lock);
    return next;
}

const char *
mp_outage_phase_name (mp_outage_phase_t phase)
{
    return phase == MP_OUTAGE_REFUSE ? "refusing" : phase == MP_OUTAGE_ERROR ? "554" : "up";
}
