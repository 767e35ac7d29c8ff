/* unit_rowenc.c - tests for COPY text encoding (src/rowenc.c). */
#include "test.h"

#include <stdint.h>

#include "buf.h"
#include "jstream.h"
#include "rowenc.h"

static struct jstream_value str(const char *s)
{
	return (struct jstream_value){JSTREAM_STRING, s, strlen(s)};
}

static struct jstream_value num(const char *s)
{
	return (struct jstream_value){JSTREAM_NUMBER, s, strlen(s)};
}

static struct jstream_value json(const char *s)
{
	return (struct jstream_value){JSTREAM_JSON, s, strlen(s)};
}

static const struct jstream_value absent = {JSTREAM_ABSENT, "", 0};
static const struct jstream_value null = {JSTREAM_NULL, "", 0};
static const struct jstream_value yes = {JSTREAM_BOOL, "true", 4};
static const struct jstream_value no = {JSTREAM_BOOL, "false", 5};

typedef int (*conv_fn)(struct buf *, const struct jstream_value *);

/* Run one conversion on a fresh buffer; check its output and return value. */
#define CONV(fn, v, want_out, want_rc)                                      \
	do {                                                                \
		struct buf cb_ = BUF_INIT;                                  \
		struct jstream_value v_ = (v);                              \
		int rc_ = fn(&cb_, &v_);                                    \
		ASSERT_EQ_STR(buf_str(&cb_), (want_out));                   \
		ASSERT_EQ_INT(rc_, (want_rc));                              \
		buf_free(&cb_);                                             \
	} while (0)

/* ---- text ------------------------------------------------------------------ */

/* The obvious byte-at-a-time encoder, to check the fast one against. */
static void reference_text(struct buf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		switch (s[i]) {
		case '\\': buf_puts(b, "\\\\"); break;
		case '\t': buf_puts(b, "\\t"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\r': buf_puts(b, "\\r"); break;
		case '\0': buf_puts(b, "\xef\xbf\xbd"); break;
		default: buf_putc(b, s[i]);
		}
	}
}

/* rowenc_text() on a string literal, embedded NULs included. */
#define TEXT(b, lit) rowenc_text((b), (lit), sizeof(lit) - 1)

TEST(rowenc_text_escapes)
{
	struct buf b = BUF_INIT;
	TEXT(&b, "a\tb\nc\rd\\e\"f'g");
	ASSERT_EQ_STR(buf_str(&b), "a\\tb\\nc\\rd\\\\e\"f'g");
	buf_reset(&b);
	TEXT(&b, "x\0y");
	ASSERT_EQ_STR(buf_str(&b), "x\xef\xbf\xbdy");
	ASSERT_EQ_INT(b.len, 5);
	buf_reset(&b);
	/* Other control characters and UTF-8 go through unchanged. */
	TEXT(&b, "\x01\x0b\x0c\x1f\x7f \xc3\xa9\xf0\x9f\x98\x80 \\N");
	ASSERT_EQ_STR(buf_str(&b), "\x01\x0b\x0c\x1f\x7f \xc3\xa9\xf0\x9f\x98\x80 \\\\N");
	buf_reset(&b);
	rowenc_text(&b, "", 0);
	ASSERT_EQ_STR(buf_str(&b), "");
	ASSERT_EQ_INT(b.len, 0);
	/* Appends: earlier content is kept. */
	buf_puts(&b, "k\t");
	rowenc_text(&b, "v", 1);
	ASSERT_EQ_STR(buf_str(&b), "k\tv");
	buf_free(&b);
}

TEST(rowenc_text_matches_reference_at_every_position)
{
	/* The fast path scans 8 bytes at a time: put each special byte (and
	 * bytes near the special ranges) at each offset of strings of
	 * various lengths. */
	static const char specials[] = {'\\', '\t', '\n', '\r', '\0', '\x0d', '\x0e', '\x08',
					'\x1f', ']', '[', '\x5b', '\x5d', '\xdc', '\x80', '\xff'};
	char s[40];
	for (size_t len = 1; len <= sizeof(s); len++) {
		for (size_t pos = 0; pos < len; pos++) {
			for (size_t k = 0; k < sizeof(specials); k++) {
				for (size_t i = 0; i < len; i++)
					s[i] = (char)('a' + i % 26);
				s[pos] = specials[k];
				if (k % 3 == 0 && pos + 5 < len)
					s[pos + 5] = '\\';
				struct buf got = BUF_INIT, want = BUF_INIT;
				buf_puts(&got, "");
				rowenc_text(&got, s, len);
				reference_text(&want, s, len);
				ASSERT_EQ_MEM(got.data, got.len, want.data, want.len);
				ASSERT_EQ_INT(strlen(got.data), got.len);
				buf_free(&got);
				buf_free(&want);
			}
		}
	}
}

