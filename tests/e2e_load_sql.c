/* e2e_load_sql.c - the load functions of the schema (sql/) against a real
 * PostgreSQL, driven the way a run drives them: stage_rows() and COPY on
 * one connection, each committed on its own, then one transaction that
 * calls commit_rows() or append_rows() per endpoint. Also: the Mosyle
 * endpoints' COPY rows (src/mosyle.c) load into their tables. */
#include "e2e.h"
#include "endpoint.h"
#include "jstream.h"
#include "mosyle.h"
#include "schema.h"
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

/* A migrated schema for this test, and a session using it. */
static PGconn *migrated(const char *test_name, const char **schema_out)
{
	const char *schema = e2e_schema(test_name);
	PGconn *db = PQconnectdb("");
	if (PQstatus(db) != CONNECTION_OK)
		test_fail(__FILE__, __LINE__, "cannot connect: %s", PQerrorMessage(db));
	struct buf err = BUF_INIT;
	if (schema_migrate(db, schema, &err) < 0)
		test_fail(__FILE__, __LINE__, "migrating: %s", buf_str(&err));
	buf_free(&err);
	if (schema_out)
		*schema_out = schema;
	return db;
}


/* A load table's name. */
struct load_table {
	char name[128];
};

/* stage_rows() in its own transaction, as a run now does; the load
 * table's name. */
static struct load_table stage(PGconn *db, const char *parent, long long run, const char *source)
{
	struct load_table t;
	char run_text[24];
	snprintf(run_text, sizeof(run_text), "%lld", run);
	const char *params[3] = {parent, run_text, source};
	PGresult *r = PQexecParams(db, "SELECT stage_rows($1, $2, $3)", 3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		test_fail(__FILE__, __LINE__, "stage_rows: %s", PQresultErrorMessage(r));
	snprintf(t.name, sizeof(t.name), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return t;
}

/* COPY rows (COPY text format) into table (columns) through libpq. */
static void copy_rows(PGconn *db, const char *table, const char *columns, const char *rows)
{
	struct buf sql = BUF_INIT;
	buf_printf(&sql, "COPY %s (%s) FROM STDIN", table, columns);
	PGresult *r = PQexec(db, sql.data);
	if (PQresultStatus(r) != PGRES_COPY_IN)
		test_fail(__FILE__, __LINE__, "%s: %s", sql.data, PQresultErrorMessage(r));
	PQclear(r);
	if (PQputCopyData(db, rows, (int)strlen(rows)) != 1 || PQputCopyEnd(db, NULL) != 1)
		test_fail(__FILE__, __LINE__, "COPY: %s", PQerrorMessage(db));
	while ((r = PQgetResult(db)) != NULL) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			test_fail(__FILE__, __LINE__, "%s: %s", sql.data, PQresultErrorMessage(r));
		PQclear(r);
	}
	buf_free(&sql);
}

/* stage + COPY: a committed load table holding rows; its name. */
static struct load_table load(PGconn *db, const char *parent, long long run, const char *source,
			      const char *columns, const char *rows)
{
	struct load_table t = stage(db, parent, run, source);
	copy_rows(db, t.name, columns, rows);
	return t;
}

static long long exists(PGconn *db, const char *table)
{
	return e2e_db_int(db, "SELECT count(*) FROM pg_class WHERE oid = to_regclass('%s')", table);
}

#define MEMBER_COLUMNS "attempt, page, os, group_id, udid, group_name, attrs"

TEST(e2e_sql_commit_rows_composite_key)
{
	PGconn *db = migrated("commit_composite", NULL);

	/* run 1: attempt 1 (page 1) and attempt 2 (page 2) both hold
	 * ios/17/U2, which moved between pages; attempt 3 failed halfway */
	struct load_table t1 = load(db, "mosyle_device_group_members", 1, "district", MEMBER_COLUMNS,
			      "1\t1\tios\t17\tU1\tCart 3\t\"U1\"\n"
			      "1\t1\tios\t17\tU2\tCart 3\t\"U2\"\n"
			      "2\t2\tios\t17\tU2\tCart 3b\t\"U2\"\n"
			      "2\t2\tmac\t17\tU2\tMac cart\t\"U2\"\n"
			      "2\t2\tios\t18\tU2\tCart 4\t\"U2\"\n"
			      "3\t3\tios\t19\tU9\tlost\t\"U9\"\n");
	e2e_db_exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT commit_rows('mosyle_device_group_members', '%s',"
				     " 'district', '{3}', 'os,group_id, udid')", t1.name),
		      4);
	e2e_db_exec(db, "COMMIT");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_device_group_members"), 4);
	/* the latest attempt's copy of the duplicate */
	struct buf s = BUF_INIT;
	e2e_db_str(db, &s, "SELECT group_name || '/' || attempt || '/' || page"
			   " FROM mosyle_device_group_members"
			   " WHERE os = 'ios' AND group_id = '17' AND udid = 'U2'");
	ASSERT_EQ_STR(buf_str(&s), "Cart 3b/2/2");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_device_group_members"
				     " WHERE udid = 'U9'"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_device_group_members"
				     " WHERE run_id = 1 AND source = 'district'"
				     " AND first_seen = last_seen"), 4);
	/* the committed load table is the source's partition, indexes and all */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_inherits"
				     " WHERE inhrelid = '%s'::regclass", t1.name), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_index WHERE indrelid = '%s'::regclass",
				 t1.name), 2);

	usleep(20 * 1000); /* now() of the next transaction is later */

	/* run 2: U1 stays, ios/17/U2 leaves, ios/17/U3 is new; first_seen
	 * carries over on the whole key only (mac/17/U2 differs by OS) */
	struct load_table t2 = load(db, "mosyle_device_group_members", 2, "district", MEMBER_COLUMNS,
			      "1\t1\tios\t17\tU1\tCart 3\t\"U1\"\n"
			      "1\t1\tios\t17\tU3\tCart 3\t\"U3\"\n"
			      "1\t1\tmac\t17\tU2\tMac cart\t\"U2\"\n"
			      "1\t1\tmac\t18\tU1\tMac 18\t\"U1\"\n");
	e2e_db_exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT commit_rows('mosyle_device_group_members', '%s',"
				     " 'district', '{}', 'os,group_id,udid')", t2.name),
		      4);
	e2e_db_exec(db, "COMMIT");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_device_group_members"), 4);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_device_group_members"
				     " WHERE run_id = 2"), 4);
	e2e_db_str(db, &s, "SELECT string_agg(os || '/' || group_id || '/' || udid || ':' ||"
			   " (first_seen < last_seen), ' ' ORDER BY os, group_id, udid)"
			   " FROM mosyle_device_group_members");
	ASSERT_EQ_STR(buf_str(&s), "ios/17/U1:true ios/17/U3:false mac/17/U2:true mac/18/U1:false");
	/* the old partition is gone, the new one took its place */
	ASSERT_EQ_INT(exists(db, t1.name), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_inherits"
				     " WHERE inhparent = 'mosyle_device_group_members'::regclass"), 1);

	/* single-column keys work as before (the devices endpoint) */
	struct load_table d = load(db, "mosyle_devices", 3, "district",
			     "attempt, page, device_key, os, attrs",
			     "1\t1\tA\tios\t{}\n1\t1\tB\tios\t{}\n2\t2\tB\tios\t{\"v\":2}\n");
	e2e_db_exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT commit_rows('mosyle_devices', '%s', 'district', '{}',"
				     " 'device_key')", d.name),
		      2);
	e2e_db_exec(db, "COMMIT");
	e2e_db_str(db, &s, "SELECT attrs::text FROM mosyle_devices WHERE device_key = 'B'");
	ASSERT_EQ_STR(buf_str(&s), "{\"v\": 2}");

	/* a bad key list is refused, not guessed at */
	struct load_table bad = load(db, "mosyle_device_groups", 4, "district",
			       "attempt, page, os, group_id, attrs", "1\t1\tios\t1\t{}\n");
	struct buf sql = BUF_INIT;
	buf_printf(&sql, "SELECT commit_rows('mosyle_device_groups', '%s', 'district', '{}',"
			 " 'os,,group_id')", bad.name);
	PGresult *r = PQexec(db, sql.data);
	ASSERT(PQresultStatus(r) == PGRES_FATAL_ERROR);
	ASSERT_CONTAINS(PQresultErrorMessage(r), "bad key column list");
	PQclear(r);
	buf_free(&sql);
	buf_free(&s);
	PQfinish(db);
}

