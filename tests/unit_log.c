/* unit_log.c - log line format (text and JSON), levels, hooks and secret
 * redaction. */
#include "log.h"
#include "test.h"
#include "util.h"

#include <ctype.h>
#include <stdlib.h>
#include <yajl_tree.h>

/* Log into memory; read back with captured(). */
static FILE *capture_stream;
static char *capture_data;
static size_t capture_len;

static void capture_start(void)
{
	capture_stream = open_memstream(&capture_data, &capture_len);
	ASSERT(capture_stream != NULL);
	log_set_stream(capture_stream);
}

static const char *captured(void)
{
	fflush(capture_stream);
	return capture_data;
}

static void capture_end(void)
{
	log_set_stream(NULL);
	fclose(capture_stream);
	free(capture_data);
	capture_data = NULL;
	capture_stream = NULL;
}

static const char *redacted(struct buf *out, const char *s)
{
	buf_reset(out);
	log_redact(out, s);
	return buf_str(out);
}

TEST(log_line_format)
{
	capture_start();
	log_info("district-a", "fetched %d pages", 12);
	const char *line = captured();
	/* 2026-11-24T08:01:21Z info  [district-a] fetched 12 pages */
	ASSERT_EQ_INT(strlen(line), strlen("2026-11-24T08:01:21Z info  [district-a] fetched 12 pages\n"));
	for (int i = 0; i < 20; i++) {
		if (i == 4 || i == 7)
			ASSERT_EQ_INT(line[i], '-');
		else if (i == 10)
			ASSERT_EQ_INT(line[i], 'T');
		else if (i == 13 || i == 16)
			ASSERT_EQ_INT(line[i], ':');
		else if (i == 19)
			ASSERT_EQ_INT(line[i], 'Z');
		else
			ASSERT(isdigit((unsigned char)line[i]));
	}
	ASSERT_EQ_STR(line + 20, " info  [district-a] fetched 12 pages\n");
	capture_end();
}

TEST(log_line_without_source)
{
	capture_start();
	log_warn(NULL, "plain");
	ASSERT_EQ_STR(captured() + 20, " warn  plain\n");
	capture_end();
}

TEST(log_levels)
{
	ASSERT_EQ_INT(log_get_level(), LOG_LEVEL_INFO);
	capture_start();
	log_debug("s", "hidden");
	log_error("s", "e");
	log_info("s", "i");
	const char *out = captured();
	ASSERT(strstr(out, "hidden") == NULL);
	ASSERT_CONTAINS(out, "Z error [s] e\n");
	ASSERT_CONTAINS(out, "Z info  [s] i\n");

	log_set_level(LOG_LEVEL_DEBUG);
	ASSERT_EQ_INT(log_get_level(), LOG_LEVEL_DEBUG);
	log_debug("s", "shown");
	ASSERT_CONTAINS(captured(), "Z debug [s] shown\n");

	log_set_level(LOG_LEVEL_ERROR);
	log_warn("s", "quiet");
	log_info("s", "quiet");
	ASSERT(strstr(captured(), "quiet") == NULL);
	capture_end();
}

TEST(log_redacts_lines)
{
	log_add_secret("hunter22");
	capture_start();
	log_info("src-hunter22", "login with password=hunter22&x=hunter22");
	const char *out = captured();
	ASSERT(strstr(out, "hunter22") == NULL);
	ASSERT_CONTAINS(out, " info  [src-[redacted]] login with password=[redacted]&x=[redacted]\n");
	capture_end();
}

TEST(log_redact_basic)
{
	struct buf out = BUF_INIT;
	ASSERT_EQ_STR(redacted(&out, "nothing registered"), "nothing registered");
	log_add_secret("abc"); /* too short: ignored */
	log_add_secret(NULL);
	log_add_secret("");
	ASSERT_EQ_STR(redacted(&out, "abc abc"), "abc abc");
	log_add_secret("tok-1234");
	log_add_secret("tok-1234"); /* twice is harmless */
	ASSERT_EQ_STR(redacted(&out, "tok-1234"), "[redacted]");
	ASSERT_EQ_STR(redacted(&out, "a tok-1234 b tok-1234"), "a [redacted] b [redacted]");
	ASSERT_EQ_STR(redacted(&out, "tok-123"), "tok-123");
	ASSERT_EQ_STR(redacted(&out, ""), "");

	/* log_redact appends */
	buf_reset(&out);
	buf_puts(&out, ">");
	log_redact(&out, "tok-1234<");
	ASSERT_EQ_STR(buf_str(&out), ">[redacted]<");

	log_clear_secrets();
	ASSERT_EQ_STR(redacted(&out, "tok-1234"), "tok-1234");
	buf_free(&out);
}

