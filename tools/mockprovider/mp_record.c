/*  mp_record — --record FILE: every accepted message, exactly as a subscriber gets it.  */

#include "mp_record.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mp_log.h"
#include "mp_store.h"

static FILE *s_record_file;
static pthread_mutex_t s_record_lock = PTHREAD_MUTEX_INITIALIZER;

int
mp_record_open (const char *path)
{
    s_record_file = fopen (path, "a");
    if (!s_record_file) {
        mp_log ("cannot open --record file %s: %s", path, strerror (errno));
        return -1;
    }
    return 0;
}

bool
mp_record_on (void)
{
    return s_record_file != NULL;
}

/*  Writes text[0..len) as a JSON string. Bytes of 0x80 and above go through as they are
    (HTTP content was checked to be UTF-8; an email's raw data is 7-bit in practice).  */
static void
s_record_str (FILE *f, const char *text, size_t len)
{
    fputc ('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\')
            fprintf (f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf (f, "\\u%04x", c);
        else
            fputc (c, f);
    }
    fputc ('"', f);
}

void
mp_record_http (int channel, uint64_t id, const char *key, const mp_json_fields_t *f)
{
    if (!s_record_file)
        return;
    pthread_mutex_lock (&s_record_lock);
    fprintf (s_record_file, "{\"channel\": \"%s\", \"id\": \"m-%" PRIu64 "\", \"key\": ",
             mp_store_channel_name (channel), id);
    s_record_str (s_record_file, key, strlen (key));
    fputs (", \"to\": ", s_record_file);
    s_record_str (s_record_file, f->to.str, f->to.len);
    fputs (", \"title\": ", s_record_file);
    if (f->title.str)
        s_record_str (s_record_file, f->title.str, f->title.len);
    else
        fputs ("null", s_record_file);
    fputs (", \"body\": ", s_record_file);
    s_record_str (s_record_file, f->body.str, f->body.len);
    fputs ("}\n", s_record_file);
    fflush (s_record_file);
    pthread_mutex_unlock (&s_record_lock);
}

void
mp_record_email (uint64_t id, const char *mid, const char *rcpt, size_t rcpt_len, const char *data,
                 size_t len)
{
    if (!s_record_file)
        return;
    pthread_mutex_lock (&s_record_lock);
    fprintf (s_record_file,
             "{\"channel\": \"email\", \"id\": \"m-%" PRIu64 "\", \"message_id\": ", id);
    s_record_str (s_record_file, mid, strlen (mid));
    fputs (", \"rcpt\": [", s_record_file);
    for (size_t off = 0; off < rcpt_len; off += strlen (rcpt + off) + 1) {
        if (off)
            fputs (", ", s_record_file);
        s_record_str (s_record_file, rcpt + off, strlen (rcpt + off));
    }
    fputs ("], \"data\": ", s_record_file);
    s_record_str (s_record_file, data ? data : "", data ? len : 0);
    fputs ("}\n", s_record_file);
    fflush (s_record_file);
    pthread_mutex_unlock (&s_record_lock);
}