#define LOG_COLUMNS "attempt, page, log_id, logged_at, admin, action, attrs"

TEST(e2e_sql_append_rows)
{
	PGconn *db = migrated("append_rows", NULL);

	/* the first append becomes the source's partition; a log read twice
	 * (on two attempts) is added once, the latest attempt's copy */
	struct load_table t1 = load(db, "mosyle_admin_logs", 1, "district", LOG_COLUMNS,
			      "1\t1\t90001\t2024-03-12 17:31:36+00\ta@d\twiped\t{}\n"
			      "1\t1\t90002\t2024-03-12 17:31:37+00\ta@d\tlocked\t{}\n"
			      "2\t2\t90002\t2024-03-12 17:31:37+00\ta@d\tlocked\t{\"v\":2}\n"
			      "3\t3\t90009\t2024-03-12 17:31:39+00\ta@d\tlost\t{}\n");
	e2e_db_exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT append_rows('mosyle_admin_logs', '%s', 'district',"
				     " '{3}', 'log_id')", t1.name),
		      2);
	e2e_db_exec(db, "COMMIT");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs"), 2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs"
				     " WHERE log_id = '90002' AND attempt = 2"), 1);

	/* the cursor the next run starts from: the newest entry's second */
	struct buf s = BUF_INIT;
	e2e_db_str(db, &s, "%s", "SELECT extract(epoch FROM max(logged_at))::bigint::text"
				 " FROM mosyle_admin_logs WHERE source = 'district'");
	ASSERT_EQ_STR(buf_str(&s), "1710264697");

	/* the next run reads from that second on: only new keys are added,
	 * rows already there are kept as they were */
	struct load_table t2 = load(db, "mosyle_admin_logs", 2, "district", LOG_COLUMNS,
			      "1\t1\t90002\t2024-03-12 17:31:37+00\ta@d\tchanged\t{}\n"
			      "1\t1\t90003\t2024-03-12 17:31:38+00\ta@d\tnew\t{}\n"
			      "1\t2\t90004\t2024-03-12 17:31:38+00\ta@d\tnew\t{}\n"
			      "2\t2\t90004\t2024-03-12 17:31:38+00\ta@d\tnew\t{}\n");
	e2e_db_exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT append_rows('mosyle_admin_logs', '%s', 'district',"
				     " '{}', 'log_id')", t2.name),
		      2);
	e2e_db_exec(db, "COMMIT");
	ASSERT_EQ_INT(exists(db, t2.name), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs"), 4);
	e2e_db_str(db, &s, "SELECT string_agg(log_id || ':' || action || ':' || run_id, ' '"
			   " ORDER BY log_id) FROM mosyle_admin_logs");
	ASSERT_EQ_STR(buf_str(&s), "90001:wiped:1 90002:locked:1 90003:new:2 90004:new:2");

	/* nothing new: nothing added */
	struct load_table t3 = load(db, "mosyle_admin_logs", 3, "district", LOG_COLUMNS,
			      "1\t1\t90004\t2024-03-12 17:31:38+00\ta@d\tnew\t{}\n");
	e2e_db_exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT append_rows('mosyle_admin_logs', '%s', 'district',"
				     " '{}', 'log_id')", t3.name),
		      0);
	e2e_db_exec(db, "COMMIT");

	/* another source appends to its own partition */
	struct load_table o = load(db, "mosyle_admin_logs", 4, "other", LOG_COLUMNS,
			     "1\t1\t90001\t2024-03-12 17:31:36+00\tb@d\twiped\t{}\n");
	e2e_db_exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT append_rows('mosyle_admin_logs', '%s', 'other',"
				     " '{}', 'log_id')", o.name),
		      1);
	e2e_db_exec(db, "COMMIT");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs"), 5);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_inherits"
				     " WHERE inhparent = 'mosyle_admin_logs'::regclass"), 2);
	buf_free(&s);
	PQfinish(db);
}

