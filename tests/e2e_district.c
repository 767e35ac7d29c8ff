/* e2e_district.c - a whole Mosyle district (devices, users, classes,
 * device groups and their members, accounts, custom attributes, admin
 * logs) loaded by invsync sync from the simulator into a real PostgreSQL:
 * exact counts and sampled values against simdata, references between the
 * tables, each endpoint's quirks, session tokens that expire or are
 * renewed mid-run, a failing endpoint that keeps every table of the
 * source, incremental admin logs, a subset of endpoints, and one run of a
 * district beside two Syncro tenants. */
#include "e2e.h"
#include "simdata.h"
#include "test.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED 5
#define SOURCE "district" /* the Mosyle source's name */

/* Fast enough for every endpoint at once; short retries for the faults. */
#define FETCH "concurrency = 16\nwindow = 4\nretries = 2\nretry_delay_ms = 20\ntimeout = 20\n"
/* Few transfers at a time: with the simulator's latency a run lasts long
 * enough for session tokens to age. */
#define SLOW_FETCH "concurrency = 4\nwindow = 4\nretries = 2\nretry_delay_ms = 20\ntimeout = 20\n"

/* A district the simulator serves: the options simdata computes it from,
 * and whether /accounts lists its schools. */
struct district {
	struct simdata_options opt;
	bool district_account;
};

static struct district make_district(uint64_t ios, uint64_t mac, uint64_t tvos, uint64_t visionos,
				     uint64_t users, uint64_t classes, uint64_t groups,
				     uint64_t admin_logs)
{
	struct district d = {
		.opt = {.seed = SEED, .devices = {ios, mac, tvos, visionos}, .users = users,
			.classes = classes, .groups = groups, .admin_logs = admin_logs},
		.district_account = true,
	};
	return d;
}

/* The default district of these tests: a few hundred devices per OS,
 * users over three pages, classes over three, groups over two. */
static struct district small_district(void)
{
	return make_district(300, 200, 50, 20, 1200, 250, 60, 500);
}

/* Start the simulator serving d, with extra arguments. */
static void district_sim_start(struct e2e_sim *sim, const struct district *d, const char *extra)
{
	const struct simdata_options *o = &d->opt;
	struct buf args = BUF_INIT;
	buf_printf(&args, "--seed %llu --ios %llu --mac %llu --tvos %llu --visionos %llu --users %llu"
			  " --classes %llu --groups %llu --adminlogs %llu%s %s",
		   (unsigned long long)o->seed, (unsigned long long)o->devices[SIMDATA_IOS],
		   (unsigned long long)o->devices[SIMDATA_MAC],
		   (unsigned long long)o->devices[SIMDATA_TVOS],
		   (unsigned long long)o->devices[SIMDATA_VISIONOS], (unsigned long long)o->users,
		   (unsigned long long)o->classes, (unsigned long long)o->groups,
		   (unsigned long long)o->admin_logs, d->district_account ? "" : " --not-district",
		   extra ? extra : "");
	e2e_sim_start(sim, args.data);
	buf_free(&args);
}

/* A config with the one source [mosyle district] on base_url, with the
 * simulator's credentials: fetch_lines in [fetch], source_lines after the
 * credentials (NULL: none). It loads every endpoint unless source_lines
 * name some (e2e_mosyle_config's configs load devices only). */
static const char *district_config(const char *schema, const char *base_url,
				   const char *fetch_lines, const char *source_lines)
{
	struct buf body = BUF_INIT;
	buf_printf(&body, "[fetch]\n%s\n[mosyle " SOURCE "]\nbase_url = %s\naccess_token = " E2E_TOKEN
			  "\nemail = " E2E_EMAIL "\npassword = " E2E_PASSWORD "\n%s",
		   fetch_lines, base_url, source_lines ? source_lines : "");
	const char *path = e2e_config(schema, body.data);
	buf_free(&body);
	return path;
}

/* invsync sync with cfg; fail the test unless it exits want_status.
 * Returns the run's id. */
static long long sync_expect(const char *schema, const char *cfg, int want_status)
{
	struct e2e_result res;
	int status = e2e_sync(cfg, &res);
	if (status != want_status)
		test_fail(__FILE__, __LINE__, "invsync exited %d, not %d: %s", status, want_status,
			  buf_str(&res.err));
	e2e_result_free(&res);
	PGconn *db = e2e_db(schema);
	long long run = e2e_db_int(db, "SELECT max(run_id) FROM sync_runs");
	PQfinish(db);
	return run;
}

/* ---- what the district should load ---- */

struct district_counts {
	long long devices[SIMDATA_NOS];
	long long groups[SIMDATA_NOS];
	long long members[SIMDATA_NOS];    /* rows of mosyle_device_group_members */
	long long attributes[SIMDATA_NOS];
	long long users, classes, accounts, admin_logs;
	long long class_members;           /* rows of the mosyle_class_members view */
	long long devices_with_user;
	long long total;                   /* every row of the source */
};

static void count_district(const struct district *d, struct district_counts *c)
{
	const struct simdata_options *opt = &d->opt;
	memset(c, 0, sizeof(*c));
	for (int os = 0; os < SIMDATA_NOS; os++) {
		struct simdata_custom_attribute attrs[SIMDATA_CUSTOM_ATTRIBUTES_MAX];
		c->devices[os] = (long long)opt->devices[os];
		c->groups[os] = (long long)opt->groups;
		for (uint64_t g = 0; g < opt->groups; g++) {
			struct simdata_group grp;
			simdata_group(opt, (enum simdata_os)os, g, &grp);
			c->members[os] += grp.ndevices;
		}
		c->attributes[os] = simdata_custom_attributes(opt, (enum simdata_os)os, attrs);
		for (uint64_t i = 0; i < opt->devices[os]; i++) {
			struct simdata_device dev;
			simdata_device(opt, (enum simdata_os)os, i, &dev);
			c->devices_with_user += dev.has_user;
		}
		c->total += c->devices[os] + c->groups[os] + c->members[os] + c->attributes[os];
	}
	c->users = (long long)opt->users;
	c->classes = (long long)opt->classes;
	c->accounts = d->district_account ? SIMDATA_NACCOUNTS : 0;
	c->admin_logs = (long long)opt->admin_logs;
	for (uint64_t k = 0; k < opt->classes; k++) {
		struct simdata_class cls;
		simdata_class(opt, k, &cls);
		c->class_members += cls.has_teacher + cls.nstudents + cls.ncoordinators;
	}
	c->total += c->users + c->classes + c->accounts + c->admin_logs;
}

/* ---- checks ---- */

/* table holds want rows of the source (of OS os unless NULL), every one
 * of them loaded by run (unless run is 0). */
