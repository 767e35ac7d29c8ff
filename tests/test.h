/* test.h - a tiny test runner.
 *
 * TEST(name) { ... } registers a test. Each test runs in its own forked
 * process with a time limit, so a crash or a hang fails that test only.
 * ASSERT_* macros print both values and the location, then fail the test.
 * The runner prints TAP lines and ends with "N passed, N failed".
 * Arguments to the test binary select tests whose name contains them. */
#ifndef INVSYNC_TEST_H
#define INVSYNC_TEST_H

#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);

void test_register(const char *name, test_fn fn, const char *file);
void test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
/* Per-test time limit in seconds (default 60); call inside a test before
 * slow work, or at file scope via TEST_TIMEOUT. */
void test_set_timeout(unsigned seconds);

#define TEST(name)                                                          \
	static void name(void);                                             \
	__attribute__((constructor)) static void test_reg_##name(void)      \
	{                                                                   \
		test_register(#name, name, __FILE__);                        \
	}                                                                   \
	static void name(void)

#define ASSERT(cond)                                                        \
	do {                                                                \
		if (!(cond))                                                \
			test_fail(__FILE__, __LINE__, "assertion failed: %s", #cond); \
	} while (0)

#define ASSERT_EQ_INT(a, b)                                                 \
	do {                                                                \
		long long a_ = (long long)(a), b_ = (long long)(b);         \
		if (a_ != b_)                                               \
			test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", \
				  #a, #b, a_, b_);                          \
	} while (0)

#define ASSERT_EQ_STR(a, b)                                                 \
	do {                                                                \
		const char *a_ = (a), *b_ = (b);                            \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                      \
			test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", \
				  #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
	} while (0)

#define ASSERT_EQ_MEM(a, alen, b, blen)                                     \
	do {                                                                \
		size_t al_ = (alen), bl_ = (blen);                          \
		if (al_ != bl_ || memcmp((a), (b), al_) != 0)               \
			test_fail(__FILE__, __LINE__, "%s == %s: \"%.*s\" != \"%.*s\"", \
				  #a, #b, (int)al_, (const char *)(a), (int)bl_, \
				  (const char *)(b));                       \
	} while (0)

#define ASSERT_CONTAINS(hay, needle)                                        \
	do {                                                                \
		const char *h_ = (hay), *n_ = (needle);                     \
		if (!h_ || !strstr(h_, n_))                                 \
			test_fail(__FILE__, __LINE__, "%s contains \"%s\": got \"%s\"", \
				  #hay, n_, h_ ? h_ : "(null)");            \
	} while (0)

#endif