TEST(rowenc_value_types)
{
	struct buf b = BUF_INIT;
	struct jstream_value empty = str("");
	struct jstream_value j = json("{\"a\":\"x\\ny\"}");
	rowenc_value(&b, &absent, 0);
	rowenc_sep(&b);
	rowenc_value(&b, &null, 0);
	rowenc_sep(&b);
	rowenc_value(&b, &empty, 0);
	rowenc_sep(&b);
	rowenc_value(&b, &empty, 1);
	rowenc_sep(&b);
	struct jstream_value s = str("tab\there");
	rowenc_value(&b, &s, 1);
	rowenc_sep(&b);
	struct jstream_value n = num("-1.5e3");
	rowenc_value(&b, &n, 1);
	rowenc_sep(&b);
	rowenc_value(&b, &yes, 0);
	rowenc_sep(&b);
	rowenc_value(&b, &j, 0);
	rowenc_end(&b);
	ASSERT_EQ_STR(buf_str(&b), "\\N\t\\N\t\t\\N\ttab\\there\t-1.5e3\ttrue\t{\"a\":\"x\\\\ny\"}\n");
	buf_free(&b);
}

/* ---- scalar conversions ----------------------------------------------------- */

TEST(rowenc_bool_conversions)
{
	CONV(rowenc_bool, str("1"), "t", 0);
	CONV(rowenc_bool, str("0"), "f", 0);
	CONV(rowenc_bool, str("true"), "t", 0);
	CONV(rowenc_bool, str("FALSE"), "f", 0);
	CONV(rowenc_bool, str(" Yes "), "t", 0);
	CONV(rowenc_bool, str("no"), "f", 0);
	CONV(rowenc_bool, num("1"), "t", 0);
	CONV(rowenc_bool, num("0"), "f", 0);
	CONV(rowenc_bool, yes, "t", 0);
	CONV(rowenc_bool, no, "f", 0);
	CONV(rowenc_bool, absent, "\\N", 0);
	CONV(rowenc_bool, null, "\\N", 0);
	CONV(rowenc_bool, str(""), "\\N", 0);
	CONV(rowenc_bool, str("2"), "\\N", 1);
	CONV(rowenc_bool, str("maybe"), "\\N", 1);
	CONV(rowenc_bool, str("truex"), "\\N", 1);
	CONV(rowenc_bool, num("1.0"), "\\N", 1);
	CONV(rowenc_bool, json("[1]"), "\\N", 1);
}

TEST(rowenc_numeric_conversions)
{
	CONV(rowenc_numeric, str("256.0000000000"), "256.0000000000", 0);
	CONV(rowenc_numeric, str(" 42 "), "42", 0);
	CONV(rowenc_numeric, str("\t-0.87\n"), "-0.87", 0);
	CONV(rowenc_numeric, num("1E+5"), "1E+5", 0);
	CONV(rowenc_numeric, str("+.5"), "+.5", 0);
	CONV(rowenc_numeric, str("5."), "5.", 0);
	CONV(rowenc_numeric, str("1e1000"), "1e1000", 0);
	CONV(rowenc_numeric, absent, "\\N", 0);
	CONV(rowenc_numeric, null, "\\N", 0);
	CONV(rowenc_numeric, str(""), "\\N", 0);
	CONV(rowenc_numeric, str("   "), "\\N", 0);
	CONV(rowenc_numeric, str("NaN"), "\\N", 1);
	CONV(rowenc_numeric, str("Infinity"), "\\N", 1);
	CONV(rowenc_numeric, str("-inf"), "\\N", 1);
	CONV(rowenc_numeric, str("1,000"), "\\N", 1);
	CONV(rowenc_numeric, str("12 GB"), "\\N", 1);
	CONV(rowenc_numeric, str("."), "\\N", 1);
	CONV(rowenc_numeric, str("-"), "\\N", 1);
	CONV(rowenc_numeric, str("1e"), "\\N", 1);
	CONV(rowenc_numeric, str("1e+"), "\\N", 1);
	CONV(rowenc_numeric, str("0x1F"), "\\N", 1);
	CONV(rowenc_numeric, str("1e1001"), "\\N", 1);
	CONV(rowenc_numeric, str("1e99999999999999999999"), "\\N", 1);
	CONV(rowenc_numeric, yes, "\\N", 1);
	CONV(rowenc_numeric, json("{}"), "\\N", 1);
}