static void assert_rows(PGconn *db, const char *table, const char *os, long long run,
			long long want)
{
	char os_cond[64] = "";
	if (os)
		snprintf(os_cond, sizeof(os_cond), " AND os = '%s'", os);
	long long n = e2e_db_int(db, "SELECT count(*) FROM %s WHERE source = '" SOURCE "'%s", table,
				 os_cond);
	if (n != want)
		test_fail(__FILE__, __LINE__, "%s%s%s: %lld rows, not %lld", table, os ? " " : "",
			  os ? os : "", n, want);
	if (run == 0)
		return;
	n = e2e_db_int(db, "SELECT count(*) FROM %s WHERE source = '" SOURCE "'%s AND run_id = %lld",
		       table, os_cond, run);
	if (n != want)
		test_fail(__FILE__, __LINE__, "%s%s%s: %lld rows of run %lld, not %lld", table,
			  os ? " " : "", os ? os : "", n, run, want);
}

/* sync_run_endpoints of run says stream (endpoint, or endpoint/os) left
 * want rows current. */
static void assert_stream_loaded(PGconn *db, long long run, const char *endpoint, const char *os,
				 long long want)
{
	char name[64];
	snprintf(name, sizeof(name), "%s%s%s", endpoint, os ? "/" : "", os ? os : "");
	long long n = e2e_db_int(db, "SELECT coalesce((SELECT loaded FROM sync_run_endpoints"
				     " WHERE run_id = %lld AND source = '" SOURCE "'"
				     " AND endpoint = '%s'), -2)",
				 run, name);
	if (n != want)
		test_fail(__FILE__, __LINE__, "sync_run_endpoints %s of run %lld: loaded %lld, not %lld"
			  " (-1: NULL, -2: no row)", name, run, n, want);
}

/* Every table of the source holds exactly the district d, loaded by run
 * (which added every admin log), and the run log says so. */
static void check_district(PGconn *db, const struct district *d, long long run)
{
	struct district_counts c;
	count_district(d, &c);
	for (int os = 0; os < SIMDATA_NOS; os++) {
		const char *o = simdata_os_name((enum simdata_os)os);
		assert_rows(db, "mosyle_devices", o, run, c.devices[os]);
		assert_rows(db, "mosyle_device_groups", o, run, c.groups[os]);
		assert_rows(db, "mosyle_device_group_members", o, run, c.members[os]);
		assert_rows(db, "mosyle_custom_attributes", o, run, c.attributes[os]);
		assert_stream_loaded(db, run, "devices", o, c.devices[os]);
		assert_stream_loaded(db, run, "device_groups", o, c.groups[os]);
		assert_stream_loaded(db, run, "device_group_members", o, c.members[os]);
		assert_stream_loaded(db, run, "custom_attributes", o, c.attributes[os]);
	}
	assert_rows(db, "mosyle_users", NULL, run, c.users);
	assert_rows(db, "mosyle_classes", NULL, run, c.classes);
	assert_rows(db, "mosyle_accounts", NULL, run, c.accounts);
	assert_rows(db, "mosyle_admin_logs", NULL, run, c.admin_logs);
	assert_stream_loaded(db, run, "users", NULL, c.users);
	assert_stream_loaded(db, run, "classes", NULL, c.classes);
	assert_stream_loaded(db, run, "accounts", NULL, c.accounts);
	assert_stream_loaded(db, run, "admin_logs", NULL, c.admin_logs);
	/* one row per stream: 4 per-OS endpoints x 4 OSes, 4 others */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_run_endpoints WHERE run_id = %lld"
				     " AND source = '" SOURCE "'",
				 run),
		      20);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id = %lld"
				     " AND source = '" SOURCE "' AND status = 'succeeded'"
				     " AND error IS NULL AND finished_at IS NOT NULL",
				 run),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT loaded FROM sync_runs WHERE run_id = %lld"
				     " AND source = '" SOURCE "'",
				 run),
		      c.total);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT sum(loaded) FROM sync_run_endpoints WHERE run_id = %lld"
				     " AND source = '" SOURCE "'",
				 run),
		      c.total);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_class_members"
				     " WHERE source = '" SOURCE "'"),
		      c.class_members);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"
				     " WHERE source = '" SOURCE "' AND user_id IS NOT NULL"),
		      c.devices_with_user);
}

/* What one table refers to is loaded in another, in SQL. The simulator
 * documents no exception: group members are served devices with a UDID,
 * class members and device users are served users, admin logs target
 * served devices or users. */
static void check_references(PGconn *db)
{
	/* every group member is a loaded device of the group's OS, in a
	 * loaded group of that OS under that group's name */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_device_group_members m"
				     " WHERE NOT EXISTS (SELECT 1 FROM mosyle_devices d"
				     "  WHERE d.source = m.source AND d.os = m.os AND d.udid = m.udid)"),
		      0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_device_group_members m"
				     " WHERE NOT EXISTS (SELECT 1 FROM mosyle_device_groups g"
				     "  WHERE g.source = m.source AND g.os = m.os"
				     "  AND g.group_id = m.group_id AND g.name = m.group_name)"),
		      0);
	/* devices_count is the number of member rows */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_device_groups g"
				     " WHERE devices_count IS DISTINCT FROM (SELECT count(*)"
				     "  FROM mosyle_device_group_members m WHERE m.source = g.source"
				     "  AND m.os = g.os AND m.group_id = g.group_id)"),
		      0);
	/* every class member is a loaded user of the right type */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_class_members m"
				     " WHERE NOT EXISTS (SELECT 1 FROM mosyle_users u"
				     "  WHERE u.source = m.source AND u.user_id = m.user_id)"),
		      0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_class_members m"
				     " JOIN mosyle_users u USING (source, user_id)"
				     " WHERE u.type <> CASE m.role WHEN 'student' THEN 'STUDENT'"
				     "  ELSE 'TEACHER' END"),
		      0);
	ASSERT(e2e_db_int(db, "SELECT count(DISTINCT role) FROM mosyle_class_members") == 3);
	/* every device's user is a loaded user, named as the user is */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices d WHERE d.user_id IS NOT NULL"
				     " AND NOT EXISTS (SELECT 1 FROM mosyle_users u"
				     "  WHERE u.source = d.source AND u.user_id = d.user_id"
				     "  AND u.name = d.user_name AND u.email = d.user_email"
				     "  AND u.type = d.user_type)"),
		      0);
	/* a user's assigned devices are loaded devices that name that user */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_users u,"
				     " unnest(u.assigned_devices) AS a(udid)"
				     " WHERE NOT EXISTS (SELECT 1 FROM mosyle_devices d"
				     "  WHERE d.source = u.source AND d.udid = a.udid"
				     "  AND d.user_id = u.user_id)"),
		      0);
	ASSERT(e2e_db_int(db, "SELECT count(*) FROM mosyle_users WHERE assigned_devices <> '{}'") > 0);
	/* an admin log targets a loaded device or user */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs l WHERE NOT EXISTS"
				     " (SELECT 1 FROM mosyle_devices d WHERE d.source = l.source"
				     "  AND d.udid = l.target) AND NOT EXISTS (SELECT 1 FROM mosyle_users u"
				     "  WHERE u.source = l.source AND u.user_id = l.target)"),
		      0);
}

