/*  bf_sender_config — notify's provider settings (notify.smtp_*,
    notify.sms_*, notify.push_*, concurrency, rates, timeouts, breaker;
    docs/configuration.md) as the bf_sender_config_t a sender is made
    from (bf_sender.h).  */

#ifndef BF_SENDER_CONFIG_H_INCLUDED
#define BF_SENDER_CONFIG_H_INCLUDED

#include <stddef.h>

#include "bf_config.h"
#include "bf_sender.h"

/*  Fills every field of *sender from config: the process's settings, not
    yet a dispatcher's share of them. The strings point into config, which
    must outlive sender.  */
void bf_sender_args_from_config (bf_sender_config_t *sender, const bf_config_t *config);

/*  Credentials over plain smtp:// would cross the network in clear: with a
    user name, plain smtp:// and neither smtp_starttls nor
    smtp_allow_plain_auth, returns -1 with the reason (naming the notify.*
    settings) in err; else 0.  */
int bf_sender_config_check_auth (const bf_sender_config_t *sender, char *err, size_t errsize);

#endif