TEST(rowenc_int_conversions)
{
	CONV(rowenc_int, str("42"), "42", 0);
	CONV(rowenc_int, str(" -7 "), "-7", 0);
	CONV(rowenc_int, str("+3"), "+3", 0);
	CONV(rowenc_int, num("1328"), "1328", 0);
	CONV(rowenc_int, str("12.000"), "12", 0);
	CONV(rowenc_int, str("12."), "12", 0);
	CONV(rowenc_int, str("9223372036854775807"), "9223372036854775807", 0);
	CONV(rowenc_int, str("-9223372036854775808"), "-9223372036854775808", 0);
	CONV(rowenc_int, str("0000000000000000000000001"), "0000000000000000000000001", 0);
	CONV(rowenc_int, str("9223372036854775808"), "\\N", 1);
	CONV(rowenc_int, str("-9223372036854775809"), "\\N", 1);
	CONV(rowenc_int, str("99999999999999999999"), "\\N", 1);
	CONV(rowenc_int, str("12.5"), "\\N", 1);
	CONV(rowenc_int, str("1e3"), "\\N", 1);
	CONV(rowenc_int, str(".0"), "\\N", 1);
	CONV(rowenc_int, str("-"), "\\N", 1);
	CONV(rowenc_int, str("4 2"), "\\N", 1);
	CONV(rowenc_int, str(""), "\\N", 0);
	CONV(rowenc_int, null, "\\N", 0);
	CONV(rowenc_int, absent, "\\N", 0);
	CONV(rowenc_int, no, "\\N", 1);
}

TEST(rowenc_unix_time_conversions)
{
	CONV(rowenc_unix_time, str("1710264696"), "2024-03-12 17:31:36+00", 0);
	CONV(rowenc_unix_time, num("1710264696"), "2024-03-12 17:31:36+00", 0);
	CONV(rowenc_unix_time, str("1710264696.5"), "2024-03-12 17:31:36+00", 0);
	CONV(rowenc_unix_time, str(" 951782400 "), "2000-02-29 00:00:00+00", 0);
	CONV(rowenc_unix_time, str("1"), "1970-01-01 00:00:01+00", 0);
	CONV(rowenc_unix_time, str("253402300799"), "9999-12-31 23:59:59+00", 0);
	CONV(rowenc_unix_time, str("0"), "\\N", 0);
	CONV(rowenc_unix_time, num("0"), "\\N", 0);
	CONV(rowenc_unix_time, str("0.0"), "\\N", 0);
	CONV(rowenc_unix_time, str(""), "\\N", 0);
	CONV(rowenc_unix_time, absent, "\\N", 0);
	CONV(rowenc_unix_time, null, "\\N", 0);
	CONV(rowenc_unix_time, str("253402300800"), "\\N", 1);
	CONV(rowenc_unix_time, str("1710264696000"), "\\N", 1);
	CONV(rowenc_unix_time, str("99999999999999999999999"), "\\N", 1);
	CONV(rowenc_unix_time, str("-5"), "\\N", 1);
	CONV(rowenc_unix_time, num("-1710264696"), "\\N", 1);
	CONV(rowenc_unix_time, str("1.7e9"), "\\N", 1);
	CONV(rowenc_unix_time, str("2024-03-12"), "\\N", 1);
	CONV(rowenc_unix_time, str("abc"), "\\N", 1);
	CONV(rowenc_unix_time, str("17102646x6"), "\\N", 1);
	CONV(rowenc_unix_time, str("1710264696.5.1"), "\\N", 1);
	CONV(rowenc_unix_time, str(".5"), "\\N", 1);
	CONV(rowenc_unix_time, yes, "\\N", 1);
}

