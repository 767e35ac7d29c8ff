/* unit_simdata.c - the synthetic inventory: determinism, quirk rules and
 * the JSON rendering of every device. */
#include "test.h"
#include "simdata.h"

#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

static const struct simdata_options plain = {.seed = 1, .nul_in_names = false};
static const struct simdata_options with_nul = {.seed = 1, .nul_in_names = true};

static yajl_val parse_device(const struct simdata_options *opt, enum simdata_os os,
			     const struct simdata_device *dev, size_t *len)
{
	struct buf b = BUF_INIT;
	char err[256];
	yajl_val v;

	simdata_device_json(opt, os, dev, &b);
	*len = b.len;
	v = yajl_tree_parse(buf_str(&b), err, sizeof(err));
	if (!v)
		test_fail(__FILE__, __LINE__, "device %s does not parse: %s\n%s",
			  dev->serial_number, err, buf_str(&b));
	buf_free(&b);
	return v;
}

static yajl_val key(yajl_val obj, const char *name)
{
	const char *path[] = {name, NULL};
	return yajl_tree_get(obj, path, yajl_t_any);
}

static const char *str_key(yajl_val obj, const char *name)
{
	yajl_val v = key(obj, name);
	return YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

TEST(simdata_os_names)
{
	for (int os = 0; os < SIMDATA_NOS; os++)
		ASSERT_EQ_INT(simdata_os_from_name(simdata_os_name((enum simdata_os)os)), os);
	ASSERT_EQ_STR(simdata_os_name(SIMDATA_IOS), "ios");
	ASSERT_EQ_STR(simdata_os_name(SIMDATA_MAC), "mac");
	ASSERT_EQ_STR(simdata_os_name(SIMDATA_TVOS), "tvos");
	ASSERT_EQ_STR(simdata_os_name(SIMDATA_VISIONOS), "visionos");
	ASSERT_EQ_INT(simdata_os_from_name("android"), -1);
	ASSERT_EQ_INT(simdata_os_from_name(""), -1);
}

TEST(simdata_is_deterministic)
{
	struct simdata_device a, b;
	struct buf ja = BUF_INIT, jb = BUF_INIT;

	for (int os = 0; os < SIMDATA_NOS; os++) {
		for (uint64_t i = 0; i < 300; i++) {
			simdata_device(&plain, (enum simdata_os)os, i, &a);
			simdata_device(&plain, (enum simdata_os)os, i, &b);
			ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
			buf_reset(&ja);
			buf_reset(&jb);
			simdata_device_json(&plain, (enum simdata_os)os, &a, &ja);
			simdata_device_json(&plain, (enum simdata_os)os, &b, &jb);
			ASSERT_EQ_MEM(ja.data, ja.len, jb.data, jb.len);
		}
	}
	/* Another seed, another inventory. */
	struct simdata_options other = {.seed = 2, .nul_in_names = false};
	simdata_device(&plain, SIMDATA_IOS, 42, &a);
	simdata_device(&other, SIMDATA_IOS, 42, &b);
	ASSERT(strcmp(a.udid, b.udid) != 0);
	ASSERT(strcmp(a.serial_number, b.serial_number) != 0);
	buf_free(&ja);
	buf_free(&jb);
}

TEST(simdata_identities_are_unique)
{
	enum { PER_OS = 5000 };
	char **serials = malloc(sizeof(char *) * PER_OS * SIMDATA_NOS);
	char **udids = malloc(sizeof(char *) * PER_OS * SIMDATA_NOS);
	struct simdata_device d;
	size_t n = 0;

	ASSERT(serials && udids);
	for (int os = 0; os < SIMDATA_NOS; os++) {
		for (uint64_t i = 0; i < PER_OS; i++, n++) {
			simdata_device(&plain, (enum simdata_os)os, i, &d);
			ASSERT_EQ_INT(strlen(d.serial_number), 12);
			serials[n] = strdup(d.serial_number);
			udids[n] = strdup(d.udid);
		}
	}
	qsort(serials, n, sizeof(char *), cmp_str);
	qsort(udids, n, sizeof(char *), cmp_str);
	for (size_t k = 1; k < n; k++) {
		if (strcmp(serials[k - 1], serials[k]) == 0)
			test_fail(__FILE__, __LINE__, "serial %s repeats", serials[k]);
		if (strcmp(udids[k - 1], udids[k]) == 0)
			test_fail(__FILE__, __LINE__, "udid %s repeats", udids[k]);
	}
	for (size_t k = 0; k < n; k++) {
		free(serials[k]);
		free(udids[k]);
	}
	free(serials);
	free(udids);
}

TEST(simdata_quirk_rules)
{
	struct simdata_device d;

	for (int os = 0; os < SIMDATA_NOS; os++) {
		for (uint64_t i = 0; i < 1000; i++) {
			simdata_device(&plain, (enum simdata_os)os, i, &d);
			ASSERT_EQ_INT(d.has_udid, i % 97 != 13);
			ASSERT_EQ_INT(d.has_user, i % 5 != 0);
			ASSERT_EQ_INT(strchr(d.asset_tag, ',') != NULL, i % 10 == 4);
			if (i % 20 == 9)
				ASSERT_EQ_INT(d.date_last_beat, 0);
			else
				ASSERT(d.date_last_beat > 1700000000);
			ASSERT_EQ_INT(strlen(d.name), d.name_len);
			bool special = strchr(d.name, '\t') && strchr(d.name, '\n') &&
				       strchr(d.name, '"') && strchr(d.name, '\\') &&
				       strstr(d.name, "\xc3\xa9") &&     /* é */
				       strstr(d.name, "\xe2\x9c\x93") && /* ✓ */
				       strstr(d.name, "\xf0\x9f\x8d\x8e"); /* U+1F34E */
			ASSERT_EQ_INT(special, i % 50 == 7);
			if (d.has_user) {
				ASSERT(strncmp(d.userid, i % 7 == 1 ? "tch-" :
						       i % 7 == 2 ? "stf-" : "stu-", 4) == 0);
				ASSERT(strchr(d.useremail, '@') != NULL);
			}
		}
	}
	simdata_device(&plain, SIMDATA_IOS, 0, &d);
	ASSERT_EQ_STR(d.userid, ""); /* 0 % 5 == 0: no user */
	simdata_device(&plain, SIMDATA_MAC, 1, &d);
	ASSERT_EQ_STR(d.userid, "tch-100001");
	simdata_device(&plain, SIMDATA_MAC, 3, &d);
	ASSERT_EQ_STR(d.userid, "stu-100003");
}

TEST(simdata_nul_in_names)
{
	struct simdata_device d;

	for (uint64_t i = 0; i < 1000; i++) {
		simdata_device(&with_nul, SIMDATA_TVOS, i, &d);
		bool has_nul = memchr(d.name, '\0', d.name_len) != NULL;
		ASSERT_EQ_INT(has_nul, i % 100 == 3);
		if (has_nul)
			ASSERT(strlen(d.name) < d.name_len);

		struct buf b = BUF_INIT;
		simdata_device_json(&with_nul, SIMDATA_TVOS, &d, &b);
		ASSERT_EQ_INT(strstr(b.data, "\\u0000") != NULL, i % 100 == 3);
		ASSERT_EQ_INT(strlen(b.data), b.len); /* never a raw 0 byte */
		buf_free(&b);
	}
}

TEST(simdata_json_matches_device)
{
	struct simdata_device d;
	static const char *const user_keys[] = {"userid", "username", "useremail", "usertype"};

	for (int os = 0; os < SIMDATA_NOS; os++) {
		for (uint64_t i = 0; i < 400; i++) {
			size_t len;
			simdata_device(&with_nul, (enum simdata_os)os, i, &d);
			yajl_val v = parse_device(&with_nul, (enum simdata_os)os, &d, &len);

			ASSERT(YAJL_IS_OBJECT(v));
			ASSERT_EQ_STR(str_key(v, "os"), simdata_os_name((enum simdata_os)os));
			ASSERT_EQ_STR(str_key(v, "serial_number"), d.serial_number);
			ASSERT_EQ_STR(str_key(v, "device_model"), d.device_model);
			ASSERT_EQ_STR(str_key(v, "device_model_name"), d.device_model_name);
			ASSERT_EQ_STR(str_key(v, "osversion"), d.osversion);
			ASSERT_EQ_STR(str_key(v, "asset_tag"), d.asset_tag);
			ASSERT_EQ_STR(str_key(v, "tags"), d.tags);
			ASSERT_EQ_STR(str_key(v, "total_disk"), d.total_disk);
			ASSERT_EQ_STR(str_key(v, "is_supervised"), d.is_supervised ? "1" : "0");
			/* yajl_tree strings end at a decoded \u0000: compare up to it. */
			ASSERT_EQ_STR(str_key(v, "device_name"), d.name);

			if (d.has_udid)
				ASSERT_EQ_STR(str_key(v, "deviceudid"), d.udid);
			else
				ASSERT(key(v, "deviceudid") == NULL);
			for (size_t k = 0; k < 4; k++)
				ASSERT_EQ_INT(key(v, user_keys[k]) != NULL, d.has_user);
			if (d.has_user) {
				ASSERT_EQ_STR(str_key(v, "userid"), d.userid);
				ASSERT_EQ_STR(str_key(v, "username"), d.username);
				ASSERT_EQ_STR(str_key(v, "useremail"), d.useremail);
			}
			if (d.date_last_beat) {
				char want[24];
				snprintf(want, sizeof(want), "%lld", d.date_last_beat);
				ASSERT_EQ_STR(str_key(v, "date_last_beat"), want);
			} else {
				ASSERT(YAJL_IS_NULL(key(v, "date_last_beat")));
			}
			/* JSON inside a string parses too. */
			yajl_val mgmt = yajl_tree_parse(str_key(v, "ManagementStatus"), NULL, 0);
			ASSERT(YAJL_IS_OBJECT(mgmt));
			yajl_tree_free(mgmt);

			if (len < 2000 || len > 3200)
				test_fail(__FILE__, __LINE__, "%s device %llu is %zu bytes",
					  simdata_os_name((enum simdata_os)os),
					  (unsigned long long)i, len);
			yajl_tree_free(v);
		}
	}
}

TEST(simdata_json_keys_are_the_columns)
{
	struct simdata_device d;
	size_t len;

	for (int os = 0; os < SIMDATA_NOS; os++) {
		simdata_device(&plain, (enum simdata_os)os, 1, &d); /* udid and user */
		ASSERT(d.has_udid && d.has_user);
		yajl_val v = parse_device(&plain, (enum simdata_os)os, &d, &len);
		ASSERT_EQ_INT(v->u.object.len, simdata_ncolumns);
		for (size_t k = 0; k < v->u.object.len; k++) {
			ASSERT_EQ_STR(v->u.object.keys[k], simdata_column_names[k]);
			yajl_val val = v->u.object.values[k];
			ASSERT(YAJL_IS_STRING(val) || YAJL_IS_NULL(val));
		}
		yajl_tree_free(v);
	}
	ASSERT_EQ_INT(simdata_column_index("deviceudid", 10), 0);
	ASSERT_EQ_INT(simdata_column_index("EIDTwo", 6), (long long)simdata_ncolumns - 1);
	ASSERT_EQ_INT(simdata_column_index("EIDTw", 5), -1);
}

TEST(simdata_json_columns_filter)
{
	struct simdata_columns cols;
	struct simdata_device d;
	struct buf b = BUF_INIT;
	char err[128];

	memset(&cols, 0, sizeof(cols));
	simdata_columns_add(&cols, simdata_column_index("deviceudid", 10));
	simdata_columns_add(&cols, simdata_column_index("device_name", 11));
	simdata_columns_add(&cols, simdata_column_index("userid", 6));
	simdata_columns_add(&cols, simdata_column_index("EIDTwo", 6));

	simdata_device(&plain, SIMDATA_IOS, 7, &d); /* special name, udid, user */
	buf_puts(&b, "[");
	simdata_device_json_columns(&plain, SIMDATA_IOS, &d, &cols, &b);
	buf_puts(&b, "]");
	yajl_val v = yajl_tree_parse(b.data, err, sizeof(err));
	ASSERT(v && YAJL_IS_ARRAY(v));
	yajl_val o = v->u.array.values[0];
	ASSERT_EQ_INT(o->u.object.len, 4);
	ASSERT_EQ_STR(str_key(o, "deviceudid"), d.udid);
	ASSERT_EQ_STR(str_key(o, "device_name"), d.name);
	ASSERT_EQ_STR(str_key(o, "userid"), d.userid);
	yajl_tree_free(v);

	simdata_device(&plain, SIMDATA_IOS, 110, &d); /* 110 % 97 == 13, 110 % 5 == 0 */
	ASSERT(!d.has_udid && !d.has_user);
	buf_reset(&b);
	simdata_device_json_columns(&plain, SIMDATA_IOS, &d, &cols, &b);
	v = yajl_tree_parse(b.data, err, sizeof(err));
	ASSERT(v && YAJL_IS_OBJECT(v));
	ASSERT_EQ_INT(v->u.object.len, 2);
	ASSERT_EQ_STR(v->u.object.keys[0], "device_name");
	ASSERT_EQ_STR(v->u.object.keys[1], "EIDTwo");
	yajl_tree_free(v);
	buf_free(&b);
}

TEST(simdata_huge_name_exact_and_valid)
{
	static const size_t sizes[] = {1, 9, 10, 57, 58, 1000, 1u << 20};
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct buf name = BUF_INIT, json = BUF_INIT;
		buf_puts(&name, "prefix:"); /* appended, not overwritten */
		simdata_huge_name(sizes[k], &name);
		ASSERT_EQ_INT(name.len, sizes[k] + 7);
		ASSERT(memchr(name.data, '\0', name.len) == NULL);
		ASSERT(strncmp(name.data, "prefix:", 7) == 0);
		/* valid UTF-8 and escapable: yajl reads it back unchanged */
		buf_puts(&json, "[\"");
		for (size_t i = 7; i < name.len; i++) {
			unsigned char c = (unsigned char)name.data[i];
			if (c == '"' || c == '\\')
				buf_printf(&json, "\\%c", c);
			else if (c < 0x20)
				buf_printf(&json, "\\u%04x", c);
			else
				buf_putc(&json, (char)c);
		}
		buf_puts(&json, "\"]");
		char err[128];
		yajl_val v = yajl_tree_parse(json.data, err, sizeof(err));
		if (!v)
			test_fail(__FILE__, __LINE__, "size %zu: %s", sizes[k], err);
		const char *back = YAJL_GET_STRING(v->u.array.values[0]);
		ASSERT(back != NULL);
		ASSERT_EQ_INT(strlen(back), sizes[k]);
		ASSERT(memcmp(back, name.data + 7, sizes[k]) == 0);
		yajl_tree_free(v);
		if (sizes[k] >= 1000) {
			static const char head[] = "[00000000] huge \"name\" \\ tab\t ";
			ASSERT(strncmp(name.data + 7, head, sizeof(head) - 1) == 0);
			ASSERT(strstr(name.data, "\xf0\x9f\x8d\x8e") != NULL);
		}
		buf_free(&name);
		buf_free(&json);
	}
}
