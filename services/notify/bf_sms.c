/*  bf_sms — how a rendered notice goes out on the SMS channel: SMS, LMS
    or the template's short form (see bf_sms.h).  */

#include <string.h>

#include "bf_log.h"
#include "bf_sms.h"

const char *
bf_sms_channel (bf_sms_kind_t kind)
{
    return kind == BF_SMS_KIND_LMS ? "LMS" : "SMS";
}

int
bf_sms_compose (const char *body, const char *title, const char *short_body, bf_sms_t *sms,
                char *err, size_t errsize)
{
    if (!sms)
        return bf_err_set (err, errsize, "no result");
    memset (sms, 0, sizeof *sms);
    if (!body)
        return bf_err_set (err, errsize, "no body");
    long bytes = bf_euckr_bytes (body, NULL);
    if (bytes < 0)
        return bf_err_set (err, errsize, "body is not valid UTF-8");
    bf_euckr_fit_t fit;
    if (bytes <= BF_SMS_LMS_MAX_BYTES) {
        sms->kind = bytes <= BF_SMS_MAX_BYTES ? BF_SMS_KIND_SMS : BF_SMS_KIND_LMS;
        if (bf_euckr_fit (body, (size_t)bytes, false, sms->body, sizeof sms->body, &fit))
            return bf_err_set (err, errsize, "body cannot be converted");
        sms->body_bytes = fit.bytes;
        sms->replaced = fit.replaced;
        if (sms->kind == BF_SMS_KIND_LMS && title) {
            if (bf_euckr_fit (title, BF_SMS_LMS_TITLE_MAX_BYTES, true, sms->title,
                              sizeof sms->title, &fit)) {
                memset (sms, 0, sizeof *sms);
                return bf_err_set (err, errsize, "title is not valid UTF-8");
            }
            sms->title_bytes = fit.bytes;
            sms->replaced += fit.replaced;
            sms->cut = fit.cut;
        }
        return 0;
    }
    if (!short_body || !*short_body)
        return bf_err_set (err, errsize,
                           "body is %ld bytes in EUC-KR, over the LMS limit of %d, "
                           "and the template has no short form",
                           bytes, BF_SMS_LMS_MAX_BYTES);
    if (bf_euckr_fit (short_body, BF_SMS_MAX_BYTES, true, sms->body, sizeof sms->body, &fit)) {
        memset (sms, 0, sizeof *sms);
        return bf_err_set (err, errsize, "short form is not valid UTF-8");
    }
    sms->kind = BF_SMS_KIND_SHORT;
    sms->body_bytes = fit.bytes;
    sms->replaced = fit.replaced;
    sms->cut = fit.cut;
    return 0;
}