TEST(rowenc_iso_time_conversions)
{
	CONV(rowenc_iso_time, str("2024-03-12T17:31:36.123Z"), "2024-03-12T17:31:36.123Z", 0);
	CONV(rowenc_iso_time, str("2024-03-12T10:31:36-07:00"), "2024-03-12T10:31:36-07:00", 0);
	CONV(rowenc_iso_time, str("2024-03-12 10:31:36+0530"), "2024-03-12 10:31:36+0530", 0);
	CONV(rowenc_iso_time, str("2024-03-12T10:31:36"), "2024-03-12T10:31:36", 0);
	CONV(rowenc_iso_time, str(" 2024-02-29T00:00:00Z "), "2024-02-29T00:00:00Z", 0);
	CONV(rowenc_iso_time, str("2000-02-29T23:59:59.999999999+14:00"),
	     "2000-02-29T23:59:59.999999999+14:00", 0);
	CONV(rowenc_iso_time, str(""), "\\N", 0);
	CONV(rowenc_iso_time, absent, "\\N", 0);
	CONV(rowenc_iso_time, null, "\\N", 0);
	CONV(rowenc_iso_time, str("2023-02-29T00:00:00Z"), "\\N", 1);
	CONV(rowenc_iso_time, str("1900-02-29T00:00:00Z"), "\\N", 1);
	CONV(rowenc_iso_time, str("2024-04-31T00:00:00Z"), "\\N", 1);
	CONV(rowenc_iso_time, str("2024-13-01T00:00:00Z"), "\\N", 1);
	CONV(rowenc_iso_time, str("0000-01-01T00:00:00Z"), "\\N", 1);
	CONV(rowenc_iso_time, str("2024-03-12T24:00:00Z"), "\\N", 1);
	CONV(rowenc_iso_time, str("2024-03-12T23:60:00Z"), "\\N", 1);
	CONV(rowenc_iso_time, str("2024-03-12"), "\\N", 1);
	CONV(rowenc_iso_time, str("2024-03-12T17:31"), "\\N", 1);
	CONV(rowenc_iso_time, str("2024-03-12T17:31:36."), "\\N", 1);
	CONV(rowenc_iso_time, str("2024-03-12T17:31:36Zjunk"), "\\N", 1);
	CONV(rowenc_iso_time, str("2024-03-12T17:31:36Z+01:00"), "\\N", 1);
	CONV(rowenc_iso_time, str("2024-03-12T17:31:36+01"), "\\N", 1);
	CONV(rowenc_iso_time, str("2024-03-12T17:31:36+16:00"), "\\N", 1);
	CONV(rowenc_iso_time, str("2024-03-12T17:31:36+01:0"), "\\N", 1);
	CONV(rowenc_iso_time, str("2024-3-12T17:31:36Z"), "\\N", 1);
	CONV(rowenc_iso_time, str("12/03/2024 17:31"), "\\N", 1);
	CONV(rowenc_iso_time, str("1710264696"), "\\N", 1);
	CONV(rowenc_iso_time, num("1710264696"), "\\N", 1);
	CONV(rowenc_iso_time, json("\"2024-03-12T17:31:36Z\""), "\\N", 1);
}

static void serial_key(const struct jstream_value v, const char *want)
{
	struct buf b = BUF_INIT;
	rowenc_serial_key(&b, &v);
	ASSERT_EQ_STR(buf_str(&b), want);
	buf_free(&b);
}

TEST(rowenc_serial_key_conversions)
{
	serial_key(str("C02XY1"), "C02XY1");
	serial_key(str(" c02 xy1 "), "C02XY1");
	serial_key(str("\tc0\n2\vx\fy\r1"), "C02XY1");
	/* only ASCII letters change case; other bytes stay */
	serial_key(str("s\xc3\xa9rie-1_a"), "S\xc3\xa9RIE-1_A");
	/* a backslash is COPY-escaped */
	serial_key(str("ab\\c"), "AB\\\\C");
	serial_key(num("12345"), "12345");
	serial_key(str(""), "\\N");
	serial_key(str(" \t \n"), "\\N");
	serial_key(absent, "\\N");
	serial_key(null, "\\N");
}

/* ---- arrays ------------------------------------------------------------------- */

static void csv(const struct jstream_value v, const char *want)
{
	struct buf b = BUF_INIT;
	rowenc_csv_array(&b, &v);
	ASSERT_EQ_STR(buf_str(&b), want);
	buf_free(&b);
}