/* Sampled users, classes, groups and their members, every account and
 * custom attribute, and sampled admin logs hold simdata's values. */
static void check_values(PGconn *db, const struct district *d)
{
	const struct simdata_options *opt = &d->opt;
	struct buf got = BUF_INIT, want = BUF_INIT;

	/* users: an admin, a teacher, one without managedappleid, a
	 * "Muñoz", one whose devices have no UDID, the last */
	const uint64_t users[] = {0, 1, 4, 30, 13, 97 + 13, 701, opt->users - 1};
	for (size_t k = 0; k < ARRAY_SIZE(users); k++) {
		struct simdata_user u;
		simdata_user(opt, users[k], &u);
		e2e_db_str(db, &got, "SELECT concat_ws('|', name, email, type,"
				     " coalesce(managed_apple_id, '-'), array_to_string(locations, ';'),"
				     " array_to_string(grades, ';'), array_to_string(assigned_devices, ';'),"
				     " attrs->>'id')"
				     " FROM mosyle_users WHERE user_id = '%s'", u.id);
		buf_reset(&want);
		buf_printf(&want, "%s|%s|%s|%s|%s|%s|", u.name, u.email,
			   simdata_user_type_name(u.type), u.has_managedappleid ? u.managedappleid : "-",
			   u.location, u.grade);
		for (unsigned j = 0; j < u.nassigned; j++)
			buf_printf(&want, "%s%s", j ? ";" : "", u.assigned[j]);
		buf_printf(&want, "|%s", u.id);
		ASSERT_EQ_STR(got.data, want.data);
	}
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_users"
				     " WHERE name LIKE '%%Mu\xc3\xb1oz%%'"),
		      (long long)((opt->users + 65 - 31) / 65));
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_users WHERE type = 'TEACHER'"),
		      simdata_user_count(opt, SIMDATA_TEACHER));

	/* classes: one without a teacher (c % 97 == 41) among them */
	const uint64_t classes[] = {0, 1, 41, 99, 100, opt->classes - 1};
	for (size_t k = 0; k < ARRAY_SIZE(classes); k++) {
		struct simdata_class cls;
		char id[SIMDATA_USER_ID_MAX];
		simdata_class(opt, classes[k], &cls);
		e2e_db_str(db, &got, "SELECT concat_ws('|', idclass, name, course_name, location,"
				     " coalesce(teacher, '-'), array_to_string(students, ';'),"
				     " array_to_string(coordinators, ';'))"
				     " FROM mosyle_classes WHERE class_id = '%s'", cls.id);
		buf_reset(&want);
		simdata_user_id(cls.teacher, id);
		buf_printf(&want, "%llu|%s|%s|%s|%s|", (unsigned long long)cls.idclass, cls.name,
			   cls.course_name, cls.location, cls.has_teacher ? id : "-");
		for (unsigned j = 0; j < cls.nstudents; j++) {
			simdata_user_id(cls.students[j], id);
			buf_printf(&want, "%s%s", j ? ";" : "", id);
		}
		buf_putc(&want, '|');
		for (unsigned j = 0; j < cls.ncoordinators; j++) {
			simdata_user_id(cls.coordinators[j], id);
			buf_printf(&want, "%s%s", j ? ";" : "", id);
		}
		ASSERT_EQ_STR(got.data, want.data);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_class_members"
					     " WHERE class_id = '%s'", cls.id),
			      cls.has_teacher + cls.nstudents + cls.ncoordinators);
	}
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_classes WHERE teacher IS NULL"),
		      (long long)((opt->classes + 97 - 42) / 97));

	/* groups of every OS, one without members (g % 23 == 7), and their
	 * members, UDID by UDID */
	const uint64_t groups[] = {0, 7, 23, opt->groups - 1};
	for (int os = 0; os < SIMDATA_NOS; os++) {
		const char *o = simdata_os_name((enum simdata_os)os);
		for (size_t k = 0; k < ARRAY_SIZE(groups); k++) {
			struct simdata_group grp;
			simdata_group(opt, (enum simdata_os)os, groups[k], &grp);
			e2e_db_str(db, &got, "SELECT concat_ws('|', name, type, devices_count)"
					     " FROM mosyle_device_groups WHERE os = '%s'"
					     " AND group_id = '%llu'", o, (unsigned long long)grp.id);
			buf_reset(&want);
			buf_printf(&want, "%s|%s|%u", grp.name, grp.smart ? "smart" : "static",
				   grp.ndevices);
			ASSERT_EQ_STR(got.data, want.data);
			ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_device_group_members"
						     " WHERE os = '%s' AND group_id = '%llu'",
						 o, (unsigned long long)grp.id),
				      grp.ndevices);
			for (unsigned j = 0; j < grp.ndevices; j++) {
				char udid[48];
				simdata_device_udid(opt, (enum simdata_os)os, grp.devices[j], udid);
				ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM"
							     " mosyle_device_group_members WHERE os = '%s'"
							     " AND group_id = '%llu' AND udid = '%s'"
							     " AND attrs = to_jsonb(udid)",
							 o, (unsigned long long)grp.id, udid),
					      1);
			}
		}
	}

	/* every account and custom attribute */
	for (unsigned k = 0; d->district_account && k < SIMDATA_NACCOUNTS; k++) {
		struct simdata_account acct;
		simdata_account(k, &acct);
		e2e_db_str(db, &got, "SELECT concat_ws('|', name, school_code, attrs->>'timezone')"
				     " FROM mosyle_accounts WHERE account_id = '%llu'",
			   (unsigned long long)acct.id);
		buf_reset(&want);
		buf_printf(&want, "%s|%s|%s", acct.name, acct.school_code, acct.timezone);
		ASSERT_EQ_STR(got.data, want.data);
	}
	for (int os = 0; os < SIMDATA_NOS; os++) {
		struct simdata_custom_attribute attrs[SIMDATA_CUSTOM_ATTRIBUTES_MAX];
		unsigned n = simdata_custom_attributes(opt, (enum simdata_os)os, attrs);
		for (unsigned k = 0; k < n; k++) {
			e2e_db_str(db, &got, "SELECT concat_ws('|', name, type, attrs->>'values_count')"
					     " FROM mosyle_custom_attributes WHERE os = '%s'"
					     " AND attribute_id = '%llu'",
				   simdata_os_name((enum simdata_os)os), (unsigned long long)attrs[k].id);
			buf_reset(&want);
			buf_printf(&want, "%s|%s|%llu", attrs[k].name, attrs[k].type,
				   (unsigned long long)attrs[k].values_count);
			ASSERT_EQ_STR(got.data, want.data);
		}
	}

	/* admin logs: the first, a pair sharing a date, the last */
	const uint64_t logs[] = {0, 1, 2, 3, 250, opt->admin_logs - 1};
	for (size_t k = 0; k < ARRAY_SIZE(logs); k++) {
		struct simdata_admin_log log;
		simdata_admin_log(opt, logs[k], &log);
		e2e_db_str(db, &got, "SELECT concat_ws('|', extract(epoch FROM logged_at)::bigint,"
				     " admin, action, target, attrs->>'details')"
				     " FROM mosyle_admin_logs WHERE log_id = '%llu'",
			   (unsigned long long)log.id);
		buf_reset(&want);
		buf_printf(&want, "%lld|%s|%s|%s|%s", log.date, log.admin, log.action, log.target,
			   log.details);
		ASSERT_EQ_STR(got.data, want.data);
	}
	buf_free(&got);
	buf_free(&want);
}

