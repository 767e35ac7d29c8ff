/* unit_jstream.c - tests for the streaming list parser (src/jstream.c).
 *
 * Most tests turn everything the parser reports (records, their fields,
 * captures) into a text transcript and compare it with the expected text;
 * the chunking tests compare transcripts of the same document fed whole,
 * byte by byte and in random chunks. */
#include "test.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "buf.h"
#include "jstream.h"
#include "rowenc.h"

/* ---- harness ------------------------------------------------------------- */

struct run {
	const struct jstream_spec *spec;
	struct buf log;     /* transcript */
	struct buf err;     /* jstream_error() after the parse */
	struct jstream_stats stats;
	long stop_at;       /* on_record returns stop_code at this index */
	int stop_code;
};

static const char *type_name(enum jstream_type t)
{
	switch (t) {
	case JSTREAM_ABSENT: return "absent";
	case JSTREAM_NULL: return "null";
	case JSTREAM_STRING: return "string";
	case JSTREAM_NUMBER: return "number";
	case JSTREAM_BOOL: return "bool";
	case JSTREAM_JSON: return "json";
	}
	return "?";
}

static void log_value(struct buf *b, const char *name, const struct jstream_value *v)
{
	ASSERT(v->text != NULL);
	ASSERT_EQ_INT(strlen(v->text), v->len);
	if (v->type == JSTREAM_ABSENT || v->type == JSTREAM_NULL)
		ASSERT_EQ_INT(v->len, 0);
	buf_printf(b, " %s=%s:%s\n", name, type_name(v->type), v->text);
}

static int on_record(void *arg, const struct jstream_record *r)
{
	struct run *run = arg;
	ASSERT_EQ_INT(strlen(r->json), r->json_len);
	buf_printf(&run->log, "R%llu %s\n", (unsigned long long)r->index, r->json);
	for (size_t i = 0; i < r->nfields; i++)
		if (r->fields[i].type != JSTREAM_ABSENT)
			log_value(&run->log, run->spec->fields[i], &r->fields[i]);
		else
			ASSERT_EQ_STR(r->fields[i].text, "");
	if (r->scalar.type != JSTREAM_ABSENT)
		log_value(&run->log, "scalar", &r->scalar);
	if (run->stop_at >= 0 && r->index == (uint64_t)run->stop_at)
		return run->stop_code;
	return 0;
}

static void on_capture(void *arg, size_t id, const struct jstream_value *v)
{
	struct run *run = arg;
	char name[32];
	snprintf(name, sizeof(name), "C%zu", id);
	ASSERT(v->text != NULL);
	ASSERT_EQ_INT(strlen(v->text), v->len);
	buf_printf(&run->log, "%s=%s:%s\n", name, type_name(v->type), v->text);
}

enum chunking { WHOLE, BYTES, RANDOM };

static uint32_t rng_next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Feed doc to a new parser; returns what jstream_feed/finish returned. */
static int parse_with(struct run *run, const struct jstream_spec *spec, const char *doc,
		      size_t len, enum chunking how, uint32_t seed)
{
	struct jstream_callbacks cb = {on_record, on_capture, run};
	struct jstream *js;
	int rc = 0;

	run->spec = spec;
	buf_reset(&run->log);
	buf_reset(&run->err);
	ASSERT_EQ_INT(jstream_new(&js, spec, &cb), 0);
	for (size_t off = 0; off < len && rc == 0;) {
		size_t n = len - off;
		if (how == BYTES)
			n = 1;
		else if (how == RANDOM) {
			uint32_t r = rng_next(&seed);
			size_t want = (r & 3) == 0 ? (r >> 8) % 4096 : (r >> 8) % 24 + 1;
			if (want < n)
				n = want ? want : 1;
		}
		rc = jstream_feed(js, doc + off, n);
		off += n;
	}
	if (rc == 0)
		rc = jstream_finish(js);
	buf_puts(&run->err, jstream_error(js));
	run->stats = *jstream_stats(js);
	if (rc == 0)
		ASSERT_EQ_STR(jstream_error(js), "");
	else
		ASSERT(run->err.len > 0);
	jstream_free(js);
	return rc;
}

static int parse(struct run *run, const struct jstream_spec *spec, const char *doc)
{
	return parse_with(run, spec, doc, strlen(doc), WHOLE, 0);
}

static void run_init(struct run *run)
{
	memset(run, 0, sizeof(*run));
	run->stop_at = -1;
}

static void run_free(struct run *run)
{
	buf_free(&run->log);
	buf_free(&run->err);
}

/* ---- specs ----------------------------------------------------------------- */

static const char *const mosyle_list[] = {"response", "devices", NULL};
static const char *const mosyle_fields[] = {
	"deviceudid", "serial_number", "tags", "battery", "OSUpdateSettings",
	"asset_tag", "userid", NULL,
};
static const char *const mosyle_captures[] = {
	"status", "response.rows", "response.page_size", "response.page",
	"response.status", "response.info", NULL,
};
static const struct jstream_spec mosyle_spec = {
	.list_path = mosyle_list, .fields = mosyle_fields, .captures = mosyle_captures,
};

