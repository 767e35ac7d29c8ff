/* util.c - allocation helpers, clocks, a UTF-8 check and atomic file
 * replacement. */
#include "util.h"
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
	fprintf(stderr, "invsync: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom(n * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

unsigned long long util_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

unsigned long long util_now_ms(void)
{
	return util_now_ns() / 1000000ull;
}

bool util_utf8_next(const char *str, size_t n, size_t *len)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[0];
	/* The second byte's range narrows for E0, ED, F0 and F4: that is what
	 * rules out overlong forms, surrogates and code points past 10FFFF. */
	unsigned char lo = 0x80, hi = 0xBF;
	size_t need;

	if (c < 0x80) {
		*len = 1;
		return true;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		need = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		*len = 1;
		return false;
	}
	size_t i = 1;
	while (i < need && i < n) {
		unsigned char b = s[i];
		if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
			break;
		i++;
	}
	*len = i;
	return i == need;
}

/* Write all n bytes, through short writes and signals. */
static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int util_write_file_atomic(const char *path, const char *what, const void *data, size_t len,
			   unsigned mode, struct buf *err)
{
	int rc = 0, fd = -1;
	bool created = false;
	struct buf dir = BUF_INIT, tmp = BUF_INIT;

	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (*base == '\0') {
		buf_printf(err, "%s %s: needs a file name, not a directory", what, path);
		return -EINVAL;
	}
	if (!slash)
		buf_puts(&dir, ".");
	else if (slash == path)
		buf_puts(&dir, "/");
	else
		buf_append(&dir, path, (size_t)(slash - path));
	/* hidden, and not ending in the file's own suffix: a reader looking
	 * for *.prom (node_exporter's textfile collector) skips it */
	buf_printf(&tmp, "%.*s.%s.XXXXXX", (int)(base - path), path, base);

	fd = mkostemp(tmp.data, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		buf_printf(err, "%s %s: cannot create a temporary file in %s: %s", what, path,
			   dir.data, strerror(errno));
		goto out;
	}
	created = true;
	/* mkostemp makes it 0600; a reader running as another user may need
	 * more, whatever our umask */
	if (fchmod(fd, (mode_t)mode) < 0) {
		rc = -errno;
		buf_printf(err, "%s %s: cannot set the mode of %s: %s", what, path, tmp.data,
			   strerror(errno));
		goto out;
	}
	rc = write_all(fd, data, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (rc < 0) {
		buf_printf(err, "%s %s: cannot write %s: %s", what, path, tmp.data, strerror(-rc));
		goto out;
	}
	int closed = close(fd);
	fd = -1;
	if (closed < 0) {
		rc = -errno;
		buf_printf(err, "%s %s: cannot write %s: %s", what, path, tmp.data, strerror(errno));
		goto out;
	}
	if (rename(tmp.data, path) < 0) {
		rc = -errno;
		buf_printf(err, "%s %s: cannot replace it with %s: %s", what, path, tmp.data,
			   strerror(errno));
		goto out;
	}
	created = false;
	/* The rename itself reaches the disk with the directory; if that
	 * fails the file is still whole, so it is not worth an error. */
	int dfd = open(dir.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}

out:
	if (fd >= 0)
		close(fd);
	if (created)
		unlink(tmp.data);
	buf_free(&tmp);
	buf_free(&dir);
	return rc;
}
