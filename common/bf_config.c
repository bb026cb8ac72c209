/*  =========================================================================
    bf_config - every setting of every billflow program, in one table.

    To add a setting, add one row to s_settings below and one row to the
    table in docs/configuration.md (test_config fails until both agree).
    Keys are lower case, dot-separated "area.name"; the environment name is
    derived from the key (bf_setting_env_name).

    Each value is validated when it is set and stored in canonical form
    (integers re-printed, booleans as true/false, enum choices as listed), so
    the getters never fail. Every message names where the value came from
    and never shows a secret value.

    A failed load may leave the earlier lines of the file applied; callers
    discard the config on error (bf_config_load does).
    =========================================================================
*/

#include "bf_log.h"
#include "bf_config.h"
#include "bf_secfile.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

//  The settings. Keep docs/configuration.md in step.

static const bf_setting_t s_settings[] = {
    { .key = "log.level",
      .type = BF_CFG_ENUM,
      .default_value = "info",
      .choices = "debug|info|warn|error",
      .help = "Lowest level that is written to the log." },
    { .key = "log.format",
      .type = BF_CFG_ENUM,
      .default_value = "plain",
      .choices = "plain|json",
      .help = "Log line format: plain text or one JSON object per line." },
    { .key = "db.conninfo",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "libpq conninfo string or URI; empty uses libpq's PG* environment variables." },
    { .key = "db.connect_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "30000",
      .min = 0,
      .max = 3600000,
      .help = "How long to keep retrying the first database connection, with backoff." },
    { .key = "db.reconnect_min_ms",
      .type = BF_CFG_INT,
      .default_value = "100",
      .min = 1,
      .max = 60000,
      .help = "Floor of the backoff between database connection attempts while it is away." },
    { .key = "db.reconnect_max_ms",
      .type = BF_CFG_INT,
      .default_value = "5000",
      .min = 1,
      .max = 600000,
      .help = "Ceiling of the backoff between database connection attempts (below the floor: "
              "the floor)." },
    { .key = "db.unavailable_log_s",
      .type = BF_CFG_INT,
      .default_value = "10",
      .min = 1,
      .max = 3600,
      .help = "While the database is away, at most one summary log line per this many seconds." },
    { .key = "db.keepalives_idle_s",
      .type = BF_CFG_INT,
      .default_value = "10",
      .min = 1,
      .max = 7200,
      .help = "Seconds of silence on a database connection before the first TCP keepalive probe"
              " (both ends)." },
    { .key = "db.keepalives_interval_s",
      .type = BF_CFG_INT,
      .default_value = "5",
      .min = 1,
      .max = 600,
      .help = "Seconds between TCP keepalive probes on a database connection (both ends)." },
    { .key = "db.keepalives_count",
      .type = BF_CFG_INT,
      .default_value = "4",
      .min = 1,
      .max = 100,
      .help = "Unanswered TCP keepalive probes after which a database connection is dropped." },
    { .key = "db.tcp_user_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "30000",
      .min = 0,
      .max = 3600000,
      .help = "A database connection whose sent data stays unacknowledged this long is dropped"
              " (both ends); 0: the operating system's retransmissions (about 15 min)." },
    { .key = "zmq.heartbeat_ivl_ms",
      .type = BF_CFG_INT,
      .default_value = "5000",
      .min = 0,
      .max = 3600000,
      .help = "ZMTP heartbeat (PING) interval on every ZeroMQ TCP connection between services;"
              " 0: none." },
    { .key = "zmq.heartbeat_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "25000",
      .min = 100,
      .max = 3600000,
      .help = "A ZeroMQ connection that hears nothing for this long after a PING is closed (and a"
              " connecting socket reconnects)." },
    { .key = "pii.key_file",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "File holding the 64-hex-character PII master key (mode 0600 or 0400)." },
    { .key = "pii.key",
      .type = BF_CFG_STRING,
      .default_value = "",
      .secret = true,
      .help = "The PII master key itself as 64 hex characters; prefer pii.key_file." },
    { .key = "import.max_errors",
      .type = BF_CFG_INT,
      .default_value = "100",
      .min = 1,
      .max = 1000000,
      .help = "How many bad rows an import reports before it stops reading." },
    { .key = "service.instance",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "Instance name in logs and registrations; empty means hostname:pid." },
    { .key = "settle.workers",
      .type = BF_CFG_INT,
      .default_value = "0",
      .min = 0,
      .max = 64,
      .help = "Rating worker actors per settle process; 0 means one per CPU core." },
    { .key = "settle.chunk_size",
      .type = BF_CFG_INT,
      .default_value = "5000",
      .min = 1,
      .max = 1000000,
      .help = "Subscribers per chunk: the unit of claiming, rating and committing." },
    { .key = "settle.lease_ms",
      .type = BF_CFG_INT,
      .default_value = "30000",
      .min = 500,
      .max = 3600000,
      .help = "How long a claimed chunk stays claimed before another worker may take it over." },
    { .key = "settle.poll_ms",
      .type = BF_CFG_INT,
      .default_value = "200",
      .min = 10,
      .max = 60000,
      .help = "How often an idle worker looks for chunks, and an idle relay for new outbox rows." },
    { .key = "settle.pub_endpoint",
      .type = BF_CFG_STRING,
      .default_value = "tcp://127.0.0.1:7101",
      .help = "ZeroMQ endpoint the active relay binds its PUB socket to (CURVE only)." },
    { .key = "settle.replay_endpoint",
      .type = BF_CFG_STRING,
      .default_value = "tcp://127.0.0.1:7102",
      .help = "ZeroMQ endpoint the replay ROUTER binds to (CURVE only)." },
    { .key = "settle.key_file",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "settle's secret key file: PUB and replay serve CURVE with it (every settle process"
              " the same key pair); empty: control.client_key_file." },
    { .key = "settle.allowed_keys",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "Allowed-keys list for PUB and replay (control's format; only role service is let"
              " in); empty: control.allowed_keys." },
    { .key = "settle.relay_batch",
      .type = BF_CFG_INT,
      .default_value = "2000",
      .min = 1,
      .max = 100000,
      .help = "Outbox rows the relay sequences per transaction." },
    { .key = "settle.heartbeat_ms",
      .type = BF_CFG_INT,
      .default_value = "1000",
      .min = 50,
      .max = 60000,
      .help = "Interval of the relay's heartbeat carrying the last published sequence." },
    { .key = "settle.replay_max_batch",
      .type = BF_CFG_INT,
      .default_value = "500",
      .min = 1,
      .max = 10000,
      .help = "Most events in one replay reply message." },
    { .key = "control.endpoint",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "ZeroMQ endpoint(s) of control's ROUTER, comma-separated when several control"
              " processes run; empty: run without control (headless)." },
    { .key = "control.bind",
      .type = BF_CFG_STRING,
      .default_value = "tcp://*:7100",
      .help = "ZeroMQ endpoint the active control binds its ROUTER to." },
    { .key = "control.key_file",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "control's own secret key file (billctl keygen); control does not start without"
              " it." },
    { .key = "control.allowed_keys",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "File listing the public keys control accepts, each with a name and a role." },
    { .key = "control.server_key",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "control's public key (Z85) for its clients; empty: connect without CURVE." },
    { .key = "control.client_key_file",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "This program's own secret key file for talking to control." },
    { .key = "control.command_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "30000",
      .min = 1000,
      .max = 3600000,
      .help = "How long a forwarded command waits for its service's answer before control"
              " forwards it again." },
    { .key = "control.election_ms",
      .type = BF_CFG_INT,
      .default_value = "1000",
      .min = 100,
      .max = 60000,
      .help = "How often a standby control tries to become active, and the active one checks"
              " that it still is." },
    { .key = "control.client_rate",
      .type = BF_CFG_INT,
      .default_value = "50",
      .min = 1,
      .max = 100000,
      .help = "Frames a second each key may send to control (token bucket); more are answered"
              " \"busy\" (docs/control.md \"Limits\")." },
    { .key = "control.client_burst",
      .type = BF_CFG_INT,
      .default_value = "100",
      .min = 1,
      .max = 100000,
      .help = "Frames a key may send to control at once before control.client_rate applies." },
    { .key = "control.console_rate",
      .type = BF_CFG_INT,
      .default_value = "1000",
      .min = 1,
      .max = 100000,
      .help = "Frames a second a key with the console role may send to control: it speaks for"
              " every operator of its console (docs/control.md \"Limits\")." },
    { .key = "control.console_burst",
      .type = BF_CFG_INT,
      .default_value = "2000",
      .min = 1,
      .max = 100000,
      .help = "Frames a console key may send to control at once before control.console_rate"
              " applies." },
    { .key = "control.command_attempts",
      .type = BF_CFG_INT,
      .default_value = "5",
      .min = 1,
      .max = 1000,
      .help = "How often control forwards one command (answered retryable, or not answered)"
              " before it ends it FAILED with the reason." },
    { .key = "control.max_request_bytes",
      .type = BF_CFG_INT,
      .default_value = "16384",
      .min = 1024,
      .max = 1048576,
      .help = "Largest command or query a client may send; a bigger one is rejected and"
              " audited." },
    { .key = "billctl.timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "3000",
      .min = 100,
      .max = 600000,
      .help = "How long billctl waits for control's answer before it asks again." },
    { .key = "billctl.retries",
      .type = BF_CFG_INT,
      .default_value = "3",
      .min = 0,
      .max = 100,
      .help = "How often billctl asks again, with the same command_id, before it gives up." },
    { .key = "control.heartbeat_ms",
      .type = BF_CFG_INT,
      .default_value = "1000",
      .min = 100,
      .max = 60000,
      .help = "Interval of a service's heartbeat to control." },
    { .key = "notify.dispatchers",
      .type = BF_CFG_INT,
      .default_value = "0",
      .min = 0,
      .max = 64,
      .help = "Dispatcher actors per notify process; 0 means one per CPU core." },
    { .key = "notify.batch",
      .type = BF_CFG_INT,
      .default_value = "500",
      .min = 1,
      .max = 20000,
      .help = "Deliveries a dispatcher claims at a time." },
    { .key = "notify.lease_ms",
      .type = BF_CFG_INT,
      .default_value = "60000",
      .min = 1000,
      .max = 3600000,
      .help = "How long a dispatcher that stopped renewing its lease (every lease / 3) keeps its"
              " claimed deliveries before another dispatcher takes them over; also its"
              " connection's fence (a silent link fails a statement after lease / 2, the"
              " server ends the session after about a lease)." },
    { .key = "notify.takeover_grace_ms",
      .type = BF_CFG_INT,
      .default_value = "5000",
      .min = 0,
      .max = 600000,
      .help = "How long a dispatcher's database session must have been gone (its process"
              " died) before another dispatcher takes its claims over without waiting out its"
              " lease: time for a dispatcher whose connection merely broke to reconnect." },
    { .key = "notify.poll_ms",
      .type = BF_CFG_INT,
      .default_value = "200",
      .min = 10,
      .max = 60000,
      .help = "How often an idle dispatcher looks for due deliveries." },
    { .key = "notify.max_attempts",
      .type = BF_CFG_INT,
      .default_value = "5",
      .min = 1,
      .max = 100,
      .help
      = "Send attempts per delivery before it fails for good (email then falls back to SMS)." },
    { .key = "notify.backoff_base_ms",
      .type = BF_CFG_INT,
      .default_value = "5000",
      .min = 10,
      .max = 3600000,
      .help = "First retry delay; doubles each attempt, with +-20 % jitter." },
    { .key = "notify.backoff_max_ms",
      .type = BF_CFG_INT,
      .default_value = "600000",
      .min = 10,
      .max = 86400000,
      .help = "Longest retry delay." },
    { .key = "notify.outage_window_ms",
      .type = BF_CFG_INT,
      .default_value = "86400000",
      .min = 1000,
      .max = 2592000000,
      .help = "The age (from its creation) up to which a notice waits out a provider outage: "
              "an outage's failure of an older notice ends it FAILED (email then falls back to "
              "SMS)." },
    { .key = "notify.quiet_start",
      .type = BF_CFG_STRING,
      .default_value = "21:00",
      .help = "Start of the system quiet window (HH:MM, local time); empty with quiet_end empty: "
              "no window." },
    { .key = "notify.quiet_end",
      .type = BF_CFG_STRING,
      .default_value = "08:00",
      .help = "End of the system quiet window (HH:MM); the window may cross midnight." },
    { .key = "notify.utc_offset_min",
      .type = BF_CFG_INT,
      .default_value = "540",
      .min = -720,
      .max = 840,
      .help = "Local time of quiet hours as minutes east of UTC (Asia/Seoul: 540; Korea has no "
              "daylight saving)." },
    { .key = "notify.clock",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "Injectable clock: local time YYYY-MM-DDTHH:MM the clock starts at and runs on from "
              "(tests, demos); empty: the system clock." },
    { .key = "notify.consumer",
      .type = BF_CFG_STRING,
      .default_value = "notify",
      .help = "Name of the ingest cursor in notify_cursor." },
    { .key = "notify.settle_pub_endpoints",
      .type = BF_CFG_STRING,
      .default_value = "tcp://127.0.0.1:7101",
      .help = "Comma-separated PUB endpoints of every settle process (whichever relay is active "
              "publishes)." },
    { .key = "notify.settle_replay_endpoints",
      .type = BF_CFG_STRING,
      .default_value = "tcp://127.0.0.1:7102",
      .help = "Comma-separated replay endpoints of settle processes." },
    { .key = "notify.settle_server_key",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "settle's public key (Z85, the public half of settle.key_file): notify reads PUB"
              " and replay over CURVE with it." },
    { .key = "notify.key_file",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "notify's secret key file for reading settle's PUB and replay; empty:"
              " control.client_key_file." },
    { .key = "notify.ingest_batch",
      .type = BF_CFG_INT,
      .default_value = "500",
      .min = 1,
      .max = 100000,
      .help = "Most events ingested in one transaction." },
    { .key = "notify.ingest_silence_ms",
      .type = BF_CFG_INT,
      .default_value = "3000",
      .min = 100,
      .max = 600000,
      .help = "With no event or relay heartbeat for this long, ingest asks replay for the tail." },
    { .key = "notify.replay_credit",
      .type = BF_CFG_INT,
      .default_value = "2000",
      .min = 1,
      .max = 100000,
      .help = "Events asked for per replay request." },
    { .key = "notify.smtp_url",
      .type = BF_CFG_STRING,
      .default_value = "smtp://127.0.0.1:2525",
      .help = "Email provider: smtp:// or smtps:// URL." },
    { .key = "notify.smtp_from",
      .type = BF_CFG_STRING,
      .default_value = "billing@billflow.example",
      .help = "Sender address of statements." },
    { .key = "notify.smtp_username",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "SMTP AUTH user; empty: no AUTH." },
    { .key = "notify.smtp_password",
      .type = BF_CFG_STRING,
      .default_value = "",
      .secret = true,
      .help = "SMTP AUTH password." },
    { .key = "notify.smtp_starttls",
      .type = BF_CFG_BOOL,
      .default_value = "false",
      .help = "Require STARTTLS on smtp:// connections." },
    { .key = "notify.smtp_allow_plain_auth",
      .type = BF_CFG_BOOL,
      .default_value = "false",
      .help = "Allow SMTP AUTH over plain smtp:// without STARTTLS (only for a relay on this "
              "host); otherwise notify refuses to start with credentials on plain smtp://." },
    { .key = "notify.smtp_greeting_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "300000",
      .min = 100,
      .max = 3600000,
      .help = "Plain smtp://: wait for the 220 greeting (RFC 5321 4.5.3.2: 5 min)." },
    { .key = "notify.smtp_command_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "300000",
      .min = 100,
      .max = 3600000,
      .help = "Plain smtp://: wait for the reply to EHLO, AUTH, MAIL, RCPT, RSET (RFC: 5 min)." },
    { .key = "notify.smtp_data_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "120000",
      .min = 100,
      .max = 3600000,
      .help = "Plain smtp://: wait for the 354 reply to DATA (RFC: 2 min)." },
    { .key = "notify.smtp_block_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "180000",
      .min = 100,
      .max = 3600000,
      .help = "Plain smtp://: each write of the message body (RFC: 3 min)." },
    { .key = "notify.smtp_end_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "600000",
      .min = 100,
      .max = 3600000,
      .help = "Plain smtp://: wait for the reply to the final dot (RFC: 10 min); "
              "expiry = possibly delivered." },
    { .key = "notify.email_unknown_retry_ms",
      .type = BF_CFG_INT,
      .default_value = "3600000",
      .min = 0,
      .max = 604800000,
      .help = "A possibly delivered email is resent once (same Message-ID) after this long; "
              "0: never resent, FAILED without fallback." },
    { .key = "notify.sms_url",
      .type = BF_CFG_STRING,
      .default_value = "http://127.0.0.1:8025",
      .help = "SMS/LMS provider base URL (POST {url}/v1/messages)." },
    { .key = "notify.sms_token",
      .type = BF_CFG_STRING,
      .default_value = "",
      .secret = true,
      .help = "Bearer token of the SMS provider; empty: no Authorization header." },
    { .key = "notify.push_url",
      .type = BF_CFG_STRING,
      .default_value = "http://127.0.0.1:8025",
      .help = "Push provider base URL (POST {url}/v1/messages)." },
    { .key = "notify.push_token",
      .type = BF_CFG_STRING,
      .default_value = "",
      .secret = true,
      .help = "Bearer token of the push provider." },
    { .key = "notify.email_concurrency",
      .type = BF_CFG_INT,
      .default_value = "2000",
      .min = 1,
      .max = 100000,
      .help = "Most email sends in flight per notify process." },
    { .key = "notify.sms_concurrency",
      .type = BF_CFG_INT,
      .default_value = "1000",
      .min = 1,
      .max = 100000,
      .help = "Most SMS/LMS requests in flight per notify process." },
    { .key = "notify.push_concurrency",
      .type = BF_CFG_INT,
      .default_value = "1000",
      .min = 1,
      .max = 100000,
      .help = "Most push requests in flight per notify process." },
    { .key = "notify.email_rate",
      .type = BF_CFG_INT,
      .default_value = "0",
      .min = 0,
      .max = 1000000,
      .help = "Most emails started per second; 0: no limit." },
    { .key = "notify.sms_rate",
      .type = BF_CFG_INT,
      .default_value = "0",
      .min = 0,
      .max = 1000000,
      .help = "Most SMS/LMS requests started per second; 0: no limit." },
    { .key = "notify.push_rate",
      .type = BF_CFG_INT,
      .default_value = "0",
      .min = 0,
      .max = 1000000,
      .help = "Most push requests started per second; 0: no limit." },
    { .key = "notify.provider_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "10000",
      .min = 100,
      .max = 600000,
      .help = "Whole-request timeout of a provider call; a timeout is a transient failure." },
    { .key = "notify.email_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "0",
      .min = 0,
      .max = 600000,
      .help = "Timeout of one email send; 0: notify.provider_timeout_ms." },
    { .key = "notify.sms_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "0",
      .min = 0,
      .max = 600000,
      .help = "Timeout of one SMS/LMS request; 0: notify.provider_timeout_ms." },
    { .key = "notify.push_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "0",
      .min = 0,
      .max = 600000,
      .help = "Timeout of one push request; 0: notify.provider_timeout_ms." },
    { .key = "notify.breaker_error_pct",
      .type = BF_CFG_INT,
      .default_value = "50",
      .min = 1,
      .max = 100,
      .help = "Transient-failure rate (%) over the recent window that opens a provider's circuit "
              "breaker." },
    { .key = "notify.breaker_min_samples",
      .type = BF_CFG_INT,
      .default_value = "20",
      .min = 1,
      .max = 100000,
      .help = "Outcomes in the window before the breaker may open." },
    { .key = "notify.breaker_open_ms",
      .type = BF_CFG_INT,
      .default_value = "10000",
      .min = 100,
      .max = 3600000,
      .help = "How long an open breaker waits before letting one probe through." },
    /*  Observability endpoint (bf_http.h, docs/observability.md).  */
    { .key = "settle.http",
      .type = BF_CFG_STRING,
      .default_value = "off",
      .help = "Address of settle's /metrics, /healthz, /readyz (HOST:PORT, numeric host), or "
              "off." },
    { .key = "notify.http",
      .type = BF_CFG_STRING,
      .default_value = "off",
      .help = "Address of notify's /metrics, /healthz, /readyz (HOST:PORT, numeric host), or "
              "off." },
    { .key = "control.http",
      .type = BF_CFG_STRING,
      .default_value = "off",
      .help = "Address of control's /metrics, /healthz, /readyz (HOST:PORT, numeric host), or "
              "off." },
    { .key = "control.metrics_ms",
      .type = BF_CFG_INT,
      .default_value = "5000",
      .min = 500,
      .max = 600000,
      .help = "How often the active control reads the cluster-wide figures it exports on"
              " /metrics (deliveries, run chunks, oldest unfinished run, overdue held"
              " notices)." },
    { .key = "control.rates_retention_days",
      .type = BF_CFG_INT,
      .default_value = "400",
      .min = 1,
      .max = 36500,
      .help = "Days the active control keeps the per-second samples of a run's bills and"
              " notices (run.rates) after the run ended." },
    { .key = "http.stuck_ms",
      .type = BF_CFG_INT,
      .default_value = "60000",
      .min = 10,
      .max = 3600000,
      .help = "An actor busy in one loop turn for longer than this makes /healthz answer 503." },
    /*  The console (issue 15; services/console/README.md).  */
    { .key = "console.listen",
      .type = BF_CFG_STRING,
      .default_value = "127.0.0.1:8080",
      .help = "Address the console's web UI and API listen on (HOST:PORT, numeric host; port 0: "
              "any free port)." },
    { .key = "console.http",
      .type = BF_CFG_STRING,
      .default_value = "off",
      .help = "Address of the console's /metrics, /healthz, /readyz (HOST:PORT, numeric host), "
              "or off." },
    { .key = "console.users_file",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "The console's users file (NAME:ROLE:HASH lines, `console adduser`); the console "
              "does not start without it." },
    { .key = "console.key_file",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "The console's own secret key file (billctl keygen); its public key is listed "
              "with role console in control.allowed_keys." },
    { .key = "console.tls_cert",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "PEM certificate (chain) the console serves HTTPS with; empty: plain HTTP behind "
              "a TLS-terminating ingress." },
    { .key = "console.tls_key",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "PEM private key of console.tls_cert (a secret file)." },
    { .key = "console.cookie_secure",
      .type = BF_CFG_BOOL,
      .default_value = "false",
      .help = "Mark the session cookie Secure even without console.tls_cert (TLS ends at an "
              "ingress)." },
    { .key = "console.session_idle_s",
      .type = BF_CFG_INT,
      .default_value = "1800",
      .min = 60,
      .max = 86400,
      .help = "A session not used for this long ends." },
    { .key = "console.session_absolute_s",
      .type = BF_CFG_INT,
      .default_value = "43200",
      .min = 300,
      .max = 604800,
      .help = "A session ends this long after its login, used or not." },
    { .key = "console.max_sessions",
      .type = BF_CFG_INT,
      .default_value = "1000",
      .min = 1,
      .max = 100000,
      .help = "Most live sessions; a login beyond ends the least recently used one." },
    { .key = "console.session_rate",
      .type = BF_CFG_INT,
      .default_value = "20",
      .min = 1,
      .max = 100000,
      .help = "Queries and commands a second one session may send (more: 429 with"
              " Retry-After)." },
    { .key = "console.session_burst",
      .type = BF_CFG_INT,
      .default_value = "60",
      .min = 1,
      .max = 100000,
      .help = "Queries and commands one session may send at once before"
              " console.session_rate applies." },
    { .key = "console.login_limit",
      .type = BF_CFG_INT,
      .default_value = "5",
      .min = 1,
      .max = 1000,
      .help = "Failed logins of one name within console.login_window_s before it is refused "
              "(429)." },
    { .key = "console.login_limit_address",
      .type = BF_CFG_INT,
      .default_value = "20",
      .min = 1,
      .max = 100000,
      .help = "Failed logins from one client address within console.login_window_s before it is "
              "refused (429)." },
    { .key = "console.login_window_s",
      .type = BF_CFG_INT,
      .default_value = "300",
      .min = 1,
      .max = 86400,
      .help = "The window of console.login_limit and console.login_limit_address." },
    { .key = "console.max_connections",
      .type = BF_CFG_INT,
      .default_value = "256",
      .min = 4,
      .max = 100000,
      .help = "Most open HTTP connections of the console." },
    { .key = "console.per_ip_connections",
      .type = BF_CFG_INT,
      .default_value = "32",
      .min = 1,
      .max = 100000,
      .help = "Most open HTTP connections from one client address." },
    { .key = "console.connection_timeout_s",
      .type = BF_CFG_INT,
      .default_value = "30",
      .min = 2,
      .max = 3600,
      .help = "An HTTP connection silent (or not reading) for this long is closed." },
    { .key = "console.max_body_bytes",
      .type = BF_CFG_INT,
      .default_value = "65536",
      .min = 1024,
      .max = 1048576,
      .help = "Largest request body; a larger one is answered 413." },
    { .key = "console.control_threads",
      .type = BF_CFG_INT,
      .default_value = "4",
      .min = 1,
      .max = 64,
      .help = "Threads (each with its own client of control) that run the console's queries and "
              "commands." },
    { .key = "console.login_threads",
      .type = BF_CFG_INT,
      .default_value = "2",
      .min = 1,
      .max = 16,
      .help = "Threads that check passwords (argon2id, about 64 MiB each while checking)." },
    { .key = "console.queue_max",
      .type = BF_CFG_INT,
      .default_value = "256",
      .min = 1,
      .max = 100000,
      .help = "Requests waiting for a console thread at most; more are answered 503." },
    { .key = "console.request_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "3000",
      .min = 100,
      .max = 600000,
      .help = "How long the console waits for one answer of control before it asks again." },
    { .key = "console.request_retries",
      .type = BF_CFG_INT,
      .default_value = "2",
      .min = 0,
      .max = 100,
      .help = "How often the console asks control again before it answers 503." },
    { .key = "console.report_timeout_ms",
      .type = BF_CFG_INT,
      .default_value = "60000",
      .min = 1000,
      .max = 600000,
      .help = "How long the console waits for a slow query (run.report), asked once." },
    { .key = "console.command_wait_ms",
      .type = BF_CFG_INT,
      .default_value = "5000",
      .min = 100,
      .max = 600000,
      .help = "How long a command stored but queued for its service is waited for before the "
              "console answers ACCEPTED." },
    { .key = "console.poll_ms",
      .type = BF_CFG_INT,
      .default_value = "1000",
      .min = 100,
      .max = 60000,
      .help = "Interval of the overview poller (one round of queries for every browser "
              "together)." },
    { .key = "console.max_streams",
      .type = BF_CFG_INT,
      .default_value = "200",
      .min = 1,
      .max = 100000,
      .help = "Most open /api/events streams." },
    { .key = "console.trusted_proxies",
      .type = BF_CFG_STRING,
      .default_value = "",
      .help = "Addresses or CIDRs (comma-separated) of the proxies in front of the console (an "
              "ingress controller): only from these is X-Forwarded-For believed, for the "
              "failed-login limit per address and the logs. Empty: never." },
};