TEST(e2e_sql_drop_load_tables)
{
	const char *schema;
	PGconn *db = migrated("drop_load_tables", &schema);

	/* run 1 committed: its load table is now the partition */
	struct load_table partition = load(db, "mosyle_users", 1, "district",
					   "attempt, page, user_id, attrs", "1\t1\tu1\t{}\n");
	e2e_db_exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT commit_rows('mosyle_users', '%s', 'district', '{}',"
				     " 'user_id')", partition.name),
		      1);
	e2e_db_exec(db, "COMMIT");

	/* run 2 died after loading two endpoints; run 3 (this one) has
	 * loaded one; another source is loading; a table of the user's own
	 * only looks like a load table */
	struct load_table orphan1 = load(db, "mosyle_users", 2, "district",
					 "attempt, page, user_id, attrs", "1\t1\tu2\t{}\n");
	struct load_table orphan2 = stage(db, "mosyle_classes", 2, "district");
	struct load_table mine = stage(db, "mosyle_users", 3, "district");
	struct load_table other = stage(db, "mosyle_users", 2, "other");
	struct buf s = BUF_INIT;
	e2e_db_str(db, &s, "SELECT substr(md5('district'), 1, 12)");
	e2e_db_exec(db, "CREATE TABLE not_ours_r2_%s (x int)", buf_str(&s));

	ASSERT_EQ_INT(e2e_db_int(db, "SELECT drop_load_tables('district', 3)"), 2);
	ASSERT_EQ_INT(exists(db, orphan1.name), 0);
	ASSERT_EQ_INT(exists(db, orphan2.name), 0);
	ASSERT_EQ_INT(exists(db, partition.name), 1);
	ASSERT_EQ_INT(exists(db, mine.name), 1);
	ASSERT_EQ_INT(exists(db, other.name), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
				     " ON n.oid = c.relnamespace WHERE n.nspname = '%s'"
				     " AND c.relname = 'not_ours_r2_%s'", schema, buf_str(&s)),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_users"), 1);
	/* nothing more to drop */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT drop_load_tables('district', 3)"), 0);
	/* the next run drops run 3's table if run 3 died too */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT drop_load_tables('district', 4)"), 1);
	ASSERT_EQ_INT(exists(db, mine.name), 0);
	ASSERT_EQ_INT(exists(db, partition.name), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT drop_load_tables('other', 4)"), 1);
	buf_free(&s);
	PQfinish(db);
}

/* ---- copies of one key, and what the swap's statements read ---- */

#define DEVICE_COLUMNS "attempt, page, device_key, os, attrs"

/* Two orders of the same device rows: attempt 1 (page 1) holds A twice
 * with different values and B twice alike; C comes once in attempt 1 and
 * twice, different, in attempt 2 (page 2). */
static const char *const copies[2] = {
	"1\t1\tA\tios\t{\"n\":1}\n1\t1\tA\tios\t{\"n\":2}\n1\t1\tB\tios\t{}\n1\t1\tB\tios\t{}\n"
	"1\t1\tC\tios\t{\"n\":9}\n2\t2\tC\tios\t{\"n\":3}\n2\t2\tC\tios\t{\"n\":4}\n",
	"2\t2\tC\tios\t{\"n\":4}\n2\t2\tC\tios\t{\"n\":3}\n1\t1\tC\tios\t{\"n\":9}\n"
	"1\t1\tB\tios\t{}\n1\t1\tB\tios\t{}\n1\t1\tA\tios\t{\"n\":2}\n1\t1\tA\tios\t{\"n\":1}\n",
};

#define COPY_LOG_COLUMNS "attempt, page, log_id, action, attrs"

TEST(e2e_sql_copies_of_a_key_in_one_page)
{
	PGconn *db = migrated("copies_in_one_page", NULL);
	struct buf s = BUF_INIT;

	/* Each page attempt has an id of its own, so copies share an attempt
	 * (and page) only when one answer repeated a record. Of those, the
	 * copy whose attrs sorts last is kept whatever order they were
	 * stored in, and identical copies become one row. */
	const char *sources[2] = {"one", "two"};
	for (int i = 0; i < 2; i++) {
		struct load_table t = load(db, "mosyle_devices", 1, sources[i], DEVICE_COLUMNS,
					   copies[i]);
		e2e_db_exec(db, "BEGIN");
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT commit_rows('mosyle_devices', '%s', '%s', '{}',"
					     " 'device_key')", t.name, sources[i]),
			      3);
		e2e_db_exec(db, "COMMIT");
		e2e_db_str(db, &s, "SELECT string_agg(device_key || ':' || attempt || ':' ||"
				   " coalesce(attrs->>'n', '-'), ' ' ORDER BY device_key)"
				   " FROM mosyle_devices WHERE source = '%s'", sources[i]);
		ASSERT_EQ_STR(buf_str(&s), "A:1:2 B:1:- C:2:4");
	}

	/* append_rows keeps the same copy of a key it adds */
	for (int i = 0; i < 2; i++) {
		struct load_table first = load(db, "mosyle_admin_logs", 2, sources[i],
					       COPY_LOG_COLUMNS, "1\t1\t1\told\t{}\n");
		e2e_db_exec(db, "BEGIN");
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT append_rows('mosyle_admin_logs', '%s', '%s',"
					     " '{}', 'log_id')", first.name, sources[i]),
			      1);
		e2e_db_exec(db, "COMMIT");
		struct load_table t = load(db, "mosyle_admin_logs", 3, sources[i], COPY_LOG_COLUMNS,
					   i == 0 ? "1\t1\t7\tx\t{\"n\":1}\n1\t1\t7\tx\t{\"n\":2}\n"
						    "1\t1\t8\ty\t{}\n1\t1\t8\ty\t{}\n1\t1\t1\tnew\t{}\n"
						  : "1\t1\t1\tnew\t{}\n1\t1\t8\ty\t{}\n1\t1\t8\ty\t{}\n"
						    "1\t1\t7\tx\t{\"n\":2}\n1\t1\t7\tx\t{\"n\":1}\n");
		e2e_db_exec(db, "BEGIN");
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT append_rows('mosyle_admin_logs', '%s', '%s',"
					     " '{}', 'log_id')", t.name, sources[i]),
			      2);
		e2e_db_exec(db, "COMMIT");
		e2e_db_str(db, &s, "SELECT string_agg(log_id || ':' || action || ':' ||"
				   " coalesce(attrs->>'n', '-'), ' ' ORDER BY log_id)"
				   " FROM mosyle_admin_logs WHERE source = '%s'", sources[i]);
		ASSERT_EQ_STR(buf_str(&s), "1:old:- 7:x:2 8:y:-");
	}
	buf_free(&s);
	PQfinish(db);
}

