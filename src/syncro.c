/* syncro.c - Syncro specifics (see syncro.h, endpoint.h).
 *
 * Four reads: the assets (the inventory proper), the customers and
 * contacts they point at, and the asset type names of /settings. Every
 * record is keyed on its numeric id, stored as a bigint; the key handed to
 * run.c is that id in canonical decimal, so "42", 42 and 42.0 are one
 * record. */
#include "syncro.h"
#include "rowenc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const char syncro_asset_permission[] = "Assets - List/Search";
static const char customer_permission[] = "Customers - List/Search";

/* Paged lists end with meta {total_pages, total_entries, per_page, page}
 * (which may be missing: the planner then walks to an empty list); a
 * refused token answers {"error":"..."}. */
static const char *const paged_captures[] = {"meta.total_entries", "meta.per_page", "error", NULL};
enum { CAP_TOTAL, CAP_PER_PAGE, CAP_ERROR };
static const char *const single_captures[] = {"error", NULL};
enum { CAP_SINGLE_ERROR };

/* Every spec below lists "id" first. */
enum { F_ID = 0 };

/* The record's id as its key: the canonical decimal form of a bigint,
 * written to scratch. 0 (no key) if the id is missing or not an integer. */
static size_t record_id(const struct jstream_record *rec, struct buf *scratch, const char **key)
{
	buf_reset(scratch);
	if (rowenc_int(scratch, &rec->fields[F_ID]) != 0 || scratch->len == 0 ||
	    scratch->data[0] == '\\')
		return 0;
	/* rowenc_int checked the range and the shape ("+007", "12.000") */
	long long id = strtoll(scratch->data, NULL, 10);
	buf_reset(scratch);
	buf_printf(scratch, "%lld", id);
	*key = scratch->data;
	return scratch->len;
}

static void row_start(struct buf *out, const char *key, size_t keylen,
		      const struct endpoint_row_ctx *ctx)
{
	buf_printf(out, "%d\t%d\t", ctx->attempt, ctx->page);
	rowenc_text(out, key, keylen);
}

/* A jsonb column from a JSON object or array, as received. */
static int put_jsonb(struct buf *out, const struct jstream_value *v)
{
	if (v->type == JSTREAM_JSON) {
		rowenc_text(out, v->text, v->len);
		return 0;
	}
	rowenc_null(out);
	return v->type != JSTREAM_ABSENT && v->type != JSTREAM_NULL;
}

/* ---- strings of an embedded object ----
 * jstream hands an embedded object (an asset's "customer") over as
 * compact, valid JSON text. The few strings wanted from it are found by a
 * scan that skips nested values: cheaper than a yajl tree per record, and
 * it allocates nothing. It still accepts whitespace between tokens, and
 * decodes every JSON escape. */

struct span {
	const char *text; /* a JSON value; NULL when the member is missing */
	size_t len;
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
	while (i < n && is_ws(s[i]))
		i++;
	return i;
}

/* Just past the string that opens at s[i], or n + 1 if it never closes. */
static size_t skip_string(const char *s, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return n + 1;
}

/* Just past the value that starts at s[i] (i < n), or n + 1 if it is cut. */
static size_t skip_value(const char *s, size_t n, size_t i)
{
	if (s[i] == '"')
		return skip_string(s, n, i);
	if (s[i] == '{' || s[i] == '[') {
		size_t depth = 0;
		while (i < n) {
			char c = s[i];
			if (c == '"') {
				i = skip_string(s, n, i);
				continue;
			}
			if (c == '{' || c == '[')
				depth++;
			else if ((c == '}' || c == ']') && --depth == 0)
				return i + 1;
			i++;
		}
		return n + 1;
	}
	while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_ws(s[i]))
		i++;
	return i;
}