static const char *const syncro_list[] = {"assets", NULL};
static const char *const syncro_fields[] = {
	"id", "name", "asset_serial", "properties", "customer", "updated_at", "rmm_links", NULL,
};
static const char *const syncro_captures[] = {
	"meta.total_pages", "meta.total_entries", "meta.page", "assets.id", NULL,
};
static const struct jstream_spec syncro_spec = {
	.list_path = syncro_list, .fields = syncro_fields, .captures = syncro_captures,
};

static const char mosyle_page[] =
	"{\"status\":\"OK\",\"response\":{\"devices\":[\n"
	"  {\"deviceudid\":\"00008030-001A\",\"serial_number\":\"C02XK1\",\"os\":\"ios\","
	"\"tags\":\"cart-3,grade-5\",\"battery\":\"0.87\",\"total_disk\":\"256.0000000000\","
	"\"OSUpdateSettings\":\"{\\\"AutomaticCheckEnabled\\\":true}\",\"date_info\":\"1710264696\","
	"\"asset_tag\":null,\"userid\":\"u1\"},\n"
	"  {\"deviceudid\":\"00008030-002B\", \"serial_number\" : \"C02XK2\",\"os\":\"ios\",\"tags\":\"\","
	"\"battery\":0.5,\"date_info\":\"1710264700\",\"asset_tag\":\"A, 1\"}\n"
	"],\"rows\":\"2\",\"page_size\":500,\"page\":1}}\n";

static const char mosyle_page_log[] =
	"C0=string:OK\n"
	"R0 {\"deviceudid\":\"00008030-001A\",\"serial_number\":\"C02XK1\",\"os\":\"ios\","
	"\"tags\":\"cart-3,grade-5\",\"battery\":\"0.87\",\"total_disk\":\"256.0000000000\","
	"\"OSUpdateSettings\":\"{\\\"AutomaticCheckEnabled\\\":true}\",\"date_info\":\"1710264696\","
	"\"asset_tag\":null,\"userid\":\"u1\"}\n"
	" deviceudid=string:00008030-001A\n"
	" serial_number=string:C02XK1\n"
	" tags=string:cart-3,grade-5\n"
	" battery=string:0.87\n"
	" OSUpdateSettings=string:{\"AutomaticCheckEnabled\":true}\n"
	" asset_tag=null:\n"
	" userid=string:u1\n"
	"R1 {\"deviceudid\":\"00008030-002B\",\"serial_number\":\"C02XK2\",\"os\":\"ios\",\"tags\":\"\","
	"\"battery\":0.5,\"date_info\":\"1710264700\",\"asset_tag\":\"A, 1\"}\n"
	" deviceudid=string:00008030-002B\n"
	" serial_number=string:C02XK2\n"
	" tags=string:\n"
	" battery=number:0.5\n"
	" asset_tag=string:A, 1\n"
	"C1=string:2\n"
	"C2=number:500\n"
	"C3=number:1\n";

/* ---- Mosyle and Syncro pages --------------------------------------------- */

TEST(jstream_mosyle_page)
{
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, mosyle_page), 0);
	ASSERT_EQ_STR(buf_str(&run.log), mosyle_page_log);
	ASSERT_EQ_INT(run.stats.records, 2);
	ASSERT_EQ_INT(run.stats.list_seen, 1);
	ASSERT_EQ_INT(run.stats.nul_replaced, 0);
	ASSERT_EQ_INT(run.stats.bytes, strlen(mosyle_page));
	run_free(&run);
}

TEST(jstream_chunk_boundaries_byte_by_byte_and_random)
{
	static const char doc[] =
		"{\"status\":\"OK\",\"response\":[{\"devices\":[\n"
		"{\"deviceudid\":\"d\\u00e9v\\ud83d\\ude00\",\"serial_number\":\"S\\\"1\\\\\",\"tags\":\"a,\\tb\","
		"\"battery\":-1.25e-3,\"OSUpdateSettings\":{\"x\":[1,{\"y\":null},\"\\u0000z\"],\"k\\n\":true},"
		"\"asset_tag\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"userid\":false,\"userid\":\"last\"},\n"
		"\"udid-only\", 12345678901234567890, [1,[2,[3]]], null, true,\n"
		"{\"deviceudid\":\"   spaced   \",  \"nested\" : { \"a\" : [ ] , \"b\" : { } } }\n"
		"],\"rows\":3,\"page_size\":\"500\"}]}";
	struct run whole, part;
	run_init(&whole);
	run_init(&part);
	ASSERT_EQ_INT(parse_with(&whole, &mosyle_spec, doc, strlen(doc), WHOLE, 0), 0);
	ASSERT_EQ_INT(whole.stats.records, 7);
	ASSERT_EQ_INT(whole.stats.nul_replaced, 1);

	ASSERT_EQ_INT(parse_with(&part, &mosyle_spec, doc, strlen(doc), BYTES, 0), 0);
	ASSERT_EQ_STR(buf_str(&part.log), buf_str(&whole.log));
	ASSERT_EQ_INT(part.stats.nul_replaced, 1);
	for (uint32_t seed = 1; seed <= 300; seed++) {
		ASSERT_EQ_INT(parse_with(&part, &mosyle_spec, doc, strlen(doc), RANDOM, seed), 0);
		ASSERT_EQ_STR(buf_str(&part.log), buf_str(&whole.log));
		ASSERT_EQ_INT(part.stats.records, 7);
	}
	/* The same for the Mosyle page, including its captures. */
	ASSERT_EQ_INT(parse_with(&part, &mosyle_spec, mosyle_page, strlen(mosyle_page), BYTES, 0), 0);
	ASSERT_EQ_STR(buf_str(&part.log), mosyle_page_log);
	run_free(&whole);
	run_free(&part);
}