TEST(log_redact_nested_and_overlapping)
{
	struct buf out = BUF_INIT;
	/* One secret inside another: the longer one goes whole. */
	log_add_secret("secret");
	log_add_secret("mysecretvalue");
	ASSERT_EQ_STR(redacted(&out, "x mysecretvalue y secret z"), "x [redacted] y [redacted] z");

	/* Overlapping secrets: no tail of either survives. */
	log_add_secret("abcdef");
	log_add_secret("cdef12");
	ASSERT_EQ_STR(redacted(&out, "xxabcdef12yy"), "xx[redacted]yy");
	ASSERT_EQ_STR(redacted(&out, "abcdef cdef12"), "[redacted] [redacted]");

	/* Overlapping occurrences of one secret. */
	log_add_secret("aaaa");
	ASSERT_EQ_STR(redacted(&out, "baaaaab"), "b[redacted]b");
	buf_free(&out);
	log_clear_secrets();
}

TEST(log_redact_buf_in_place)
{
	struct buf b = BUF_INIT;
	log_redact_buf(&b); /* empty: fine */
	ASSERT_EQ_INT(b.len, 0);
	buf_puts(&b, "Authorization: Bearer eyJhbGciOi.payload.sig");
	log_redact_buf(&b);
	ASSERT_EQ_STR(buf_str(&b), "Authorization: Bearer eyJhbGciOi.payload.sig");
	log_add_secret("eyJhbGciOi.payload.sig");
	log_redact_buf(&b);
	ASSERT_EQ_STR(buf_str(&b), "Authorization: Bearer [redacted]");
	ASSERT_EQ_INT(b.len, strlen("Authorization: Bearer [redacted]"));
	buf_free(&b);
	log_clear_secrets();
}

TEST(log_many_secrets)
{
	struct buf out = BUF_INIT;
	char s[32];
	for (int i = 0; i < 100; i++) {
		snprintf(s, sizeof(s), "key-%03d-secret", i);
		log_add_secret(s);
	}
	ASSERT_EQ_STR(redacted(&out, "key-000-secret key-042-secret key-099-secretX"),
		      "[redacted] [redacted] [redacted]X");
	buf_free(&out);
	log_clear_secrets();
}

TEST(log_event_text_shows_endpoint_and_page)
{
	capture_start();
	log_warn_ev("district-a", "devices/ios", 12, "page_retry", "attempt %d failed", 2);
	log_info_ev("district-a", "users", -1, "finished", "all pages read");
	log_info_ev("district-a", NULL, 3, NULL, "odd");
	log_ev(LOG_LEVEL_ERROR, NULL, NULL, -1, "failed", "no source");
	log_debug_ev("district-a", "users", 1, "page", "hidden at info");
	const char *out = captured();
	ASSERT_CONTAINS(out, "Z warn  [district-a] devices/ios page 12: attempt 2 failed\n");
	ASSERT_CONTAINS(out, "Z info  [district-a] users: all pages read\n");
	ASSERT_CONTAINS(out, "Z info  [district-a] page 3: odd\n");
	ASSERT_CONTAINS(out, "Z error no source\n");
	/* the event word is for machines: text lines do not show it */
	ASSERT(strstr(out, "page_retry") == NULL);
	ASSERT(strstr(out, "hidden") == NULL);
	capture_end();
}

/* The captured output split into lines, each parsed as JSON; fails the
 * test on a line that is not one JSON object. Returns how many. */
static size_t parse_lines(const char *out, yajl_val *vals, size_t max)
{
	size_t n = 0;
	const char *p = out;
	while (*p) {
		const char *nl = strchr(p, '\n');
		ASSERT(nl != NULL); /* every line ends with a newline */
		ASSERT(n < max);
		char *line = strndup(p, (size_t)(nl - p));
		for (const char *c = line; *c; c++)
			ASSERT((unsigned char)*c >= 0x20); /* no raw control character */
		char errbuf[256];
		vals[n] = yajl_tree_parse(line, errbuf, sizeof(errbuf));
		if (!vals[n])
			test_fail(__FILE__, __LINE__, "not JSON (%s): %s", errbuf, line);
		ASSERT(YAJL_IS_OBJECT(vals[n]));
		free(line);
		n++;
		p = nl + 1;
	}
	return n;
}

static const char *str_field(yajl_val v, const char *name)
{
	const char *path[] = {name, NULL};
	yajl_val f = yajl_tree_get(v, path, yajl_t_string);
	return f ? YAJL_GET_STRING(f) : NULL;
}

static void free_vals(yajl_val *vals, size_t n)
{
	for (size_t i = 0; i < n; i++)
		yajl_tree_free(vals[i]);
}

