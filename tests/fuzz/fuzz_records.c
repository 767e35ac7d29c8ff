/* fuzz_records.c - libFuzzer target for every endpoint's records: the
 * input is an answer body, parsed with each endpoint's jstream spec, and
 * every record goes through the endpoint's record_key and encode_row.
 *
 * What must hold for every input and endpoint:
 *   - every COPY row encode_row writes ends in '\n' and has exactly as many
 *     columns as the endpoint's copy_columns (tabs + 1), and no NUL byte;
 *   - a key, when there is one, is non-empty text without a NUL byte;
 *   - nothing leaks or reads out of bounds (the sanitizers).
 *
 * Build: make -f tests/fuzz/Makefile.fuzz; run: make -f tests/fuzz/Makefile.fuzz run-records
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "endpoint.h"
#include "jstream.h"
#include "mosyle.h"
#include "syncro.h"

struct ctx {
	const struct endpoint *ep;
	size_t columns;
	struct buf rows;
	struct buf scratch;
};

static void check_rows(const struct ctx *c)
{
	if (c->rows.len == 0)
		return; /* a record may give no row (a group without members) */
	const char *p = c->rows.data, *end = c->rows.data + c->rows.len;
	if (memchr(p, '\0', c->rows.len))
		abort();
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			abort(); /* a row that does not end */
		size_t cols = 1;
		for (const char *q = p; q < nl; q++)
			cols += *q == '\t';
		if (cols != c->columns)
			abort();
		p = nl + 1;
	}
}

static int on_record(void *arg, const struct jstream_record *rec)
{
	struct ctx *c = arg;
	const char *key = NULL;
	size_t keylen = c->ep->record_key(rec, &c->scratch, &key);
	if (keylen == 0)
		return 0;
	if (!key || memchr(key, '\0', keylen))
		abort();
	struct endpoint_row_ctx rc = {7, 3, c->ep->per_os ? "ios" : NULL};
	buf_reset(&c->rows);
	(void)c->ep->encode_row(&c->rows, rec, key, keylen, &rc);
	check_rows(c);
	return 0;
}

static void on_capture(void *arg, size_t id, const struct jstream_value *v)
{
	(void)arg;
	(void)id;
	if (v->text == NULL)
		abort();
}

static void run_endpoint(const struct endpoint *ep, const uint8_t *data, size_t size)
{
	struct ctx c = {.ep = ep, .columns = 1};
	for (const char *p = ep->copy_columns; *p; p++)
		c.columns += *p == ',';
	buf_init(&c.rows);
	buf_init(&c.scratch);
	struct jstream *js;
	struct jstream_callbacks cb = {on_record, on_capture, &c};
	if (jstream_new(&js, &ep->spec, &cb) == 0) {
		/* in two chunks, split where the input's first byte says */
		size_t cut = size ? data[0] % (size + 1) : 0;
		if (jstream_feed(js, (const char *)data, cut) == 0 &&
		    jstream_feed(js, (const char *)data + cut, size - cut) == 0)
			(void)jstream_finish(js);
		jstream_free(js);
	}
	buf_free(&c.rows);
	buf_free(&c.scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (const struct endpoint *const *ep = mosyle_endpoints; *ep; ep++)
		run_endpoint(*ep, data, size);
	for (const struct endpoint *const *ep = syncro_endpoints; *ep; ep++)
		run_endpoint(*ep, data, size);
	return 0;
}