/* The plans auto_explain sends as notices (JSON), one per element. */
struct plans {
	struct buf *v;
	size_t n;
};

static void collect_plan(void *arg, const char *message)
{
	struct plans *p = arg;
	const char *json = strchr(message, '{');
	if (!strstr(message, "plan:") || !json)
		return;
	p->v = realloc(p->v, (p->n + 1) * sizeof(*p->v));
	ASSERT(p->v != NULL);
	p->v[p->n] = (struct buf)BUF_INIT;
	buf_puts(&p->v[p->n], json);
	p->n++;
}

TEST(e2e_sql_swap_statements_name_the_source)
{
	PGconn *db = migrated("swap_names_source", NULL);
	struct plans plans = {NULL, 0};
	struct buf s = BUF_INIT;

	/* every statement the swap functions run from here on is explained
	 * to this session */
	e2e_db_exec(db, "LOAD 'auto_explain'");
	e2e_db_exec(db, "SET auto_explain.log_min_duration = 0");
	e2e_db_exec(db, "SET auto_explain.log_nested_statements = on");
	e2e_db_exec(db, "SET auto_explain.log_level = notice");
	e2e_db_exec(db, "SET auto_explain.log_format = json");
	e2e_db_exec(db, "SET client_min_messages = notice");
	PQnoticeProcessor prev = PQsetNoticeProcessor(db, collect_plan, &plans);

	/* two runs of devices (discarded attempts, copies of a key, devices
	 * kept, changed, removed and new) and of admin logs (the first
	 * becomes the partition, the second is added to it) */
	struct load_table d1 = load(db, "mosyle_devices", 1, "district", DEVICE_COLUMNS,
				    "1\t1\tA\tios\t{}\n1\t1\tB\tios\t{}\n2\t2\tB\tios\t{}\n"
				    "3\t3\tZ\tios\t{}\n");
	struct load_table l1 = load(db, "mosyle_admin_logs", 1, "district", COPY_LOG_COLUMNS,
				    "1\t1\t1\ta\t{}\n2\t2\t1\ta\t{}\n");
	e2e_db_exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT commit_rows('mosyle_devices', '%s', 'district', '{3}',"
				     " 'device_key')", d1.name),
		      2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT append_rows('mosyle_admin_logs', '%s', 'district',"
				     " '{}', 'log_id')", l1.name),
		      1);
	e2e_db_exec(db, "COMMIT");
	struct load_table d2 = load(db, "mosyle_devices", 2, "district",
				    DEVICE_COLUMNS ", device_name",
				    "1\t1\tA\tios\t{}\tnew name\n1\t1\tC\tios\t{}\t\\N\n"
				    "2\t2\tC\tios\t{}\t\\N\n4\t4\tZ\tios\t{}\t\\N\n");
	struct load_table l2 = load(db, "mosyle_admin_logs", 2, "district", COPY_LOG_COLUMNS,
				    "1\t1\t1\ta\t{}\n1\t1\t2\tb\t{}\n2\t2\t2\tb\t{}\n4\t4\t3\tc\t{}\n");
	e2e_db_exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT commit_rows('mosyle_devices', '%s', 'district', '{4}',"
				     " 'device_key')", d2.name),
		      2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT append_rows('mosyle_admin_logs', '%s', 'district',"
				     " '{4}', 'log_id')", l2.name),
		      1);
	e2e_db_exec(db, "COMMIT");
	e2e_db_exec(db, "SET auto_explain.log_min_duration = -1");
	PQsetNoticeProcessor(db, prev, NULL);

	/* the runs did what they should: B removed, A renamed, C new */
	e2e_db_str(db, &s, "SELECT string_agg(change || ':' || record_key || ':' ||"
			   " coalesce(field, '-'), ' ' ORDER BY change, record_key, field)"
			   " FROM record_changes");
	ASSERT_EQ_STR(buf_str(&s), "appeared:C:- changed:A:device_name removed:B:-");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM removed_records"), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs"), 2);

	e2e_db_exec(db, "CREATE TEMP TABLE plans (plan jsonb)");
	for (size_t i = 0; i < plans.n; i++) {
		const char *v = buf_str(&plans.v[i]);
		PGresult *r = PQexecParams(db, "INSERT INTO plans VALUES ($1)", 1, NULL, &v, NULL,
					   NULL, 0);
		ASSERT(PQresultStatus(r) == PGRES_COMMAND_OK);
		PQclear(r);
		buf_free(&plans.v[i]);
	}
	free(plans.v);
	/* every node that reads a data table (a load table, a partition, a
	 * parent) in the statements the functions ran */
	e2e_db_exec(db, "CREATE TEMP VIEW scans AS"
			" SELECT p.plan->>'Query Text' AS query, n->>'Relation Name' AS rel,"
			" concat_ws(' ', n->>'Filter', n->>'Index Cond', n->>'Recheck Cond') AS cond"
			" FROM plans p, jsonb_path_query(p.plan, 'strict $.**') n"
			" WHERE jsonb_typeof(n) = 'object' AND n ? 'Relation Name'"
			" AND n->>'Node Type' <> 'ModifyTable'"
			" AND n->>'Relation Name' ~ '^mosyle_'");
	/* the deletes of discarded attempts, the first_seen update, the
	 * deduplication, the counts, the history's full join and removed
	 * records, the append: enough to mean something */
	ASSERT(e2e_db_int(db, "SELECT count(DISTINCT query) FROM scans") >= 9);
	ASSERT(e2e_db_int(db, "SELECT count(*) FROM scans WHERE query ~ 'FULL JOIN'") == 2);
	/* each reads the one source only: a router query when Citus
	 * distributes the tables by source */
	e2e_db_str(db, &s, "SELECT coalesce(string_agg(rel || ': ' || query, E'\\n'), '') FROM scans"
			   " WHERE cond NOT LIKE '%%source = ''district''::text%%'");
	ASSERT_EQ_STR(buf_str(&s), "");
	/* the deduplication among them: devices in both runs, the admin
	 * logs' first load, each reading its table twice */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM scans WHERE query ~ '^WITH d AS \\(DELETE'"),
		      6);
	/* and the full join of the old and new rows joins on source too
	 * (the plan names the two tables, not their aliases) */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM plans p,"
				     " jsonb_path_query(p.plan, 'strict $.**') n"
				     " WHERE jsonb_typeof(n) = 'object' AND n->>'Join Type' = 'Full'"
				     " AND concat(n->>'Hash Cond', n->>'Merge Cond', n->>'Join Filter')"
				     "     ~ '\\(\\w+\\.source = \\w+\\.source\\)'"),
		      1);
	buf_free(&s);
	PQfinish(db);
}