TEST(log_json_fields)
{
	log_set_format(LOG_FORMAT_JSON);
	ASSERT_EQ_INT(log_get_format(), LOG_FORMAT_JSON);
	capture_start();
	log_warn_ev("district-a", "devices/ios", 12, "page_retry", "attempt %d failed", 2);
	log_info(NULL, "plain");
	log_info_ev("msp", NULL, 0, "committed", "committed: %d rows current", 2155);
	log_debug("s", "hidden");

	yajl_val v[8];
	size_t n = parse_lines(captured(), v, 8);
	ASSERT_EQ_INT(n, 3);

	const char *t = str_field(v[0], "time");
	ASSERT(t != NULL);
	/* 2026-11-24T08:01:21.042Z */
	ASSERT_EQ_INT(strlen(t), 24);
	for (int i = 0; i < 24; i++) {
		if (i == 4 || i == 7)
			ASSERT_EQ_INT(t[i], '-');
		else if (i == 10)
			ASSERT_EQ_INT(t[i], 'T');
		else if (i == 13 || i == 16)
			ASSERT_EQ_INT(t[i], ':');
		else if (i == 19)
			ASSERT_EQ_INT(t[i], '.');
		else if (i == 23)
			ASSERT_EQ_INT(t[i], 'Z');
		else
			ASSERT(isdigit((unsigned char)t[i]));
	}
	ASSERT_EQ_STR(str_field(v[0], "level"), "warn");
	ASSERT_EQ_STR(str_field(v[0], "source"), "district-a");
	ASSERT_EQ_STR(str_field(v[0], "endpoint"), "devices/ios");
	ASSERT_EQ_STR(str_field(v[0], "event"), "page_retry");
	ASSERT_EQ_STR(str_field(v[0], "message"), "attempt 2 failed");
	const char *page_path[] = {"page", NULL};
	yajl_val page = yajl_tree_get(v[0], page_path, yajl_t_number);
	ASSERT(page != NULL && YAJL_IS_INTEGER(page));
	ASSERT_EQ_INT(YAJL_GET_INTEGER(page), 12);
	ASSERT_EQ_INT(v[0]->u.object.len, 7);

	/* absent fields are left out, not null */
	ASSERT_EQ_STR(str_field(v[1], "level"), "info");
	ASSERT_EQ_STR(str_field(v[1], "message"), "plain");
	ASSERT_EQ_INT(v[1]->u.object.len, 3);
	ASSERT_EQ_STR(v[1]->u.object.keys[0], "time");
	ASSERT_EQ_STR(v[1]->u.object.keys[1], "level");
	ASSERT_EQ_STR(v[1]->u.object.keys[2], "message");

	/* page 0 is a page */
	ASSERT_EQ_INT(v[2]->u.object.len, 6);
	page = yajl_tree_get(v[2], page_path, yajl_t_number);
	ASSERT(page != NULL);
	ASSERT_EQ_INT(YAJL_GET_INTEGER(page), 0);
	ASSERT_EQ_STR(str_field(v[2], "event"), "committed");
	free_vals(v, n);

	log_set_format(LOG_FORMAT_TEXT);
	log_info("s", "back to text");
	ASSERT_CONTAINS(captured(), "Z info  [s] back to text\n");
	capture_end();
}

