/*  bf_sms — how a rendered notice goes out on the SMS channel: as SMS, as
    LMS with a title, or as the template's short form (docs/templates.md,
    "SMS, LMS and the short form"). Limits are EUC-KR bytes (bf_euckr.h).
    Pure functions, thread-safe.  */

#ifndef BF_SMS_H_INCLUDED
#define BF_SMS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "bf_euckr.h"

#define BF_SMS_MAX_BYTES           90
#define BF_SMS_LMS_TITLE_MAX_BYTES 40
#define BF_SMS_LMS_MAX_BYTES       2000

typedef enum {
    BF_SMS_KIND_SMS = 0,   /* the body fits 90 bytes: sent as SMS */
    BF_SMS_KIND_LMS = 1,   /* the body fits 2,000 bytes: LMS, subject as title */
    BF_SMS_KIND_SHORT = 2, /* the body is longer: the short form as SMS */
} bf_sms_kind_t;

typedef struct {
    bf_sms_kind_t kind;
    char title[BF_EUCKR_UTF8_SIZE (BF_SMS_LMS_TITLE_MAX_BYTES)]; /* UTF-8, "" unless LMS */
    char body[BF_EUCKR_UTF8_SIZE (BF_SMS_LMS_MAX_BYTES)];        /* UTF-8, what to send */
    size_t title_bytes, body_bytes;                              /* EUC-KR */
    size_t replaced;                                             /* characters sent as '?' */
    bool cut; /* the title or the short form had to be cut ("…") */
} bf_sms_t;

/*  Decides how a rendered SMS-channel notice goes out: body as SMS when it
    fits 90 bytes; else as LMS when it fits 2,000 bytes, with title (may be
    NULL: no title) cut at a character boundary with "…" to 40 bytes; else
    short_body as SMS, cut with "…" to 90 bytes if it has to be. Returns 0,
    or -1 with a reason when an input is invalid UTF-8 or the body is too
    long for LMS and there is no short form.  */
int bf_sms_compose (const char *body, const char *title, const char *short_body, bf_sms_t *sms,
                    char *err, size_t errsize);

/*  "SMS", "LMS" (BF_SMS_KIND_SHORT goes as "SMS"): the provider's channel.  */
const char *bf_sms_channel (bf_sms_kind_t kind);

#endif