TEST(rowenc_csv_array_conversions)
{
	csv(str("cart-3, grade-5,,x"), "{\"cart-3\",\"grade-5\",\"x\"}");
	csv(str("single"), "{\"single\"}");
	csv(str(""), "{}");
	csv(str(" , ,, "), "{}");
	csv(str(",a,"), "{\"a\"}");
	csv(str("two words , NULL"), "{\"two words\",\"NULL\"}");
	csv(absent, "\\N");
	csv(null, "\\N");
	csv(num("5"), "{\"5\"}");
	/* Inside the literal '"' and '\' are backslash-escaped; then COPY
	 * doubles every backslash: a\b is 4 backslashes in the stream. */
	csv(str("a\\b"), "{\"a\\\\\\\\b\"}");
	csv(str("say \"hi\""), "{\"say \\\\\"hi\\\\\"\"}");
	csv(str("{x}"), "{\"{x}\"}");
	/* Tabs and newlines inside an element are COPY-escaped. */
	csv(str("a\tb,c\nd"), "{\"a\\tb\",\"c\\nd\"}");
	csv(str("\xc3\xa9t\xc3\xa9"), "{\"\xc3\xa9t\xc3\xa9\"}");
	struct jstream_value nul = {JSTREAM_STRING, "a\0b", 3};
	csv(nul, "{\"a\xef\xbf\xbd" "b\"}");
	/* A JSON array is taken element by element. */
	csv(json("[\"a\",\"b,c\"]"), "{\"a\",\"b,c\"}");
}

TEST(rowenc_json_array_conversions)
{
	CONV(rowenc_json_array, json("[\"a\",\"b\",3]"), "{\"a\",\"b\",\"3\"}", 0);
	CONV(rowenc_json_array, json("[]"), "{}", 0);
	CONV(rowenc_json_array, json("[null,\"x\",true,false,-1.5e3]"),
	     "{NULL,\"x\",\"true\",\"false\",\"-1.5e3\"}", 0);
	CONV(rowenc_json_array, json("[\"a\\\\b\",\"q\\\"x\",\"t\\tn\\n\"]"),
	     "{\"a\\\\\\\\b\",\"q\\\\\"x\",\"t\\tn\\n\"}", 0);
	CONV(rowenc_json_array, json("[\"NULL\"]"), "{\"NULL\"}", 0);
	CONV(rowenc_json_array, json("[\"\\u0000\",\"\\udc00\",\"\\u00e9\"]"),
	     "{\"\xef\xbf\xbd\",\"\xef\xbf\xbd\",\"\xc3\xa9\"}", 0);
	/* JSON text held in a string (Mosyle's ActiveManagedUsers). */
	CONV(rowenc_json_array, str("[\"u1\",\"u2\"]"), "{\"u1\",\"u2\"}", 0);
	CONV(rowenc_json_array, str(""), "\\N", 0);
	CONV(rowenc_json_array, absent, "\\N", 0);
	CONV(rowenc_json_array, null, "\\N", 0);
	CONV(rowenc_json_array, json("[[\"x\"]]"), "\\N", 1);
	CONV(rowenc_json_array, json("[\"a\",{\"b\":1}]"), "\\N", 1);
	CONV(rowenc_json_array, json("{\"a\":1}"), "\\N", 1);
	CONV(rowenc_json_array, json("[1,2"), "\\N", 1);
	CONV(rowenc_json_array, json("[1] [2]"), "\\N", 1);
	CONV(rowenc_json_array, str("a,b"), "\\N", 1);
	CONV(rowenc_json_array, str("\"x\""), "\\N", 1);
	CONV(rowenc_json_array, num("3"), "\\N", 1);
	CONV(rowenc_json_array, yes, "\\N", 1);

	/* A failed conversion leaves what came before it untouched. */
	struct buf b = BUF_INIT;
	struct jstream_value bad = json("[\"a\",\"b\",[\"c\"]]");
	buf_puts(&b, "x\t");
	ASSERT_EQ_INT(rowenc_json_array(&b, &bad), 1);
	ASSERT_EQ_STR(buf_str(&b), "x\t\\N");
	buf_free(&b);
}

/* ---- walking JSON text ---------------------------------------------------------- */

/* Walk text and write each element as "key=type:raw;" (no key for arrays),
 * then "BAD" if the walk stopped at a defect. */