TEST(jstream_chunking_keeps_errors_and_offsets)
{
	static const char doc[] = "{\"status\":\"OK\",\"response\":{\"devices\":[{\"a\":1},{\"a\":tru}]}}";
	struct run whole, part;
	run_init(&whole);
	run_init(&part);
	ASSERT_EQ_INT(parse_with(&whole, &mosyle_spec, doc, strlen(doc), WHOLE, 0), -EPROTO);
	ASSERT_CONTAINS(buf_str(&whole.err), "malformed JSON at byte ");
	for (uint32_t seed = 1; seed <= 50; seed++) {
		ASSERT_EQ_INT(parse_with(&part, &mosyle_spec, doc, strlen(doc), RANDOM, seed), -EPROTO);
		ASSERT_EQ_STR(buf_str(&part.err), buf_str(&whole.err));
		ASSERT_EQ_STR(buf_str(&part.log), buf_str(&whole.log));
	}
	run_free(&whole);
	run_free(&part);
}

/* Found by fuzz_jstream: when the token yajl rejects spans two chunks,
 * yajl places the error up to a token's length later. The reason is the
 * same and the offset stays near the token. */
TEST(jstream_split_token_error_offset)
{
	static const char doc[] = "{\"response\":{\"devices\":[{\"userid\":00e9}]}}";
	static const char reason[] = ": after key and value, inside map, I expect ',' or '}'";
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, doc), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "malformed JSON at byte 35: after key and value, "
		      "inside map, I expect ',' or '}'");
	for (uint32_t seed = 1; seed <= 200; seed++) {
		ASSERT_EQ_INT(parse_with(&run, &mosyle_spec, doc, strlen(doc), RANDOM, seed), -EPROTO);
		const char *err = buf_str(&run.err);
		ASSERT_CONTAINS(err, "malformed JSON at byte 3");
		ASSERT(err[24] >= '5' && err[24] <= '8');
		ASSERT_EQ_STR(err + 25, reason);
	}
	run_free(&run);
}

TEST(jstream_response_object_or_array)
{
	static const char as_object[] =
		"{\"status\":\"OK\",\"response\":{\"devices\":[{\"deviceudid\":\"a\"}],\"rows\":1}}";
	static const char as_array[] =
		"{\"status\":\"OK\",\"response\":[{\"devices\":[{\"deviceudid\":\"a\"}],\"rows\":1}]}";
	static const char expect[] =
		"C0=string:OK\n"
		"R0 {\"deviceudid\":\"a\"}\n"
		" deviceudid=string:a\n"
		"C1=number:1\n";
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, as_object), 0);
	ASSERT_EQ_STR(buf_str(&run.log), expect);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, as_array), 0);
	ASSERT_EQ_STR(buf_str(&run.log), expect);
	ASSERT_EQ_INT(run.stats.list_seen, 1);
	run_free(&run);
}

