/*  bf_sender_config — notify's provider settings as a sender's
    configuration (see bf_sender_config.h).  */

#include <string.h>

#include "bf_log.h"
#include "bf_sender_config.h"

static int
s_int (const bf_config_t *config, const char *key)
{
    return (int)bf_config_int (config, key);
}

/*  The SMTP relay and its phase timeouts.  */
static void
s_smtp (bf_sender_config_t *sender, const bf_config_t *config)
{
    sender->smtp_url = bf_config_str (config, "notify.smtp_url");
    sender->smtp_from = bf_config_str (config, "notify.smtp_from");
    sender->smtp_username = bf_config_str (config, "notify.smtp_username");
    sender->smtp_password = bf_config_str (config, "notify.smtp_password");
    sender->smtp_starttls = bf_config_bool (config, "notify.smtp_starttls");
    sender->smtp_allow_plain_auth = bf_config_bool (config, "notify.smtp_allow_plain_auth");
    sender->smtp_greeting_ms = s_int (config, "notify.smtp_greeting_timeout_ms");
    sender->smtp_command_ms = s_int (config, "notify.smtp_command_timeout_ms");
    sender->smtp_data_ms = s_int (config, "notify.smtp_data_timeout_ms");
    sender->smtp_block_ms = s_int (config, "notify.smtp_block_timeout_ms");
    sender->smtp_end_ms = s_int (config, "notify.smtp_end_timeout_ms");
}

/*  Per provider (email, SMS, push, in bf_provider_t's order): in flight,
    rate and timeout.  */
static void
s_providers (bf_sender_config_t *sender, const bf_config_t *config)
{
    static const char *const names[BF_PROVIDER_COUNT] = { "email", "sms", "push" };
    for (int p = 0; p < BF_PROVIDER_COUNT; p++) {
        char key[64];
        snprintf (key, sizeof key, "notify.%s_concurrency", names[p]);
        sender->concurrency[p] = s_int (config, key);
        snprintf (key, sizeof key, "notify.%s_rate", names[p]);
        sender->rate_per_s[p] = s_int (config, key);
        snprintf (key, sizeof key, "notify.%s_timeout_ms", names[p]);
        sender->provider_timeout_ms[p] = s_int (config, key);
    }
    sender->timeout_ms = s_int (config, "notify.provider_timeout_ms");
}

void
bf_sender_args_from_config (bf_sender_config_t *sender, const bf_config_t *config)
{
    memset (sender, 0, sizeof *sender);
    s_smtp (sender, config);
    sender->sms_url = bf_config_str (config, "notify.sms_url");
    sender->sms_token = bf_config_str (config, "notify.sms_token");
    sender->push_url = bf_config_str (config, "notify.push_url");
    sender->push_token = bf_config_str (config, "notify.push_token");
    s_providers (sender, config);
    sender->breaker_error_pct = s_int (config, "notify.breaker_error_pct");
    sender->breaker_min_samples = s_int (config, "notify.breaker_min_samples");
    sender->breaker_open_ms = s_int (config, "notify.breaker_open_ms");
    /*  The provider's back-off after an outage's failure: the notices'
        own backoff settings (bf_sender.h, "Outage").  */
    sender->backoff_base_ms = s_int (config, "notify.backoff_base_ms");
    sender->backoff_max_ms = s_int (config, "notify.backoff_max_ms");
}

int
bf_sender_config_check_auth (const bf_sender_config_t *sender, char *err, size_t errsize)
{
    if (*sender->smtp_username && strncmp (sender->smtp_url, "smtp://", 7) == 0
        && !sender->smtp_starttls && !sender->smtp_allow_plain_auth)
        return bf_err_set (err, errsize,
                           "notify.smtp_username is set but notify.smtp_url is plain smtp://"
                           " without notify.smtp_starttls: AUTH would send the password in"
                           " clear. Use smtps:// or STARTTLS, or set"
                           " notify.smtp_allow_plain_auth=true for a relay on this host");
    return 0;
}
