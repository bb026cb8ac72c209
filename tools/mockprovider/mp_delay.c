/*  mp_delay — HTTP replies that are due later (the channels' latency).  */

#include "mp_delay.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stddef.h>
#include <time.h>

#include "mp_clock.h"
#include "mp_log.h"
#include "mp_store.h"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* waits on CLOCK_MONOTONIC */
    mp_delay_item_t *head[MP_CHANNELS];
    mp_delay_item_t *tail[MP_CHANNELS];
    bool stop;
    pthread_t thread;
} s_delay;

/*  Takes the items that are due (all of them once stopping) off the queues, in a list, and
    sets next to the earliest due time left (INT64_MAX when none). Caller holds the lock.  */
static mp_delay_item_t *
s_take_due (int64_t now, int64_t *next)
{
    mp_delay_item_t *due = NULL, **tail = &due;
    *next = INT64_MAX;
    for (int ch = 0; ch < MP_CHANNELS; ch++) {
        mp_delay_item_t *r;
        while ((r = s_delay.head[ch]) && (s_delay.stop || r->due_ns <= now)) {
            s_delay.head[ch] = r->next;
            if (!r->next)
                s_delay.tail[ch] = NULL;
            r->next = NULL;
            *tail = r;
            tail = &r->next;
        }
        if (r && r->due_ns < *next)
            *next = r->due_ns;
    }
    return due;
}

/*  The delay thread: resumes connections whose reply is due; on stop resumes all of them.  */
static void *
s_delay_run (void *arg)
{
    (void)arg;
    pthread_mutex_lock (&s_delay.lock);
    for (;;) {
        int64_t next;
        mp_delay_item_t *due = s_take_due (mp_clock_ns (), &next);
        if (due) {
            pthread_mutex_unlock (&s_delay.lock);
            while (due) {
                /*  Once resumed the request may complete and be freed at any moment.  */
                mp_delay_item_t *r = due;
                due = r->next;
                MHD_resume_connection (r->connection);
            }
            pthread_mutex_lock (&s_delay.lock);
            continue;
        }
        if (s_delay.stop)
            break;
        if (next == INT64_MAX)
            pthread_cond_wait (&s_delay.wake, &s_delay.lock);
        else {
            struct timespec ts = { .tv_sec = next / 1000000000, .tv_nsec = next % 1000000000 };
            pthread_cond_timedwait (&s_delay.wake, &s_delay.lock, &ts);
        }
    }
    pthread_mutex_unlock (&s_delay.lock);
    return NULL;
}

int
mp_delay_start (void)
{
    pthread_condattr_t cattr;
    pthread_condattr_init (&cattr);
    pthread_condattr_setclock (&cattr, CLOCK_MONOTONIC);
    pthread_cond_init (&s_delay.wake, &cattr);
    pthread_mutex_init (&s_delay.lock, NULL);
    if (pthread_create (&s_delay.thread, NULL, s_delay_run, NULL) != 0) {
        mp_log ("cannot start the delay thread");
        return -1;
    }
    return 0;
}

/*  Suspending under our lock, before the item is queued, guarantees the delay thread never
    resumes a connection that is not suspended yet.  */
bool
mp_delay_push (mp_delay_item_t *item, int channel, unsigned ms)
{
    pthread_mutex_lock (&s_delay.lock);
    if (s_delay.stop) {
        pthread_mutex_unlock (&s_delay.lock);
        return false;
    }
    MHD_suspend_connection (item->connection);
    item->due_ns = mp_clock_ns () + (int64_t)ms * 1000000;
    item->next = NULL;
    if (s_delay.tail[channel])
        s_delay.tail[channel]->next = item;
    else {
        s_delay.head[channel] = item;
        pthread_cond_signal (&s_delay.wake);
    }
    s_delay.tail[channel] = item;
    pthread_mutex_unlock (&s_delay.lock);
    return true;
}

void
mp_delay_stop (void)
{
    /*  After stop is set under the lock no handler suspends a connection again.  */
    pthread_mutex_lock (&s_delay.lock);
    s_delay.stop = true;
    pthread_cond_signal (&s_delay.wake);
    pthread_mutex_unlock (&s_delay.lock);
    pthread_join (s_delay.thread, NULL);
}