TEST(e2e_sql_swap_endpoint)
{
	PGconn *db = migrated("swap_endpoint", NULL);
	e2e_db_exec(db, "INSERT INTO sync_runs (run_id, source, kind) VALUES (1, 'district', 'mosyle'),"
			" (2, 'district', 'mosyle')");
	e2e_db_exec(db, "INSERT INTO sync_run_endpoints (run_id, source, endpoint) VALUES"
			" (1, 'district', 'devices/ios'), (1, 'district', 'admin_logs'),"
			" (2, 'district', 'admin_logs')");

	/* replace: the rows current, written to the endpoint's row */
	struct load_table d = load(db, "mosyle_devices", 1, "district", DEVICE_COLUMNS,
				   "1\t1\tA\tios\t{}\n1\t1\tB\tios\t{}\n2\t2\tB\tios\t{}\n"
				   "3\t3\tZ\tios\t{}\n");
	struct load_table l1 = load(db, "mosyle_admin_logs", 1, "district", COPY_LOG_COLUMNS,
				    "1\t1\t1\ta\t{}\n");
	e2e_db_exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT swap_endpoint(1, 'district', 'devices/ios',"
				     " 'mosyle_devices', '%s', '{3}', 'device_key', false)", d.name),
		      2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT swap_endpoint(1, 'district', 'admin_logs',"
				     " 'mosyle_admin_logs', '%s', '{}', 'log_id', true)", l1.name),
		      1);
	e2e_db_exec(db, "COMMIT");
	struct buf s = BUF_INIT;
	e2e_db_str(db, &s, "SELECT string_agg(run_id || ' ' || endpoint || ' ' ||"
			   " coalesce(loaded::text, 'NULL'), ', ' ORDER BY run_id, endpoint)"
			   " FROM sync_run_endpoints");
	ASSERT_EQ_STR(buf_str(&s), "1 admin_logs 1, 1 devices/ios 2, 2 admin_logs NULL");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 2);

	/* append: the rows added */
	struct load_table l2 = load(db, "mosyle_admin_logs", 2, "district", COPY_LOG_COLUMNS,
				    "1\t1\t1\ta\t{}\n1\t1\t2\tb\t{}\n1\t1\t3\tc\t{}\n");
	e2e_db_exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT swap_endpoint(2, 'district', 'admin_logs',"
				     " 'mosyle_admin_logs', '%s', '{}', 'log_id', true)", l2.name),
		      2);
	e2e_db_exec(db, "COMMIT");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT loaded FROM sync_run_endpoints WHERE run_id = 2"), 2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs"), 3);

	/* an endpoint the run does not have fails the swap, which then
	 * leaves everything as it was */
	struct load_table d3 = load(db, "mosyle_devices", 3, "district", DEVICE_COLUMNS,
				    "1\t1\tQ\tios\t{}\n");
	e2e_db_exec(db, "BEGIN");
	struct buf sql = BUF_INIT;
	buf_printf(&sql, "SELECT swap_endpoint(2, 'district', 'devices/ios', 'mosyle_devices', '%s',"
			 " '{}', 'device_key', false)", d3.name);
	PGresult *r = PQexec(db, sql.data);
	ASSERT(PQresultStatus(r) == PGRES_FATAL_ERROR);
	ASSERT_CONTAINS(PQresultErrorMessage(r), "run 2 of source 'district' has no endpoint"
						 " 'devices/ios'");
	PQclear(r);
	e2e_db_exec(db, "ROLLBACK");
	ASSERT_EQ_INT(exists(db, d3.name), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_inherits WHERE inhrelid = '%s'::regclass",
				 d3.name),
		      0);
	e2e_db_str(db, &s, "SELECT string_agg(device_key, ' ' ORDER BY device_key) FROM mosyle_devices");
	ASSERT_EQ_STR(buf_str(&s), "A B");
	buf_free(&sql);
	buf_free(&s);
	PQfinish(db);
}

/* ---- stage_rows() with and without Citus ---- */

/* A description of table t in one line: its columns (type, NOT NULL,
 * default, compression, storage), constraints, tablespace, kind. */
static void table_shape(PGconn *db, struct buf *out, const char *t)
{
	e2e_db_str(db, out,
		   "SELECT (SELECT string_agg(concat_ws(' ', a.attname, format_type(a.atttypid, a.atttypmod),"
		   "  a.attnotnull, a.attcompression, a.attstorage, pg_get_expr(d.adbin, d.adrelid)), ', '"
		   "  ORDER BY a.attnum) FROM pg_attribute a LEFT JOIN pg_attrdef d"
		   "  ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
		   "  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)"
		   " || ' | ' || (SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ', '"
		   "  ORDER BY conname) FROM pg_constraint WHERE conrelid = c.oid)"
		   " || ' | ' || concat_ws(' ', c.reltablespace, c.relkind, c.relpersistence,"
		   "  c.relispartition)"
		   " FROM pg_class c WHERE c.oid = '%s'::regclass", t);
}

