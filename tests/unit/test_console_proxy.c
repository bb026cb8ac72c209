/*  Unit tests: the console's trusted proxies and X-Forwarded-For
    (services/console/bf_proxy.h): the list parsed strictly, the header
    believed only from a trusted peer, walked from the right, and hostile
    headers (huge, many entries, garbage, IPv6) costing a bounded walk and
    never naming an address no trusted proxy wrote.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bf_proxy.h"

static bf_proxies_t s_proxies;

static void
s_parse_ok (const char *text, size_t count)
{
    char err[256] = "";
    if (bf_proxies_parse (&s_proxies, text, err, sizeof err) != 0)
        fail_msg ("'%s' refused: %s", text ? text : "(null)", err);
    assert_int_equal (s_proxies.count, count);
}

static void
s_parse_bad (const char *text, const char *part)
{
    char err[256] = "";
    bf_proxies_t proxies;
    if (bf_proxies_parse (&proxies, text, err, sizeof err) == 0)
        fail_msg ("'%s' accepted", text);
    if (!strstr (err, part))
        fail_msg ("'%s': reason '%s' lacks '%s'", text, err, part);
    assert_int_equal (proxies.count, 0);
}

/*  The client bf_proxies_client names for peer and header.  */
static void
s_client (const char *peer, const char *xff, const char *want)
{
    char out[64];
    bf_proxies_client (&s_proxies, peer, xff, out, sizeof out);
    if (strcmp (out, want))
        fail_msg ("peer %s, X-Forwarded-For '%.80s': %s, want %s", peer, xff ? xff : "(none)", out,
                  want);
}

static void
test_parse (void **state)
{
    (void)state;
    s_parse_ok (NULL, 0);
    s_parse_ok ("", 0);
    s_parse_ok (" , ,", 0);
    s_parse_ok ("10.0.0.0/8", 1);
    s_parse_ok ("10.0.0.0/8, 192.0.2.7 fd00::/8,2001:db8::1/128", 4);
    s_parse_ok ("0.0.0.0/0", 1);
    s_parse_ok ("::/0", 1);
    s_parse_ok ("::ffff:10.1.0.0/112", 1);
    assert_true (bf_proxies_trusted (&s_proxies, "10.1.2.3"));
    assert_false (bf_proxies_trusted (&s_proxies, "10.2.0.1"));
    s_parse_ok ("10.0.0.0/8, 192.0.2.7, fd00::/8, 172.16.0.0/12", 4);
    assert_true (bf_proxies_trusted (&s_proxies, "10.255.255.255"));
    assert_false (bf_proxies_trusted (&s_proxies, "11.0.0.0"));
    assert_true (bf_proxies_trusted (&s_proxies, "192.0.2.7"));
    assert_false (bf_proxies_trusted (&s_proxies, "192.0.2.8"));
    assert_true (bf_proxies_trusted (&s_proxies, "fd12:3456::1"));
    assert_false (bf_proxies_trusted (&s_proxies, "fe80::1"));
    assert_true (bf_proxies_trusted (&s_proxies, "172.31.255.1"));
    assert_false (bf_proxies_trusted (&s_proxies, "172.32.0.1"));
    /*  An IPv4-mapped peer (a dual-stack listener) is its IPv4 address.  */
    assert_true (bf_proxies_trusted (&s_proxies, "::ffff:10.0.0.9"));
    assert_false (bf_proxies_trusted (&s_proxies, "not an address"));
    assert_false (bf_proxies_trusted (&s_proxies, NULL));

    s_parse_bad ("10.0.0.0/33", "prefix length must be 0-32");
    s_parse_bad ("fd00::/129", "prefix length must be 0-128");
    s_parse_bad ("10.0.0.0/", "prefix length");
    s_parse_bad ("10.0.0.0/8x", "prefix length");
    s_parse_bad ("10.0.0.0/-1", "prefix length");
    s_parse_bad ("10.0.0.1/8", "bits set past its prefix");
    s_parse_bad ("fd00::1/8", "bits set past its prefix");
    s_parse_bad ("ingress.local", "not an address");
    s_parse_bad ("10.0.0.0/8, 300.1.1.1", "'300.1.1.1' is not an address");
    s_parse_bad ("10.0.0.0/8;192.0.2.1", "prefix length");
    s_parse_bad ("10.0.0.0;192.0.2.1", "not an address");
    s_parse_bad ("::ffff:10.0.0.0/95", "prefix length must be 0-128");
    s_parse_bad ("[::1]", "not an address");
    char many[2048] = "";
    for (int i = 0; i <= BF_PROXY_MAX; i++)
        snprintf (many + strlen (many), sizeof many - strlen (many), "10.0.%d.1,", i);
    s_parse_bad (many, "more than 32");
    char *long_entry = calloc (1, 10001);
    memset (long_entry, '1', 10000);
    s_parse_bad (long_entry, "not an address");
    free (long_entry);
}

