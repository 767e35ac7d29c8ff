/* unit_simdata_syncro.c - the simulator's Syncro data: determinism, quirk
 * rules, unique serials and JSON that parses and matches the structs. */
#include "test.h"
#include "simdata.h"

#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#define NASSETS 1000

static const struct simdata_syncro_options opts = {
	.seed = 1, .customers = 50, .contacts_per_customer = 2,
};

static yajl_val parse_text(const struct buf *b)
{
	char err[256];
	yajl_val v = yajl_tree_parse(buf_str(b), err, sizeof(err));
	if (!v)
		test_fail(__FILE__, __LINE__, "does not parse: %s\n%s", err, buf_str(b));
	return v;
}

static yajl_val at(yajl_val obj, const char *const *path)
{
	return yajl_tree_get(obj, (const char **)path, yajl_t_any);
}

static yajl_val key(yajl_val obj, const char *name)
{
	const char *path[] = {name, NULL};
	return at(obj, path);
}

static const char *str_key(yajl_val obj, const char *name)
{
	yajl_val v = key(obj, name);
	return YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

static long long int_key(yajl_val obj, const char *name)
{
	yajl_val v = key(obj, name);
	if (!YAJL_IS_INTEGER(v))
		test_fail(__FILE__, __LINE__, "\"%s\" is not an integer", name);
	return YAJL_GET_INTEGER(v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
static bool is_iso_ms(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	if (!s || strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
			return false;
	return true;
}

TEST(simdata_syncro_is_deterministic)
{
	for (uint64_t i = 0; i < NASSETS; i += 37) {
		struct simdata_syncro_asset a, b;
		struct buf ja = BUF_INIT, jb = BUF_INIT;
		simdata_syncro_asset(&opts, i, &a);
		simdata_syncro_asset(&opts, i, &b);
		ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
		simdata_syncro_asset_json(&opts, &a, &ja);
		simdata_syncro_asset_json(&opts, &b, &jb);
		ASSERT_EQ_STR(buf_str(&ja), buf_str(&jb));
		buf_free(&ja);
		buf_free(&jb);
	}
	/* another seed gives other serials and dates, the same ids */
	struct simdata_syncro_options other = opts;
	struct simdata_syncro_asset a, b;
	other.seed = 2;
	simdata_syncro_asset(&opts, 4, &a);
	simdata_syncro_asset(&other, 4, &b);
	ASSERT_EQ_INT(a.id, b.id);
	ASSERT(strcmp(a.asset_serial, b.asset_serial) != 0);
	ASSERT(strcmp(a.created_at, b.created_at) != 0);
}

TEST(simdata_syncro_quirk_rules)
{
	struct simdata_syncro_asset a;
	for (uint64_t i = 0; i < NASSETS; i++) {
		simdata_syncro_asset(&opts, i, &a);
		ASSERT_EQ_INT(a.id, SIMDATA_SYNCRO_ASSET_ID_BASE + (long long)i);
		ASSERT_EQ_INT(a.customer_id, SIMDATA_SYNCRO_CUSTOMER_ID_BASE + (long long)(i % 50));
		ASSERT_EQ_INT(a.agent_managed, i % 3 == 0);
		ASSERT_EQ_INT(a.has_contact, i % 4 != 1);
		ASSERT_EQ_INT(a.notes_pair, i % 4 == 2);
		ASSERT_EQ_INT(a.has_serial, i % 10 != 7);
		if (a.has_contact) {
			/* one of its own customer's two contacts */
			long long k = a.contact_id - SIMDATA_SYNCRO_CONTACT_ID_BASE;
			ASSERT_EQ_INT(k / 2, (long long)(i % 50));
		}
		ASSERT(is_iso_ms(a.created_at));
		ASSERT(is_iso_ms(a.updated_at));
		ASSERT(strcmp(a.updated_at, a.created_at) >= 0);
		bool known = false;
		for (int t = 0; t < SIMDATA_SYNCRO_NASSET_TYPES; t++)
			known |= strcmp(a.asset_type, simdata_syncro_asset_type_names[t]) == 0;
		ASSERT(known);
		if (a.agent_managed) {
			ASSERT(a.manufacturer[0] && a.model[0] && a.os_name[0] && a.os_build[0]);
		}
	}
	simdata_syncro_asset(&opts, 11, &a);
	ASSERT_CONTAINS(a.name, "\"");
	ASSERT_CONTAINS(a.name, "\\");
	ASSERT_CONTAINS(a.name, "caf\xc3\xa9");
	/* no contacts at all: every contact_id is null */
	struct simdata_syncro_options none = opts;
	none.contacts_per_customer = 0;
	simdata_syncro_asset(&none, 0, &a);
	ASSERT(!a.has_contact);
}

TEST(simdata_syncro_serials_are_unique)
{
	char **serials = calloc(NASSETS * 20, sizeof(*serials));
	size_t n = 0;
	struct simdata_syncro_asset a;
	ASSERT(serials);
	for (uint64_t i = 0; i < NASSETS * 20; i++) {
		simdata_syncro_asset(&opts, i, &a);
		if (a.has_serial)
			serials[n++] = strdup(a.asset_serial);
	}
	ASSERT_EQ_INT(n, NASSETS * 20 - NASSETS * 2);
	qsort(serials, n, sizeof(*serials), cmp_str);
	for (size_t k = 1; k < n; k++)
		if (strcmp(serials[k - 1], serials[k]) == 0)
			test_fail(__FILE__, __LINE__, "serial %s served twice", serials[k]);
	for (size_t k = 0; k < n; k++)
		free(serials[k]);
	free(serials);
}

TEST(simdata_syncro_asset_json_matches)
{
	size_t notes_pairs = 0, agents = 0;
	for (uint64_t i = 0; i < NASSETS; i++) {
		struct simdata_syncro_asset a;
		struct buf b = BUF_INIT;
		simdata_syncro_asset(&opts, i, &a);
		simdata_syncro_asset_json(&opts, &a, &b);
		yajl_val v = parse_text(&b);
		ASSERT(YAJL_IS_OBJECT(v));
		ASSERT_EQ_INT(int_key(v, "id"), a.id);
		ASSERT_EQ_STR(str_key(v, "name"), a.name);
		ASSERT_EQ_INT(int_key(v, "customer_id"), a.customer_id);
		if (a.has_contact)
			ASSERT_EQ_INT(int_key(v, "contact_id"), a.contact_id);
		else
			ASSERT(YAJL_IS_NULL(key(v, "contact_id")));
		ASSERT_EQ_STR(str_key(v, "created_at"), a.created_at);
		ASSERT_EQ_STR(str_key(v, "updated_at"), a.updated_at);
		ASSERT_EQ_STR(str_key(v, "asset_type"), a.asset_type);
		if (a.has_serial)
			ASSERT_EQ_STR(str_key(v, "asset_serial"), a.asset_serial);
		else
			ASSERT(YAJL_IS_NULL(key(v, "asset_serial")));

		yajl_val props = key(v, "properties");
		ASSERT(YAJL_IS_OBJECT(props));
		ASSERT(str_key(props, "Warranty Expiry") != NULL); /* a key with a space */
		const char *notes = str_key(props, "Notes"), *lower = str_key(props, "notes");
		if (a.notes_pair) {
			ASSERT(notes && lower && strcmp(notes, lower) != 0);
			notes_pairs++;
		} else {
			ASSERT(!notes && !lower);
		}
		yajl_val kabuto = key(props, "kabuto_information");
		if (a.agent_managed) {
			const char *mf[] = {"kabuto_information", "general", "manufacturer", NULL};
			const char *model[] = {"kabuto_information", "general", "model", NULL};
			const char *sn[] = {"kabuto_information", "general", "serial_number", NULL};
			const char *os[] = {"kabuto_information", "os", "name", NULL};
			const char *build[] = {"kabuto_information", "os", "build", NULL};
			ASSERT(YAJL_IS_OBJECT(kabuto));
			ASSERT_EQ_STR(YAJL_GET_STRING(at(props, mf)), a.manufacturer);
			ASSERT_EQ_STR(YAJL_GET_STRING(at(props, model)), a.model);
			ASSERT(YAJL_IS_STRING(at(props, sn)));
			if (a.has_serial)
				ASSERT_EQ_STR(YAJL_GET_STRING(at(props, sn)), a.asset_serial);
			ASSERT_EQ_STR(YAJL_GET_STRING(at(props, os)), a.os_name);
			ASSERT_EQ_STR(YAJL_GET_STRING(at(props, build)), a.os_build);
			ASSERT(YAJL_IS_ARRAY(key(kabuto, "network_adapters")));
			ASSERT(YAJL_IS_ARRAY(key(kabuto, "cpu")));
			ASSERT(YAJL_IS_ARRAY(key(kabuto, "ram")));
			ASSERT(YAJL_IS_ARRAY(key(kabuto, "hdd")));
			agents++;
		} else {
			ASSERT(kabuto == NULL);
		}

		yajl_val cust = key(v, "customer");
		ASSERT(YAJL_IS_OBJECT(cust));
		ASSERT_EQ_INT(int_key(cust, "id"), a.customer_id);
		struct simdata_syncro_customer c;
		simdata_syncro_customer(&opts, a.customer_index, &c);
		ASSERT_EQ_STR(str_key(cust, "business_name"), c.business_name);

		yajl_val links = key(v, "rmm_links");
		ASSERT(YAJL_IS_ARRAY(links) && links->u.array.len == 0);
		yajl_val store = key(v, "rmm_store");
		ASSERT(YAJL_IS_OBJECT(store));
		const char *flag = str_key(store, "override_autoresolve_hd_alert");
		ASSERT_EQ_STR(flag, "false"); /* a boolean as a string */
		ASSERT(key(v, "address") != NULL);
		yajl_tree_free(v);
		buf_free(&b);
	}
	ASSERT_EQ_INT(notes_pairs, NASSETS / 4);
	ASSERT_EQ_INT(agents, (NASSETS + 2) / 3);
}

TEST(simdata_syncro_customers_and_contacts_json)
{
	for (uint64_t c = 0; c < opts.customers; c++) {
		struct simdata_syncro_customer cust;
		struct buf b = BUF_INIT;
		simdata_syncro_customer(&opts, c, &cust);
		simdata_syncro_customer_json(&cust, &b);
		yajl_val v = parse_text(&b);
		ASSERT_EQ_INT(int_key(v, "id"), SIMDATA_SYNCRO_CUSTOMER_ID_BASE + (long long)c);
		ASSERT_EQ_STR(str_key(v, "business_name"), cust.business_name);
		ASSERT_EQ_STR(str_key(v, "email"), cust.email);
		ASSERT(is_iso_ms(str_key(v, "created_at")));
		yajl_tree_free(v);
		buf_free(&b);
	}
	for (uint64_t k = 0; k < opts.customers * opts.contacts_per_customer; k++) {
		struct simdata_syncro_contact contact;
		struct buf b = BUF_INIT;
		simdata_syncro_contact(&opts, k, &contact);
		simdata_syncro_contact_json(&contact, &b);
		yajl_val v = parse_text(&b);
		ASSERT_EQ_INT(int_key(v, "id"), SIMDATA_SYNCRO_CONTACT_ID_BASE + (long long)k);
		ASSERT_EQ_INT(int_key(v, "customer_id"),
			      SIMDATA_SYNCRO_CUSTOMER_ID_BASE + (long long)(k / 2));
		ASSERT_EQ_STR(str_key(v, "name"), contact.name);
		yajl_tree_free(v);
		buf_free(&b);
	}
}

TEST(simdata_syncro_disabled_customers)
{
	uint64_t enabled = 0;
	for (uint64_t c = 0; c < 200; c++) {
		struct simdata_syncro_customer cust;
		struct buf b = BUF_INIT;
		simdata_syncro_customer(&opts, c, &cust);
		ASSERT_EQ_INT(cust.disabled, c % 9 == 4);
		ASSERT_EQ_INT(simdata_syncro_customer_disabled(c), c % 9 == 4);
		simdata_syncro_customer_json(&cust, &b);
		yajl_val v = parse_text(&b);
		yajl_val d = key(v, "disabled");
		ASSERT(cust.disabled ? YAJL_IS_TRUE(d) : YAJL_IS_FALSE(d));
		yajl_tree_free(v);
		buf_free(&b);
		/* the k-th enabled customer, as /customers serves them without
		 * include_disabled */
		if (!cust.disabled)
			ASSERT_EQ_INT(simdata_syncro_enabled_customer(enabled++), c);
		ASSERT_EQ_INT(simdata_syncro_enabled_customers(c + 1), enabled);
	}
	ASSERT_EQ_INT(simdata_syncro_enabled_customers(0), 0);
	ASSERT_EQ_INT(simdata_syncro_enabled_customers(50), 44); /* 4 13 22 31 40 49 */
	/* assets of a disabled customer are served as any other, the embedded
	 * customer saying it is disabled */
	struct simdata_syncro_asset a;
	struct buf b = BUF_INIT;
	simdata_syncro_asset(&opts, 4, &a);
	ASSERT_EQ_INT(a.customer_index, 4);
	simdata_syncro_asset_json(&opts, &a, &b);
	yajl_val v = parse_text(&b);
	const char *path[] = {"customer", "disabled", NULL};
	ASSERT(YAJL_IS_TRUE(at(v, path)));
	yajl_tree_free(v);
	buf_free(&b);
}