TEST(e2e_sql_stage_rows_distributes_only_under_citus)
{
	PGconn *db = migrated("stage_rows_citus", NULL);
	struct buf old = BUF_INIT, now = BUF_INIT, sql = BUF_INIT;

	/* stage_rows() as 002 defined it, under another name */
	const struct schema_migration *m = NULL;
	for (unsigned i = 0; i < schema_nmigrations; i++)
		if (schema_migrations[i].version == 2)
			m = &schema_migrations[i];
	ASSERT(m != NULL);
	const char *from = strstr(m->sql, "CREATE FUNCTION stage_rows(");
	ASSERT(from != NULL);
	const char *to = strstr(from, "END $$;");
	ASSERT(to != NULL);
	buf_printf(&sql, "CREATE FUNCTION stage_rows_002(%.*s", (int)(to + strlen("END $$;") - from)
		   - (int)strlen("CREATE FUNCTION stage_rows("), from + strlen("CREATE FUNCTION stage_rows("));
	e2e_db_exec(db, "%s", sql.data);

	/* without Citus, the load table of every data table is what it was */
	static const char *const parents[] = {
		"mosyle_devices", "mosyle_users", "mosyle_classes", "mosyle_device_groups",
		"mosyle_device_group_members", "mosyle_accounts", "mosyle_custom_attributes",
		"mosyle_admin_logs", "syncro_assets", "syncro_customers", "syncro_contacts",
		"syncro_asset_types",
	};
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_class WHERE relkind = 'p'"
				     " AND relnamespace = current_schema()::regnamespace"),
		      (long long)ARRAY_SIZE(parents));
	for (size_t i = 0; i < ARRAY_SIZE(parents); i++) {
		e2e_db_str(db, &sql, "SELECT stage_rows_002('%s', 7, 'district')", parents[i]);
		table_shape(db, &old, buf_str(&sql));
		ASSERT_CONTAINS(buf_str(&old), "source text t");
		ASSERT_CONTAINS(buf_str(&old), "CHECK ((source = 'district'::text))");
		e2e_db_exec(db, "DROP TABLE %s", buf_str(&sql));
		struct load_table t = stage(db, parents[i], 7, "district");
		ASSERT_EQ_STR(t.name, buf_str(&sql));
		table_shape(db, &now, t.name);
		ASSERT_EQ_STR(buf_str(&now), buf_str(&old));
		e2e_db_exec(db, "DROP TABLE %s", t.name);
	}
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_class"
				     " WHERE oid = to_regclass('pg_catalog.pg_dist_partition')"), 0);

	/* Under Citus: stand-ins for Citus's catalog of distributed tables
	 * and for create_distributed_table(), which notes its calls, in a
	 * transaction that is rolled back. A parent that Citus does not
	 * list, or lists as other than hash-distributed (a reference table),
	 * gets a plain load table; a distributed one, a load table
	 * distributed by source with it, empty and with its defaults set. */
	e2e_db_exec(db, "BEGIN");
	e2e_db_exec(db, "SET LOCAL allow_system_table_mods = on");
	e2e_db_exec(db, "CREATE TABLE pg_catalog.pg_dist_partition (logicalrelid regclass,"
			" partmethod \"char\")");
	e2e_db_exec(db, "CREATE TEMP TABLE calls (t text, col text, method text, colocate text,"
			" nrows bigint, source_default text)");
	e2e_db_exec(db, "CREATE FUNCTION pg_catalog.create_distributed_table(table_name regclass,"
			" distribution_column text, distribution_type text DEFAULT 'hash',"
			" colocate_with text DEFAULT 'default') RETURNS void LANGUAGE plpgsql AS $$"
			"DECLARE n bigint; BEGIN"
			" EXECUTE format('SELECT count(*) FROM %%s', table_name) INTO n;"
			" INSERT INTO pg_temp.calls SELECT table_name::text, distribution_column,"
			"  distribution_type, colocate_with, n, pg_get_expr(d.adbin, d.adrelid)"
			"  FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid"
			"  AND a.attnum = d.adnum WHERE d.adrelid = table_name AND a.attname = 'source';"
			" END $$");
	e2e_db_exec(db, "INSERT INTO pg_catalog.pg_dist_partition VALUES ('mosyle_classes', 'n')");
	struct load_table plain = stage(db, "mosyle_users", 8, "district");
	struct load_table reference = stage(db, "mosyle_classes", 8, "district");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM calls"), 0);
	e2e_db_exec(db, "INSERT INTO pg_catalog.pg_dist_partition VALUES ('mosyle_users', 'h')");
	struct load_table distributed = stage(db, "mosyle_users", 9, "district");
	e2e_db_str(db, &now, "SELECT string_agg(concat_ws(' ', t, col, method, colocate, nrows,"
			     " source_default), ', ') FROM calls");
	buf_reset(&sql);
	buf_printf(&sql, "%s source hash mosyle_users 0 'district'::text", distributed.name);
	ASSERT_EQ_STR(buf_str(&now), buf_str(&sql));
	ASSERT(strcmp(plain.name, distributed.name) != 0 && strcmp(reference.name, plain.name) != 0);
	e2e_db_exec(db, "ROLLBACK");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_class"
				     " WHERE oid = to_regclass('pg_catalog.pg_dist_partition')"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_proc"
				     " WHERE proname = 'create_distributed_table'"), 0);
	buf_free(&old);
	buf_free(&now);
	buf_free(&sql);
	PQfinish(db);
}

/* ---- docs/citus-check.sql ---- */

/* psql -f docs/citus-check.sql with schema first in search_path; its exit
 * status, its output (both streams) in out. */
static int run_citus_check(const char *schema, struct buf *out)
{
	const char *srcdir = getenv("INVSYNC_SRCDIR");
	ASSERT(srcdir != NULL);
	char options[160], cmd[1024];
	snprintf(options, sizeof(options), "-c search_path=%s,pg_catalog", schema);
	ASSERT(setenv("PGOPTIONS", options, 1) == 0);
	snprintf(cmd, sizeof(cmd), "psql -X -q -At -f '%s/docs/citus-check.sql' 2>&1", srcdir);
	FILE *p = popen(cmd, "r");
	ASSERT(p != NULL);
	buf_reset(out);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		buf_append(out, chunk, n);
	int status = pclose(p);
	unsetenv("PGOPTIONS");
	return status;
}

