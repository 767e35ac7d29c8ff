/* mosyle.c - Mosyle Manager specifics (see mosyle.h, endpoint.h). */
#include "mosyle.h"
#include "rowenc.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void json_string(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	buf_putc(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			buf_putc(out, '\\');
			buf_putc(out, (char)*p);
		} else if (*p < 0x20) {
			char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 0xf]};
			buf_append(out, esc, sizeof(esc));
		} else {
			buf_putc(out, (char)*p);
		}
	}
	buf_putc(out, '"');
}

void mosyle_login_body(struct buf *out, const struct config_source *src)
{
	buf_puts(out, "{\"accessToken\":");
	json_string(out, src->access_token);
	buf_puts(out, ",\"email\":");
	json_string(out, src->email);
	buf_puts(out, ",\"password\":");
	json_string(out, src->password);
	buf_putc(out, '}');
}

char *mosyle_login_token(const char *authorization)
{
	if (!authorization)
		return NULL;
	const char *p = authorization;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "bearer", 6) == 0 && (p[6] == ' ' || p[6] == '\t')) {
		p += 6;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	size_t n = strlen(p);
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	if (n == 0)
		return NULL;
	return xstrndup(p, n);
}

/* {"accessToken":T,"options":{["os":OS,]"page":N[,"page_size":S]}}, the
 * page size only when page_size > 0. */
static void options_body(struct buf *out, const struct config_source *src, const char *os,
			 int page, int page_size)
{
	buf_puts(out, "{\"accessToken\":");
	json_string(out, src->access_token);
	buf_puts(out, ",\"options\":{");
	if (os) {
		buf_puts(out, "\"os\":");
		json_string(out, os);
		buf_putc(out, ',');
	}
	buf_printf(out, "\"page\":%d", page);
	if (page_size > 0)
		buf_printf(out, ",\"page_size\":%d", page_size);
	buf_puts(out, "}}");
}

void mosyle_page_body(struct buf *out, const struct config_source *src, const char *os, int page)
{
	options_body(out, src, os, page, src->page_size);
}

bool mosyle_auth_refused(const char *s)
{
	return s && (strstr(s, "Unauthorized") || strstr(s, "Invalid accessToken") ||
		     strstr(s, "accessToken Required"));
}

/* ---- /listdevices ---- */

enum device_field {
	F_UDID,
	F_SERIAL,
	F_NAME,
	F_MODEL,
	F_MODEL_NAME,
	F_MODEL_NAME2,
	F_OSVERSION,
	F_ASSET_TAG,
	F_TAGS,
	F_USERID,
	F_USERNAME,
	F_USEREMAIL,
	F_USERTYPE,
	F_SUPERVISED,
	F_TOTAL_DISK,
	F_AVAILABLE_DISK,
	F_BATTERY,
	F_ENROLLMENT,
	F_LAST_BEAT,
	F_NEEDOSUPDATE,
	F_AVAILABLE_UPDATES,
	F_SHARED_CART,
};

static const char *const device_fields[] = {
	"deviceudid", "serial_number", "device_name", "device_model", "device_model_name",
	"model_name", "osversion", "asset_tag", "tags", "userid", "username", "useremail",
	"usertype", "is_supervised", "total_disk", "available_disk", "battery",
	"enrollment_type", "date_last_beat", "needosupdate", "AvailableOSUpdates",
	"SharedCartName", NULL,
};

static const char *const device_list_path[] = {"response", "devices", NULL};
static const char *const device_captures[] = {
	"response.rows", "response.page_size", "response.status", "response.info", "status", NULL,
};
static const char *const device_end_statuses[] = {"DEVICES_NOTFOUND", NULL};

static bool has_text(const struct jstream_value *v)
{
	return (v->type == JSTREAM_STRING || v->type == JSTREAM_NUMBER) && v->len > 0;
}

static size_t device_key(const struct jstream_record *rec, struct buf *scratch, const char **key)
{
	const struct jstream_value *udid = &rec->fields[F_UDID];
	if (has_text(udid)) {
		*key = udid->text;
		return udid->len;
	}
	/* no UDID: the serial number, prefixed so it cannot collide with one */
	const struct jstream_value *serial = &rec->fields[F_SERIAL];
	if (has_text(serial)) {
		buf_reset(scratch);
		buf_puts(scratch, "serial:");
		buf_append(scratch, serial->text, serial->len);
		*key = scratch->data;
		return scratch->len;
	}
	return 0;
}

