/*  bf_notify_cmd — the commands notify applies through its control link:
      dispatch.pause                       stop claiming deliveries (in flight ones finish)
      dispatch.resume                      claim again
      deliveries.retry   run_id=N | ids=1,2,3
                                           failed deliveries of a run, or by id, are PENDING
                                           again with fresh attempts (due at once whatever
                                           the clock); delivered ones are never touched
    Results are JSON objects. Delivery figures are control's queries.  */

#ifndef BF_NOTIFY_CMD_H_INCLUDED
#define BF_NOTIFY_CMD_H_INCLUDED

#include "bf_link.h"

extern const bf_link_verb_t bf_notify_cmd_verbs[];

#endif
