/* e2e_load_sql.c - the load functions of the schema (sql/) against a real
 * PostgreSQL, driven the way a run drives them: stage_rows() and COPY on
 * one connection, each committed on its own, then one transaction that
 * calls commit_rows() or append_rows() per endpoint. */
#include "e2e.h"
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

__attribute__((format(printf, 2, 3)))
static void exec(PGconn *db, const char *fmt, ...)
{
	struct buf sql = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&sql, fmt, ap);
	va_end(ap);
	PGresult *r = PQexec(db, sql.data);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		test_fail(__FILE__, __LINE__, "%s: %s", sql.data, PQresultErrorMessage(r));
	PQclear(r);
	buf_free(&sql);
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
	exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT commit_rows('mosyle_device_group_members', '%s',"
				     " 'district', '{3}', 'os,group_id, udid')", t1.name),
		      4);
	exec(db, "COMMIT");
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
	exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT commit_rows('mosyle_device_group_members', '%s',"
				     " 'district', '{}', 'os,group_id,udid')", t2.name),
		      4);
	exec(db, "COMMIT");
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
	exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT commit_rows('mosyle_devices', '%s', 'district', '{}',"
				     " 'device_key')", d.name),
		      2);
	exec(db, "COMMIT");
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
	exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT append_rows('mosyle_admin_logs', '%s', 'district',"
				     " '{3}', 'log_id')", t1.name),
		      2);
	exec(db, "COMMIT");
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
	exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT append_rows('mosyle_admin_logs', '%s', 'district',"
				     " '{}', 'log_id')", t2.name),
		      2);
	exec(db, "COMMIT");
	ASSERT_EQ_INT(exists(db, t2.name), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs"), 4);
	e2e_db_str(db, &s, "SELECT string_agg(log_id || ':' || action || ':' || run_id, ' '"
			   " ORDER BY log_id) FROM mosyle_admin_logs");
	ASSERT_EQ_STR(buf_str(&s), "90001:wiped:1 90002:locked:1 90003:new:2 90004:new:2");

	/* nothing new: nothing added */
	struct load_table t3 = load(db, "mosyle_admin_logs", 3, "district", LOG_COLUMNS,
			      "1\t1\t90004\t2024-03-12 17:31:38+00\ta@d\tnew\t{}\n");
	exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT append_rows('mosyle_admin_logs', '%s', 'district',"
				     " '{}', 'log_id')", t3.name),
		      0);
	exec(db, "COMMIT");

	/* another source appends to its own partition */
	struct load_table o = load(db, "mosyle_admin_logs", 4, "other", LOG_COLUMNS,
			     "1\t1\t90001\t2024-03-12 17:31:36+00\tb@d\twiped\t{}\n");
	exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT append_rows('mosyle_admin_logs', '%s', 'other',"
				     " '{}', 'log_id')", o.name),
		      1);
	exec(db, "COMMIT");
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
	exec(db, "BEGIN");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT commit_rows('mosyle_users', '%s', 'district', '{}',"
				     " 'user_id')", partition.name),
		      1);
	exec(db, "COMMIT");

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
	exec(db, "CREATE TABLE not_ours_r2_%s (x int)", buf_str(&s));

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