#define S_COUNT      (sizeof s_settings / sizeof s_settings[0])
#define S_ENV_PREFIX "BILLFLOW_"
#define S_KEY_MAX    128
#define S_SHOW_MAX   80 //  longest value quoted back in a message

typedef struct {
    char *value;    //  canonical text
    char *source;   //  "default", "FILE:LINE", "env NAME", caller's
    int64_t number; //  BF_CFG_INT
    bool flag;      //  BF_CFG_BOOL
} s_value_t;

struct bf_config_t {
    s_value_t values[S_COUNT];
};

//  Copies text for quoting in a message: non-printable bytes become '?',
//  long text is cut with "...". Returns out.

static char *
s_printable (const char *text, char *out, size_t outsize)
{
    size_t i = 0, o = 0;
    while (text[i] && o + 1 < outsize) {
        if (i == S_SHOW_MAX) {
            snprintf (out + o, outsize - o, "...");
            return out;
        }
        unsigned char c = (unsigned char)text[i++];
        out[o++] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    out[o] = 0;
    return out;
}

//  Frees a stored value; secrets are wiped first so they do not linger.

static void
s_free_value (size_t index, char *text)
{
    if (text && s_settings[index].secret)
        explicit_bzero (text, strlen (text));
    free (text);
}

static size_t
s_index (const char *key)
{
    if (key)
        for (size_t i = 0; i < S_COUNT; i++)
            if (strcmp (s_settings[i].key, key) == 0)
                return i;
    return S_COUNT;
}

size_t
bf_settings_count (void)
{
    return S_COUNT;
}

const bf_setting_t *
bf_settings_get (size_t index)
{
    return index < S_COUNT ? &s_settings[index] : NULL;
}

const bf_setting_t *
bf_settings_find (const char *key)
{
    size_t index = s_index (key);
    return index < S_COUNT ? &s_settings[index] : NULL;
}

char *
bf_setting_env_name (const char *key, char *out, size_t outsize)
{
    if (!out || outsize == 0)
        return out;
    snprintf (out, outsize, "%s%s", S_ENV_PREFIX, key ? key : "");
    for (char *p = out; *p; p++)
        if (*p == '.' || *p == '-')
            *p = '_';
        else
            *p = (char)toupper ((unsigned char)*p);
    return out;
}

int
bf_config_parse_int (const char *text, int64_t *value)
{
    if (!text)
        return -1;
    const char *p = text;
    bool negative = *p == '-';
    if (negative)
        p++;
    if (*p == 0)
        return -1;
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t total = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        uint64_t digit = (uint64_t)(*p - '0');
        if (total > (limit - digit) / 10)
            return -1;
        total = total * 10 + digit;
    }
    if (value) {
        if (!negative)
            *value = (int64_t)total;
        else if (total == (uint64_t)INT64_MAX + 1)
            *value = INT64_MIN;
        else
            *value = -(int64_t)total;
    }
    return 0;
}