static void walk(const char *text, const char *want)
{
	static const char *const types[] = {"absent", "null", "string", "number", "bool", "json"};
	struct rowenc_json_iter it;
	struct rowenc_json_item item;
	struct buf b = BUF_INIT;
	buf_puts(&b, "");
	rowenc_json_iter_init(&it, text, strlen(text));
	while (rowenc_json_iter_next(&it, &item)) {
		if (item.key)
			buf_printf(&b, "%.*s=", (int)item.keylen, item.key);
		buf_printf(&b, "%s:%.*s;", types[item.type], (int)item.len, item.raw);
	}
	ASSERT(!rowenc_json_iter_next(&it, &item));
	if (it.bad)
		buf_puts(&b, "BAD");
	ASSERT_EQ_STR(buf_str(&b), want);
	buf_free(&b);
}

TEST(rowenc_json_iter_walks_arrays_and_objects)
{
	walk("[\"a\",\"b\"]", "string:\"a\";string:\"b\";");
	walk("[]", "");
	walk("{}", "");
	walk(" [ 1 , -2.5e3,true,false,null ] ",
	     "number:1;number:-2.5e3;bool:true;bool:false;null:null;");
	/* escapes, brackets and quotes inside strings do not end them */
	walk("[\"q\\\"]x\",\"\\\\\",\"}{\"]", "string:\"q\\\"]x\";string:\"\\\\\";string:\"}{\";");
	walk("[[1,[2]],{\"a\":[\"]\"]}]", "json:[1,[2]];json:{\"a\":[\"]\"]};");
	walk("{\"name\":\"Lincoln\",\"grade_level\":\"5\",\"n\":null}",
	     "name=string:\"Lincoln\";grade_level=string:\"5\";n=null:null;");
	walk("{\"k\\\"ey\" : {\"x\":1}}", "k\\\"ey=json:{\"x\":1};");
	/* not one array or object */
	walk("", "BAD");
	walk("\"a\"", "BAD");
	walk("12", "BAD");
	walk("[1] [2]", "BAD");
	walk("[1,2", "BAD");
	walk("[1,2}", "BAD");
	walk("[\"a]", "BAD");
	walk("[\"a\\", "BAD");
	/* defects inside: the elements before them are handed out */
	walk("[1,,2]", "number:1;BAD");
	walk("[1,]", "number:1;BAD");
	walk("[1 2]", "number:1;BAD");
	walk("[nul]", "BAD");
	walk("[truex]", "BAD");
	walk("[\"a\",x]", "string:\"a\";BAD");
	walk("[\"a\",--]", "string:\"a\";BAD");
	walk("{\"a\"}", "BAD");
	walk("{\"a\":}", "BAD");
	walk("{1:2}", "BAD");
	walk("{\"a\":1,\"b\"2}", "a=number:1;BAD");
	/* deeper than 64 levels is refused rather than followed */
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	struct rowenc_json_iter it;
	rowenc_json_iter_init(&it, deep, sizeof(deep));
	ASSERT(it.bad);
}

static void jstr(const char *raw, const char *want, int want_rc)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, "x\t");
	ASSERT_EQ_INT(rowenc_json_string(&b, raw, strlen(raw)), want_rc);
	ASSERT_EQ_STR(buf_str(&b) + 2, want);
	ASSERT_EQ_INT(strlen(b.data), b.len);
	buf_free(&b);
}

TEST(rowenc_json_string_decodes_then_escapes)
{
	jstr("\"0f1e2d3c-udid\"", "0f1e2d3c-udid", 0);
	jstr("\"\"", "", 0);
	/* JSON escapes decoded, then COPY-escaped */
	jstr("\"a\\tb\\nc\\rd\\\\e\\\"f\\/g\"", "a\\tb\\nc\\rd\\\\e\"f/g", 0);
	jstr("\"\\b\\f\"", "\b\f", 0);
	jstr("\"\\u00e9\\u00E9\\u20ac\"", "\xc3\xa9\xc3\xa9\xe2\x82\xac", 0);
	jstr("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 0);
	jstr("\"\\u0009\\u005c\"", "\\t\\\\", 0);
	/* NUL and lone surrogates become U+FFFD */
	jstr("\"a\\u0000b\"", "a\xef\xbf\xbd" "b", 0);
	jstr("\"\\udc00\\ud83dx\\ud83d\"", "\xef\xbf\xbd\xef\xbf\xbdx\xef\xbf\xbd", 0);
	jstr("\"\\ud83d\\u0041\"", "\xef\xbf\xbd" "A", 0);
	/* raw UTF-8 and specials pass through the same COPY escaping */
	jstr("\"\xc3\xa9\tz\"", "\xc3\xa9\\tz", 0);
	/* malformed: NULL */
	jstr("\"\\x\"", "\\N", 1);
	jstr("\"\\u12\"", "\\N", 1);
	jstr("\"\\u12g4\"", "\\N", 1);
	jstr("\"abc\\\"", "\\N", 1);
	jstr("\"a\"b\"", "\\N", 1);
	jstr("abc", "\\N", 1);
	jstr("\"", "\\N", 1);
	jstr("", "\\N", 1);
}

static void names(const struct jstream_value v, const char *want, int want_rc)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, "x\t");
	ASSERT_EQ_INT(rowenc_name_array(&b, &v, "name"), want_rc);
	ASSERT_EQ_STR(buf_str(&b) + 2, want);
	buf_free(&b);
}