/* No load table is left: tables named like one (<table>_r<run>_<hash>)
 * are all partitions. */
static void assert_no_load_tables(PGconn *db)
{
	struct buf left = BUF_INIT;
	e2e_db_str(db, &left, "SELECT coalesce(string_agg(relname, ', '), '') FROM pg_class"
			      " WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'"
			      " AND NOT relispartition AND relname ~ '^(mosyle|syncro)_.*_r[0-9]+_'");
	ASSERT_EQ_STR(left.data, "");
	buf_free(&left);
}

/* ---- a whole district ---- */

TEST(e2e_district_loads_every_endpoint_with_values_and_references)
{
	struct district d = small_district();
	struct e2e_sim sim;
	const char *schema = e2e_schema("district_all");
	district_sim_start(&sim, &d, NULL);
	const char *cfg = district_config(schema, sim.base_url, FETCH, NULL);
	long long run = sync_expect(schema, cfg, 0);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "unauthorized"), 0);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "logins"), 1);
	e2e_sim_stop_clean(&sim);

	PGconn *db = e2e_db(schema);
	check_district(db, &d, run);
	check_references(db);
	check_values(db, &d);
	/* users: 500 a page and a total, so three pages and the sentinel */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT total_hint FROM sync_run_endpoints WHERE endpoint = 'users'"),
		      1200);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT pages FROM sync_run_endpoints WHERE endpoint = 'users'"), 4);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT pages_wasted FROM sync_run_endpoints"
				     " WHERE endpoint = 'users'"),
		      0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT total_hint FROM sync_run_endpoints"
				     " WHERE endpoint = 'device_groups/mac'"),
		      60);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_run_endpoints WHERE note IS NOT NULL"),
		      0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE warnings IS NULL"
				     " AND token_renewals = 0 AND retries = 0"),
		      1);
	assert_no_load_tables(db);
	PQfinish(db);
}

/* ---- each endpoint's quirks ---- */

/* A fresh schema synced from a simulator serving d with sim_extra: the
 * district loads exactly, references hold. Returns the run's id; the
 * connection into *db. */
static long long load_quirk(const char *name, const struct district *d, const char *sim_extra,
			    PGconn **db)
{
	struct e2e_sim sim;
	const char *schema = e2e_schema(name);
	district_sim_start(&sim, d, sim_extra);
	long long run = sync_expect(schema, district_config(schema, sim.base_url, FETCH, NULL), 0);
	e2e_sim_stop_clean(&sim);
	*db = e2e_db(schema);
	check_district(*db, d, run);
	check_references(*db);
	return run;
}

TEST(e2e_district_users_end_with_users_notfound)
{
	struct district d = small_district();
	PGconn *db;
	load_quirk("district_users_notfound", &d, "--users-end notfound", &db);
	/* the sentinel's USERS_NOTFOUND is the end, as [] is */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT pages FROM sync_run_endpoints WHERE endpoint = 'users'"), 4);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT pages_wasted FROM sync_run_endpoints"
				     " WHERE endpoint = 'users'"),
		      0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE warnings IS NULL"), 1);
	PQfinish(db);
}

/* Without a total, pages go out in a window until the first end-of-list
 * answer, [] or USERS_NOTFOUND. */
TEST(e2e_district_users_without_total)
{
	/* 1500 users: three full pages, then only the end says it is one */
	static const char *const ends[] = {"--users-no-total --users-end empty",
					   "--users-no-total --users-end notfound"};
	struct district d = make_district(300, 200, 50, 20, 1500, 250, 60, 500);
	for (size_t k = 0; k < ARRAY_SIZE(ends); k++) {
		char name[64];
		PGconn *db;
		snprintf(name, sizeof(name), "district_users_no_total_%zu", k);
		load_quirk(name, &d, ends[k], &db);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_run_endpoints"
					     " WHERE endpoint = 'users' AND total_hint IS NULL"
					     " AND records = 1500 AND pages >= 4"),
			      1);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE warnings IS NULL"),
			      1);
		PQfinish(db);
	}
}

TEST(e2e_district_user_locations_as_strings)
{
	struct district d = small_district();
	PGconn *db;
	load_quirk("district_locations", &d, "--user-locations strings", &db);
	struct buf got = BUF_INIT, want = BUF_INIT;
	for (uint64_t u = 0; u < 40; u += 3) {
		struct simdata_user user;
		simdata_user(&d.opt, u, &user);
		e2e_db_str(db, &got, "SELECT array_to_string(locations, ';') || '|'"
				     " || (attrs->'locations'->>0)"
				     " FROM mosyle_users WHERE user_id = '%s'", user.id);
		buf_reset(&want);
		buf_printf(&want, "%s|%s", user.location, user.location);
		ASSERT_EQ_STR(got.data, want.data);
	}
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_users WHERE cardinality(locations) = 1"),
		      1200);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE warnings IS NULL"), 1);
	buf_free(&got);
	buf_free(&want);
	PQfinish(db);
}