int
bf_config_parse_bool (const char *text, bool *value)
{
    static const char *yes[] = { "true", "yes", "on", "1" };
    static const char *no[] = { "false", "no", "off", "0" };
    if (!text)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp (text, yes[i]) == 0) {
            if (value)
                *value = true;
            return 0;
        }
        if (strcasecmp (text, no[i]) == 0) {
            if (value)
                *value = false;
            return 0;
        }
    }
    return -1;
}

//  Finds text among the '|'-separated choices, ignoring case. Returns a new
//  copy of the choice as spelled in the table, or NULL.

static char *
s_enum_match (const char *choices, const char *text)
{
    size_t len = strlen (text);
    const char *p = choices;
    while (*p) {
        const char *end = strchr (p, '|');
        size_t n = end ? (size_t)(end - p) : strlen (p);
        if (n == len && len > 0 && strncasecmp (p, text, n) == 0)
            return strndup (p, n);
        p += n;
        if (*p == '|')
            p++;
    }
    return NULL;
}

//  Validates text for setting; on success returns 0 with the canonical text
//  (new string) in *canonical and the parsed number/flag. On failure returns
//  -1 with what was expected in expected; -2 when out of memory.

static int
s_convert (const bf_setting_t *setting, const char *text, char **canonical, int64_t *number,
           bool *flag, char *expected, size_t expected_size)
{
    *canonical = NULL;
    *number = 0;
    *flag = false;
    switch (setting->type) {
        case BF_CFG_STRING:
            for (const char *p = text; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7F) {
                    snprintf (expected, expected_size, "text without control characters");
                    return -1;
                }
            *canonical = strdup (text);
            break;
        case BF_CFG_INT:
            if (bf_config_parse_int (text, number) != 0 || *number < setting->min
                || *number > setting->max) {
                snprintf (expected, expected_size, "a decimal integer in %" PRId64 "..%" PRId64,
                          setting->min, setting->max);
                return -1;
            }
            if (asprintf (canonical, "%" PRId64, *number) < 0)
                *canonical = NULL;
            break;
        case BF_CFG_BOOL:
            if (bf_config_parse_bool (text, flag) != 0) {
                snprintf (expected, expected_size, "true, false, yes, no, on, off, 1 or 0");
                return -1;
            }
            *canonical = strdup (*flag ? "true" : "false");
            break;
        case BF_CFG_ENUM:
            *canonical = s_enum_match (setting->choices ? setting->choices : "", text);
            if (!*canonical) {
                snprintf (expected, expected_size, "one of %s",
                          setting->choices ? setting->choices : "(none)");
                return -1;
            }
            break;
    }
    return *canonical ? 0 : -2;
}

