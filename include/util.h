/* util.h - small shared macros and allocation helpers.
 *
 * Allocation failure is not a recoverable condition for invsync: the x*
 * helpers print a message and abort(). Everything else reports errors as a
 * negative return value (see README "Error conventions"). */
#ifndef INVSYNC_UTIL_H
#define INVSYNC_UTIL_H

#include <stddef.h>

#define MUSTCHECK __attribute__((warn_unused_result))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED(x) ((void)(x))

/* Never return NULL; abort() with a message on allocation failure. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Monotonic clock in milliseconds / nanoseconds. */
unsigned long long util_now_ms(void);
unsigned long long util_now_ns(void);

#endif