static bool equals_nocase(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* A text trimmed of spaces (as SQL's btrim() trims). */
static const char *trim_spaces(const char *s, size_t *len)
{
	while (*len && *s == ' ') {
		s++;
		(*len)--;
	}
	while (*len && s[*len - 1] == ' ')
		(*len)--;
	return s;
}

/* Whether Mosyle says an OS update is waiting: needosupdate true (or "1",
 * "yes"), or AvailableOSUpdates neither empty nor an empty list. The SQL
 * function mosyle_needs_os_update() says the same of attrs. */
static bool os_update_pending(const struct jstream_value *need, const struct jstream_value *avail)
{
	if (need->type != JSTREAM_ABSENT && need->type != JSTREAM_NULL && need->type != JSTREAM_JSON &&
	    (equals_nocase(need->text, need->len, "true") || equals_nocase(need->text, need->len, "1") ||
	     equals_nocase(need->text, need->len, "yes")))
		return true;
	if (avail->type == JSTREAM_ABSENT || avail->type == JSTREAM_NULL)
		return false;
	if (avail->type == JSTREAM_JSON) {
		struct rowenc_json_iter it;
		struct rowenc_json_item item;
		rowenc_json_iter_init(&it, avail->text, avail->len);
		/* an object, or an array with an element */
		return it.close != ']' || rowenc_json_iter_next(&it, &item) || it.bad;
	}
	size_t n = avail->len;
	const char *t = trim_spaces(avail->text, &n);
	return !(n == 0 || (n == 2 && memcmp(t, "[]", 2) == 0) || (n == 4 && memcmp(t, "null", 4) == 0));
}

static bool is_cart_tag(const char *s, size_t len)
{
	return len >= 4 && strncasecmp(s, "cart", 4) == 0;
}

/* The shared cart a device belongs to: SharedCartName, trimmed, or else
 * its first tag that starts with "cart" in any case; NULL for neither.
 * The SQL function device_cart() says the same of attrs and tags. */
static void put_shared_cart(struct buf *out, const struct jstream_value *name,
			    const struct jstream_value *tags)
{
	if (name->type != JSTREAM_ABSENT && name->type != JSTREAM_NULL) {
		size_t n = name->len;
		const char *t = trim_spaces(name->text, &n);
		if (n) {
			rowenc_text(out, t, n);
			return;
		}
	}
	if (tags->type == JSTREAM_JSON) {
		/* an array: its elements as they are (rowenc_csv_array) */
		struct rowenc_json_iter it;
		struct rowenc_json_item item;
		struct buf el = BUF_INIT;
		rowenc_json_iter_init(&it, tags->text, tags->len);
		while (rowenc_json_iter_next(&it, &item)) {
			buf_reset(&el);
			if (item.type == JSTREAM_STRING)
				(void)rowenc_json_string(&el, item.raw, item.len);
			else if (item.type == JSTREAM_NUMBER || item.type == JSTREAM_BOOL)
				rowenc_text(&el, item.raw, item.len);
			/* COPY escaping leaves "cart" as it is */
			if (is_cart_tag(buf_str(&el), el.len)) {
				buf_append(out, el.data, el.len);
				buf_free(&el);
				return;
			}
		}
		buf_free(&el);
	} else if (tags->type != JSTREAM_ABSENT && tags->type != JSTREAM_NULL) {
		/* a comma-separated string, its elements trimmed */
		const char *s = tags->text, *el;
		size_t len;
		while (rowenc_csv_next(&s, tags->text + tags->len, &el, &len))
			if (is_cart_tag(el, len)) {
				rowenc_text(out, el, len);
				return;
			}
	}
	rowenc_null(out);
}

static int device_row(struct buf *out, const struct jstream_record *rec, const char *key,
		      size_t keylen, const struct endpoint_row_ctx *ctx)
{
	const struct jstream_value *f = rec->fields;
	int bad = 0;
	buf_printf(out, "%d\t%d\t", ctx->attempt, ctx->page);
	rowenc_text(out, key, keylen);
	rowenc_sep(out);
	rowenc_value(out, &f[F_UDID], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[F_SERIAL], 1);
	rowenc_sep(out);
	rowenc_text(out, ctx->variant, strlen(ctx->variant));
	rowenc_sep(out);
	rowenc_value(out, &f[F_NAME], 0);
	rowenc_sep(out);
	rowenc_value(out, &f[F_MODEL], 1);
	rowenc_sep(out);
	rowenc_value(out, f[F_MODEL_NAME].type != JSTREAM_ABSENT ? &f[F_MODEL_NAME] : &f[F_MODEL_NAME2], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[F_OSVERSION], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[F_ASSET_TAG], 1);
	rowenc_sep(out);
	rowenc_csv_array(out, &f[F_TAGS]);
	rowenc_sep(out);
	rowenc_value(out, &f[F_USERID], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[F_USERNAME], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[F_USEREMAIL], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[F_USERTYPE], 1);
	rowenc_sep(out);
	bad += rowenc_bool(out, &f[F_SUPERVISED]);
	rowenc_sep(out);
	bad += rowenc_numeric(out, &f[F_TOTAL_DISK]);
	rowenc_sep(out);
	bad += rowenc_numeric(out, &f[F_AVAILABLE_DISK]);
	rowenc_sep(out);
	bad += rowenc_numeric(out, &f[F_BATTERY]);
	rowenc_sep(out);
	rowenc_value(out, &f[F_ENROLLMENT], 1);
	rowenc_sep(out);
	bad += rowenc_unix_time(out, &f[F_LAST_BEAT]);
	rowenc_sep(out);
	rowenc_serial_key(out, &f[F_SERIAL]);
	rowenc_sep(out);
	buf_putc(out, os_update_pending(&f[F_NEEDOSUPDATE], &f[F_AVAILABLE_UPDATES]) ? 't' : 'f');
	rowenc_sep(out);
	put_shared_cart(out, &f[F_SHARED_CART], &f[F_TAGS]);
	rowenc_sep(out);
	rowenc_text(out, rec->json, rec->json_len);
	rowenc_end(out);
	return bad;
}

static void devices_request(struct buf *query, struct buf *body, const struct endpoint_request *req)
{
	(void)query;
	mosyle_page_body(body, req->src, req->variant, req->page);
}

const struct endpoint mosyle_devices_endpoint = {
	.name = "devices",
	.path = "/listdevices",
	.per_os = true,
	.paging = ENDPOINT_PAGED,
	.first_page = -1,
	.request = devices_request,
	.spec = {
		.list_path = device_list_path,
		.fields = device_fields,
		.captures = device_captures,
	},
	.cap_total = 0,
	.cap_page_size = 1,
	.cap_status = 2,
	.cap_info = 3,
	.cap_error = -1,
	.end_statuses = device_end_statuses,
	.table = "mosyle_devices",
	.key_columns = "device_key",
	.commit = ENDPOINT_REPLACE,
	.copy_columns = "attempt, page, device_key, udid, serial_number, os, device_name, model,"
			" model_name, os_version, asset_tag, tags, user_id, user_name, user_email,"
			" user_type, is_supervised, total_disk, available_disk, battery,"
			" enrollment_type, last_checkin, serial_key, os_update_pending, shared_cart,"
			" attrs",
	.record_key = device_key,
	.encode_row = device_row,
};

/* ---- what the other endpoints share ---- */

/* Every Mosyle answer: the outer status, and the inner status/info pair of
 * an error or an end of list, in "response" (an object or a one-element
 * array: jstream searches both). */
#define INNER_STATUS_CAPTURES "response.status", "response.info", "status"

/* A record's own text value as its key. */
static size_t text_key(const struct jstream_value *v, const char **key)
{
	if (!has_text(v))
		return 0;
	*key = v->text;
	return v->len;
}

/* attempt, page: the columns every row starts with */
static void row_start(struct buf *out, const struct endpoint_row_ctx *ctx)
{
	buf_printf(out, "%d\t%d\t", ctx->attempt, ctx->page);
}

/* The stream's OS. Per-OS endpoints always have one; a missing one is NULL,
 * which the NOT NULL column refuses loudly. */
static void os_column(struct buf *out, const struct endpoint_row_ctx *ctx)
{
	if (ctx->variant)
		rowenc_text(out, ctx->variant, strlen(ctx->variant));
	else
		rowenc_null(out);
}

/* attrs, the last column: the record as received. */
static void row_finish(struct buf *out, const struct jstream_record *rec)
{
	rowenc_text(out, rec->json, rec->json_len);
	rowenc_end(out);
}

/* ---- /listusers ---- */

enum user_field {
	U_ID,
	U_NAME,
	U_EMAIL,
	U_MANAGED_APPLE_ID,
	U_TYPE,
	U_LOCATIONS,
	U_GRADES,
	U_SERIAL,
	U_ACCOUNT,
	U_ASSIGNED_DEVICES,
};

static const char *const user_fields[] = {
	"id", "name", "email", "managedappleid", "type", "locations", "grades", "serial_number",
	"account", "assigned_devices", NULL,
};
static const char *const user_list_path[] = {"response", "users", NULL};
static const char *const user_captures[] = {
	"response.total", "response.page_size", INNER_STATUS_CAPTURES, NULL,
};
static const char *const user_end_statuses[] = {"USERS_NOTFOUND", NULL};

static size_t user_key(const struct jstream_record *rec, struct buf *scratch, const char **key)
{
	UNUSED(scratch);
	return text_key(&rec->fields[U_ID], key);
}

static int user_row(struct buf *out, const struct jstream_record *rec, const char *key,
		    size_t keylen, const struct endpoint_row_ctx *ctx)
{
	const struct jstream_value *f = rec->fields;
	int bad = 0;
	row_start(out, ctx);
	rowenc_text(out, key, keylen);
	rowenc_sep(out);
	rowenc_value(out, &f[U_NAME], 0);
	rowenc_sep(out);
	rowenc_value(out, &f[U_EMAIL], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[U_TYPE], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[U_MANAGED_APPLE_ID], 1);
	rowenc_sep(out);
	bad += rowenc_name_array(out, &f[U_LOCATIONS], "name");
	rowenc_sep(out);
	rowenc_csv_array(out, &f[U_GRADES]);
	rowenc_sep(out);
	rowenc_value(out, &f[U_SERIAL], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[U_ACCOUNT], 1);
	rowenc_sep(out);
	bad += rowenc_json_array(out, &f[U_ASSIGNED_DEVICES]);
	rowenc_sep(out);
	row_finish(out, rec);
	return bad;
}

static void users_request(struct buf *query, struct buf *body, const struct endpoint_request *req)
{
	UNUSED(query);
	options_body(body, req->src, NULL, req->page, req->src->page_size);
}

const struct endpoint mosyle_users_endpoint = {
	.name = "users",
	.path = "/listusers",
	.per_os = false,
	.paging = ENDPOINT_PAGED,
	.first_page = 1,
	.request = users_request,
	.spec = {
		.list_path = user_list_path,
		.fields = user_fields,
		.captures = user_captures,
	},
	.cap_total = 0,
	.cap_page_size = 1,
	.cap_status = 2,
	.cap_info = 3,
	.cap_error = -1,
	.end_statuses = user_end_statuses,
	.table = "mosyle_users",
	.key_columns = "user_id",
	.copy_columns = "attempt, page, user_id, name, email, type, managed_apple_id, locations,"
			" grades, serial_number, account, assigned_devices, attrs",
	.commit = ENDPOINT_REPLACE,
	.record_key = user_key,
	.encode_row = user_row,
};

/* ---- /listclasses ---- */

enum class_field {
	C_ID,
	C_IDCLASS,
	C_CLASS_NAME,
	C_NAME,
	C_COURSE_NAME,
	C_LOCATION,
	C_TEACHER,
	C_STUDENTS,
	C_COORDINATORS,
};

static const char *const class_fields[] = {
	"id", "idclass", "class_name", "name", "course_name", "location", "teacher", "students",
	"coordinators", NULL,
};
static const char *const class_list_path[] = {"response", "classes", NULL};
static const char *const class_captures[] = {INNER_STATUS_CAPTURES, NULL};
static const char *const class_end_statuses[] = {"NO_CLASSES_FOUND", NULL};

static size_t class_key(const struct jstream_record *rec, struct buf *scratch, const char **key)
{
	UNUSED(scratch);
	size_t n = text_key(&rec->fields[C_ID], key);
	return n ? n : text_key(&rec->fields[C_IDCLASS], key);
}

static int class_row(struct buf *out, const struct jstream_record *rec, const char *key,
		     size_t keylen, const struct endpoint_row_ctx *ctx)
{
	const struct jstream_value *f = rec->fields;
	int bad = 0;
	row_start(out, ctx);
	rowenc_text(out, key, keylen);
	rowenc_sep(out);
	rowenc_value(out, &f[C_IDCLASS], 1);
	rowenc_sep(out);
	/* class_name, or name in some answers */
	rowenc_value(out, f[C_CLASS_NAME].type != JSTREAM_ABSENT ? &f[C_CLASS_NAME] : &f[C_NAME],
		     0);
	rowenc_sep(out);
	rowenc_value(out, &f[C_COURSE_NAME], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[C_LOCATION], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[C_TEACHER], 1);
	rowenc_sep(out);
	bad += rowenc_json_array(out, &f[C_STUDENTS]);
	rowenc_sep(out);
	bad += rowenc_json_array(out, &f[C_COORDINATORS]);
	rowenc_sep(out);
	row_finish(out, rec);
	return bad;
}

static void classes_request(struct buf *query, struct buf *body, const struct endpoint_request *req)
{
	UNUSED(query);
	/* the page size is fixed: page_size is not sent */
	options_body(body, req->src, NULL, req->page, 0);
}

const struct endpoint mosyle_classes_endpoint = {
	.name = "classes",
	.path = "/listclasses",
	.per_os = false,
	.paging = ENDPOINT_PAGED,
	.first_page = 1,
	.request = classes_request,
	.spec = {
		.list_path = class_list_path,
		.fields = class_fields,
		.captures = class_captures,
	},
	.cap_total = -1,
	.cap_page_size = -1,
	.cap_status = 0,
	.cap_info = 1,
	.cap_error = -1,
	.end_statuses = class_end_statuses,
	.table = "mosyle_classes",
	.key_columns = "class_id",
	.copy_columns = "attempt, page, class_id, idclass, name, course_name, location, teacher,"
			" students, coordinators, attrs",
	.commit = ENDPOINT_REPLACE,
	.record_key = class_key,
	.encode_row = class_row,
};

/* ---- /listdevicegroups ---- */

enum group_field {
	G_ID,
	G_NAME,
	G_TYPE,
	G_DEVICES_COUNT,
};

static const char *const group_fields[] = {"id", "name", "type", "devices_count", NULL};
static const char *const group_list_path[] = {"response", "groups", NULL};
static const char *const group_captures[] = {"response.rows", INNER_STATUS_CAPTURES, NULL};

/* Group ids are unique per OS only; the OS is the stream's, so the id
 * alone identifies a group within its stream. */
static size_t group_key(const struct jstream_record *rec, struct buf *scratch, const char **key)
{
	UNUSED(scratch);
	return text_key(&rec->fields[G_ID], key);
}

static int group_row(struct buf *out, const struct jstream_record *rec, const char *key,
		     size_t keylen, const struct endpoint_row_ctx *ctx)
{
	const struct jstream_value *f = rec->fields;
	int bad = 0;
	row_start(out, ctx);
	os_column(out, ctx);
	rowenc_sep(out);
	rowenc_text(out, key, keylen);
	rowenc_sep(out);
	rowenc_value(out, &f[G_NAME], 0);
	rowenc_sep(out);
	rowenc_value(out, &f[G_TYPE], 1);
	rowenc_sep(out);
	bad += rowenc_int(out, &f[G_DEVICES_COUNT]);
	rowenc_sep(out);
	row_finish(out, rec);
	return bad;
}

static void device_groups_request(struct buf *query, struct buf *body,
				  const struct endpoint_request *req)
{
	UNUSED(query);
	options_body(body, req->src, req->variant, req->page, 0);
}

const struct endpoint mosyle_device_groups_endpoint = {
	.name = "device_groups",
	.path = "/listdevicegroups",
	.per_os = true,
	.paging = ENDPOINT_PAGED,
	.first_page = 0, /* as documented; page 0 and page 1 may be the same page */
	.request = device_groups_request,
	.spec = {
		.list_path = group_list_path,
		.fields = group_fields,
		.captures = group_captures,
	},
	.cap_total = 0,
	.cap_page_size = -1,
	.cap_status = 1,
	.cap_info = 2,
	.cap_error = -1,
	.table = "mosyle_device_groups",
	.key_columns = "os, group_id",
	.copy_columns = "attempt, page, os, group_id, name, type, devices_count, attrs",
	.commit = ENDPOINT_REPLACE,
	.record_key = group_key,
	.encode_row = group_row,
};

/* ---- /listdevicegroupsdevices ---- */

#define GROUP_MEMBERS_PAGE_SIZE 50

enum group_members_field {
	GM_ID,
	GM_NAME,
	GM_UDIDS,
};

static const char *const group_members_fields[] = {"id", "name", "deviceudids", NULL};
static const char *const group_members_captures[] = {INNER_STATUS_CAPTURES, NULL};

/* One row per member UDID; a group without members gives none. */
static int group_members_rows(struct buf *out, const struct jstream_record *rec, const char *key,
			      size_t keylen, const struct endpoint_row_ctx *ctx)
{
	const struct jstream_value *udids = &rec->fields[GM_UDIDS];
	if (udids->type == JSTREAM_ABSENT || udids->type == JSTREAM_NULL)
		return 0;
	if (udids->type != JSTREAM_JSON)
		return 1;
	int bad = 0;
	struct rowenc_json_iter it;
	struct rowenc_json_item udid;
	rowenc_json_iter_init(&it, udids->text, udids->len);
	while (rowenc_json_iter_next(&it, &udid)) {
		if (udid.type == JSTREAM_NULL || (udid.type == JSTREAM_STRING && udid.len == 2))
			continue; /* null or "": no member */
		if (udid.type != JSTREAM_STRING && udid.type != JSTREAM_NUMBER) {
			bad++;
			continue;
		}
		size_t mark = out->len;
		row_start(out, ctx);
		os_column(out, ctx);
		rowenc_sep(out);
		rowenc_text(out, key, keylen);
		rowenc_sep(out);
		if (udid.type == JSTREAM_NUMBER) {
			rowenc_text(out, udid.raw, udid.len);
		} else if (rowenc_json_string(out, udid.raw, udid.len) != 0) {
			/* no UDID, no row: udid is part of the key */
			out->len = mark;
			out->data[mark] = '\0';
			bad++;
			continue;
		}
		rowenc_sep(out);
		rowenc_value(out, &rec->fields[GM_NAME], 0);
		rowenc_sep(out);
		/* attrs: the member as received (its UDID as JSON) */
		rowenc_text(out, udid.raw, udid.len);
		rowenc_end(out);
	}
	return bad + (it.bad ? 1 : 0);
}

static void device_group_members_request(struct buf *query, struct buf *body,
					 const struct endpoint_request *req)
{
	UNUSED(query);
	options_body(body, req->src, req->variant, req->page, GROUP_MEMBERS_PAGE_SIZE);
}

const struct endpoint mosyle_device_group_members_endpoint = {
	.name = "device_group_members",
	.path = "/listdevicegroupsdevices",
	.per_os = true,
	.paging = ENDPOINT_PAGED,
	.first_page = 1,
	.request = device_group_members_request,
	.spec = {
		.list_path = group_list_path,
		.fields = group_members_fields,
		.captures = group_members_captures,
	},
	.cap_total = -1,
	.cap_page_size = -1,
	.cap_status = 0,
	.cap_info = 1,
	.cap_error = -1,
	.table = "mosyle_device_group_members",
	.key_columns = "os, group_id, udid",
	.copy_columns = "attempt, page, os, group_id, udid, group_name, attrs",
	.commit = ENDPOINT_REPLACE,
	.record_key = group_key,
	.encode_row = group_members_rows,
};

/* ---- /accounts ---- */

enum account_field {
	A_ID,
	A_NAME,
	A_SCHOOL_CODE,
};

static const char *const account_fields[] = {"id", "name", "school_code", NULL};
static const char *const account_list_path[] = {"accounts", NULL};
static const char *const account_captures[] = {INNER_STATUS_CAPTURES, NULL};
/* a school (not a district) may not list accounts */
static const char *const account_absent_statuses[] = {"NOT_ALLOWED", NULL};

static size_t account_key(const struct jstream_record *rec, struct buf *scratch, const char **key)
{
	UNUSED(scratch);
	return text_key(&rec->fields[A_ID], key);
}

static int account_row(struct buf *out, const struct jstream_record *rec, const char *key,
		       size_t keylen, const struct endpoint_row_ctx *ctx)
{
	const struct jstream_value *f = rec->fields;
	row_start(out, ctx);
	rowenc_text(out, key, keylen);
	rowenc_sep(out);
	rowenc_value(out, &f[A_NAME], 0);
	rowenc_sep(out);
	rowenc_value(out, &f[A_SCHOOL_CODE], 1);
	rowenc_sep(out);
	row_finish(out, rec);
	return 0;
}

static void accounts_request(struct buf *query, struct buf *body,
			     const struct endpoint_request *req)
{
	UNUSED(query);
	buf_puts(body, "{\"accessToken\":");
	json_string(body, req->src->access_token);
	buf_putc(body, '}');
}

const struct endpoint mosyle_accounts_endpoint = {
	.name = "accounts",
	.path = "/accounts",
	.per_os = false,
	.paging = ENDPOINT_SINGLE,
	.first_page = 1,
	.request = accounts_request,
	.spec = {
		.list_path = account_list_path,
		.fields = account_fields,
		.captures = account_captures,
	},
	.cap_total = -1,
	.cap_page_size = -1,
	.cap_status = 0,
	.cap_info = 1,
	.cap_error = -1,
	.absent_statuses = account_absent_statuses,
	.table = "mosyle_accounts",
	.key_columns = "account_id",
	.copy_columns = "attempt, page, account_id, name, school_code, attrs",
	.commit = ENDPOINT_REPLACE,
	.record_key = account_key,
	.encode_row = account_row,
};

/* ---- /customdeviceattribute ---- */

enum custom_attribute_field {
	CA_ID,
	CA_NAME,
	CA_TYPE,
};

static const char *const custom_attribute_fields[] = {"id", "name", "type", NULL};
/* The list is response[0].info; an error has a text info instead. A
 * successful answer's inner status is "OK". */
static const char *const custom_attribute_list_path[] = {"response", "info", NULL};
static const char *const custom_attribute_captures[] = {INNER_STATUS_CAPTURES, NULL};

static size_t custom_attribute_key(const struct jstream_record *rec, struct buf *scratch,
				   const char **key)
{
	UNUSED(scratch);
	return text_key(&rec->fields[CA_ID], key);
}

static int custom_attribute_row(struct buf *out, const struct jstream_record *rec,
				const char *key, size_t keylen, const struct endpoint_row_ctx *ctx)
{
	const struct jstream_value *f = rec->fields;
	row_start(out, ctx);
	os_column(out, ctx);
	rowenc_sep(out);
	rowenc_text(out, key, keylen);
	rowenc_sep(out);
	rowenc_value(out, &f[CA_NAME], 0);
	rowenc_sep(out);
	rowenc_value(out, &f[CA_TYPE], 1);
	rowenc_sep(out);
	row_finish(out, rec);
	return 0;
}

static void custom_attributes_request(struct buf *query, struct buf *body,
				      const struct endpoint_request *req)
{
	UNUSED(query);
	buf_puts(body, "{\"accessToken\":");
	json_string(body, req->src->access_token);
	buf_puts(body, ",\"elements\":[{\"operation\":\"list_custom_device_attributes\"");
	if (req->variant) {
		buf_puts(body, ",\"os\":");
		json_string(body, req->variant);
	}
	buf_puts(body, "}]}");
}

const struct endpoint mosyle_custom_attributes_endpoint = {
	.name = "custom_attributes",
	.path = "/customdeviceattribute",
	.per_os = true,
	.paging = ENDPOINT_SINGLE,
	.first_page = 1,
	.request = custom_attributes_request,
	.spec = {
		.list_path = custom_attribute_list_path,
		.fields = custom_attribute_fields,
		.captures = custom_attribute_captures,
	},
	.cap_total = -1,
	.cap_page_size = -1,
	.cap_status = 0,
	.cap_info = 1,
	.cap_error = -1,
	.table = "mosyle_custom_attributes",
	.key_columns = "os, attribute_id",
	.copy_columns = "attempt, page, os, attribute_id, name, type, attrs",
	.commit = ENDPOINT_REPLACE,
	.record_key = custom_attribute_key,
	.encode_row = custom_attribute_row,
};

/* ---- /adminlogs ---- */

enum admin_log_field {
	L_ID,
	L_DATE,
	L_ADMIN,
	L_ACTION,
	L_TARGET,
};

static const char *const admin_log_fields[] = {"id", "date", "admin", "action", "target", NULL};
static const char *const admin_log_list_path[] = {"response", "logs", NULL};
static const char *const admin_log_captures[] = {INNER_STATUS_CAPTURES, NULL};

/* An entry without an id is identified by its content: the same entry
 * read again (the next run starts at the newest entry's second) gets the
 * same key and is not added twice. */
static size_t admin_log_key(const struct jstream_record *rec, struct buf *scratch,
			    const char **key)
{
	size_t n = text_key(&rec->fields[L_ID], key);
	if (n)
		return n;
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (size_t i = 0; i < rec->json_len; i++) {
		h ^= (unsigned char)rec->json[i];
		h *= 0x100000001b3ull;
	}
	buf_reset(scratch);
	buf_printf(scratch, "hash:%016" PRIx64, h);
	*key = scratch->data;
	return scratch->len;
}

static int admin_log_row(struct buf *out, const struct jstream_record *rec, const char *key,
			 size_t keylen, const struct endpoint_row_ctx *ctx)
{
	const struct jstream_value *f = rec->fields;
	int bad = 0;
	row_start(out, ctx);
	rowenc_text(out, key, keylen);
	rowenc_sep(out);
	bad += rowenc_unix_time(out, &f[L_DATE]);
	rowenc_sep(out);
	rowenc_value(out, &f[L_ADMIN], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[L_ACTION], 1);
	rowenc_sep(out);
	rowenc_value(out, &f[L_TARGET], 1);
	rowenc_sep(out);
	row_finish(out, rec);
	return bad;
}

/* page and filter_options sit at the top level here, not under options.
 * The range starts at the cursor (the newest entry loaded, inclusive) and
 * ends now. */
static void admin_logs_request(struct buf *query, struct buf *body,
			       const struct endpoint_request *req)
{
	UNUSED(query);
	buf_puts(body, "{\"accessToken\":");
	json_string(body, req->src->access_token);
	buf_printf(body, ",\"page\":%d,\"filter_options\":{\"start_date\":", req->page);
	json_string(body, req->cursor ? req->cursor : "0");
	buf_printf(body, ",\"end_date\":\"%lld\"}}",
		   req->run_started_s ? req->run_started_s : (long long)time(NULL));
}

const struct endpoint mosyle_admin_logs_endpoint = {
	.name = "admin_logs",
	.path = "/adminlogs",
	.per_os = false,
	.paging = ENDPOINT_PAGED,
	.first_page = 1,
	.request = admin_logs_request,
	.spec = {
		.list_path = admin_log_list_path,
		.fields = admin_log_fields,
		.captures = admin_log_captures,
	},
	.cap_total = -1,
	.cap_page_size = -1,
	.cap_status = 0,
	.cap_info = 1,
	.cap_error = -1,
	.table = "mosyle_admin_logs",
	.key_columns = "log_id",
	.copy_columns = "attempt, page, log_id, logged_at, admin, action, target, attrs",
	.commit = ENDPOINT_APPEND,
	.cursor_sql = "SELECT extract(epoch FROM max(logged_at))::bigint::text"
		      " FROM mosyle_admin_logs WHERE source = $1",
	.record_key = admin_log_key,
	.encode_row = admin_log_row,
};

const struct endpoint *const mosyle_endpoints[] = {
	&mosyle_devices_endpoint,
	&mosyle_users_endpoint,
	&mosyle_classes_endpoint,
	&mosyle_device_groups_endpoint,
	&mosyle_device_group_members_endpoint,
	&mosyle_accounts_endpoint,
	&mosyle_custom_attributes_endpoint,
	&mosyle_admin_logs_endpoint,
	NULL,
};