//  Validates and stores a value for the setting at index.

static int
s_assign (bf_config_t *self, size_t index, const char *text, const char *source, char *err,
          size_t errsize)
{
    const bf_setting_t *setting = &s_settings[index];
    char expected[128];
    char *canonical;
    int64_t number;
    bool flag;
    int rc = s_convert (setting, text, &canonical, &number, &flag, expected, sizeof expected);
    if (rc == -1) {
        if (setting->secret)
            bf_err_set (err, errsize, "%s: bad value for %s (secret, not shown): expected %s",
                        source, setting->key, expected);
        else {
            char shown[S_SHOW_MAX + 8];
            bf_err_set (err, errsize, "%s: bad value '%s' for %s: expected %s", source,
                        s_printable (text, shown, sizeof shown), setting->key, expected);
        }
        return -1;
    }
    char *source_copy = rc == 0 ? strdup (source) : NULL;
    if (!source_copy) {
        free (canonical);
        bf_err_set (err, errsize, "%s: out of memory setting %s", source, setting->key);
        return -1;
    }
    s_value_t *value = &self->values[index];
    s_free_value (index, value->value);
    free (value->source);
    value->value = canonical;
    value->source = source_copy;
    value->number = number;
    value->flag = flag;
    return 0;
}

bf_config_t *
bf_config_new (void)
{
    bf_config_t *self = (bf_config_t *)calloc (1, sizeof (bf_config_t));
    if (!self)
        return NULL;
    for (size_t i = 0; i < S_COUNT; i++)
        //  A default that does not validate is a bug in the table.
        if (s_assign (self, i, s_settings[i].default_value, "default", NULL, 0) != 0) {
            bf_config_destroy (&self);
            return NULL;
        }
    return self;
}