TEST(jstream_rows_capture_int_string_absent)
{
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec,
			    "{\"status\":\"OK\",\"response\":{\"devices\":[],\"rows\":1328}}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log), "C0=string:OK\nC1=number:1328\n");
	ASSERT_EQ_INT(run.stats.list_seen, 1);
	ASSERT_EQ_INT(run.stats.records, 0);

	ASSERT_EQ_INT(parse(&run, &mosyle_spec,
			    "{\"status\":\"OK\",\"response\":{\"rows\":\"1328\",\"devices\":[]}}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log), "C0=string:OK\nC1=string:1328\n");

	ASSERT_EQ_INT(parse(&run, &mosyle_spec,
			    "{\"status\":\"OK\",\"response\":{\"devices\":[],\"page\":\"2\"}}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log), "C0=string:OK\nC3=string:2\n");

	/* null is reported as null; objects and arrays are not reported. */
	ASSERT_EQ_INT(parse(&run, &mosyle_spec,
			    "{\"response\":{\"rows\":null,\"page_size\":{\"n\":1},\"status\":[[\"x\"]]}}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log), "C1=null:\n");
	ASSERT_EQ_INT(run.stats.list_seen, 0);
	run_free(&run);
}

TEST(jstream_devices_notfound_inner_status)
{
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec,
			    "{\"status\":\"OK\",\"response\":[{\"status\":\"DEVICES_NOTFOUND\","
			    "\"info\":\"No devices found\"}]}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log),
		      "C0=string:OK\nC4=string:DEVICES_NOTFOUND\nC5=string:No devices found\n");
	ASSERT_EQ_INT(run.stats.list_seen, 0);
	ASSERT_EQ_INT(run.stats.records, 0);

	/* One capture path, several array elements: one report each. */
	ASSERT_EQ_INT(parse(&run, &mosyle_spec,
			    "{\"response\":[{\"status\":\"A\"},[{\"status\":\"B\"}],{\"other\":{\"status\":\"C\"}}]}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log), "C4=string:A\nC4=string:B\n");
	run_free(&run);
}

TEST(jstream_list_not_an_array)
{
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"response\":{\"devices\":null,\"rows\":0}}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log), "C1=number:0\n");
	ASSERT_EQ_INT(run.stats.list_seen, 0);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec,
			    "{\"response\":{\"devices\":{\"deviceudid\":\"x\"}}}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log), "");
	ASSERT_EQ_INT(run.stats.list_seen, 0);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"response\":{\"devices\":\"[]\"}}"), 0);
	ASSERT_EQ_INT(run.stats.list_seen, 0);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "[]"), 0);
	ASSERT_EQ_INT(run.stats.list_seen, 0);
	run_free(&run);
}

TEST(jstream_syncro_page_nested_fields)
{
	static const char doc[] =
		"{\"assets\":[{\"id\":101,\"name\":\"LAB-PC-1\",\"customer_id\":7,"
		"\"properties\":{\"Notes\":\"a\",\"notes\":\"b\",\"kabuto_information\":"
		"{\"general\":{\"manufacturer\":\"Dell\"},\"cpu\":[{\"name\":\"i5\"}]}},"
		"\"asset_serial\":null,\"updated_at\":\"2024-03-12T17:31:36.123Z\","
		"\"customer\":{\"id\":7,\"business_name\":\"North \\\"High\\\"\"},\"rmm_links\":[]}],"
		"\"meta\":{\"total_pages\":3,\"total_entries\":120,\"per_page\":50,\"page\":1}}";
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &syncro_spec, doc), 0);
	ASSERT_EQ_STR(buf_str(&run.log),
		"R0 {\"id\":101,\"name\":\"LAB-PC-1\",\"customer_id\":7,"
		"\"properties\":{\"Notes\":\"a\",\"notes\":\"b\",\"kabuto_information\":"
		"{\"general\":{\"manufacturer\":\"Dell\"},\"cpu\":[{\"name\":\"i5\"}]}},"
		"\"asset_serial\":null,\"updated_at\":\"2024-03-12T17:31:36.123Z\","
		"\"customer\":{\"id\":7,\"business_name\":\"North \\\"High\\\"\"},\"rmm_links\":[]}\n"
		" id=number:101\n"
		" name=string:LAB-PC-1\n"
		" asset_serial=null:\n"
		" properties=json:{\"Notes\":\"a\",\"notes\":\"b\",\"kabuto_information\":"
		"{\"general\":{\"manufacturer\":\"Dell\"},\"cpu\":[{\"name\":\"i5\"}]}}\n"
		" customer=json:{\"id\":7,\"business_name\":\"North \\\"High\\\"\"}\n"
		" updated_at=string:2024-03-12T17:31:36.123Z\n"
		" rmm_links=json:[]\n"
		"C0=number:3\n"
		"C1=number:120\n"
		"C2=number:1\n");
	run_free(&run);
}

TEST(jstream_captures_inside_records_not_reported)
{
	struct run run;
	run_init(&run);
	/* "assets.id" is a capture path, but assets is the list. */
	ASSERT_EQ_INT(parse(&run, &syncro_spec, "{\"assets\":[{\"id\":1},{\"id\":2}]}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log), "R0 {\"id\":1}\n id=number:1\nR1 {\"id\":2}\n id=number:2\n");
	/* A "status" key inside a device is not the top-level status. */
	ASSERT_EQ_INT(parse(&run, &mosyle_spec,
			    "{\"response\":{\"devices\":[{\"status\":\"x\",\"rows\":5}]}}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log), "R0 {\"status\":\"x\",\"rows\":5}\n");
	run_free(&run);
}

TEST(jstream_root_list)
{
	static const char *const root[] = {NULL};
	static const char *const fields[] = {"id", NULL};
	static const struct jstream_spec spec = {.list_path = root, .fields = fields};
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &spec, " [ {\"id\":1} , {\"id\":\"2\"} ] "), 0);
	ASSERT_EQ_STR(buf_str(&run.log), "R0 {\"id\":1}\n id=number:1\nR1 {\"id\":\"2\"}\n id=string:2\n");
	ASSERT_EQ_INT(run.stats.list_seen, 1);
	/* A parser without a list only captures. */
	static const char *const caps[] = {"status", NULL};
	static const struct jstream_spec no_list = {.captures = caps};
	ASSERT_EQ_INT(parse(&run, &no_list, "{\"status\":\"OK\",\"x\":[1,2]}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log), "C0=string:OK\n");
	ASSERT_EQ_INT(run.stats.list_seen, 0);
	run_free(&run);
}

/* ---- values, escaping, UTF-8 ------------------------------------------------ */

TEST(jstream_nul_replaced_and_counted)
{
	static const char *const fields[] = {"a", "k\xef\xbf\xbdy", NULL};
	static const char *const caps[] = {"s", NULL};
	static const char *const list[] = {"l", NULL};
	static const struct jstream_spec spec = {.list_path = list, .fields = fields, .captures = caps};
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &spec,
			    "{\"s\":\"x\\u0000y\",\"l\":[{\"a\":\"\\u0000\\u0000\",\"k\\u0000y\":[\"\\u0000\"]},"
			    "\"\\u0000\"],\"other\":\"\\u0000\"}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log),
		      "C0=string:x\xef\xbf\xbdy\n"
		      "R0 {\"a\":\"\xef\xbf\xbd\xef\xbf\xbd\",\"k\xef\xbf\xbdy\":[\"\xef\xbf\xbd\"]}\n"
		      " a=string:\xef\xbf\xbd\xef\xbf\xbd\n"
		      " k\xef\xbf\xbdy=json:[\"\xef\xbf\xbd\"]\n"
		      "R1 \"\xef\xbf\xbd\"\n"
		      " scalar=string:\xef\xbf\xbd\n");
	/* capture 1 + value 2 + key 1 + nested 1 + element 1; the string
	 * nobody asked for ("other") is not stored, so nothing is replaced. */
	ASSERT_EQ_INT(run.stats.nul_replaced, 6);
	run_free(&run);
}

TEST(jstream_escaping_in_record_json_and_fields)
{
	static const char *const list[] = {"l", NULL};
	static const char *const fields[] = {"v", "q\"k", NULL};
	static const struct jstream_spec spec = {.list_path = list, .fields = fields};
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &spec,
		"{\"l\":[{\"v\":\"t\\tn\\nr\\rb\\\\q\\\"s\\/u\\u00e9\\u0001\\u001f\\b\\f "
		"\xc3\xa9\xf0\x9f\x98\x80 \\ud83d\\ude00 \x7f\",\"q\\\"k\":\"\\u2028\"}]}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log),
		"R0 {\"v\":\"t\\tn\\nr\\rb\\\\q\\\"s/u\xc3\xa9\\u0001\\u001f\\b\\f "
		"\xc3\xa9\xf0\x9f\x98\x80 \xf0\x9f\x98\x80 \x7f\",\"q\\\"k\":\"\xe2\x80\xa8\"}\n"
		" v=string:t\tn\nr\rb\\q\"s/u\xc3\xa9\x01\x1f\b\f \xc3\xa9\xf0\x9f\x98\x80 "
		"\xf0\x9f\x98\x80 \x7f\n"
		" q\"k=string:\xe2\x80\xa8\n");
	run_free(&run);
}

struct fields_to_copy {
	struct buf out;
};

static int encode_record(void *arg, const struct jstream_record *r)
{
	struct fields_to_copy *f = arg;
	for (size_t i = 0; i < r->nfields; i++) {
		rowenc_value(&f->out, &r->fields[i], 0);
		rowenc_sep(&f->out);
	}
	rowenc_text(&f->out, r->json, r->json_len);
	rowenc_end(&f->out);
	return 0;
}

TEST(jstream_record_to_copy_row)
{
	static const char *const list[] = {"l", NULL};
	static const char *const fields[] = {"v", "missing", "n", NULL};
	static const struct jstream_spec spec = {.list_path = list, .fields = fields};
	static const char doc[] = "{\"l\":[{\"v\":\"a\\tb\\nc\\\\d\\u0000\",\"n\":null}]}";
	struct fields_to_copy f = {BUF_INIT};
	struct jstream_callbacks cb = {encode_record, NULL, &f};
	struct jstream *js;
	ASSERT_EQ_INT(jstream_new(&js, &spec, &cb), 0);
	ASSERT_EQ_INT(jstream_feed(js, doc, strlen(doc)), 0);
	ASSERT_EQ_INT(jstream_finish(js), 0);
	/* text column: escapes for COPY; JSON column: JSON escapes, then each
	 * backslash doubled for COPY. */
	ASSERT_EQ_STR(buf_str(&f.out),
		      "a\\tb\\nc\\\\d\xef\xbf\xbd\t\\N\t\\N\t"
		      "{\"v\":\"a\\\\tb\\\\nc\\\\\\\\d\xef\xbf\xbd\",\"n\":null}\n");
	jstream_free(js);
	buf_free(&f.out);
}

TEST(jstream_invalid_utf8)
{
	struct run run;
	run_init(&run);
	/* yajl rejects bytes that cannot start or continue a sequence. */
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"status\":\"O\xffK\"}"), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "malformed JSON at byte 13: invalid bytes in UTF8 string");
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"status\":\"\xc3(\"}"), -EPROTO);
	ASSERT_CONTAINS(buf_str(&run.err), "malformed JSON at byte");
	ASSERT_CONTAINS(buf_str(&run.err), "UTF8");
	/* Overlong forms and code points past U+10FFFF pass yajl's check but
	 * not ours, inside or outside records, in values and keys. */
	ASSERT_EQ_INT(parse(&run, &mosyle_spec,
			    "{\"response\":{\"devices\":[{\"tags\":\"a\xc0\x80\"}]}}"), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "invalid UTF-8 in a string (at byte 37)");
	ASSERT_EQ_INT(run.stats.records, 0);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"other\":\"\xf4\x90\x80\x80\"}"), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "invalid UTF-8 in a string (at byte 15)");
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"\xe0\x80\xaf\":1}"), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "invalid UTF-8 in a key (at byte 6)");
	run_free(&run);
}