/* The script an operator runs on a Citus cluster also runs, and passes,
 * on plain PostgreSQL (distribution skipped), and stops at a failed check. */
TEST(e2e_sql_citus_check_script)
{
	const char *schema;
	PGconn *db = migrated("citus_check", &schema);
	struct buf out = BUF_INIT;
	int status = run_citus_check(schema, &out);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "citus-check.sql exited %d: %s", status, buf_str(&out));
	ASSERT_EQ_STR(buf_str(&out), "citus-check: passed without Citus (nothing distributed)\n");
	/* what it left: the two sources' rows, two runs' history */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 8);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM record_changes"), 3);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"), 3);

	/* a second time the schema holds data: the first check fails */
	ASSERT(run_citus_check(schema, &out) != 0);
	ASSERT_CONTAINS(buf_str(&out), "citus-check failed: the schema already holds data");
	buf_free(&out);
	PQfinish(db);
}

/* ---- the endpoints' rows load into their tables ---- */

struct encoded {
	const struct endpoint *ep;
	const char *variant;
	struct buf rows, scratch;
	int bad;
};

static int encode_record(void *arg, const struct jstream_record *rec)
{
	struct encoded *e = arg;
	const char *key;
	size_t keylen = e->ep->record_key(rec, &e->scratch, &key);
	if (keylen) {
		struct endpoint_row_ctx ctx = {1, 1, e->variant};
		e->bad += e->ep->encode_row(&e->rows, rec, key, keylen, &ctx);
	}
	return 0;
}

/* The COPY rows ep makes of an answer. */
static void encode(struct buf *rows, const struct endpoint *ep, const char *variant,
		   const char *doc)
{
	struct encoded e = {ep, variant, BUF_INIT, BUF_INIT, 0};
	struct jstream_callbacks cb = {encode_record, NULL, &e};
	struct jstream *js;
	ASSERT_EQ_INT(jstream_new(&js, &ep->spec, &cb), 0);
	ASSERT_EQ_INT(jstream_feed(js, doc, strlen(doc)), 0);
	ASSERT_EQ_INT(jstream_finish(js), 0);
	jstream_free(js);
	ASSERT_EQ_INT(e.bad, 0);
	buf_reset(rows);
	buf_append(rows, e.rows.data, e.rows.len);
	buf_free(&e.rows);
	buf_free(&e.scratch);
}

static const struct {
	const struct endpoint *ep;
	const char *variant;
	const char *doc;
	long long rows;
} answers[] = {
	{&mosyle_users_endpoint, NULL,
	 "{\"status\":\"OK\",\"response\":{\"users\":["
	 "{\"id\":\"u1\",\"name\":\"Ana\",\"email\":\"ana@d.example\",\"type\":\"STUDENT\","
	 "\"locations\":[{\"name\":\"Lincoln\",\"grade_level\":\"5\"}],\"grades\":[\"5\"],"
	 "\"serial_number\":null,\"account\":\"District\",\"assigned_devices\":[\"D1\"]},"
	 "{\"id\":\"u7\",\"name\":\"Bo \\\"B\\\"\\t\",\"email\":\"bo@d.example\",\"type\":\"TEACHER\","
	 "\"managedappleid\":\"bo@d.example\",\"locations\":[\"Lincoln\",\"Oak, North\"],"
	 "\"grades\":[],\"assigned_devices\":[]}],\"total\":\"2\"}}", 2},
	{&mosyle_classes_endpoint, NULL,
	 "{\"status\":\"OK\",\"response\":{\"classes\":["
	 "{\"id\":\"c1\",\"idclass\":\"1\",\"class_name\":\"Math\",\"course_name\":\"Math 5\","
	 "\"location\":\"Lincoln\",\"teacher\":\"u7\",\"students\":[\"u1\",\"u2\"],"
	 "\"coordinators\":[\"u9\"]},"
	 "{\"id\":\"c2\",\"idclass\":\"2\",\"name\":\"Art\",\"teacher\":null,"
	 "\"students\":[\"u1\"],\"coordinators\":[]}]}}", 2},
	{&mosyle_device_groups_endpoint, "ios",
	 "{\"status\":\"OK\",\"response\":[{\"groups\":[{\"id\":\"17\",\"name\":\"Cart 3\","
	 "\"os\":\"ios\",\"devices_count\":\"30\",\"type\":\"static\"}],\"rows\":\"1\"}]}", 1},
	{&mosyle_device_groups_endpoint, "mac",
	 "{\"status\":\"OK\",\"response\":{\"groups\":[{\"id\":\"17\",\"name\":\"Lab\","
	 "\"devices_count\":\"2\"}],\"rows\":\"1\"}}", 1},
	{&mosyle_device_group_members_endpoint, "ios",
	 "{\"status\":\"OK\",\"response\":[{\"groups\":[{\"id\":\"17\",\"name\":\"Cart 3\","
	 "\"deviceudids\":[\"D1\",\"D2\",\"D\\\\3\"]},{\"id\":\"18\",\"name\":\"E\","
	 "\"deviceudids\":[]}]}]}", 3},
	{&mosyle_accounts_endpoint, NULL,
	 "{\"status\":\"OK\",\"accounts\":[{\"id\":\"3\",\"name\":\"Lincoln\",\"school_code\":\"LE\","
	 "\"timezone\":\"America/Chicago\"}]}", 1},
	{&mosyle_custom_attributes_endpoint, "ios",
	 "{\"status\":\"OK\",\"response\":[{\"status\":\"OK\",\"info\":[{\"id\":\"5\","
	 "\"name\":\"Cart slot\",\"type\":\"text\",\"values_count\":\"120\"}]}]}", 1},
	{&mosyle_admin_logs_endpoint, NULL,
	 "{\"status\":\"OK\",\"response\":[{\"logs\":[{\"id\":\"90001\",\"date\":\"1710264696\","
	 "\"admin\":\"a@d.example\",\"action\":\"Device wiped\",\"target\":\"D1\","
	 "\"ip\":\"10.1.2.3\",\"details\":\"x\\ny\"},{\"date\":\"1710264697\","
	 "\"action\":\"Login\"}]}]}", 2},
};