void
bf_config_destroy (bf_config_t **self_p)
{
    assert (self_p);
    bf_config_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < S_COUNT; i++) {
        s_free_value (i, self->values[i].value);
        free (self->values[i].source);
    }
    free (self);
    *self_p = NULL;
}

int
bf_config_set (bf_config_t *self, const char *key, const char *value, const char *source, char *err,
               size_t errsize)
{
    assert (self);
    if (!source || !*source)
        source = "bf_config_set";
    if (!key) {
        bf_err_set (err, errsize, "%s: no setting name given", source);
        return -1;
    }
    size_t index = s_index (key);
    if (index == S_COUNT) {
        char shown[S_SHOW_MAX + 8];
        bf_err_set (err, errsize, "%s: unknown setting '%s'", source,
                    s_printable (key, shown, sizeof shown));
        return -1;
    }
    if (!value) {
        bf_err_set (err, errsize, "%s: no value given for %s", source, key);
        return -1;
    }
    return s_assign (self, index, value, source, err, errsize);
}

//  ---------------------------------------------------------------------------
//  Config file

static bool
s_is_space (char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static char *
s_trim (char *text)
{
    while (s_is_space (*text))
        text++;
    size_t n = strlen (text);
    while (n > 0 && s_is_space (text[n - 1]))
        text[--n] = 0;
    return text;
}

static bool
s_is_name (const char *text)
{
    if (!*text)
        return false;
    for (const char *p = text; *p; p++)
        if (!isalnum ((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return false;
    return true;
}

//  Parses the value part of a line (after '=', already left-trimmed) in
//  place. Returns the value, or NULL with *problem set.

static char *
s_parse_value (char *text, const char **problem)
{
    if (*text == '"') {
        char *in = text + 1;
        char *out = text;
        while (*in && *in != '"') {
            if (*in == '\\' && (in[1] == '"' || in[1] == '\\'))
                in++;
            *out++ = *in++;
        }
        if (*in != '"') {
            *problem = "missing closing quote";
            return NULL;
        }
        in++;
        while (s_is_space (*in))
            in++;
        if (*in && *in != '#') {
            *problem = "unexpected text after the closing quote";
            return NULL;
        }
        *out = 0;
        return text;
    }
    //  Unquoted: a '#' after white space starts a comment.
    for (char *p = text; *p; p++)
        if (*p == '#' && (p == text || s_is_space (p[-1]))) {
            *p = 0;
            break;
        }
    return s_trim (text);
}

//  A config file being read: where, and what each line set.
typedef struct {
    const char *path;
    size_t lineno;
    char section[S_KEY_MAX];     /* "" before any [section] line */
    size_t set_on_line[S_COUNT]; /* 0: not set by this file */
} s_file_t;

//  A "[name]" line (text trimmed, starting with '['): the section of the
//  lines below it. Returns 0, or -1 with the reason in err.
static int
s_read_section (s_file_t *file, char *text, char *err, size_t errsize)
{
    size_t n = strlen (text);
    if (text[n - 1] != ']')
        return bf_err_set (err, errsize, "%s:%zu: section line must look like [name]", file->path,
                           file->lineno);
    text[n - 1] = 0;
    char *name = s_trim (text + 1);
    if (!s_is_name (name) || strlen (name) >= sizeof file->section)
        return bf_err_set (err, errsize, "%s:%zu: bad section name", file->path, file->lineno);
    strcpy (file->section, name);
    return 0;
}

//  A "key = value" line (text trimmed): the setting is assigned, once per
//  file. Returns 0, or -1 with the reason in err.
static int
s_read_setting (bf_config_t *self, s_file_t *file, char *text, char *err, size_t errsize)
{
    char *equals = strchr (text, '=');
    //  The line is not quoted back: it may be a mistyped secret.
    if (!equals)
        return bf_err_set (err, errsize, "%s:%zu: expected 'key = value'", file->path,
                           file->lineno);
    *equals = 0;
    char *name = s_trim (text);
    char key[S_KEY_MAX * 2 + 2];
    if (!s_is_name (name) || strlen (name) >= S_KEY_MAX)
        return bf_err_set (err, errsize, "%s:%zu: bad setting name before '='", file->path,
                           file->lineno);
    if (*file->section)
        snprintf (key, sizeof key, "%s.%s", file->section, name);
    else
        snprintf (key, sizeof key, "%s", name);

    char *value_text = equals + 1;
    while (s_is_space (*value_text))
        value_text++;
    const char *problem = NULL;
    char *value = s_parse_value (value_text, &problem);
    if (!value)
        return bf_err_set (err, errsize, "%s:%zu: %s: %s", file->path, file->lineno, key, problem);
    size_t index = s_index (key);
    if (index == S_COUNT)
        return bf_err_set (err, errsize, "%s:%zu: unknown setting '%s'", file->path, file->lineno,
                           key);
    if (file->set_on_line[index])
        return bf_err_set (err, errsize, "%s:%zu: %s is already set on line %zu", file->path,
                           file->lineno, key, file->set_on_line[index]);
    file->set_on_line[index] = file->lineno;
    char source[S_KEY_MAX * 4];
    snprintf (source, sizeof source, "%s:%zu", file->path, file->lineno);
    return s_assign (self, index, value, source, err, errsize);
}

//  One line of len bytes (its newline included). Returns 0, or -1 with
//  the reason in err.
static int
s_read_line (bf_config_t *self, s_file_t *file, char *line, size_t len, char *err, size_t errsize)
{
    if (memchr (line, 0, len))
        return bf_err_set (err, errsize, "%s:%zu: NUL byte in line", file->path, file->lineno);
    char *text = s_trim (line);
    if (*text == 0 || *text == '#')
        return 0;
    if (*text == '[')
        return s_read_section (file, text, err, errsize);
    return s_read_setting (self, file, text, err, errsize);
}

//  A file that sets a secret (or a conninfo with a password) is held to
//  the rule for files with secrets (bf_secfile.h). Returns 0, or -1 with
//  the reason in err.
static int
s_check_secrets (const bf_config_t *self, const s_file_t *file, int fd, char *err, size_t errsize)
{
    for (size_t i = 0; i < S_COUNT; i++) {
        bool secret = s_settings[i].secret
                      || (!strcmp (s_settings[i].key, "db.conninfo") && self->values[i].value
                          && strstr (self->values[i].value, "password"));
        if (file->set_on_line[i] && secret) {
            char what[S_KEY_MAX * 2 + 64];
            snprintf (what, sizeof what, "config file setting %s", s_settings[i].key);
            if (bf_secfile_check (fd, what, file->path, err, errsize) != 0)
                return -1;
        }
    }
    return 0;
}

int
bf_config_load_file (bf_config_t *self, const char *path, char *err, size_t errsize)
{
    assert (self);
    if (!path || !*path)
        return bf_err_set (err, errsize, "no config file name given");
    FILE *stream = fopen (path, "re");
    if (!stream)
        return bf_err_set (err, errsize, "cannot open config file '%s': %s", path,
                           strerror (errno));
    s_file_t file = { .path = path };
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline (&line, &line_cap, stream)) >= 0) {
        file.lineno++;
        rc = s_read_line (self, &file, line, (size_t)len, err, errsize);
    }
    if (rc == 0 && ferror (stream))
        rc = bf_err_set (err, errsize, "cannot read config file '%s': %s", path, strerror (errno));
    if (rc == 0)
        rc = s_check_secrets (self, &file, fileno (stream), err, errsize);
    if (line) {
        //  The buffer held the file's secrets, if any.
        explicit_bzero (line, line_cap);
        free (line);
    }
    fclose (stream);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Environment

//  Variables Kubernetes injects for a Service named billflow-X (docker
//  links style; X upper-cased, '-' as '_'), or billflow itself (X empty):
//    BILLFLOW_X_SERVICE_HOST=10.0.0.11
//    BILLFLOW_X_SERVICE_PORT=7100           BILLFLOW_X_SERVICE_PORT_ZMQ=7100
//    BILLFLOW_X_PORT=tcp://10.0.0.11:7100   BILLFLOW_X_PORT_7100_TCP=tcp://10.0.0.11:7100
//    BILLFLOW_X_PORT_7100_TCP_PROTO=tcp     BILLFLOW_X_PORT_7100_TCP_PORT=7100
//    BILLFLOW_X_PORT_7100_TCP_ADDR=10.0.0.11
//  Names and values are both checked, so a misspelt setting that happens to
//  end in _PORT or _HOST is still refused unless its value looks like
//  Kubernetes' own (a port number, an address, a tcp:// URL).

//  Whether text[0..len) is a decimal port 1..65535 without leading zeros.
static bool
s_k8s_port (const char *text, size_t len)
{
    if (len == 0 || len > 5 || text[0] == '0')
        return false;
    long port = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit ((unsigned char)text[i]))
            return false;
        port = port * 10 + (text[i] - '0');
    }
    return port <= 65535;
}

//  Whether text[0..len) is a numeric IPv4 or IPv6 address (the characters
//  only: Kubernetes writes the ClusterIP there).
static bool
s_k8s_addr (const char *text, size_t len)
{
    if (len == 0 || len > 45)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit ((unsigned char)text[i]) && text[i] != '.' && text[i] != ':')
            return false;
    return true;
}