TEST(e2e_district_classes_with_name_key)
{
	struct district d = small_district();
	PGconn *db;
	load_quirk("district_class_name", &d, "--classes-name-key name", &db);
	struct buf got = BUF_INIT;
	for (uint64_t c = 0; c < d.opt.classes; c += 37) {
		struct simdata_class cls;
		simdata_class(&d.opt, c, &cls);
		e2e_db_str(db, &got, "SELECT name FROM mosyle_classes WHERE class_id = '%s'"
				     " AND NOT attrs ? 'class_name'", cls.id);
		ASSERT_EQ_STR(got.data, cls.name);
	}
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_classes WHERE name IS NULL"), 0);
	buf_free(&got);
	PQfinish(db);
}

TEST(e2e_district_groups_response_as_array)
{
	struct district d = small_district();
	PGconn *db;
	load_quirk("district_groups_array", &d, "--groups-response array", &db);
	/* the total ("rows") is read inside the one-element array too */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_run_endpoints"
				     " WHERE endpoint LIKE 'device_groups/%%' AND total_hint = 60"),
		      4);
	PQfinish(db);
}

/* /listdevicegroups is asked from page 0; a server counting from 1
 * answers page 0 and page 1 alike: the repeat is dropped, nothing is
 * lost, whether the groups fill one page or several. */
TEST(e2e_district_groups_first_page_one_or_zero)
{
	static const uint64_t ngroups[] = {20, 60, 120};
	static const char *const first[] = {"--groups-first-page 0", "--groups-first-page 1"};
	test_set_timeout(30); /* a stream that never ends hangs the run */
	for (size_t g = 0; g < ARRAY_SIZE(ngroups); g++) {
		for (size_t f = 0; f < ARRAY_SIZE(first); f++) {
			struct district d = make_district(60, 50, 40, 30, 100, 20, ngroups[g], 50);
			char name[64];
			PGconn *db;
			snprintf(name, sizeof(name), "district_groups_%zu_%zu", g, f);
			load_quirk(name, &d, first[f], &db);
			/* no page wasted from a 0-based server; from a 1-based
			 * one, the repeat of each OS (and a speculative page
			 * or two when the last page comes back before it) */
			long long wasted = e2e_db_int(db, "SELECT sum(pages_wasted)"
							  " FROM sync_run_endpoints"
							  " WHERE endpoint LIKE 'device_groups/%%'");
			if (f == 0)
				ASSERT_EQ_INT(wasted, 0);
			else
				ASSERT(wasted >= 4);
			ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs"
						     " WHERE warnings IS NULL"),
				      1);
			PQfinish(db);
		}
	}
}

/* A school account may not list accounts: the endpoint loads nothing and
 * says why, the run succeeds. */
TEST(e2e_district_not_a_district_account)
{
	struct district d = small_district();
	d.district_account = false;
	PGconn *db;
	long long run = load_quirk("district_school", &d, NULL, &db);
	struct buf note = BUF_INIT;
	e2e_db_str(db, &note, "SELECT note FROM sync_run_endpoints WHERE run_id = %lld"
			      " AND endpoint = 'accounts'", run);
	ASSERT_EQ_STR(note.data, "not available to this account (NOT_ALLOWED: Only district"
				 " accounts may list accounts)");
	e2e_db_str(db, &note, "SELECT warnings FROM sync_runs WHERE run_id = %lld", run);
	ASSERT_EQ_STR(note.data, "accounts: not available to this account (NOT_ALLOWED: Only"
				 " district accounts may list accounts)");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_run_endpoints WHERE note IS NOT NULL"),
		      1);
	buf_free(&note);
	PQfinish(db);
}

/* ---- session tokens ---- */

/* Sync d from a simulator with sim_extra through few connections, with
 * source_lines: the district loads exactly. The simulator's logins,
 * refusals of an expired token and 401s, and the run's token renewals
 * and retries, come back; the run's length in *ms. */
struct token_figures {
	long long logins, expired, unauthorized, renewals, retries;
	unsigned long long ms;
};

static void load_with_tokens(const char *name, const struct district *d, const char *sim_extra,
			     const char *source_lines, struct token_figures *f)
{
	struct e2e_sim sim;
	const char *schema = e2e_schema(name);
	district_sim_start(&sim, d, sim_extra);
	const char *cfg = district_config(schema, sim.base_url, SLOW_FETCH, source_lines);
	unsigned long long t0 = util_now_ms();
	long long run = sync_expect(schema, cfg, 0);
	f->ms = util_now_ms() - t0;
	f->logins = e2e_sim_stat(&sim, "logins");
	f->expired = e2e_sim_stat(&sim, "expired_tokens");
	f->unauthorized = e2e_sim_stat(&sim, "unauthorized");
	e2e_sim_stop_clean(&sim);
	PGconn *db = e2e_db(schema);
	check_district(db, d, run);
	f->renewals = e2e_db_int(db, "SELECT token_renewals FROM sync_runs WHERE run_id = %lld", run);
	f->retries = e2e_db_int(db, "SELECT retries FROM sync_runs WHERE run_id = %lld", run);
	if (f->renewals > 0)
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id = %lld"
					     " AND warnings LIKE '%%the session token was renewed %lld"
					     " time%%'",
					 run, f->renewals),
			      1);
	PQfinish(db);
}

/* The session token expires after 600 ms; the simulator's latency makes
 * the run last several times that. */
TEST(e2e_district_token_expires_by_time_mid_run)
{
	struct district d = small_district();
	struct token_figures f;
	load_with_tokens("district_token_ttl", &d, "--token-ttl-ms 600 --latency-ms 60", NULL, &f);
	ASSERT(f.ms > 600);
	ASSERT(f.renewals >= 1);
	ASSERT(f.expired >= 1);
	/* every 401 was an expired token; each one invsync read cost its page
	 * a retry (the simulator also refuses speculative pages that invsync
	 * cancelled past the end, unread), and each renewal one login */
	ASSERT_EQ_INT(f.unauthorized, f.expired);
	ASSERT(f.retries >= f.renewals && f.retries <= f.expired);
	ASSERT_EQ_INT(f.logins, 1 + f.renewals);
}

/* The session token expires after 20 requests (five times the
 * concurrency, so a fresh token is never refused to the pages already
 * in flight). */
TEST(e2e_district_token_expires_by_request_count_mid_run)
{
	struct district d = small_district();
	struct token_figures f;
	load_with_tokens("district_token_count", &d, "--token-max-requests 20", NULL, &f);
	/* about 60 requests: a token serves 20, then is refused */
	ASSERT(f.renewals >= 1);
	ASSERT(f.expired >= f.renewals);
	ASSERT_EQ_INT(f.unauthorized, f.expired);
	ASSERT(f.retries >= f.renewals && f.retries <= f.expired);
	ASSERT_EQ_INT(f.logins, 1 + f.renewals);
}