TEST(log_json_escapes)
{
	log_set_format(LOG_FORMAT_JSON);
	capture_start();
	/* quotes, backslashes, every kind of control character, DEL, good
	 * UTF-8 (2, 3 and 4 bytes), a stray byte, a truncated sequence, an
	 * overlong form and a surrogate */
	log_info_ev("dist\"rict\\", "dev\nices", 1, "ev\tent",
		    "q\"b\\n\nr\rt\tb\bf\f\x01\x1f\x7f|\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|"
		    "\xff|\xe2\x82|\xc0\xaf|\xed\xa0\x80|end");
	const char *out = captured();
	ASSERT_CONTAINS(out, "\"source\":\"dist\\\"rict\\\\\"");
	ASSERT_CONTAINS(out, "\"endpoint\":\"dev\\nices\"");
	ASSERT_CONTAINS(out, "\"event\":\"ev\\tent\"");
	ASSERT_CONTAINS(out, "\"message\":\"q\\\"b\\\\n\\nr\\rt\\tb\\bf\\f\\u0001\\u001f\\u007f|");

	yajl_val v[2];
	size_t n = parse_lines(out, v, 2); /* yajl checks the UTF-8 too */
	ASSERT_EQ_INT(n, 1);
	ASSERT_EQ_STR(str_field(v[0], "source"), "dist\"rict\\");
	ASSERT_EQ_STR(str_field(v[0], "endpoint"), "dev\nices");
	ASSERT_EQ_STR(str_field(v[0], "event"), "ev\tent");
	ASSERT_EQ_STR(str_field(v[0], "message"),
		      "q\"b\\n\nr\rt\tb\bf\f\x01\x1f\x7f|\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|"
		      "\xef\xbf\xbd|\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|"
		      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|end");
	free_vals(v, n);
	log_set_format(LOG_FORMAT_TEXT);
	capture_end();
}

TEST(log_json_never_leaks_a_secret)
{
	/* secrets that escaping would change: redaction must come first */
	static const char *const secrets[] = {
		"pa\"ss\\wd\x01zz",
		"tok\nline-2",
		"\xff\xfe" "binary-key",
		"plain-secret-token",
	};
	for (size_t i = 0; i < ARRAY_SIZE(secrets); i++)
		log_add_secret(secrets[i]);
	log_set_format(LOG_FORMAT_JSON);
	capture_start();
	for (size_t i = 0; i < ARRAY_SIZE(secrets); i++) {
		const char *s = secrets[i];
		log_warn_ev(s, s, 1, s, "login with %s failed (%s)", s, s);
	}
	const char *out = captured();
	yajl_val v[8];
	size_t n = parse_lines(out, v, 8);
	ASSERT_EQ_INT(n, ARRAY_SIZE(secrets));
	for (size_t i = 0; i < n; i++) {
		ASSERT_EQ_STR(str_field(v[i], "source"), "[redacted]");
		ASSERT_EQ_STR(str_field(v[i], "endpoint"), "[redacted]");
		ASSERT_EQ_STR(str_field(v[i], "event"), "[redacted]");
		ASSERT_EQ_STR(str_field(v[i], "message"),
			      "login with [redacted] failed ([redacted])");
	}
	/* nor in the raw text, escaped or not, nor any recognisable piece */
	ASSERT(strstr(out, "pa\\\"ss") == NULL);
	ASSERT(strstr(out, "wd\\u0001zz") == NULL);
	ASSERT(strstr(out, "tok\\nline") == NULL);
	ASSERT(strstr(out, "binary-key") == NULL);
	ASSERT(strstr(out, "plain-secret") == NULL);
	free_vals(v, n);
	log_set_format(LOG_FORMAT_TEXT);
	log_clear_secrets();
	capture_end();
}

static void hook_before_line(void *arg)
{
	fputs("<", (FILE *)arg);
}

static void hook_after_line(void *arg)
{
	fputs(">", (FILE *)arg);
}

TEST(log_hooks_wrap_each_line)
{
	capture_start();
	log_set_hooks(hook_before_line, hook_after_line, capture_stream);
	log_info("s", "one");
	log_debug("s", "not written: no hooks either");
	log_info_ev("s", "users", 2, "page", "two");
	log_set_hooks(NULL, NULL, NULL);
	log_info("s", "three");
	const char *out = captured();
	const char *one = strstr(out, "<");
	ASSERT(one == out);
	ASSERT_CONTAINS(out, " info  [s] one\n><");
	ASSERT_CONTAINS(out, " info  [s] users page 2: two\n>20");
	ASSERT_CONTAINS(out, " info  [s] three\n");
	ASSERT_EQ_INT(out[strlen(out) - 2], 'e');
	capture_end();
}

TEST(log_json_any_bytes_give_valid_json)
{
	/* Random bytes (no NUL: a message is a C string) with a secret mixed
	 * in: every line must still parse, and the secret never show. */
	log_add_secret("s\x01\xffk");
	log_set_format(LOG_FORMAT_JSON);
	unsigned seed = 7;
	for (int round = 0; round < 500; round++) {
		char msg[64];
		size_t len = (size_t)(rand_r(&seed) % (sizeof(msg) - 1));
		for (size_t i = 0; i < len; i++)
			msg[i] = (char)(1 + rand_r(&seed) % 255);
		msg[len] = '\0';
		if (round % 5 == 0 && len > 8)
			memcpy(msg + len / 2, "s\x01\xffk", 4);
		capture_start();
		log_info_ev(msg, msg, round, msg, "%s", msg);
		yajl_val v[1];
		size_t n = parse_lines(captured(), v, 1);
		ASSERT_EQ_INT(n, 1);
		static const char *const fields[] = {"source", "endpoint", "event", "message"};
		for (size_t f = 0; f < ARRAY_SIZE(fields); f++) {
			const char *got = str_field(v[0], fields[f]);
			ASSERT(got != NULL);
			/* as it would read had it been escaped before redaction */
			ASSERT(strstr(got, "s\x01\xef\xbf\xbdk") == NULL);
		}
		free_vals(v, n);
		capture_end();
	}
	log_set_format(LOG_FORMAT_TEXT);
	log_clear_secrets();
}
