/* mosyle.c - Mosyle Manager specifics (see mosyle.h, endpoint.h). */
#include "mosyle.h"
#include "rowenc.h"

#include <string.h>
#include <strings.h>

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

void mosyle_page_body(struct buf *out, const struct config_source *src, const char *os, int page)
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
	if (src->page_size > 0)
		buf_printf(out, ",\"page_size\":%d", src->page_size);
	buf_puts(out, "}}");
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
};

static const char *const device_fields[] = {
	"deviceudid", "serial_number", "device_name", "device_model", "device_model_name",
	"model_name", "osversion", "asset_tag", "tags", "userid", "username", "useremail",
	"usertype", "is_supervised", "total_disk", "available_disk", "battery",
	"enrollment_type", "date_last_beat", NULL,
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
			" enrollment_type, last_checkin, attrs",
	.record_key = device_key,
	.encode_row = device_row,
};