//  The protocol of a PORT_<N>_<PROTO> name: its length in name, or 0.
static size_t
s_k8s_proto (const char *name, const char **lower)
{
    static const char *const protos[][2]
        = { { "TCP", "tcp" }, { "UDP", "udp" }, { "SCTP", "sctp" } };
    for (size_t i = 0; i < 3; i++) {
        size_t len = strlen (protos[i][0]);
        if (strncmp (name, protos[i][0], len) == 0) {
            *lower = protos[i][1];
            return len;
        }
    }
    return 0;
}

//  Whether value is "<proto>://ADDR:PORT" (port, when given, must match).
static bool
s_k8s_url (const char *value, const char *proto, const char *port, size_t port_len)
{
    size_t plen = strlen (proto);
    if (strncmp (value, proto, plen) != 0 || strncmp (value + plen, "://", 3) != 0)
        return false;
    const char *addr = value + plen + 3;
    const char *colon = strrchr (addr, ':');
    if (!colon)
        return false;
    size_t addr_len = (size_t)(colon - addr);
    if (addr_len > 2 && addr[0] == '[' && addr[addr_len - 1] == ']') {
        addr++; //  IPv6, as net.JoinHostPort writes it
        addr_len -= 2;
    }
    if (!s_k8s_addr (addr, addr_len))
        return false;
    const char *p = colon + 1;
    if (!s_k8s_port (p, strlen (p)))
        return false;
    return !port || (strlen (p) == port_len && strncmp (p, port, port_len) == 0);
}