TEST(rowenc_name_array_conversions)
{
	names(json("[{\"name\":\"Lincoln Elementary\",\"grade_level\":\"5\"},{\"name\":\"Oak\"}]"),
	      "{\"Lincoln Elementary\",\"Oak\"}", 0);
	names(json("[\"Lincoln Elementary\",\"Oak\"]"), "{\"Lincoln Elementary\",\"Oak\"}", 0);
	names(json("[]"), "{}", 0);
	/* mixed, numbers, null and objects without a name */
	names(json("[\"A\",{\"id\":3},null,7,{\"name\":null},{\"name\":\"B\"}]"),
	      "{\"A\",\"7\",\"B\"}", 0);
	/* escapes: decoded, quoted as elements, then COPY-escaped */
	names(json("[{\"name\":\"say \\\"hi\\\"\"},\"a\\\\b\",\"t\\tx\",\"\\u00e9\"]"),
	      "{\"say \\\\\"hi\\\\\"\",\"a\\\\\\\\b\",\"t\\tx\",\"\xc3\xa9\"}", 0);
	names(json("[{\"name\":\"a,b\"},\"{c}\",\"NULL\"]"), "{\"a,b\",\"{c}\",\"NULL\"}", 0);
	/* the name member at the top of the element only */
	names(json("[{\"school\":{\"name\":\"X\"},\"name\":\"Y\"}]"), "{\"Y\"}", 0);
	/* JSON text in a string, or a string naming one location */
	names(str("[\"Lincoln\"]"), "{\"Lincoln\"}", 0);
	names(str("Lincoln Elementary, North"), "{\"Lincoln Elementary, North\"}", 0);
	names(str(" Oak "), "{\"Oak\"}", 0);
	names(str(""), "\\N", 0);
	names(absent, "\\N", 0);
	names(null, "\\N", 0);
	/* unreadable elements are left out and counted */
	names(json("[\"A\",[\"B\"],true,{\"name\":[1]}]"), "{\"A\"}", 1);
	/* not an array */
	names(json("{\"name\":\"A\"}"), "\\N", 1);
	names(str("[\"A\""), "\\N", 1);
	names(num("3"), "\\N", 1);
	names(yes, "\\N", 1);
}

TEST(rowenc_never_emits_nul)
{
	/* Every encoder on input full of NULs and specials. */
	static const char in[] = "\0a\0\\\t\n\r\0,\0\"";
	struct jstream_value v = {JSTREAM_STRING, in, sizeof(in) - 1};
	struct buf b = BUF_INIT;
	rowenc_text(&b, in, sizeof(in) - 1);
	rowenc_value(&b, &v, 0);
	rowenc_csv_array(&b, &v);
	(void)rowenc_bool(&b, &v);
	(void)rowenc_numeric(&b, &v);
	(void)rowenc_int(&b, &v);
	(void)rowenc_unix_time(&b, &v);
	(void)rowenc_iso_time(&b, &v);
	(void)rowenc_json_array(&b, &v);
	(void)rowenc_name_array(&b, &v, "name");
	static const char raw[] = "\"\0\\u0000\t\\n\"";
	(void)rowenc_json_string(&b, raw, sizeof(raw) - 1);
	ASSERT(memchr(b.data, '\0', b.len) == NULL);
	ASSERT(memchr(b.data, '\t', b.len) == NULL);
	ASSERT(memchr(b.data, '\n', b.len) == NULL);
	buf_free(&b);
}