static void
test_client (void **state)
{
    (void)state;
    s_parse_ok ("10.0.0.0/8, fd00::/8", 2);
    /*  An untrusted peer: the header is never believed.  */
    s_client ("192.0.2.1", "203.0.113.9", "192.0.2.1");
    s_client ("192.0.2.1", NULL, "192.0.2.1");
    s_client ("fe80::1", "203.0.113.9", "fe80::1");
    /*  A trusted peer: the last entry that is not trusted.  */
    s_client ("10.0.0.5", "203.0.113.9", "203.0.113.9");
    s_client ("10.0.0.5", NULL, "10.0.0.5");
    s_client ("10.0.0.5", "", "10.0.0.5");
    s_client ("10.0.0.5", "203.0.113.9, 10.1.1.1", "203.0.113.9");
    s_client ("10.0.0.5", "203.0.113.9,10.1.1.1 ,\t10.2.2.2", "203.0.113.9");
    /*  What the browser wrote itself (left of the client) is not read.  */
    s_client ("10.0.0.5", "1.2.3.4, 203.0.113.9", "203.0.113.9");
    s_client ("10.0.0.5", "10.9.9.9, 203.0.113.9", "203.0.113.9");
    /*  Every entry trusted: the leftmost of them.  */
    s_client ("10.0.0.5", "10.1.1.1, 10.2.2.2", "10.1.1.1");
    /*  IPv6: plain, bracketed, with a port; IPv4 with a port; mapped.  */
    s_client ("10.0.0.5", "2001:db8::7", "2001:db8::7");
    s_client ("10.0.0.5", "[2001:db8::7]", "2001:db8::7");
    s_client ("10.0.0.5", "[2001:db8::7]:51234", "2001:db8::7");
    s_client ("10.0.0.5", "2001:DB8:0:0:0:0:0:7", "2001:db8::7");
    s_client ("10.0.0.5", "203.0.113.9:443", "203.0.113.9");
    s_client ("10.0.0.5", "::ffff:203.0.113.9", "203.0.113.9");
    s_client ("fd00::5", "203.0.113.9, fd00::6", "203.0.113.9");
    s_client ("::ffff:10.0.0.5", "203.0.113.9", "203.0.113.9");
    /*  Garbage stops the walk: the last address passed (or the peer).  */
    s_client ("10.0.0.5", "garbage", "10.0.0.5");
    s_client ("10.0.0.5", "unknown", "10.0.0.5");
    s_client ("10.0.0.5", "203.0.113.9, garbage", "10.0.0.5");
    s_client ("10.0.0.5", "garbage, 10.1.1.1", "10.1.1.1");
    s_client ("10.0.0.5", "203.0.113.9,,10.1.1.1", "10.1.1.1");
    s_client ("10.0.0.5", "203.0.113.9, 10.1.1.1,", "10.0.0.5");
    s_client ("10.0.0.5", "203.0.113.9 10.1.1.1", "10.0.0.5");
    s_client ("10.0.0.5", "[2001:db8::7", "10.0.0.5");
    s_client ("10.0.0.5", "[2001:db8::7]x", "10.0.0.5");
    s_client ("10.0.0.5", "[2001:db8::7]:", "10.0.0.5");
    s_client ("10.0.0.5", "[2001:db8::7]:1234567", "10.0.0.5");
    s_client ("10.0.0.5", "[203.0.113.9]:80", "203.0.113.9");
    s_client ("10.0.0.5", "203.0.113.9:", "10.0.0.5");
    s_client ("10.0.0.5", "203.0.113.9:80:80", "10.0.0.5");
    s_client ("10.0.0.5", "2001:db8::7:80x", "10.0.0.5");
    s_client ("10.0.0.5", "203.0.113.9\r\nX-Evil: 1", "10.0.0.5");
    s_client ("10.0.0.5", "203.0.113.9%eth0", "10.0.0.5");
    s_client ("10.0.0.5", "fe80::1%eth0", "10.0.0.5");
    s_client ("10.0.0.5", "256.0.0.1", "10.0.0.5");
    s_client ("10.0.0.5", "0x7f.1", "10.0.0.5");
    s_client ("10.0.0.5", "\xff\xfe", "10.0.0.5");
    /*  A peer that is not an address (never from libmicrohttpd) is kept.  */
    s_client ("unknown", "203.0.113.9", "unknown");
}

static void
test_hostile_headers (void **state)
{
    (void)state;
    s_parse_ok ("10.0.0.0/8", 1);
    /*  Huge: one 64 KiB entry, and 64 KiB of spaces after a good one.  */
    size_t big = 64 * 1024;
    char *huge = malloc (big + 64);
    memset (huge, '9', big);
    huge[big] = 0;
    s_client ("10.0.0.5", huge, "10.0.0.5");
    snprintf (huge, 64, "203.0.113.9");
    memset (huge + 11, ' ', big - 11);
    huge[big] = 0;
    s_client ("10.0.0.5", huge, "203.0.113.9");
    /*  Many entries: thousands of trusted hops end the walk after
        BF_PROXY_HOPS, at the last one passed; the client far left of
        them is never reached.  */
    size_t n = 5000;
    char *many = malloc (n * 16 + 32);
    size_t len = (size_t)sprintf (many, "203.0.113.9");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf (many + len, ", 10.0.%zu.%zu", (i / 250) % 250, i % 250 + 1);
    char want[32];
    size_t at = n - BF_PROXY_HOPS;
    snprintf (want, sizeof want, "10.0.%zu.%zu", (at / 250) % 250, at % 250 + 1);
    s_client ("10.0.0.5", many, want);
    /*  Many untrusted entries: the rightmost is the client.  */
    len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf (many + len, "%s198.51.100.%zu", i ? "," : "", i % 250 + 1);
    snprintf (want, sizeof want, "198.51.100.%zu", (n - 1) % 250 + 1);
    s_client ("10.0.0.5", many, want);
    /*  Only commas, only spaces.  */
    memset (many, ',', n);
    many[n] = 0;
    s_client ("10.0.0.5", many, "10.0.0.5");
    memset (many, ' ', n);
    s_client ("10.0.0.5", many, "10.0.0.5");
    free (many);
    free (huge);
    /*  The output is always NUL-terminated, even when short.  */
    char small[8];
    bf_proxies_client (&s_proxies, "10.0.0.5", "2001:db8::1234:5678", small, sizeof small);
    assert_int_equal (strlen (small), 7);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_parse),
        cmocka_unit_test (test_client),
        cmocka_unit_test (test_hostile_headers),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
