/* util.h - small shared macros and allocation helpers.
 *
 * Allocation failure is not a recoverable condition for invsync: the x*
 * helpers print a message and abort(). Everything else reports errors as a
 * negative return value (see README "Error conventions"). */
#ifndef INVSYNC_UTIL_H
#define INVSYNC_UTIL_H

#include <stdbool.h>
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

/* One character of UTF-8 at s, of which n > 0 bytes are available. Returns
 * true when s starts with a well-formed character, *len bytes long. Returns
 * false when it does not: *len is then the ill-formed part (at least 1
 * byte) that one U+FFFD replaces, as Unicode recommends (a truncated
 * sequence counts once, not once per byte). Overlong forms, surrogates and
 * code points past U+10FFFF are ill-formed. */
bool util_utf8_next(const char *s, size_t n, size_t *len);

struct buf;

/* Replace the file at path with the len bytes at data so that a reader
 * sees the old file or the new one, never part of one: they go to a hidden
 * temporary file in the same directory (".NAME.XXXXXX"), are flushed to
 * disk, given mode (e.g. 0644, whatever the umask), and the file is
 * renamed over path. Returns 0, or a negative errno with a sentence
 * appended to err that starts with what and path ("metrics file PATH:
 * cannot ..."); path is then untouched and the temporary file gone. */
int util_write_file_atomic(const char *path, const char *what, const void *data, size_t len,
			   unsigned mode, struct buf *err) MUSTCHECK;

#endif
