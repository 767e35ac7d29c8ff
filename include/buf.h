/* buf.h - growable byte buffer.
 *
 * A struct buf owns its storage. data is always NUL-terminated after any
 * append (the terminator is not counted in len), so a buf holding text can be
 * passed to C string functions. Growth aborts on allocation failure. */
#ifndef INVSYNC_BUF_H
#define INVSYNC_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

void buf_init(struct buf *b);
void buf_free(struct buf *b);
/* Ensure room for n more bytes plus the terminator. */
void buf_reserve(struct buf *b, size_t n);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Forget the contents, keep the storage. */
void buf_reset(struct buf *b);
/* Drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Return the text (never NULL: "" for an empty buf). */
const char *buf_str(const struct buf *b);

#endif
