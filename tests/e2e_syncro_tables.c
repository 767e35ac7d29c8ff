/* e2e_syncro_tables.c - the Syncro tables of sql/004 in a real PostgreSQL:
 * rows encoded by the Syncro endpoints from the simulator's answers go
 * through stage_rows, COPY and commit_rows as a run's would, and read back
 * with the right types (bigint ids, timestamptz, jsonb with case-sensitive
 * keys, booleans). */
#include "e2e.h"
#include "endpoint.h"
#include "jstream.h"
#include "schema.h"
#include "simdata.h"
#include "syncro.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NASSETS 200
#define SOURCE "msp"

static const struct simdata_syncro_options opts = {
	.seed = 1, .customers = 50, .contacts_per_customer = 2,
};

struct encoder {
	const struct endpoint *ep;
	struct buf rows;
	struct buf scratch;
	int bad;
};

static int on_record(void *arg, const struct jstream_record *rec)
{
	struct encoder *e = arg;
	const char *key = NULL;
	size_t n = e->ep->record_key(rec, &e->scratch, &key);
	ASSERT(n > 0);
	struct endpoint_row_ctx ctx = {1, 1, NULL};
	e->bad += e->ep->encode_row(&e->rows, rec, key, n, &ctx);
	return 0;
}

/* The COPY rows of one answer. */
static void encode(struct encoder *e, const struct endpoint *ep, const struct buf *body)
{
	struct jstream_callbacks cb = {on_record, NULL, e};
	struct jstream *js;
	ASSERT_EQ_INT(jstream_new(&js, &ep->spec, &cb), 0);
	e->ep = ep;
	if (jstream_feed(js, body->data, body->len) != 0 || jstream_finish(js) != 0)
		test_fail(__FILE__, __LINE__, "parse: %s", jstream_error(js));
	jstream_free(js);
	ASSERT_EQ_INT(e->bad, 0);
}