TEST(jstream_surrogates_become_replacement_char)
{
	static const char *const list[] = {"l", NULL};
	static const struct jstream_spec spec = {.list_path = list};
	struct run run;
	run_init(&run);
	/* A lone low surrogate escape decodes to ED B0 80, which PostgreSQL
	 * rejects: it becomes U+FFFD. So does a raw encoded surrogate. */
	ASSERT_EQ_INT(parse(&run, &spec, "{\"l\":[\"a\\udc00b\",\"\xed\xa0\x80\"]}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log),
		      "R0 \"a\xef\xbf\xbd" "b\"\n scalar=string:a\xef\xbf\xbd" "b\n"
		      "R1 \"\xef\xbf\xbd\"\n scalar=string:\xef\xbf\xbd\n");
	run_free(&run);
}

TEST(jstream_numbers_and_strings_either_way)
{
	static const char *const list[] = {"l", NULL};
	static const char *const fields[] = {"n", NULL};
	static const struct jstream_spec spec = {.list_path = list, .fields = fields};
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &spec,
			    "{\"l\":[{\"n\":\"256.0000000000\"},{\"n\":-0.0},{\"n\":1E+5},"
			    "{\"n\":12345678901234567890123},{\"n\":true},{\"n\":1e1001},{\"n\":2e-1000}]}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log),
		      "R0 {\"n\":\"256.0000000000\"}\n n=string:256.0000000000\n"
		      "R1 {\"n\":-0.0}\n n=number:-0.0\n"
		      "R2 {\"n\":1E+5}\n n=number:1E+5\n"
		      "R3 {\"n\":12345678901234567890123}\n n=number:12345678901234567890123\n"
		      "R4 {\"n\":true}\n n=bool:true\n"
		      /* PostgreSQL's numeric cannot hold this: kept as a string. */
		      "R5 {\"n\":\"1e1001\"}\n n=string:1e1001\n"
		      "R6 {\"n\":2e-1000}\n n=number:2e-1000\n");
	run_free(&run);
}