//  Whether text[0..len) is all of A-Z 0-9 _ (a Service or port name as
//  Kubernetes writes it in a variable).
static bool
s_k8s_word (const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isupper ((unsigned char)text[i]) && !isdigit ((unsigned char)text[i])
            && text[i] != '_')
            return false;
    return true;
}

//  Whether the suffix rest[0..rlen) of a Service's variable and its value
//  are one of the shapes above.
static bool
s_k8s_suffix (const char *rest, size_t rlen, const char *value)
{
    size_t vlen = strlen (value);
    if (rlen == 12 && strncmp (rest, "SERVICE_HOST", 12) == 0)
        return s_k8s_addr (value, vlen);
    if (rlen == 12 && strncmp (rest, "SERVICE_PORT", 12) == 0)
        return s_k8s_port (value, vlen);
    if (rlen > 13 && strncmp (rest, "SERVICE_PORT_", 13) == 0)
        return s_k8s_port (value, vlen);
    if (rlen == 4 && strncmp (rest, "PORT", 4) == 0)
        return s_k8s_url (value, "tcp", NULL, 0) || s_k8s_url (value, "udp", NULL, 0)
               || s_k8s_url (value, "sctp", NULL, 0);
    if (rlen <= 5 || strncmp (rest, "PORT_", 5) != 0)
        return false;
    //  PORT_<N>_<PROTO>[_PROTO|_PORT|_ADDR]
    const char *port = rest + 5;
    size_t port_len = 0;
    while (5 + port_len < rlen && isdigit ((unsigned char)port[port_len]))
        port_len++;
    if (!s_k8s_port (port, port_len) || 5 + port_len >= rlen || port[port_len] != '_')
        return false;
    const char *lower = NULL;
    const char *proto = port + port_len + 1;
    size_t proto_len = s_k8s_proto (proto, &lower);
    if (!proto_len)
        return false;
    const char *tail = proto + proto_len;
    size_t tail_len = rlen - (size_t)(tail - rest);
    if (tail_len == 0)
        return s_k8s_url (value, lower, port, port_len);
    if (tail_len == 6 && strncmp (tail, "_PROTO", 6) == 0)
        return strcmp (value, lower) == 0;
    if (tail_len == 5 && strncmp (tail, "_PORT", 5) == 0)
        return vlen == port_len && strncmp (value, port, port_len) == 0;
    if (tail_len == 5 && strncmp (tail, "_ADDR", 5) == 0)
        return s_k8s_addr (value, vlen);
    return false;
}