static void exec_ok(PGconn *db, const char *sql)
{
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		test_fail(__FILE__, __LINE__, "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
}

/* Load rows as a run of source would: a load table, COPY, the swap. */
static void load_rows(PGconn *db, const struct endpoint *ep, const char *source, int run_id,
		      const struct buf *rows)
{
	struct buf sql = BUF_INIT;
	PGresult *r;
	char table[128];

	exec_ok(db, "BEGIN");
	buf_printf(&sql, "SELECT stage_rows('%s', %d, '%s')", ep->table, run_id, source);
	r = PQexec(db, sql.data);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		test_fail(__FILE__, __LINE__, "%s: %s", sql.data, PQresultErrorMessage(r));
	snprintf(table, sizeof(table), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);

	buf_reset(&sql);
	buf_printf(&sql, "COPY %s (%s) FROM STDIN", table, ep->copy_columns);
	r = PQexec(db, sql.data);
	if (PQresultStatus(r) != PGRES_COPY_IN)
		test_fail(__FILE__, __LINE__, "%s: %s", sql.data, PQresultErrorMessage(r));
	PQclear(r);
	ASSERT_EQ_INT(PQputCopyData(db, rows->data, (int)rows->len), 1);
	ASSERT_EQ_INT(PQputCopyEnd(db, NULL), 1);
	r = PQgetResult(db);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		test_fail(__FILE__, __LINE__, "COPY into %s: %s", ep->table, PQresultErrorMessage(r));
	PQclear(r);
	while ((r = PQgetResult(db)))
		PQclear(r);

	buf_reset(&sql);
	buf_printf(&sql, "SELECT commit_rows('%s', '%s', '%s', '{}', '%s')", ep->table, table,
		   source, ep->key_columns);
	exec_ok(db, sql.data);
	exec_ok(db, "COMMIT");
	buf_free(&sql);
}

static void assets_rows(struct encoder *e, uint64_t first, uint64_t n)
{
	struct buf body = BUF_INIT;
	buf_puts(&body, "{\"assets\":[");
	for (uint64_t i = first; i < first + n; i++) {
		struct simdata_syncro_asset a;
		if (i > first)
			buf_putc(&body, ',');
		simdata_syncro_asset(&opts, i, &a);
		simdata_syncro_asset_json(&opts, &a, &body);
	}
	buf_printf(&body, "],\"meta\":{\"total_pages\":1,\"total_entries\":%llu,\"per_page\":100,"
		   "\"page\":1}}", (unsigned long long)n);
	encode(e, &syncro_assets_endpoint, &body);
	buf_free(&body);
}

static void encoder_free(struct encoder *e)
{
	buf_free(&e->rows);
	buf_free(&e->scratch);
}

TEST(e2e_syncro_tables_load)
{
	const char *schema = e2e_schema("e2e_syncro_tables_load");
	PGconn *db = e2e_db(schema);
	struct buf err = BUF_INIT, s = BUF_INIT, body = BUF_INIT;
	struct encoder e = {0};

	if (schema_migrate(db, schema, &err) != 0)
		test_fail(__FILE__, __LINE__, "migrate: %s", buf_str(&err));

	/* assets */
	assets_rows(&e, 0, NASSETS);
	load_rows(db, &syncro_assets_endpoint, SOURCE, 1, &e.rows);
	encoder_free(&e);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets"), NASSETS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT min(asset_id) FROM syncro_assets"),
		      SIMDATA_SYNCRO_ASSET_ID_BASE);
	/* "Notes" and "notes" are two keys of properties */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE properties ? 'Notes'"
				     " AND properties ? 'notes'"
				     " AND properties->>'Notes' <> properties->>'notes'"), NASSETS / 4);
	e2e_db_str(db, &s, "SELECT properties->>'Notes' FROM syncro_assets WHERE asset_id = %d",
		   SIMDATA_SYNCRO_ASSET_ID_BASE + 2);
	ASSERT_EQ_STR(buf_str(&s), "Loaner 2, check battery");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE contact_id IS NULL"),
		      NASSETS / 4);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets"
				     " WHERE asset_serial IS NULL"), NASSETS / 10);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE properties"
				     " ? 'kabuto_information'"), (NASSETS + 2) / 3);
	e2e_db_str(db, &s, "SELECT name FROM syncro_assets WHERE asset_id = %d",
		   SIMDATA_SYNCRO_ASSET_ID_BASE + 11);
	ASSERT_EQ_STR(buf_str(&s), "Front desk \"11\" \\ caf\xc3\xa9");

	/* every value as the simulator made it */
	for (uint64_t i = 0; i < NASSETS; i += 23) {
		struct simdata_syncro_asset a;
		struct simdata_syncro_customer c;
		simdata_syncro_asset(&opts, i, &a);
		simdata_syncro_customer(&opts, a.customer_index, &c);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE asset_id = %lld"
					     " AND customer_id = %lld AND customer_name = '%s'"
					     " AND asset_type = '%s'"
					     " AND created_at = '%s'::timestamptz"
					     " AND updated_at = '%s'::timestamptz"
					     " AND contact_id IS NOT DISTINCT FROM %s"
					     " AND asset_serial IS NOT DISTINCT FROM %s%s%s"
					     " AND (attrs->>'id')::bigint = asset_id"
					     " AND attrs->'properties' = properties"
					     " AND (attrs->'customer'->>'disabled')::boolean = %s"
					     " AND run_id = 1 AND page = 1 AND attempt = 1",
					 a.id, a.customer_id, c.business_name, a.asset_type,
					 a.created_at, a.updated_at,
					 a.has_contact ? "contact_id" : "NULL",
					 a.has_serial ? "'" : "", a.has_serial ? a.asset_serial : "NULL",
					 a.has_serial ? "'" : "", c.disabled ? "true" : "false"),
			      1);
		if (a.has_contact) {
			ASSERT_EQ_INT(e2e_db_int(db, "SELECT contact_id FROM syncro_assets"
						     " WHERE asset_id = %lld", a.id), a.contact_id);
		}
	}

	/* the partition has the parent's indexes */
	static const char *const indexed[] = {"(source, asset_id)", "(source, asset_serial)",
					      "(source, customer_id)"};
	for (size_t k = 0; k < 3; k++)
		ASSERT(e2e_db_int(db, "SELECT count(*) FROM pg_indexes WHERE schemaname = '%s'"
				      " AND tablename = current_partition('syncro_assets', '%s')::text"
				      " AND indexdef LIKE '%%%s'", schema, SOURCE, indexed[k]) >= 1);

	/* a second run replaces the rows: first_seen kept for the assets seen
	 * before, another source untouched */
	e2e_db_str(db, &s, "SELECT first_seen FROM syncro_assets WHERE asset_id = %d",
		   SIMDATA_SYNCRO_ASSET_ID_BASE + 100);
	memset(&e, 0, sizeof(e));
	assets_rows(&e, 100, 150);
	load_rows(db, &syncro_assets_endpoint, SOURCE, 2, &e.rows);
	load_rows(db, &syncro_assets_endpoint, "other-msp", 3, &e.rows);
	encoder_free(&e);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE source = '%s'"
				     " AND run_id = 2", SOURCE), 150);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE source = '%s'",
				 SOURCE), 150);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE source = 'other-msp'"),
		      150);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE source = '%s'"
				     " AND asset_id = %d AND first_seen = '%s'", SOURCE,
				 SIMDATA_SYNCRO_ASSET_ID_BASE + 100, buf_str(&s)), 1);

	/* customers, the disabled ones too */
	buf_puts(&body, "{\"customers\":[");
	for (uint64_t c = 0; c < opts.customers; c++) {
		struct simdata_syncro_customer cust;
		if (c)
			buf_putc(&body, ',');
		simdata_syncro_customer(&opts, c, &cust);
		simdata_syncro_customer_json(&cust, &body);
	}
	buf_puts(&body, "]}");
	memset(&e, 0, sizeof(e));
	encode(&e, &syncro_customers_endpoint, &body);
	load_rows(db, &syncro_customers_endpoint, SOURCE, 1, &e.rows);
	encoder_free(&e);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_customers"), opts.customers);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_customers WHERE disabled"),
		      opts.customers - simdata_syncro_enabled_customers(opts.customers));
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_customers c JOIN syncro_assets a"
				     " USING (source, customer_id) WHERE a.source = '%s'"
				     " AND a.customer_name = c.business_name", SOURCE), 150);

	/* contacts */
	buf_reset(&body);
	buf_puts(&body, "{\"contacts\":[");
	for (uint64_t k = 0; k < opts.customers * opts.contacts_per_customer; k++) {
		struct simdata_syncro_contact contact;
		if (k)
			buf_putc(&body, ',');
		simdata_syncro_contact(&opts, k, &contact);
		simdata_syncro_contact_json(&contact, &body);
	}
	buf_puts(&body, "]}");
	memset(&e, 0, sizeof(e));
	encode(&e, &syncro_contacts_endpoint, &body);
	load_rows(db, &syncro_contacts_endpoint, SOURCE, 1, &e.rows);
	encoder_free(&e);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_contacts"),
		      opts.customers * opts.contacts_per_customer);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets a JOIN syncro_contacts c"
				     " USING (source, contact_id) WHERE a.customer_id <> c.customer_id"),
		      0);

	/* asset types */
	buf_reset(&body);
	buf_puts(&body, "{\"asset_types\":[");
	for (int k = 0; k < SIMDATA_SYNCRO_NASSET_TYPES; k++)
		buf_printf(&body, "%s{\"id\":%d,\"name\":\"%s\"}", k ? "," : "",
			   SIMDATA_SYNCRO_ASSET_TYPE_ID_BASE + k, simdata_syncro_asset_type_names[k]);
	buf_puts(&body, "]}");
	memset(&e, 0, sizeof(e));
	encode(&e, &syncro_asset_types_endpoint, &body);
	load_rows(db, &syncro_asset_types_endpoint, SOURCE, 1, &e.rows);
	encoder_free(&e);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_asset_types"),
		      SIMDATA_SYNCRO_NASSET_TYPES);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets a LEFT JOIN"
				     " syncro_asset_types t ON t.source = a.source"
				     " AND t.name = a.asset_type WHERE t.name IS NULL"
				     " AND a.source = '%s'", SOURCE), 0);

	buf_free(&err);
	buf_free(&s);
	buf_free(&body);
	PQfinish(db);
}