static int hex4(const char *s, size_t n, size_t i)
{
	int v = 0;
	if (i + 4 > n)
		return -1;
	for (size_t k = i; k < i + 4; k++) {
		char c = s[k];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static size_t utf8_put(char out[4], unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Decode one unit (a byte, or an escape) of the string body s[i..n) into
 * out; returns the index of the next unit. A surrogate pair is one unit;
 * a lone surrogate and "\u0000" become U+FFFD, as jstream does. */
static size_t decode_unit(const char *s, size_t n, size_t i, char out[4], size_t *len)
{
	*len = 1;
	if (s[i] != '\\' || i + 1 >= n) {
		out[0] = s[i];
		return i + 1;
	}
	switch (s[i + 1]) {
	case 'b': out[0] = '\b'; break;
	case 'f': out[0] = '\f'; break;
	case 'n': out[0] = '\n'; break;
	case 'r': out[0] = '\r'; break;
	case 't': out[0] = '\t'; break;
	case 'u': {
		int cp = hex4(s, n, i + 2);
		if (cp < 0) {
			out[0] = '\\';
			return i + 1;
		}
		i += 6;
		if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < n && s[i] == '\\' && s[i + 1] == 'u') {
			int lo = hex4(s, n, i + 2);
			if (lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			}
		}
		if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
			cp = 0xfffd;
		*len = utf8_put(out, (unsigned)cp);
		return i;
	}
	default: out[0] = s[i + 1]; break; /* '"', '\\', '/' */
	}
	return i + 2;
}

/* True if the quoted JSON string s (quotes included) decodes to want. */
static bool string_is(const char *s, size_t n, const char *want)
{
	size_t wlen = strlen(want), w = 0;
	for (size_t i = 1; i + 1 < n;) {
		char u[4];
		size_t ulen;
		i = decode_unit(s, n - 1, i, u, &ulen);
		if (w + ulen > wlen || memcmp(want + w, u, ulen) != 0)
			return false;
		w += ulen;
	}
	return w == wlen;
}

/* True unless v is a string holding something besides whitespace. */
static bool blank(const struct span *v)
{
	if (!v->text || v->len < 2 || v->text[0] != '"')
		return true;
	for (size_t i = 1; i + 1 < v->len;) {
		char u[4];
		size_t ulen;
		i = decode_unit(v->text, v->len - 1, i, u, &ulen);
		if (ulen > 1 || !is_ws(u[0]))
			return false;
	}
	return true;
}

/* Append the decoded string v (a quoted JSON string), COPY-escaped. */
static void put_decoded(struct buf *out, const struct span *v)
{
	char chunk[256];
	size_t used = 0;
	for (size_t i = 1; i + 1 < v->len;) {
		size_t ulen;
		i = decode_unit(v->text, v->len - 1, i, chunk + used, &ulen);
		used += ulen;
		if (used > sizeof(chunk) - 4) {
			rowenc_text(out, chunk, used);
			used = 0;
		}
	}
	rowenc_text(out, chunk, used);
}

/* Find the top-level members names[0..count) of the JSON object s[0..n)
 * (the last occurrence of a duplicate key wins, as in jstream's fields).
 * Returns false if s is not an object. */
static bool object_members(const char *s, size_t n, const char *const *names, size_t count,
			   struct span *vals)
{
	size_t i = skip_ws(s, n, 0);
	if (i >= n || s[i] != '{')
		return false;
	i = skip_ws(s, n, i + 1);
	if (i < n && s[i] == '}')
		return true;
	for (;;) {
		if (i >= n || s[i] != '"')
			return false;
		size_t key = i, key_end = skip_string(s, n, i);
		if (key_end > n)
			return false;
		i = skip_ws(s, n, key_end);
		if (i >= n || s[i] != ':')
			return false;
		i = skip_ws(s, n, i + 1);
		if (i >= n)
			return false;
		size_t value = i;
		i = skip_value(s, n, i);
		if (i > n || i == value)
			return false;
		for (size_t k = 0; k < count; k++)
			if (string_is(s + key, key_end - key, names[k]))
				vals[k] = (struct span){s + value, i - value};
		i = skip_ws(s, n, i);
		if (i < n && s[i] == '}')
			return true;
		if (i >= n || s[i] != ',')
			return false;
		i = skip_ws(s, n, i + 1);
	}
}

int syncro_customer_name(struct buf *b, const struct jstream_value *customer)
{
	static const char *const names[] = {"business_name", "firstname", "lastname"};
	struct span v[ARRAY_SIZE(names)] = {{NULL, 0}};

	if (customer->type == JSTREAM_ABSENT || customer->type == JSTREAM_NULL) {
		rowenc_null(b);
		return 0;
	}
	if (customer->type != JSTREAM_JSON ||
	    !object_members(customer->text, customer->len, names, ARRAY_SIZE(names), v)) {
		rowenc_null(b);
		return 1;
	}
	if (!blank(&v[0])) {
		put_decoded(b, &v[0]);
		return 0;
	}
	/* a person rather than a business */
	bool first = !blank(&v[1]), last = !blank(&v[2]);
	if (!first && !last) {
		rowenc_null(b);
		return 0;
	}
	if (first)
		put_decoded(b, &v[1]);
	if (first && last)
		buf_putc(b, ' ');
	if (last)
		put_decoded(b, &v[2]);
	return 0;
}

/* ---- /customer_assets ---- */

enum asset_field {
	FA_ID = F_ID,
	FA_NAME,
	FA_TYPE,
	FA_SERIAL,
	FA_CUSTOMER_ID,
	FA_CUSTOMER,
	FA_CONTACT_ID,
	FA_CREATED,
	FA_UPDATED,
	FA_PROPERTIES,
};

static const char *const asset_fields[] = {
	"id", "name", "asset_type", "asset_serial", "customer_id", "customer", "contact_id",
	"created_at", "updated_at", "properties", NULL,
};
static const char *const asset_list_path[] = {"assets", NULL};

static int asset_row(struct buf *out, const struct jstream_record *rec, const char *key,
		     size_t keylen, const struct endpoint_row_ctx *ctx)
{
	const struct jstream_value *f = rec->fields;
	int bad = 0;
	row_start(out, key, keylen, ctx);
	rowenc_sep(out);
	rowenc_value(out, &f[FA_NAME], 0);
	rowenc_sep(out);
	rowenc_value(out, &f[FA_TYPE], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[FA_SERIAL], 1);
	rowenc_sep(out);
	bad += rowenc_int(out, &f[FA_CUSTOMER_ID]);
	rowenc_sep(out);
	bad += syncro_customer_name(out, &f[FA_CUSTOMER]);
	rowenc_sep(out);
	bad += rowenc_int(out, &f[FA_CONTACT_ID]);
	rowenc_sep(out);
	bad += rowenc_iso_time(out, &f[FA_CREATED]);
	rowenc_sep(out);
	bad += rowenc_iso_time(out, &f[FA_UPDATED]);
	rowenc_sep(out);
	/* as received: jsonb keeps "Notes" and "notes" apart */
	bad += put_jsonb(out, &f[FA_PROPERTIES]);
	rowenc_sep(out);
	rowenc_serial_key(out, &f[FA_SERIAL]);
	rowenc_sep(out);
	rowenc_text(out, rec->json, rec->json_len);
	rowenc_end(out);
	return bad;
}

static void assets_request(struct buf *query, struct buf *body, const struct endpoint_request *req)
{
	(void)body;
	buf_printf(query, "?page=%d&per_page=%d", req->page, SYNCRO_ASSETS_PER_PAGE);
}

const struct endpoint syncro_assets_endpoint = {
	.name = "assets",
	.permission = syncro_asset_permission,
	.path = "/customer_assets",
	.paging = ENDPOINT_PAGED,
	.first_page = 1,
	.request = assets_request,
	.spec = {
		.list_path = asset_list_path,
		.fields = asset_fields,
		.captures = paged_captures,
	},
	.cap_total = CAP_TOTAL,
	.cap_page_size = CAP_PER_PAGE,
	.cap_status = -1,
	.cap_info = -1,
	.cap_error = CAP_ERROR,
	.table = "syncro_assets",
	.key_columns = "asset_id",
	.copy_columns = "attempt, page, asset_id, name, asset_type, asset_serial, customer_id,"
			" customer_name, contact_id, created_at, updated_at, properties, serial_key,"
			" attrs",
	.commit = ENDPOINT_REPLACE,
	.record_key = record_id,
	.encode_row = asset_row,
};

/* ---- /customers ---- */

enum customer_field {
	FC_ID = F_ID,
	FC_BUSINESS,
	FC_FIRST,
	FC_LAST,
	FC_EMAIL,
	FC_DISABLED,
	FC_CREATED,
	FC_UPDATED,
};

static const char *const customer_fields[] = {
	"id", "business_name", "firstname", "lastname", "email", "disabled", "created_at",
	"updated_at", NULL,
};
static const char *const customer_list_path[] = {"customers", NULL};

static int customer_row(struct buf *out, const struct jstream_record *rec, const char *key,
			size_t keylen, const struct endpoint_row_ctx *ctx)
{
	const struct jstream_value *f = rec->fields;
	int bad = 0;
	row_start(out, key, keylen, ctx);
	rowenc_sep(out);
	rowenc_value(out, &f[FC_BUSINESS], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[FC_FIRST], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[FC_LAST], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[FC_EMAIL], 1);
	rowenc_sep(out);
	bad += rowenc_bool(out, &f[FC_DISABLED]);
	rowenc_sep(out);
	bad += rowenc_iso_time(out, &f[FC_CREATED]);
	rowenc_sep(out);
	bad += rowenc_iso_time(out, &f[FC_UPDATED]);
	rowenc_sep(out);
	rowenc_text(out, rec->json, rec->json_len);
	rowenc_end(out);
	return bad;
}

static void customers_request(struct buf *query, struct buf *body,
			      const struct endpoint_request *req)
{
	(void)body;
	/* without it Syncro leaves disabled customers out, and assets point
	 * at them all the same */
	buf_printf(query, "?page=%d&include_disabled=true", req->page);
}

const struct endpoint syncro_customers_endpoint = {
	.name = "customers",
	.permission = customer_permission,
	.path = "/customers",
	.paging = ENDPOINT_PAGED,
	.first_page = 1,
	.request = customers_request,
	.spec = {
		.list_path = customer_list_path,
		.fields = customer_fields,
		.captures = paged_captures,
	},
	.cap_total = CAP_TOTAL,
	.cap_page_size = CAP_PER_PAGE,
	.cap_status = -1,
	.cap_info = -1,
	.cap_error = CAP_ERROR,
	.table = "syncro_customers",
	.key_columns = "customer_id",
	.copy_columns = "attempt, page, customer_id, business_name, firstname, lastname, email,"
			" disabled, created_at, updated_at, attrs",
	.commit = ENDPOINT_REPLACE,
	.record_key = record_id,
	.encode_row = customer_row,
};

/* ---- /contacts ---- */

enum contact_field {
	FK_ID = F_ID,
	FK_CUSTOMER_ID,
	FK_NAME,
	FK_EMAIL,
};

static const char *const contact_fields[] = {"id", "customer_id", "name", "email", NULL};
static const char *const contact_list_path[] = {"contacts", NULL};

static int contact_row(struct buf *out, const struct jstream_record *rec, const char *key,
		       size_t keylen, const struct endpoint_row_ctx *ctx)
{
	const struct jstream_value *f = rec->fields;
	int bad = 0;
	row_start(out, key, keylen, ctx);
	rowenc_sep(out);
	bad += rowenc_int(out, &f[FK_CUSTOMER_ID]);
	rowenc_sep(out);
	rowenc_value(out, &f[FK_NAME], 0);
	rowenc_sep(out);
	rowenc_value(out, &f[FK_EMAIL], 1);
	rowenc_sep(out);
	rowenc_text(out, rec->json, rec->json_len);
	rowenc_end(out);
	return bad;
}

static void contacts_request(struct buf *query, struct buf *body,
			     const struct endpoint_request *req)
{
	(void)body;
	buf_printf(query, "?page=%d", req->page);
}

const struct endpoint syncro_contacts_endpoint = {
	.name = "contacts",
	.path = "/contacts",
	.paging = ENDPOINT_PAGED,
	.first_page = 1,
	.request = contacts_request,
	.spec = {
		.list_path = contact_list_path,
		.fields = contact_fields,
		.captures = paged_captures,
	},
	.cap_total = CAP_TOTAL,
	.cap_page_size = CAP_PER_PAGE,
	.cap_status = -1,
	.cap_info = -1,
	.cap_error = CAP_ERROR,
	.table = "syncro_contacts",
	.key_columns = "contact_id",
	.copy_columns = "attempt, page, contact_id, customer_id, name, email, attrs",
	.commit = ENDPOINT_REPLACE,
	.record_key = record_id,
	.encode_row = contact_row,
};

/* ---- /settings: asset types ---- */

enum asset_type_field {
	FT_ID = F_ID,
	FT_NAME,
};

static const char *const asset_type_fields[] = {"id", "name", NULL};
static const char *const asset_type_list_path[] = {"asset_types", NULL};

static int asset_type_row(struct buf *out, const struct jstream_record *rec, const char *key,
			  size_t keylen, const struct endpoint_row_ctx *ctx)
{
	row_start(out, key, keylen, ctx);
	rowenc_sep(out);
	rowenc_value(out, &rec->fields[FT_NAME], 0);
	rowenc_sep(out);
	rowenc_text(out, rec->json, rec->json_len);
	rowenc_end(out);
	return 0;
}

static void asset_types_request(struct buf *query, struct buf *body,
				const struct endpoint_request *req)
{
	(void)query;
	(void)body;
	(void)req;
}

const struct endpoint syncro_asset_types_endpoint = {
	.name = "asset_types",
	.path = "/settings",
	.paging = ENDPOINT_SINGLE,
	.first_page = 1,
	.request = asset_types_request,
	.spec = {
		.list_path = asset_type_list_path,
		.fields = asset_type_fields,
		.captures = single_captures,
	},
	.cap_total = -1,
	.cap_page_size = -1,
	.cap_status = -1,
	.cap_info = -1,
	.cap_error = CAP_SINGLE_ERROR,
	.table = "syncro_asset_types",
	.key_columns = "asset_type_id",
	.copy_columns = "attempt, page, asset_type_id, name, attrs",
	.commit = ENDPOINT_REPLACE,
	.record_key = record_id,
	.encode_row = asset_type_row,
};

const struct endpoint *const syncro_endpoints[] = {
	&syncro_assets_endpoint,
	&syncro_customers_endpoint,
	&syncro_contacts_endpoint,
	&syncro_asset_types_endpoint,
	NULL,
};

const char *syncro_endpoint_permission(const struct endpoint *ep)
{
	return ep->permission;
}