//  Whether name[0..len) (after BILLFLOW_) and value are one of the shapes
//  above, for a Service billflow (no X) or billflow-X.
static bool
s_k8s_service_var (const char *name, size_t len, const char *value)
{
    if (!s_k8s_word (name, len))
        return false;
    //  X may itself hold "_PORT" or "_SERVICE": try each split after an
    //  underscore.
    for (size_t x = 0; x < len; x++) {
        if (x > 0 && (x < 2 || name[x - 1] != '_'))
            continue;
        if (s_k8s_suffix (name + x, len - x, value))
            return true;
    }
    return false;
}

int
bf_config_load_env (bf_config_t *self, const char *const *envp, char *err, size_t errsize)
{
    assert (self);
    if (!envp)
        envp = (const char *const *)environ;
    size_t prefix_len = strlen (S_ENV_PREFIX);
    for (size_t e = 0; envp && envp[e]; e++) {
        const char *entry = envp[e];
        if (strncmp (entry, S_ENV_PREFIX, prefix_len) != 0)
            continue;
        const char *equals = strchr (entry, '=');
        if (!equals)
            continue;
        size_t name_len = (size_t)(equals - entry);
        if (name_len == strlen ("BILLFLOW_CONFIG")
            && strncmp (entry, "BILLFLOW_CONFIG", name_len) == 0)
            continue;
        size_t index = S_COUNT;
        char env_name[S_KEY_MAX * 2];
        for (size_t i = 0; i < S_COUNT; i++) {
            bf_setting_env_name (s_settings[i].key, env_name, sizeof env_name);
            if (strlen (env_name) == name_len && strncmp (env_name, entry, name_len) == 0) {
                index = i;
                break;
            }
        }
        char source[S_SHOW_MAX + 16];
        char name[S_SHOW_MAX + 8];
        char *name_copy = strndup (entry, name_len);
        if (!name_copy) {
            bf_err_set (err, errsize, "environment: out of memory");
            return -1;
        }
        snprintf (source, sizeof source, "env %s", s_printable (name_copy, name, sizeof name));
        free (name_copy);
        if (index == S_COUNT
            && s_k8s_service_var (entry + prefix_len, name_len - prefix_len, equals + 1)) {
            bf_debug ("%s: ignored (a variable Kubernetes sets for a Service)", source);
            continue;
        }
        if (index == S_COUNT) {
            bf_err_set (err, errsize,
                        "%s: unknown setting (no billflow setting has this variable name)", source);
            return -1;
        }
        if (s_assign (self, index, equals + 1, source, err, errsize) != 0)
            return -1;
    }
    return 0;
}

bf_config_t *
bf_config_load (const char *path, char *err, size_t errsize)
{
    bf_config_t *self = bf_config_new ();
    if (!self) {
        bf_err_set (err, errsize, "out of memory");
        return NULL;
    }
    if (!path || !*path)
        path = getenv ("BILLFLOW_CONFIG");
    if (path && *path && bf_config_load_file (self, path, err, errsize) != 0) {
        bf_config_destroy (&self);
        return NULL;
    }
    if (bf_config_load_env (self, (const char *const *)environ, err, errsize) != 0) {
        bf_config_destroy (&self);
        return NULL;
    }
    return self;
}

//  ---------------------------------------------------------------------------
//  Getters

static const s_value_t *
s_get (const bf_config_t *self, const char *key, bf_cfg_type_t type1, bf_cfg_type_t type2)
{
    assert (self);
    size_t index = s_index (key);
    assert (index < S_COUNT && "no such setting");
    if (index == S_COUNT)
        return NULL;
    assert ((s_settings[index].type == type1 || s_settings[index].type == type2)
            && "setting has another type");
    if (s_settings[index].type != type1 && s_settings[index].type != type2)
        return NULL;
    return &self->values[index];
}

const char *
bf_config_str (const bf_config_t *self, const char *key)
{
    const s_value_t *value = s_get (self, key, BF_CFG_STRING, BF_CFG_ENUM);
    return value ? value->value : "";
}

int64_t
bf_config_int (const bf_config_t *self, const char *key)
{
    const s_value_t *value = s_get (self, key, BF_CFG_INT, BF_CFG_INT);
    return value ? value->number : 0;
}

bool
bf_config_bool (const bf_config_t *self, const char *key)
{
    const s_value_t *value = s_get (self, key, BF_CFG_BOOL, BF_CFG_BOOL);
    return value ? value->flag : false;
}

const char *
bf_config_source (const bf_config_t *self, const char *key)
{
    assert (self);
    size_t index = s_index (key);
    assert (index < S_COUNT && "no such setting");
    return index < S_COUNT ? self->values[index].source : "";
}

void
bf_config_dump (const bf_config_t *self, FILE *out)
{
    assert (self);
    assert (out);
    for (size_t i = 0; i < S_COUNT; i++) {
        const bf_setting_t *setting = &s_settings[i];
        const s_value_t *value = &self->values[i];
        fprintf (out, "%s = ", setting->key);
        if (setting->secret)
            fputs (*value->value ? "(set)" : "(unset)", out);
        else if (setting->type == BF_CFG_STRING) {
            fputc ('"', out);
            for (const char *p = value->value; *p; p++) {
                if (*p == '"' || *p == '\\')
                    fputc ('\\', out);
                fputc (*p, out);
            }
            fputc ('"', out);
        } else
            fputs (value->value, out);
        fprintf (out, "  # %s\n", value->source);
    }
}

void
bf_config_log_init (const bf_config_t *self, const char *program)
{
    bf_log_level_t level = BF_LOG_INFO;
    bf_log_level_parse (bf_config_str (self, "log.level"), &level);
    bf_log_init (program, level, !strcmp (bf_config_str (self, "log.format"), "json"));
}

char *
bf_config_instance (const bf_config_t *self, char *out, size_t outsize)
{
    const char *configured = bf_config_str (self, "service.instance");
    if (*configured)
        snprintf (out, outsize, "%s", configured);
    else {
        char host[64] = "localhost";
        gethostname (host, sizeof host - 1);
        snprintf (out, outsize, "%s:%d", host, (int)getpid ());
    }
    return out;
}

int
bf_config_override (bf_config_t *self, const bf_config_override_t *overrides, size_t count,
                    char *err, size_t errsize)
{
    for (size_t i = 0; i < count; i++)
        if (overrides[i].value
            && bf_config_set (self, overrides[i].key, overrides[i].value, overrides[i].option, err,
                              errsize)
                   != 0)
            return -1;
    return 0;
}