TEST(jstream_duplicate_keys_last_wins)
{
	static const char *const list[] = {"l", NULL};
	static const char *const fields[] = {"a", "b", "a", NULL};
	static const struct jstream_spec spec = {.list_path = list, .fields = fields};
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &spec,
			    "{\"l\":[{\"a\":{\"x\":1},\"b\":1,\"a\":\"second\",\"b\":[2],\"b\":null}]}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log),
		      "R0 {\"a\":{\"x\":1},\"b\":1,\"a\":\"second\",\"b\":[2],\"b\":null}\n"
		      " a=string:second\n b=null:\n a=string:second\n");
	run_free(&run);
}

TEST(jstream_non_object_elements)
{
	static const char *const list[] = {"response", "udids", NULL};
	static const char *const fields[] = {"deviceudid", NULL};
	static const struct jstream_spec spec = {.list_path = list, .fields = fields};
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &spec,
			    "{\"response\":{\"udids\":[\"U1\",7,null,false,[\"x\",{\"deviceudid\":1}],{}]}}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log),
		      "R0 \"U1\"\n scalar=string:U1\n"
		      "R1 7\n scalar=number:7\n"
		      "R2 null\n scalar=null:\n"
		      "R3 false\n scalar=bool:false\n"
		      "R4 [\"x\",{\"deviceudid\":1}]\n scalar=json:[\"x\",{\"deviceudid\":1}]\n"
		      "R5 {}\n");
	ASSERT_EQ_INT(run.stats.records, 6);
	run_free(&run);
}

TEST(jstream_two_lists_via_transparent_array)
{
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec,
			    "{\"response\":[{\"devices\":[{\"userid\":\"a\"}]},{\"devices\":[{\"userid\":\"b\"}]}]}"), 0);
	ASSERT_EQ_STR(buf_str(&run.log),
		      "R0 {\"userid\":\"a\"}\n userid=string:a\nR1 {\"userid\":\"b\"}\n userid=string:b\n");
	run_free(&run);
}