/* token_renew_after = 1: the token is renewed before it is a second old,
 * so one that would expire after 1.5 s is never refused, in a run that
 * lasts longer than that. */
TEST(e2e_district_token_renewed_before_it_expires)
{
	struct district d = small_district();
	struct token_figures f;
	load_with_tokens("district_token_renew", &d, "--token-ttl-ms 1500 --latency-ms 120",
			 "token_renew_after = 1\n", &f);
	ASSERT(f.ms > 1500);
	ASSERT(f.renewals >= 1);
	ASSERT_EQ_INT(f.expired, 0);
	ASSERT_EQ_INT(f.unauthorized, 0);
	ASSERT_EQ_INT(f.retries, 0);
	ASSERT_EQ_INT(f.logins, 1 + f.renewals);
}

/* A page refused with an expired token is retried with the renewed one,
 * answered 500, and retried again later: by then the renewed token has
 * expired too, after Mosyle accepted it for other pages. That token is
 * renewed in turn and the run succeeds: it is not a fresh token refused. */
TEST(e2e_district_token_expired_again_during_a_retry_is_renewed_again)
{
	struct e2e_sim sim;
	const char *schema = e2e_schema("district_token_retry");
	/* Users only, every answer 200 ms late, a token good for 350 ms:
	 * page 1 comes back, then pages 2 to 4 (the total's three pages and
	 * the sentinel) are refused the first token; with the second, 3 and
	 * 4 load and 2 gets a 500; its retry, 200 ms or more later, carries
	 * a token at least 600 ms old. */
	e2e_sim_start(&sim, "--seed 5 --devices 100 --users 1500 --token-ttl-ms 350"
			    " --latency-ms 200 --fault users:2:500:1");
	const char *cfg = district_config(schema, sim.base_url,
					  "concurrency = 16\nretries = 2\nretry_delay_ms = 400\n"
					  "timeout = 20\n",
					  "endpoints = users\n");
	long long run = sync_expect(schema, cfg, 0);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "faults"), 1);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "expired_tokens"), 4);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "logins"), 3);
	e2e_sim_stop_clean(&sim);
	PGconn *db = e2e_db(schema);
	assert_rows(db, "mosyle_users", NULL, run, 1500);
	assert_stream_loaded(db, run, "users", NULL, 1500);
	/* three pages refused the first token, page 2 its 500 and the second */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id = %lld"
				     " AND status = 'succeeded' AND token_renewals = 2 AND retries = 5",
				 run),
		      1);
	PQfinish(db);
}

/* ---- an endpoint failing ---- */

/* A good run of a district, then one of a bigger district from a
 * simulator with sim_extra (which the simulator's counter stat shows it
 * used): the run fails with an error holding each of want (NULL
 * terminated), and every table of the source keeps the good run's rows.
 * Returns the logins of the failed run. */
static long long check_failure(const char *name, const char *sim_extra, const char *stat,
			       const char *const *want)
{
	struct district d = small_district();
	struct district bigger = make_district(310, 210, 60, 30, 1250, 260, 65, 700);
	struct e2e_sim sim;
	const char *schema = e2e_schema(name);

	district_sim_start(&sim, &d, NULL);
	long long good = sync_expect(schema, district_config(schema, sim.base_url, FETCH, NULL), 0);
	e2e_sim_stop_clean(&sim);

	district_sim_start(&sim, &bigger, sim_extra);
	long long bad = sync_expect(schema, district_config(schema, sim.base_url, FETCH, NULL), 1);
	ASSERT(e2e_sim_stat(&sim, stat) >= 1);
	long long logins = e2e_sim_stat(&sim, "logins");
	e2e_sim_stop_clean(&sim);
	ASSERT(bad > good);

	PGconn *db = e2e_db(schema);
	struct buf error = BUF_INIT;
	e2e_db_str(db, &error, "SELECT error FROM sync_runs WHERE run_id = %lld AND status = 'failed'",
		   bad);
	for (; *want; want++)
		ASSERT_CONTAINS(error.data, *want);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id = %lld"
				     " AND loaded IS NULL AND finished_at IS NOT NULL",
				 bad),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'running'"), 0);
	/* the endpoints' figures are recorded, none of them current */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_run_endpoints WHERE run_id = %lld",
				 bad),
		      20);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_run_endpoints WHERE run_id = %lld"
				     " AND loaded IS NOT NULL",
				 bad),
		      0);
	/* every table, devices to admin logs, is the good run's, and its run
	 * log still reads so */
	check_district(db, &d, good);
	check_references(db);
	assert_no_load_tables(db);
	buf_free(&error);
	PQfinish(db);
	return logins;
}

TEST(e2e_district_users_page_failing_keeps_every_table)
{
	/* the endpoint, the page, and Mosyle's status and info */
	static const char *const want[] = {"Mosyle answered INVALID_DATA on users page 2:"
					   " invsync-sim fault: injected inner error", NULL};
	ASSERT_EQ_INT(check_failure("district_fail_users", "--fault users:2:inner", "faults", want),
		      1);
}

TEST(e2e_district_classes_always_500_keeps_every_table)
{
	static const char *const want[] = {"classes: page 1 failed after 3 attempts: HTTP 500",
					   NULL};
	ASSERT_EQ_INT(check_failure("district_fail_classes", "--fault classes:1:500:0", "faults",
				    want),
		      1);
}

TEST(e2e_district_mac_groups_failing_keeps_every_table)
{
	static const char *const want[] = {"Mosyle answered INVALID_DATA on device_groups/mac page 0:"
					   " invsync-sim fault: injected inner error", NULL};
	ASSERT_EQ_INT(check_failure("district_fail_groups", "--fault groups.mac:0:inner:0",
				    "faults", want),
		      1);
}

TEST(e2e_district_admin_logs_malformed_keeps_every_table)
{
	static const char *const want[] = {"admin_logs: page 2 failed after 3 attempts", NULL};
	ASSERT_EQ_INT(check_failure("district_fail_adminlogs", "--fault adminlogs:2:malformed:0",
				    "faults", want),
		      1);
}

/* A token refused as soon as it is issued (it expires before any answer
 * comes) is renewed once; the renewed one refused too fails the source,
 * rather than renewing forever. */
TEST(e2e_district_fresh_token_refused_fails_keeps_every_table)
{
	static const char *const want[] = {"Mosyle refused a freshly renewed session token on",
					   "check the account's API access", NULL};
	ASSERT_EQ_INT(check_failure("district_fail_token", "--token-ttl-ms 10 --latency-ms 30",
				    "expired_tokens", want),
		      2);
}

/* ---- incremental admin logs ---- */

