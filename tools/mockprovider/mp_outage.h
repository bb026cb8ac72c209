/*  mp_outage — a mail server outage on demand: for a while the SMTP port refuses connections,
    then it answers every new connection with a 554 greeting, then it recovers.

    The HTTP thread sets an outage (POST /v1/outage); the SMTP thread asks which phase is in
    force at each round and each accept. Without a call the mail server is never down (the
    default is a real provider's behaviour). Thread-safe (one mutex).  */

#ifndef MP_OUTAGE_H_INCLUDED
#define MP_OUTAGE_H_INCLUDED

#include <stdint.h>

typedef enum {
    MP_OUTAGE_NONE,   /* up */
    MP_OUTAGE_REFUSE, /* the listener is closed: connections are refused */
    MP_OUTAGE_ERROR   /* connections are taken and greeted with 554, then closed */
} mp_outage_phase_t;

/*  Starts an outage at now_ms: refuse_ms of refused connections, then error_ms of 554
    greetings, then up again. A call during an outage replaces it. Both 0 ends an outage.  */
void mp_outage_begin (int64_t now_ms, unsigned refuse_ms, unsigned error_ms);

/*  The phase in force at now_ms.  */
mp_outage_phase_t mp_outage_phase (int64_t now_ms);

/*  Milliseconds from now_ms until the phase changes by time alone; -1 when it will not (no
    outage set, or it is over).  */
int64_t mp_outage_next_ms (int64_t now_ms);

/*  "up" | "refusing" | "554".  */
const char *mp_outage_phase_name (mp_outage_phase_t phase);

#endif