/* ---- errors ------------------------------------------------------------------ */

TEST(jstream_empty_body)
{
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse_with(&run, &mosyle_spec, "", 0, WHOLE, 0), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "empty body");
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, " \r\n\t "), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "empty body");
	run_free(&run);
}

TEST(jstream_truncated)
{
	static const char doc[] = "{\"status\":\"OK\",\"response\":{\"devices\":[{\"a\":1},{\"a\":\"x";
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, doc), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "response ended early (truncated JSON at byte 53)");
	ASSERT_EQ_INT(run.stats.records, 1);
	/* Cut inside a literal, a number, after a key. */
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"a\":tru"), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "response ended early (truncated JSON at byte 8)");
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"a\":1."), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "response ended early (truncated JSON at byte 7)");
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"a\""), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "response ended early (truncated JSON at byte 4)");
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"a\":1,\"b\":[]"), -EPROTO);
	ASSERT_CONTAINS(buf_str(&run.err), "response ended early");
	run_free(&run);
}

TEST(jstream_malformed)
{
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"status\":\"OK\",}"), -EPROTO);
	ASSERT_CONTAINS(buf_str(&run.err), "malformed JSON at byte ");
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "<html>502 Bad Gateway</html>"), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "malformed JSON at byte 1: invalid char in json text");
	/* One document per body. */
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"status\":\"OK\"} {\"status\":\"OK\"}"), -EPROTO);
	ASSERT_CONTAINS(buf_str(&run.err), "trailing garbage");
	ASSERT_EQ_STR(buf_str(&run.log), "C0=string:OK\n");
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"status\":\"a\\qb\"}"), -EPROTO);
	ASSERT_CONTAINS(buf_str(&run.err), "malformed JSON at byte ");
	ASSERT_CONTAINS(buf_str(&run.err), "inside a string");
	/* Raw control characters are not allowed in JSON strings. */
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, "{\"status\":\"a\tb\"}"), -EPROTO);
	ASSERT_CONTAINS(buf_str(&run.err), "malformed JSON at byte ");
	run_free(&run);
}

static void nested(struct buf *b, size_t depth, const char *prefix, const char *suffix)
{
	buf_puts(b, prefix);
	for (size_t i = 0; i < depth; i++)
		buf_puts(b, "[");
	for (size_t i = 0; i < depth; i++)
		buf_puts(b, "]");
	buf_puts(b, suffix);
}

TEST(jstream_depth_limit)
{
	struct buf doc = BUF_INIT;
	struct run run;
	run_init(&run);

	nested(&doc, 64, "", "");
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, buf_str(&doc)), 0);
	buf_reset(&doc);
	nested(&doc, 65, "", "");
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, buf_str(&doc)), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "nesting deeper than 64 levels (at byte 65)");

	/* Inside a record: the list is at depth 3, the element at 4. */
	buf_reset(&doc);
	nested(&doc, 61, "{\"response\":{\"devices\":[", "]}}");
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, buf_str(&doc)), 0);
	ASSERT_EQ_INT(run.stats.records, 1);
	buf_reset(&doc);
	nested(&doc, 62, "{\"response\":{\"devices\":[", "]}}");
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, buf_str(&doc)), -EPROTO);
	ASSERT_CONTAINS(buf_str(&run.err), "nesting deeper than 64 levels");
	ASSERT_EQ_INT(run.stats.records, 0);

	/* A tighter limit from the spec. */
	struct jstream_spec tight = mosyle_spec;
	tight.max_depth = 3;
	ASSERT_EQ_INT(parse(&run, &tight, "{\"response\":{\"devices\":[1,2]}}"), 0);
	ASSERT_EQ_INT(run.stats.records, 2);
	ASSERT_EQ_INT(parse(&run, &tight, "{\"response\":{\"devices\":[{}]}}"), -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "nesting deeper than 3 levels (at byte 25)");
	buf_free(&doc);
	run_free(&run);
}

TEST(jstream_record_size_limit)
{
	struct jstream_spec spec = mosyle_spec;
	struct run run;
	run_init(&run);
	spec.max_record_bytes = 20;
	/* {"userid":"1234567"} is exactly 20 bytes: allowed. */
	ASSERT_EQ_INT(parse(&run, &spec,
			    "{\"response\":{\"devices\":[{\"userid\":\"1234567\"},{\"userid\":\"12345678\"},{}]}}"),
		      -EPROTO);
	ASSERT_EQ_STR(buf_str(&run.err), "record 2 is larger than 20 bytes (at byte 66)");
	ASSERT_EQ_INT(run.stats.records, 1);
	/* A long scalar element, and one long nested value. */
	ASSERT_EQ_INT(parse(&run, &spec,
			    "{\"response\":{\"devices\":[\"0123456789012345678901234567890\"]}}"), -EPROTO);
	ASSERT_CONTAINS(buf_str(&run.err), "record 1 is larger than 20 bytes");
	ASSERT_EQ_INT(parse(&run, &spec,
			    "{\"response\":{\"devices\":[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]}}"),
		      -EPROTO);
	ASSERT_CONTAINS(buf_str(&run.err), "record 1 is larger than 20 bytes");
	/* The limit does not apply outside the list. */
	ASSERT_EQ_INT(parse(&run, &spec,
			    "{\"status\":\"0123456789012345678901234567890123456789\",\"response\":{\"devices\":[]}}"), 0);
	run_free(&run);
}

