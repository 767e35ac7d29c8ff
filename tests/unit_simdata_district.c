/* unit_simdata_district.c - the district around the devices: users match
 * the devices that name them, classes and groups name only served users
 * and devices, admin logs filter by date, and all of it stays cheap at a
 * million users. */
#include "test.h"
#include "simdata.h"

#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

/* A large district: 1,000,000 users, 50,000 classes, 5,000 groups. */
static const struct simdata_options big = {
	.seed = 3,
	.devices = {250000, 120000, 4000, 900},
	.users = 1000000,
	.classes = 50000,
	.groups = 5000,
	.admin_logs = 1000000,
};

/* The simulator's defaults. */
static const struct simdata_options small = {
	.seed = 1,
	.devices = {1000, 1000, 1000, 1000},
	.users = 1000,
	.classes = 100,
	.groups = 20,
	.admin_logs = 1000,
};

static yajl_val parse(const struct buf *b)
{
	char err[256];
	yajl_val v = yajl_tree_parse(buf_str(b), err, sizeof(err));
	if (!v)
		test_fail(__FILE__, __LINE__, "does not parse: %s\n%s", err, buf_str(b));
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

static size_t array_len(yajl_val obj, const char *name)
{
	yajl_val v = key(obj, name);
	if (!YAJL_IS_ARRAY(v))
		test_fail(__FILE__, __LINE__, "no array \"%s\"", name);
	return v->u.array.len;
}

static const char *array_str(yajl_val obj, const char *name, size_t k)
{
	yajl_val v = key(obj, name)->u.array.values[k];
	return YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

TEST(simdata_user_types_repeat_every_35)
{
	static const unsigned per_period[SIMDATA_NUSER_TYPES] = {25, 4, 4, 1, 1};
	unsigned counts[SIMDATA_NUSER_TYPES] = {0};
	struct simdata_options opt = small;

	for (uint64_t u = 0; u < 35; u++)
		counts[simdata_user_type_of(u)]++;
	for (int t = 0; t < SIMDATA_NUSER_TYPES; t++)
		ASSERT_EQ_INT(counts[t], per_period[t]);
	/* the rule devices always had, where devices name users */
	for (uint64_t u = 0; u < 5000; u++) {
		ASSERT_EQ_INT(simdata_user_type_of(u), simdata_user_type_of(u % 35));
		if (u % 5 != 0)
			ASSERT_EQ_INT(simdata_user_type_of(u), u % 7 == 1 ? SIMDATA_TEACHER :
						  u % 7 == 2 ? SIMDATA_STAFF : SIMDATA_STUDENT);
	}
	ASSERT_EQ_STR(simdata_user_type_name(SIMDATA_LOCATION_LEADER), "LOCATION_LEADER");
	ASSERT_EQ_STR(simdata_user_type_name(SIMDATA_STUDENT), "STUDENT");

	/* count and nth against a brute force, for bounds off the period */
	for (uint64_t n = 0; n < 200; n += 7) {
		uint64_t brute[SIMDATA_NUSER_TYPES] = {0};
		opt.users = n;
		for (uint64_t u = 0; u < n; u++)
			brute[simdata_user_type_of(u)]++;
		for (int t = 0; t < SIMDATA_NUSER_TYPES; t++)
			ASSERT_EQ_INT(simdata_user_count(&opt, (enum simdata_user_type)t), brute[t]);
	}
	for (int t = 0; t < SIMDATA_NUSER_TYPES; t++) {
		uint64_t k = 0;
		for (uint64_t u = 0; u < 3000; u++)
			if (simdata_user_type_of(u) == (enum simdata_user_type)t)
				ASSERT_EQ_INT(simdata_user_nth((enum simdata_user_type)t, k++), u);
	}
	/* 1,000,000 users are 28,571 periods and users 0..14, among which
	 * user 0 is an admin and user 5 a location leader */
	uint64_t total = 0;
	for (int t = 0; t < SIMDATA_NUSER_TYPES; t++)
		total += simdata_user_count(&big, (enum simdata_user_type)t);
	ASSERT_EQ_INT(total, 1000000);
	ASSERT_EQ_INT(simdata_user_count(&big, SIMDATA_ADMIN), 28571 + 1);
	ASSERT_EQ_INT(simdata_user_count(&big, SIMDATA_LOCATION_LEADER), 28571 + 1);
}

TEST(simdata_user_ids_round_trip)
{
	char id[SIMDATA_USER_ID_MAX];
	static const uint64_t samples[] = {0, 1, 2, 3, 5, 34, 35, 999999, UINT64_C(1) << 39};

	for (size_t k = 0; k < sizeof(samples) / sizeof(samples[0]); k++) {
		simdata_user_id(samples[k], id);
		ASSERT_EQ_INT(simdata_user_index(id), samples[k]);
	}
	simdata_user_id(0, id);
	ASSERT_EQ_STR(id, "adm-100000");
	simdata_user_id(5, id);
	ASSERT_EQ_STR(id, "ldr-100005");
	simdata_user_id(3, id);
	ASSERT_EQ_STR(id, "stu-100003");
	ASSERT_EQ_INT(simdata_user_index("stu-100001"), -1); /* user 1 is a teacher */
	ASSERT_EQ_INT(simdata_user_index("stu-0100003"), -1);
	ASSERT_EQ_INT(simdata_user_index("stu-99999"), -1);
	ASSERT_EQ_INT(simdata_user_index("stu-1000x3"), -1);
	ASSERT_EQ_INT(simdata_user_index(""), -1);
	ASSERT_EQ_INT(simdata_user_index("c00042"), -1);
}

TEST(simdata_device_udid_is_the_devices)
{
	struct simdata_device d;
	char udid[48];

	for (int os = 0; os < SIMDATA_NOS; os++) {
		for (uint64_t i = 0; i < 2000; i++) {
			simdata_device(&big, (enum simdata_os)os, i, &d);
			simdata_device_udid(&big, (enum simdata_os)os, i, udid);
			ASSERT_EQ_STR(udid, d.udid);
		}
	}
}

/* Every user a device names is served and carries the device's values;
 * the user lists the device among its assigned_devices when it has a UDID. */
TEST(simdata_device_users_are_served_users)
{
	struct simdata_options opt = small;
	struct simdata_device d;
	struct simdata_user u;

	opt.devices[SIMDATA_TVOS] = 300; /* users past 300 have no tvOS device */
	for (int os = 0; os < SIMDATA_NOS; os++) {
		for (uint64_t i = 0; i < opt.devices[os]; i++) {
			simdata_device(&opt, (enum simdata_os)os, i, &d);
			ASSERT_EQ_INT(d.has_user, i % 5 != 0);
			if (!d.has_user)
				continue;
			long long index = simdata_user_index(d.userid);
			ASSERT_EQ_INT(index, i);
			ASSERT((uint64_t)index < opt.users);
			simdata_user(&opt, (uint64_t)index, &u);
			ASSERT_EQ_STR(u.id, d.userid);
			ASSERT_EQ_STR(u.name, d.username);
			ASSERT_EQ_STR(u.email, d.useremail);
			bool listed = false;
			for (unsigned k = 0; k < u.nassigned; k++)
				listed |= strcmp(u.assigned[k], d.udid) == 0;
			ASSERT_EQ_INT(listed, d.has_udid);

			/* the usertype the device's JSON says */
			struct buf b = BUF_INIT;
			simdata_device_json(&opt, (enum simdata_os)os, &d, &b);
			yajl_val v = parse(&b);
			ASSERT_EQ_STR(str_key(v, "usertype"), simdata_user_type_name(u.type));
			yajl_tree_free(v);
			buf_free(&b);
		}
	}
	/* one device of each OS where the OS has it */
	simdata_user(&opt, 1, &u);
	ASSERT_EQ_INT(u.nassigned, 4);
	simdata_user(&opt, 301, &u);
	ASSERT_EQ_INT(u.nassigned, 3);
	simdata_user(&opt, 13, &u); /* 13 % 97 == 13: no UDID served */
	ASSERT_EQ_INT(u.nassigned, 0);
	simdata_user(&opt, 10, &u); /* no device names user 10 */
	ASSERT_EQ_INT(u.nassigned, 0);

	/* Without users, devices name users as they always did. */
	struct simdata_options devices_only = {.seed = 1};
	simdata_device(&devices_only, SIMDATA_IOS, 123456, &d);
	ASSERT(d.has_user);
	ASSERT_EQ_STR(d.userid, "stu-223456");
}

TEST(simdata_users_bound_the_device_users)
{
	struct simdata_options bounded = small, unbounded = {.seed = 1};
	struct simdata_device a, b;

	bounded.users = 400;
	for (uint64_t i = 0; i < 1000; i++) {
		simdata_device(&bounded, SIMDATA_MAC, i, &a);
		simdata_device(&unbounded, SIMDATA_MAC, i, &b);
		if (i < 400) {
			ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
		} else {
			ASSERT(!a.has_user);
			ASSERT_EQ_STR(a.serial_number, b.serial_number);
			ASSERT_EQ_STR(a.udid, b.udid);
		}
	}
}

TEST(simdata_user_json_matches_user)
{
	struct simdata_user u;
	struct buf b = BUF_INIT;
	unsigned no_appleid = 0, utf8 = 0;

	for (uint64_t i = 0; i < 700; i++) {
		for (int strings = 0; strings < 2; strings++) {
			simdata_user(&small, i, &u);
			buf_reset(&b);
			simdata_user_json(&u, strings, &b);
			yajl_val v = parse(&b);
			ASSERT_EQ_STR(str_key(v, "id"), u.id);
			ASSERT_EQ_STR(str_key(v, "name"), u.name);
			ASSERT_EQ_STR(str_key(v, "email"), u.email);
			ASSERT_EQ_STR(str_key(v, "type"), simdata_user_type_name(u.type));
			ASSERT_EQ_STR(str_key(v, "account"), "District");
			ASSERT(YAJL_IS_NULL(key(v, "serial_number")));
			ASSERT_EQ_INT(key(v, "managedappleid") != NULL, i % 11 != 4);
			if (u.has_managedappleid)
				ASSERT_EQ_STR(str_key(v, "managedappleid"), u.managedappleid);
			else
				no_appleid++;
			ASSERT_EQ_INT(array_len(v, "locations"), 1);
			yajl_val loc = key(v, "locations")->u.array.values[0];
			if (strings) {
				ASSERT_EQ_STR(YAJL_GET_STRING(loc), u.location);
			} else {
				ASSERT_EQ_STR(str_key(loc, "name"), u.location);
				ASSERT_EQ_STR(str_key(loc, "grade_level"), u.grade);
			}
			ASSERT_EQ_INT(array_len(v, "grades"), u.grade[0] != '\0');
			bool graded = u.type == SIMDATA_STUDENT || u.type == SIMDATA_TEACHER;
			ASSERT_EQ_INT(u.grade[0] != '\0', graded);
			ASSERT_EQ_INT(array_len(v, "assigned_devices"), u.nassigned);
			for (unsigned k = 0; k < u.nassigned; k++)
				ASSERT_EQ_STR(array_str(v, "assigned_devices", k), u.assigned[k]);
			if (strstr(u.name, "Mu\xc3\xb1oz"))
				utf8++;
			ASSERT_EQ_INT(strstr(u.name, "Mu\xc3\xb1oz") != NULL, i % 65 == 30);
			if (u.type == SIMDATA_ADMIN)
				ASSERT_EQ_STR(u.location, "District Office");
			yajl_tree_free(v);
		}
	}
	ASSERT(no_appleid > 0 && utf8 > 0);
	buf_free(&b);
}

static bool is_served(const struct simdata_options *opt, uint64_t u, enum simdata_user_type t)
{
	return u < opt->users && simdata_user_type_of(u) == t;
}

TEST(simdata_classes_name_served_users)
{
	struct simdata_class c;
	unsigned no_teacher = 0, coordinators[3] = {0};

	test_set_timeout(60);
	for (uint64_t i = 0; i < big.classes; i++) {
		simdata_class(&big, i, &c);
		ASSERT_EQ_INT(c.idclass, i + 1);
		ASSERT_EQ_INT(c.has_teacher, i % 97 != 41);
		if (c.has_teacher)
			ASSERT(is_served(&big, c.teacher, SIMDATA_TEACHER));
		else
			no_teacher++;
		ASSERT(c.ncoordinators <= 2);
		coordinators[c.ncoordinators]++;
		for (unsigned k = 0; k < c.ncoordinators; k++) {
			ASSERT(is_served(&big, c.coordinators[k], SIMDATA_TEACHER));
			ASSERT(!c.has_teacher || c.coordinators[k] != c.teacher);
		}
		if (c.ncoordinators == 2)
			ASSERT(c.coordinators[0] != c.coordinators[1]);
		ASSERT(c.nstudents >= 10 && c.nstudents <= 30);
		for (unsigned k = 0; k < c.nstudents; k++) {
			ASSERT(is_served(&big, c.students[k], SIMDATA_STUDENT));
			for (unsigned j = 0; j < k; j++)
				ASSERT(c.students[j] != c.students[k]);
		}
		ASSERT(c.location != NULL && c.name[0] && c.course_name[0]);
		ASSERT(strncmp(c.name, c.course_name, strlen(c.course_name)) == 0);
	}
	ASSERT(no_teacher > 0 && coordinators[0] && coordinators[1] && coordinators[2]);

	simdata_class(&big, 41, &c);
	ASSERT_EQ_STR(c.id, "c00042");
	simdata_class(&big, 123456, &c);
	ASSERT_EQ_STR(c.id, "c123457");

	/* a district too small for 10 students per class */
	struct simdata_options tiny = small;
	tiny.users = 8; /* students 3, 4, 6 and 7 */
	simdata_class(&tiny, 0, &c);
	ASSERT_EQ_INT(c.nstudents, 4);
	ASSERT_EQ_INT(c.ncoordinators, 0); /* one teacher, and it is the class's */
	tiny.users = 1; /* only the admin */
	simdata_class(&tiny, 0, &c);
	ASSERT(!c.has_teacher);
	ASSERT_EQ_INT(c.nstudents, 0);
}

TEST(simdata_class_json_matches_class)
{
	struct simdata_class c;
	struct buf b = BUF_INIT;
	char id[SIMDATA_USER_ID_MAX];

	for (uint64_t i = 0; i < 300; i++) {
		for (int name_key = 0; name_key < 2; name_key++) {
			simdata_class(&small, i, &c);
			buf_reset(&b);
			simdata_class_json(&c, name_key, &b);
			yajl_val v = parse(&b);
			ASSERT_EQ_STR(str_key(v, "id"), c.id);
			char idclass[24];
			snprintf(idclass, sizeof(idclass), "%llu", (unsigned long long)c.idclass);
			ASSERT_EQ_STR(str_key(v, "idclass"), idclass);
			ASSERT_EQ_STR(str_key(v, name_key ? "name" : "class_name"), c.name);
			ASSERT(key(v, name_key ? "class_name" : "name") == NULL);
			ASSERT_EQ_STR(str_key(v, "course_name"), c.course_name);
			ASSERT_EQ_STR(str_key(v, "location"), c.location);
			if (c.has_teacher) {
				simdata_user_id(c.teacher, id);
				ASSERT_EQ_STR(str_key(v, "teacher"), id);
			} else {
				ASSERT(YAJL_IS_NULL(key(v, "teacher")));
			}
			ASSERT_EQ_INT(array_len(v, "students"), c.nstudents);
			for (unsigned k = 0; k < c.nstudents; k++) {
				simdata_user_id(c.students[k], id);
				ASSERT_EQ_STR(array_str(v, "students", k), id);
			}
			ASSERT_EQ_INT(array_len(v, "coordinators"), c.ncoordinators);
			yajl_tree_free(v);
		}
	}
	buf_free(&b);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

TEST(simdata_groups_hold_served_devices)
{
	struct simdata_group g;
	uint64_t sorted[SIMDATA_GROUP_DEVICES_MAX];
	unsigned smart = 0;

	test_set_timeout(60);
	for (int os = 0; os < SIMDATA_NOS; os++) {
		for (uint64_t i = 0; i < big.groups; i++) {
			simdata_group(&big, (enum simdata_os)os, i, &g);
			ASSERT_EQ_INT(g.id, i + 1);
			ASSERT_EQ_INT(g.os, os);
			if (i % 23 == 7)
				ASSERT_EQ_INT(g.ndevices, 0);
			else
				ASSERT(g.ndevices >= 1);
			ASSERT(g.ndevices <= SIMDATA_GROUP_DEVICES_MAX);
			memcpy(sorted, g.devices, g.ndevices * sizeof(uint64_t));
			qsort(sorted, g.ndevices, sizeof(uint64_t), cmp_u64);
			for (unsigned k = 0; k < g.ndevices; k++) {
				ASSERT(sorted[k] < big.devices[os]);
				ASSERT(sorted[k] % 97 != 13); /* served with a UDID */
				ASSERT(k == 0 || sorted[k - 1] != sorted[k]);
			}
			smart += g.smart;
		}
	}
	ASSERT(smart > 0);

	/* names are unique within an OS */
	struct simdata_group a, b;
	for (uint64_t i = 0; i < 200; i++) {
		simdata_group(&small, SIMDATA_IOS, i, &a);
		for (uint64_t j = 0; j < i; j++) {
			simdata_group(&small, SIMDATA_IOS, j, &b);
			ASSERT(strcmp(a.name, b.name) != 0);
		}
	}

	/* an OS with fewer devices than a group wants */
	struct simdata_options few = small;
	few.devices[SIMDATA_VISIONOS] = 3;
	simdata_group(&few, SIMDATA_VISIONOS, 0, &g);
	ASSERT_EQ_INT(g.ndevices, 3);
	few.devices[SIMDATA_VISIONOS] = 0;
	simdata_group(&few, SIMDATA_VISIONOS, 0, &g);
	ASSERT_EQ_INT(g.ndevices, 0);
}

TEST(simdata_group_json_matches_group)
{
	struct simdata_group g;
	struct simdata_device d;
	struct buf b = BUF_INIT;
	char want[32];

	for (int os = 0; os < SIMDATA_NOS; os++) {
		for (uint64_t i = 0; i < small.groups; i++) {
			simdata_group(&small, (enum simdata_os)os, i, &g);
			buf_reset(&b);
			simdata_group_json(&g, &b);
			yajl_val v = parse(&b);
			snprintf(want, sizeof(want), "%llu", (unsigned long long)g.id);
			ASSERT_EQ_STR(str_key(v, "id"), want);
			ASSERT_EQ_STR(str_key(v, "name"), g.name);
			ASSERT_EQ_STR(str_key(v, "os"), simdata_os_name((enum simdata_os)os));
			snprintf(want, sizeof(want), "%u", g.ndevices);
			ASSERT_EQ_STR(str_key(v, "devices_count"), want);
			ASSERT_EQ_STR(str_key(v, "type"), g.smart ? "smart" : "static");
			yajl_tree_free(v);

			buf_reset(&b);
			simdata_group_devices_json(&small, &g, &b);
			v = parse(&b);
			ASSERT_EQ_STR(str_key(v, "name"), g.name);
			ASSERT_EQ_INT(array_len(v, "deviceudids"), g.ndevices);
			for (unsigned k = 0; k < g.ndevices; k++) {
				simdata_device(&small, (enum simdata_os)os, g.devices[k], &d);
				ASSERT(d.has_udid);
				ASSERT_EQ_STR(array_str(v, "deviceudids", k), d.udid);
			}
			yajl_tree_free(v);
		}
	}
	buf_free(&b);
}

TEST(simdata_accounts_and_custom_attributes)
{
	struct simdata_account acct;
	struct simdata_custom_attribute attrs[SIMDATA_CUSTOM_ATTRIBUTES_MAX];
	static const unsigned per_os[SIMDATA_NOS] = {4, 3, 1, 0};
	struct buf b = BUF_INIT;
	uint64_t seen[16];
	unsigned nseen = 0;

	for (unsigned k = 0; k < SIMDATA_NACCOUNTS; k++) {
		simdata_account(k, &acct);
		ASSERT_EQ_INT(acct.id, k + 1);
		buf_reset(&b);
		simdata_account_json(&acct, &b);
		yajl_val v = parse(&b);
		ASSERT_EQ_STR(str_key(v, "name"), acct.name);
		ASSERT_EQ_STR(str_key(v, "school_code"), acct.school_code);
		ASSERT_EQ_STR(str_key(v, "timezone"), "America/Chicago");
		ASSERT(str_key(v, "address") != NULL);
		yajl_tree_free(v);
	}
	for (int os = 0; os < SIMDATA_NOS; os++) {
		unsigned n = simdata_custom_attributes(&small, (enum simdata_os)os, attrs);
		ASSERT_EQ_INT(n, per_os[os]);
		for (unsigned k = 0; k < n; k++) {
			for (unsigned j = 0; j < nseen; j++)
				ASSERT(seen[j] != attrs[k].id); /* unique across OSes */
			seen[nseen++] = attrs[k].id;
			ASSERT(attrs[k].values_count <= small.devices[os]);
			buf_reset(&b);
			simdata_custom_attribute_json(&attrs[k], &b);
			yajl_val v = parse(&b);
			ASSERT_EQ_STR(str_key(v, "name"), attrs[k].name);
			ASSERT_EQ_STR(str_key(v, "type"), attrs[k].type);
			yajl_tree_free(v);
		}
	}
	buf_free(&b);
}

TEST(simdata_admin_logs_dates_and_filter)
{
	struct simdata_options opt = small;
	struct simdata_admin_log log;
	struct buf b = BUF_INIT;
	unsigned shared_dates = 0;
	char **udids = malloc(sizeof(char *) * 4000);
	size_t nudids = 0;

	ASSERT(udids);
	for (int os = 0; os < SIMDATA_NOS; os++) {
		for (uint64_t i = 0; i < opt.devices[os]; i++) {
			if (i % 97 == 13)
				continue;
			udids[nudids] = malloc(48);
			simdata_device_udid(&opt, (enum simdata_os)os, i, udids[nudids++]);
		}
	}
	qsort(udids, nudids, sizeof(char *), cmp_str);

	for (uint64_t k = 0; k < opt.admin_logs; k++) {
		simdata_admin_log(&opt, k, &log);
		ASSERT_EQ_INT(log.id, SIMDATA_ADMIN_LOG_ID_BASE + k);
		ASSERT_EQ_INT(log.date, simdata_admin_log_date(&opt, k));
		if (k) {
			long long prev = simdata_admin_log_date(&opt, k - 1);
			ASSERT(log.date >= prev);
			shared_dates += log.date == prev;
		}
		/* a served device's UDID or a served user's id */
		long long u = simdata_user_index(log.target);
		const char *target = log.target;
		if (u >= 0)
			ASSERT((uint64_t)u < opt.users);
		else if (!bsearch(&target, udids, nudids, sizeof(char *), cmp_str))
			test_fail(__FILE__, __LINE__, "log %llu targets %s, no served device",
				  (unsigned long long)k, log.target);
		ASSERT_CONTAINS(log.admin, "@district.example");
		buf_reset(&b);
		simdata_admin_log_json(&log, &b);
		yajl_val v = parse(&b);
		ASSERT_EQ_STR(str_key(v, "action"), log.action);
		ASSERT_EQ_STR(str_key(v, "target"), log.target);
		ASSERT_EQ_STR(str_key(v, "details"), log.details);
		yajl_tree_free(v);
	}
	ASSERT_EQ_INT(shared_dates, opt.admin_logs / 2);

	/* first_at against a scan, around every date and between them */
	for (uint64_t k = 0; k < opt.admin_logs; k += 37) {
		long long d = simdata_admin_log_date(&opt, k);
		for (long long t = d - 1; t <= d + 1; t++) {
			uint64_t want = 0;
			while (want < opt.admin_logs && simdata_admin_log_date(&opt, want) < t)
				want++;
			ASSERT_EQ_INT(simdata_admin_log_first_at(&opt, t), want);
		}
	}
	ASSERT_EQ_INT(simdata_admin_log_first_at(&opt, 0), 0);
	ASSERT_EQ_INT(simdata_admin_log_first_at(&opt, 4000000000LL), opt.admin_logs);

	/* more logs only append: the old ones and their dates stay */
	struct simdata_options more = opt;
	struct simdata_admin_log again;
	more.admin_logs = 1500;
	for (uint64_t k = 0; k < opt.admin_logs; k += 13) {
		simdata_admin_log(&opt, k, &log);
		simdata_admin_log(&more, k, &again);
		ASSERT(memcmp(&log, &again, sizeof(log)) == 0);
	}
	long long last = simdata_admin_log_date(&opt, opt.admin_logs - 1);
	ASSERT_EQ_INT(simdata_admin_log_first_at(&more, last), opt.admin_logs - 2);
	for (size_t k = 0; k < nudids; k++)
		free(udids[k]);
	free(udids);
	buf_free(&b);
}

/* Cheap at scale: the last records of a million-user district. */
TEST(simdata_district_at_scale)
{
	struct simdata_user u;
	struct simdata_class c;
	struct simdata_group g;
	struct buf b = BUF_INIT;

	for (uint64_t i = big.users - 2000; i < big.users; i++) {
		simdata_user(&big, i, &u);
		simdata_user_json(&u, false, &b);
	}
	for (uint64_t i = big.classes - 2000; i < big.classes; i++) {
		simdata_class(&big, i, &c);
		simdata_class_json(&c, false, &b);
	}
	simdata_group(&big, SIMDATA_IOS, big.groups - 1, &g);
	simdata_group_devices_json(&big, &g, &b);
	uint64_t from = simdata_admin_log_first_at(&big, simdata_admin_log_date(&big, 999000));
	ASSERT(from <= 999000 && from >= 998999);
	ASSERT(b.len > 1000000);
	buf_free(&b);
}
