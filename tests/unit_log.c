/* unit_log.c - log line format, levels and secret redaction. */
#include "log.h"
#include "test.h"

#include <ctype.h>
#include <stdlib.h>

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