TEST(e2e_sql_mosyle_endpoint_rows_load)
{
	PGconn *db = migrated("endpoint_rows", NULL);
	struct buf rows = BUF_INIT;
	struct load_table tables[ARRAY_SIZE(answers)] = {{{0}}};
	/* one load table per endpoint, per-OS streams sharing it */
	for (size_t i = 0; i < ARRAY_SIZE(answers); i++) {
		const struct endpoint *ep = answers[i].ep;
		if (i > 0 && answers[i - 1].ep == ep)
			tables[i] = tables[i - 1];
		else
			tables[i] = stage(db, ep->table, 1, "district");
		encode(&rows, ep, answers[i].variant, answers[i].doc);
		copy_rows(db, tables[i].name, ep->copy_columns, buf_str(&rows));
	}
	/* the final transaction: every endpoint, and its figures */
	e2e_db_exec(db, "INSERT INTO sync_runs (run_id, source, kind) VALUES (1, 'district', 'mosyle')");
	e2e_db_exec(db, "BEGIN");
	for (size_t i = 0; i < ARRAY_SIZE(answers); i++) {
		const struct endpoint *ep = answers[i].ep;
		if (i > 0 && answers[i - 1].ep == ep)
			continue;
		long long want = 0;
		for (size_t k = i; k < ARRAY_SIZE(answers) && answers[k].ep == ep; k++)
			want += answers[k].rows;
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT %s('%s', '%s', 'district', '{}', '%s')",
					 ep->commit == ENDPOINT_APPEND ? "append_rows" : "commit_rows",
					 ep->table, tables[i].name, ep->key_columns),
			      want);
		e2e_db_exec(db, "INSERT INTO sync_run_endpoints (run_id, source, endpoint, loaded)"
			 " VALUES (1, 'district', '%s', %lld)", ep->name, want);
	}
	e2e_db_exec(db, "INSERT INTO sync_run_endpoints (run_id, source, endpoint, note)"
		 " VALUES (1, 'district', 'accounts/none', 'not a district account')");
	e2e_db_exec(db, "COMMIT");

	struct buf s = BUF_INIT;
	e2e_db_str(db, &s, "SELECT name || '|' || managed_apple_id || '|' || locations::text"
			   " || '|' || grades::text || '|' || assigned_devices::text"
			   " FROM mosyle_users WHERE user_id = 'u7'");
	ASSERT_EQ_STR(buf_str(&s), "Bo \"B\"\t|bo@d.example|{Lincoln,\"Oak, North\"}|{}|{}");
	e2e_db_str(db, &s, "SELECT attrs->>'name' FROM mosyle_users WHERE user_id = 'u7'");
	ASSERT_EQ_STR(buf_str(&s), "Bo \"B\"\t");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_users"
				     " WHERE locations = '{Lincoln}' AND managed_apple_id IS NULL"), 1);
	/* membership without unpacking JSON */
	e2e_db_str(db, &s, "SELECT string_agg(class_id || ':' || user_id || ':' || role, ' '"
			   " ORDER BY class_id, user_id) FROM mosyle_class_members");
	ASSERT_EQ_STR(buf_str(&s), "c1:u1:student c1:u2:student c1:u7:teacher c1:u9:coordinator"
				   " c2:u1:student");
	e2e_db_str(db, &s, "SELECT string_agg(class_id, ' ' ORDER BY class_id) FROM mosyle_classes"
			   " WHERE students @> ARRAY['u1']");
	ASSERT_EQ_STR(buf_str(&s), "c1 c2");
	e2e_db_str(db, &s, "SELECT name FROM mosyle_classes WHERE class_id = 'c2'");
	ASSERT_EQ_STR(buf_str(&s), "Art");
	/* group ids repeat across OSes */
	e2e_db_str(db, &s, "SELECT string_agg(os || '/' || group_id || '/' || name || '/'"
			   " || devices_count, ' ' ORDER BY os) FROM mosyle_device_groups");
	ASSERT_EQ_STR(buf_str(&s), "ios/17/Cart 3/30 mac/17/Lab/2");
	e2e_db_str(db, &s, "SELECT string_agg(udid || '=' || attrs::text, ' ' ORDER BY udid)"
			   " FROM mosyle_device_group_members WHERE os = 'ios' AND group_id = '17'");
	ASSERT_EQ_STR(buf_str(&s), "D1=\"D1\" D2=\"D2\" D\\3=\"D\\\\3\"");
	e2e_db_str(db, &s, "SELECT name || '/' || school_code || '/' || (attrs->>'timezone')"
			   " FROM mosyle_accounts");
	ASSERT_EQ_STR(buf_str(&s), "Lincoln/LE/America/Chicago");
	e2e_db_str(db, &s, "SELECT os || '/' || attribute_id || '/' || name || '/' || type"
			   " FROM mosyle_custom_attributes");
	ASSERT_EQ_STR(buf_str(&s), "ios/5/Cart slot/text");
	e2e_db_str(db, &s, "SELECT string_agg(log_id || '@' || extract(epoch FROM logged_at)::bigint, ' '"
			   " ORDER BY logged_at) FROM mosyle_admin_logs");
	ASSERT(strncmp(buf_str(&s), "90001@1710264696 hash:", 22) == 0);
	ASSERT_CONTAINS(buf_str(&s), "@1710264697");
	e2e_db_str(db, &s, "SELECT attrs->>'details' FROM mosyle_admin_logs WHERE log_id = '90001'");
	ASSERT_EQ_STR(buf_str(&s), "x\ny");
	/* where the next run's request starts */
	const char *source = "district";
	PGresult *r = PQexecParams(db, mosyle_admin_logs_endpoint.cursor_sql, 1, NULL, &source,
				   NULL, NULL, 0);
	ASSERT(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1);
	ASSERT_EQ_STR(PQgetvalue(r, 0, 0), "1710264697");
	PQclear(r);
	source = "nobody";
	r = PQexecParams(db, mosyle_admin_logs_endpoint.cursor_sql, 1, NULL, &source, NULL, NULL, 0);
	ASSERT(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQgetisnull(r, 0, 0));
	PQclear(r);
	buf_free(&s);
	buf_free(&rows);
	PQfinish(db);
}
