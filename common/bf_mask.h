/*  bf_mask — the one place that masks personal data (G9): a known contact
    (bf_mask_email, bf_mask_phone, bf_mask_token) and every email address
    and phone number inside free text (bf_mask_text), such as a provider's
    error reason, an SMTP reply, a log line or a CLI cell.

    Free text: what is masked.
    - Email addresses: a run of address characters (ASCII letters, digits,
      . _ % + - ' and any non-ASCII byte), '@', and a domain (letters,
      digits, '.', '-', non-ASCII bytes). Shown as bf_mask_email shows it
      ("h***@example.com"). A quoted local part ("john doe"@example.com)
      counts too; with a space inside it is shown as "***".
    - Phone numbers in any grouping: digit groups joined by up to three of
      space, '-', '.', '(' and ')', optionally after a '+', that start
      and end at a word boundary (no ASCII letter, digit or '_' next to
      them). The digits, read as a Korean number, must be:
        0 + 9..11 digits in national form (mobile 01[016789]…, Seoul 02…,
        other area and service codes 0[3-9]…), or the same number after
        82 / +82 / 0082 with or without its leading 0 ("+82 (0)10 …"),
        or without the leading 0 when written in groups ("10 0378 3194");
      or, after a '+', any 9..15 digits (another country's number).
      In groups, every group has at most 4 digits and, for a Korean
      number, the last has exactly 4 (two groups may hold 7-8 in the last).
      Shown as "010-****-3194" (national prefix, last four digits) or
      "+44-****-0958".
    - The request's own contact, where the caller passes it: "***".
    - With BF_MASK_TOKENS: words of 24 or more [A-Za-z0-9_:.-] (push
      tokens), shown as their first six characters and "…".
    Not masked, by design: numbers under 9 digits (dates, amounts such as
    17,793원 - a comma is no phone separator - delivery and run ids,
    times), and digit runs that do not have a phone's shape (uuids, long
    message ids, IP addresses). Not recognised: digits other than ASCII
    (full-width), numbers spelled out, and addresses split by spaces.
    Pure functions; thread-safe.  */

#ifndef BF_MASK_H_INCLUDED
#define BF_MASK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

/*  Masked forms of one known contact, for logs, CLI output and previews.
    Both always write a NUL-terminated string into out (truncated to
    outsize) and return out.
    "hong.gildong@example.com" -> "h***@example.com";
    "010-1234-5678" or "01012345678" -> "010-****-5678".
    Anything that does not look like an email / phone becomes "***", so a
    malformed value can never leak through unmasked. NULL input -> "".
    A masked form that does not fit outsize becomes "***" too (itself cut
    to outsize - 1 bytes), never a partial value.  */
#define BF_MASK_MAX 128
char *bf_mask_email (const char *email, char *out, size_t outsize);
char *bf_mask_phone (const char *phone, char *out, size_t outsize);

/*  A push token: its first six characters and "…" when it is longer than
    12 bytes of printable ASCII, else "***". Returns out.  */
char *bf_mask_token (const char *token, char *out, size_t outsize);

#define BF_MASK_TOKENS 1u /* also shorten push-token-like words */

/*  Make the text one clean line before masking, for text that comes from
    outside (a provider's reason, an SMTP reply line, a libcurl error):
    every run of ASCII control characters (C0, DEL) and spaces becomes one
    space, a malformed UTF-8 byte becomes '?', and spaces at either end
    go. Masking then sees the cleaned text, so a number split by a line
    break is masked like one split by a space. Should the copy that needs
    (for text over 1 KiB) not be had, out holds "(unavailable)".  */
#define BF_MASK_ONE_LINE 2u

/*  Copies the len bytes of text into out (outsize > 0, always
    NUL-terminated) with every email address and phone number masked (see
    above) and, when contact is neither NULL nor "", every occurrence of
    contact replaced by "***". Other bytes are copied as they are (callers
    that need printable text clean it first or after). When the result
    does not fit, it is cut before the first masked form or character
    that does not fit whole. Returns out.  */
char *bf_mask_text (const char *text, size_t len, const char *contact, unsigned flags, char *out,
                    size_t outsize);

/*  bf_mask_text for text that may hold NUL bytes: returns the number of
    bytes written to out (before the terminating NUL).  */
size_t bf_mask_text_n (const char *text, size_t len, const char *contact, unsigned flags, char *out,
                       size_t outsize);

/*  bf_mask_text_n of the len bytes at text as they read before byte
    limit, for a caller that shows only the start of a text (a garbage
    reply's first bytes, a log value cut to its size): the masking sees
    the whole text, and what reaches past limit - a character, or an
    address, number, token or the contact that starts before it - is
    left out whole, so a contact the cut falls into is never shown in
    part (a number cut after "010-1234" would no longer read as one and
    go out in clear). With BF_MASK_ONE_LINE, limit counts bytes of the
    text before cleaning, and the result ends without a space.  */
size_t bf_mask_text_within (const char *text, size_t len, size_t limit, const char *contact,
                            unsigned flags, char *out, size_t outsize);

/*  Whether text (NUL-terminated) holds anything bf_mask_text would mask
    (with contact NULL and no flags).  */
bool bf_mask_text_has_contact (const char *text);

/*  Whether a value that stands for a contact (a "contact" field of a
    reply) may be shown as it is: NULL, "", a masked form holding "***"
    (bf_mask_email, bf_mask_phone, the fallback of every masker above) or
    "(unavailable)" (the word control and
    notify use for a contact they cannot decrypt). Anything else is taken
    for a contact in clear, which the caller replaces by "***".  */
bool bf_mask_is_masked (const char *contact);

#endif