TEST(jstream_record_callback_stops_parse)
{
	struct run run;
	run_init(&run);
	run.stop_at = 0;
	run.stop_code = -42;
	ASSERT_EQ_INT(parse(&run, &mosyle_spec, mosyle_page), -42);
	ASSERT_EQ_INT(run.stats.records, 1);
	ASSERT_CONTAINS(buf_str(&run.err), "record handler");
	/* No capture after the stop. */
	ASSERT(strstr(buf_str(&run.log), "C1=") == NULL);
	run_free(&run);
}

TEST(jstream_error_is_sticky_and_reset_reuses)
{
	struct run run;
	struct jstream_callbacks cb = {on_record, on_capture, &run};
	struct jstream *js;
	run_init(&run);
	run.spec = &mosyle_spec;
	ASSERT_EQ_INT(jstream_new(&js, &mosyle_spec, &cb), 0);
	ASSERT_EQ_INT(jstream_feed(js, "{\"status\":x", 11), -EPROTO);
	ASSERT_EQ_INT(jstream_feed(js, "}", 1), -EPROTO);
	ASSERT_EQ_INT(jstream_finish(js), -EPROTO);
	ASSERT_EQ_STR(jstream_error(js), "malformed JSON at byte 11: invalid char in json text");

	for (int round = 0; round < 3; round++) {
		jstream_reset(js);
		ASSERT_EQ_STR(jstream_error(js), "");
		ASSERT_EQ_INT(jstream_stats(js)->bytes, 0);
		ASSERT_EQ_INT(jstream_stats(js)->records, 0);
		ASSERT_EQ_INT(jstream_stats(js)->list_seen, 0);
		buf_reset(&run.log);
		size_t half = strlen(mosyle_page) / 2;
		ASSERT_EQ_INT(jstream_feed(js, mosyle_page, half), 0);
		ASSERT_EQ_INT(jstream_feed(js, mosyle_page + half, strlen(mosyle_page) - half), 0);
		ASSERT_EQ_INT(jstream_finish(js), 0);
		ASSERT_EQ_STR(buf_str(&run.log), mosyle_page_log);
		ASSERT_EQ_INT(jstream_stats(js)->records, 2);
		ASSERT_EQ_INT(jstream_stats(js)->bytes, strlen(mosyle_page));
	}
	/* Reset in the middle of a record. */
	jstream_reset(js);
	ASSERT_EQ_INT(jstream_feed(js, mosyle_page, 60), 0);
	jstream_reset(js);
	buf_reset(&run.log);
	ASSERT_EQ_INT(jstream_feed(js, mosyle_page, strlen(mosyle_page)), 0);
	ASSERT_EQ_INT(jstream_finish(js), 0);
	ASSERT_EQ_STR(buf_str(&run.log), mosyle_page_log);
	jstream_free(js);
	run_free(&run);
}

TEST(jstream_new_rejects_missing_spec)
{
	struct jstream *js = (struct jstream *)1;
	struct jstream_callbacks cb = {0};
	ASSERT_EQ_INT(jstream_new(&js, NULL, &cb), -EINVAL);
	ASSERT(js == NULL);
	jstream_free(NULL);
}

TEST(jstream_many_fields_hash_lookup)
{
	/* 40 fields with shared prefixes and suffixes, all found. */
	static char names[40][24];
	static const char *fields[41];
	struct buf doc = BUF_INIT, want = BUF_INIT;
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), i % 2 ? "date_%d_info" : "d%d", i);
		fields[i] = names[i];
	}
	static const char *const list[] = {"l", NULL};
	struct jstream_spec spec = {.list_path = list, .fields = fields};
	buf_puts(&doc, "{\"l\":[{");
	buf_puts(&want, "R0 {");
	for (int i = 39; i >= 0; i--) {
		buf_printf(&doc, "\"%s\":%d,\"x%s\":0%s", names[i], i, names[i], i ? "," : "");
		buf_printf(&want, "\"%s\":%d,\"x%s\":0%s", names[i], i, names[i], i ? "," : "");
	}
	buf_puts(&doc, "}]}");
	buf_puts(&want, "}\n");
	for (int i = 0; i < 40; i++)
		buf_printf(&want, " %s=number:%d\n", names[i], i);
	struct run run;
	run_init(&run);
	ASSERT_EQ_INT(parse(&run, &spec, buf_str(&doc)), 0);
	ASSERT_EQ_STR(buf_str(&run.log), buf_str(&want));
	buf_free(&doc);
	buf_free(&want);
	run_free(&run);
}