TEST(e2e_district_admin_logs_are_incremental)
{
	struct simdata_options opt = {.seed = SEED, .admin_logs = 500};
	struct e2e_sim sim;
	const char *schema = e2e_schema("district_adminlogs");
	const char *const sim_500 = "--seed 5 --devices 10 --adminlogs 500";
	long long newest = simdata_admin_log_date(&opt, 499);

	/* run 1: everything, from no date on */
	e2e_sim_start(&sim, sim_500);
	long long run1 = sync_expect(schema, district_config(schema, sim.base_url, FETCH,
							       "endpoints = admin_logs\n"), 0);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "adminlogs_last_start_date"), 0);
	e2e_sim_stop_clean(&sim);
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs WHERE run_id = %lld", run1),
		      500);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT loaded FROM sync_run_endpoints WHERE run_id = %lld", run1),
		      500);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT extract(epoch FROM max(logged_at))::bigint"
				     " FROM mosyle_admin_logs"),
		      newest);

	/* run 2, nothing new: asked from the newest entry's date, it gets the
	 * two entries of that date again and adds neither */
	e2e_sim_start(&sim, sim_500);
	long long run2 = sync_expect(schema, district_config(schema, sim.base_url, FETCH,
							       "endpoints = admin_logs\n"), 0);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "adminlogs_last_start_date"), newest);
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(simdata_admin_log_date(&opt, 498), newest);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_run_endpoints WHERE run_id = %lld"
				     " AND endpoint = 'admin_logs' AND loaded = 0 AND records = 2",
				 run2),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id = %lld"
				     " AND status = 'succeeded' AND loaded = 0",
				 run2),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs"), 500);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs WHERE run_id = %lld", run1),
		      500);

	/* run 3, 200 more: exactly those are added */
	opt.admin_logs = 700;
	e2e_sim_start(&sim, "--seed 5 --devices 10 --adminlogs 700");
	long long run3 = sync_expect(schema, district_config(schema, sim.base_url, FETCH,
							       "endpoints = admin_logs\n"), 0);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "adminlogs_last_start_date"), newest);
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_run_endpoints WHERE run_id = %lld"
				     " AND endpoint = 'admin_logs' AND loaded = 200 AND records = 202",
				 run3),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs"), 700);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT log_id) FROM mosyle_admin_logs"), 700);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs WHERE run_id = %lld", run1),
		      500);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_admin_logs WHERE run_id = %lld"
				     " AND log_id::bigint >= %d",
				 run3, SIMDATA_ADMIN_LOG_ID_BASE + 500),
		      200);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT extract(epoch FROM max(logged_at))::bigint"
				     " FROM mosyle_admin_logs"),
		      simdata_admin_log_date(&opt, 699));
	assert_no_load_tables(db);
	PQfinish(db);
}

/* ---- a subset of endpoints ---- */

/* endpoints = users, classes loads those two tables only. A source that
 * stops loading an endpoint keeps that endpoint's rows from the run that
 * last loaded it (run_id and last_seen tell how old they are): leaving an
 * endpoint out of a run is not a statement that its list is now empty. */
TEST(e2e_district_endpoint_subset_leaves_other_tables_alone)
{
	struct district d = small_district();
	struct district later = make_district(280, 190, 40, 10, 1300, 270, 55, 600);
	struct district_counts c;
	struct e2e_sim sim;
	const char *schema = e2e_schema("district_subset");
	const char *subset = "endpoints = users, classes\n";

	/* a fresh schema: only users and classes are loaded, and asked for */
	district_sim_start(&sim, &d, NULL);
	long long run1 = sync_expect(schema, district_config(schema, sim.base_url, FETCH, subset), 0);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "listdevices"), 0);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "listdevicegroups"), 0);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "accounts"), 0);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "adminlogs"), 0);
	e2e_sim_stop_clean(&sim);
	PGconn *db = e2e_db(schema);
	assert_rows(db, "mosyle_users", NULL, run1, 1200);
	assert_rows(db, "mosyle_classes", NULL, run1, 250);
	static const char *const others[] = {"mosyle_devices", "mosyle_device_groups",
					     "mosyle_device_group_members", "mosyle_accounts",
					     "mosyle_custom_attributes", "mosyle_admin_logs"};
	for (size_t k = 0; k < ARRAY_SIZE(others); k++)
		assert_rows(db, others[k], NULL, 0, 0);
	struct buf endpoints = BUF_INIT;
	e2e_db_str(db, &endpoints, "SELECT string_agg(endpoint || ' ' || loaded, ',' ORDER BY endpoint)"
				   " FROM sync_run_endpoints WHERE run_id = %lld", run1);
	ASSERT_EQ_STR(endpoints.data, "classes 250,users 1200");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT loaded FROM sync_runs WHERE run_id = %lld", run1), 1450);

	/* every endpoint */
	district_sim_start(&sim, &d, NULL);
	long long run2 = sync_expect(schema, district_config(schema, sim.base_url, FETCH, NULL), 0);
	e2e_sim_stop_clean(&sim);
	check_district(db, &d, run2);

	/* users and classes again, from a district that changed: the other
	 * tables keep run 2's rows, untouched */
	district_sim_start(&sim, &later, NULL);
	long long run3 = sync_expect(schema, district_config(schema, sim.base_url, FETCH, subset), 0);
	e2e_sim_stop_clean(&sim);
	assert_rows(db, "mosyle_users", NULL, run3, 1300);
	assert_rows(db, "mosyle_classes", NULL, run3, 270);
	e2e_db_str(db, &endpoints, "SELECT string_agg(endpoint || ' ' || loaded, ',' ORDER BY endpoint)"
				   " FROM sync_run_endpoints WHERE run_id = %lld", run3);
	ASSERT_EQ_STR(endpoints.data, "classes 270,users 1300");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT loaded FROM sync_runs WHERE run_id = %lld", run3), 1570);
	count_district(&d, &c);
	for (int os = 0; os < SIMDATA_NOS; os++) {
		const char *o = simdata_os_name((enum simdata_os)os);
		assert_rows(db, "mosyle_devices", o, run2, c.devices[os]);
		assert_rows(db, "mosyle_device_groups", o, run2, c.groups[os]);
		assert_rows(db, "mosyle_device_group_members", o, run2, c.members[os]);
		assert_rows(db, "mosyle_custom_attributes", o, run2, c.attributes[os]);
	}
	assert_rows(db, "mosyle_accounts", NULL, run2, SIMDATA_NACCOUNTS);
	assert_rows(db, "mosyle_admin_logs", NULL, run2, 500);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE last_seen >="
				     " (SELECT started_at FROM sync_runs WHERE run_id = %lld)",
				 run3),
		      0);
	assert_no_load_tables(db);
	buf_free(&endpoints);
	PQfinish(db);
}

/* ---- Mosyle and Syncro in one run ---- */

#define SYNCRO_KEY_A "tenant-a-key"
#define SYNCRO_KEY_B "tenant-b-key"

TEST(e2e_district_beside_two_syncro_tenants)
{
	struct district d = small_district();
	struct e2e_sim sim;
	const char *schema = e2e_schema("district_mixed");
	struct buf body = BUF_INIT;

	district_sim_start(&sim, &d, "--syncro-assets 300 --syncro-customers 20 --syncro-contacts 2"
			    " --syncro-api-key " SYNCRO_KEY_A " --syncro-api-key " SYNCRO_KEY_B);
	buf_printf(&body, "[fetch]\n" FETCH "syncro_requests_per_minute = 60000\n\n"
			  "[mosyle " SOURCE "]\nbase_url = %s\naccess_token = " E2E_TOKEN
			  "\nemail = " E2E_EMAIL "\npassword = " E2E_PASSWORD "\n\n",
		   sim.base_url);
	static const char *const tenants[][2] = {{"tenant-a", SYNCRO_KEY_A},
						 {"tenant-b", SYNCRO_KEY_B}};
	for (size_t t = 0; t < ARRAY_SIZE(tenants); t++)
		buf_printf(&body, "[syncro %s]\nbase_url = http://127.0.0.1:%d/api/v1\napi_key = %s\n\n",
			   tenants[t][0], sim.port, tenants[t][1]);
	long long run = sync_expect(schema, e2e_config(schema, body.data), 0);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_unauthorized"), 0);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "unauthorized"), 0);
	e2e_sim_stop_clean(&sim);

	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id = %lld"
				     " AND status = 'succeeded' AND error IS NULL",
				 run),
		      3);
	check_district(db, &d, run);
	check_references(db);
	for (size_t t = 0; t < ARRAY_SIZE(tenants); t++) {
		const char *s = tenants[t][0];
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE source = '%s'"
					     " AND run_id = %lld", s, run),
			      300);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_customers"
					     " WHERE source = '%s'", s),
			      20);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_contacts"
					     " WHERE source = '%s'", s),
			      40);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_asset_types"
					     " WHERE source = '%s'", s),
			      SIMDATA_SYNCRO_NASSET_TYPES);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT loaded FROM sync_runs WHERE run_id = %lld"
					     " AND source = '%s' AND kind = 'syncro'", run, s),
			      300 + 20 + 40 + SIMDATA_SYNCRO_NASSET_TYPES);
	}
	/* the sources' rows stay apart */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT source) FROM syncro_assets"), 2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT source) FROM mosyle_devices"), 1);
	/* the columns computed while encoding rows say what the SQL
	 * functions say of the same records */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"
				     " WHERE serial_key IS DISTINCT FROM serial_key(serial_number)"
				     " OR os_update_pending <> mosyle_needs_os_update(attrs)"
				     " OR shared_cart IS DISTINCT FROM device_cart(attrs, tags)"),
		      0);
	ASSERT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os_update_pending") > 0);
	ASSERT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE NOT os_update_pending") > 0);
	ASSERT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE shared_cart IS NOT NULL") > 0);
	ASSERT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE serial_key IS NOT NULL") > 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets"
				     " WHERE serial_key IS DISTINCT FROM serial_key(asset_serial)"),
		      0);
	ASSERT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE serial_key IS NOT NULL") > 0);
	assert_no_load_tables(db);
	buf_free(&body);
	PQfinish(db);
}

/* ---- the swap's statements ---- */

/* The commit swaps each table in with a statement of its own and only
 * then writes the count to sync_run_endpoints: no UPDATE of that table
 * runs the swap inside it (Citus refuses functions that change data in
 * an UPDATE of a distributed table). Statement triggers note the
 * partitions of every data table before and after each such UPDATE. */
TEST(e2e_district_swap_runs_outside_the_endpoint_updates)
{
	struct district d = make_district(40, 30, 10, 5, 120, 30, 6, 50);
	struct e2e_sim sim;
	const char *schema = e2e_schema("district_swap_updates");
	district_sim_start(&sim, &d, NULL);
	const char *cfg = district_config(schema, sim.base_url, FETCH, NULL);
	sync_expect(schema, cfg, 0);
	PGconn *db = e2e_db(schema);
	e2e_db_exec(db, "CREATE TABLE swap_check (id bigserial, phase text, parts text)");
	e2e_db_exec(db, "CREATE FUNCTION swap_check_note() RETURNS trigger LANGUAGE plpgsql AS $$"
			" BEGIN INSERT INTO swap_check (phase, parts)"
			" SELECT TG_WHEN, string_agg(i.inhrelid::regclass::text, ',' ORDER BY i.inhrelid)"
			" FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent"
			" WHERE p.relnamespace = current_schema()::regnamespace;"
			" RETURN NULL; END $$");
	e2e_db_exec(db, "CREATE TRIGGER swap_check_before BEFORE UPDATE ON sync_run_endpoints"
			" FOR EACH STATEMENT EXECUTE FUNCTION swap_check_note()");
	e2e_db_exec(db, "CREATE TRIGGER swap_check_after AFTER UPDATE ON sync_run_endpoints"
			" FOR EACH STATEMENT EXECUTE FUNCTION swap_check_note()");

	/* the second run replaces every partition (and adds admin logs) */
	long long run = sync_expect(schema, cfg, 0);
	e2e_sim_stop_clean(&sim);
	/* every table swapped, the admin logs had nothing new */
	struct district_counts c;
	count_district(&d, &c);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT loaded FROM sync_runs WHERE run_id = %lld"
				     " AND status = 'succeeded'", run),
		      c.total - c.admin_logs);
	assert_rows(db, "mosyle_devices", "ios", run, c.devices[SIMDATA_IOS]);
	assert_stream_loaded(db, run, "devices", "mac", c.devices[SIMDATA_MAC]);
	assert_stream_loaded(db, run, "users", NULL, c.users);
	assert_stream_loaded(db, run, "admin_logs", NULL, 0);
	/* one update per table swapped and one per table loaded per OS, each
	 * seeing the partitions it started with when it ends */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM swap_check b JOIN swap_check a"
				     " ON a.id = b.id + 1 AND a.phase = 'AFTER'"
				     " WHERE b.phase = 'BEFORE' AND a.parts = b.parts"),
		      8 + 4);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM swap_check"), 2 * (8 + 4));
	/* while the partitions changed between them: each update after a
	 * replaced table's swap (seven of them) sees a new set, the one after
	 * the admin logs' append (nothing to attach) the same */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT parts) FROM swap_check"), 7);
	assert_no_load_tables(db);
	PQfinish(db);
}
