/* simdata.h - the simulator's deterministic synthetic inventory.
 *
 * Device i of an OS is a pure function of (seed, os, i): the simulator
 * serves it and the tests compute the same values to check what was loaded.
 * Deliberate quirks, by index (see simdata.c for the exact rules):
 *   - some devices have no "deviceudid" key (keyed on serial_number instead);
 *   - some have no user keys at all (absent, not null);
 *   - some names hold tabs, newlines, quotes, backslashes and non-ASCII
 *     characters (2-, 3- and 4-byte UTF-8);
 *   - with opt->nul_in_names, some names hold a "\u0000";
 *   - asset tags sometimes contain commas; tags is a comma-separated string;
 *   - date_last_beat is Unix seconds as a string, sometimes null.
 * Around the devices, simdata.c also makes the rest of a district: users,
 * classes, device groups, accounts, custom attributes and admin logs, each
 * a pure function of the options and an index (see "The district" below).
 */
#ifndef INVSYNC_SIMDATA_H
#define INVSYNC_SIMDATA_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

enum simdata_os {
	SIMDATA_IOS = 0,
	SIMDATA_MAC,
	SIMDATA_TVOS,
	SIMDATA_VISIONOS,
	SIMDATA_NOS,
};

struct simdata_options {
	uint64_t seed;
	bool nul_in_names; /* put "\u0000" in some device names */
	/* Every device whose index within its OS is a multiple of this (0:
	 * none) is "changed": " (renamed)" ends its device_name and ".1" its
	 * osversion. Serving the same inventory with and without it changes
	 * exactly those devices, and those two fields, between two runs. */
	uint64_t rename_every;
	/* The district around the devices (users, classes, device groups,
	 * admin logs; see below). Callers that only want devices leave these
	 * zero: then every device's user exists, as it always did. */
	uint64_t devices[SIMDATA_NOS]; /* devices per OS */
	uint64_t users;      /* users 0..users-1; devices at index >= users have
			      * no user (0: no such bound) */
	uint64_t classes;
	uint64_t groups;     /* device groups per OS */
	uint64_t admin_logs;
};

/* The values of one device that tests check. Strings are NUL-terminated
 * and hold the decoded text (a "\u0000" in the JSON is a 0 byte here only
 * when nul_in_names is set: use name_len). */
struct simdata_device {
	bool has_udid;
	char udid[48];
	char serial_number[24];
	char name[160];
	size_t name_len;
	char device_model[32];      /* "iPad7,11" */
	char device_model_name[64]; /* "iPad (7th generation)" */
	char osversion[16];
	char asset_tag[48];
	char tags[96];              /* comma-separated, as served */
	bool has_user;
	char userid[32];
	char username[64];
	char useremail[96];
	long long date_last_beat;   /* Unix seconds; 0 means served as null */
	bool is_supervised;
	char total_disk[24];        /* "256.0000000000" */
};

/* The device's UDID (what simdata_device puts in out->udid), computed
 * without the rest of the device: cheap enough to list thousands. Served
 * only when index % 97 != 13 (see has_udid). */
void simdata_device_udid(const struct simdata_options *opt, enum simdata_os os,
			 uint64_t index, char out[48]);

/* A 64-bit mixing function (splitmix64's finaliser): every derived value
 * of the simulator comes from it. */
uint64_t simdata_mix64(uint64_t x);

const char *simdata_os_name(enum simdata_os os);
/* -1 if name is not one of ios, mac, tvos, visionos. */
int simdata_os_from_name(const char *name);

void simdata_device(const struct simdata_options *opt, enum simdata_os os,
		    uint64_t index, struct simdata_device *out);

/* Append the device as a JSON object with every documented column
 * (2-3 KB). Fast: the simulator calls this for every device it serves. */
void simdata_device_json(const struct simdata_options *opt, enum simdata_os os,
			 const struct simdata_device *dev, struct buf *out);

/* The oversized device name the simulator's "huge" fault serves: exactly
 * bytes bytes of valid UTF-8 (appended to out), numbered every few dozen
 * bytes so a mismatch is easy to place, with quotes, a backslash, a tab and
 * 2-, 3- and 4-byte characters in every repeat. */
void simdata_huge_name(size_t bytes, struct buf *out);

/* Every column simdata_device_json can emit, in the order it emits them
 * (a device omits deviceudid and the user keys by the quirk rules). */
#define SIMDATA_MAX_COLUMNS 128
extern const char *const simdata_column_names[];
extern const size_t simdata_ncolumns;

/* Index of a column name in simdata_column_names, or -1 if unknown. */
int simdata_column_index(const char *name, size_t len);

/* A set of columns, by index in simdata_column_names: zero it, then add
 * indexes returned by simdata_column_index (never -1). */
struct simdata_columns {
	uint64_t bits[SIMDATA_MAX_COLUMNS / 64];
};

static inline void simdata_columns_add(struct simdata_columns *c, int index)
{
	c->bits[(unsigned)index / 64] |= (uint64_t)1 << ((unsigned)index % 64);
}

static inline bool simdata_columns_has(const struct simdata_columns *c, int index)
{
	return (c->bits[(unsigned)index / 64] >> ((unsigned)index % 64)) & 1;
}

/* Like simdata_device_json, but only the columns in cols (what the API
 * does with options.specific_columns). Keys the device lacks stay absent. */
void simdata_device_json_columns(const struct simdata_options *opt, enum simdata_os os,
				 const struct simdata_device *dev,
				 const struct simdata_columns *cols, struct buf *out);

/* ------------------------------------------------------------------ */
/* The district (simdata.c)
 *
 * Users: user u (0 <= u < opt->users) is the one device u of every OS
 * names, so a device's userid, username and useremail are those of a
 * served user. Its id is a type prefix and 100000 + u ("stu-100003").
 * Types repeat every 35 users: where u % 5 != 0 (users that devices name),
 * u % 7 == 1 is a TEACHER, u % 7 == 2 STAFF, the rest STUDENT; where
 * u % 5 == 0 (no device names them), u % 35 == 0 is an ADMIN, u % 35 == 5
 * a LOCATION_LEADER, the rest STUDENT: 25 students, 4 teachers, 4 staff,
 * 1 admin and 1 location leader in every 35. Quirks, by u:
 *   - u % 11 == 4     no "managedappleid" key;
 *   - u % 65 == 30    the name holds "Muñoz" (2-byte UTF-8);
 *   - assigned_devices lists the served UDIDs of device u of each OS
 *     (none when u % 5 == 0, u % 97 == 13, or u >= that OS's devices).
 *
 * Classes: class c has id "c" + (c + 1) on at least five digits and
 * idclass c + 1, a TEACHER (none when c % 97 == 41 or there are no
 * teachers), 0-2 other teachers as coordinators and 10-30 distinct
 * STUDENT users (fewer if the district has fewer), all served users.
 *
 * Device groups: group g of an OS has id g + 1 (unique per OS only) and
 * 5-60 distinct served devices of that OS that have a UDID (none when
 * g % 23 == 7, fewer when the OS has fewer devices).
 *
 * Admin logs: log k has id SIMDATA_ADMIN_LOG_ID_BASE + k; logs 2j and
 * 2j + 1 share one date, and dates grow with j, so they never decrease
 * with the id and raising opt->admin_logs only appends. Targets are served
 * devices (by UDID) or served users (by id). */

enum simdata_user_type {
	SIMDATA_STUDENT = 0,
	SIMDATA_TEACHER,
	SIMDATA_STAFF,
	SIMDATA_ADMIN,
	SIMDATA_LOCATION_LEADER,
	SIMDATA_NUSER_TYPES,
};

#define SIMDATA_USER_ID_MAX 24

struct simdata_user {
	uint64_t index;
	enum simdata_user_type type;
	char id[SIMDATA_USER_ID_MAX]; /* "stu-100003" */
	char name[80];
	char email[96];
	bool has_managedappleid;
	char managedappleid[96];
	const char *location;         /* a school's name */
	char grade[4];                /* "K", "1".."12"; "" when none */
	unsigned nassigned;
	char assigned[SIMDATA_NOS][48]; /* UDIDs, in OS order */
};

/* "STUDENT", "TEACHER", "STAFF", "ADMIN", "LOCATION_LEADER". */
const char *simdata_user_type_name(enum simdata_user_type type);
enum simdata_user_type simdata_user_type_of(uint64_t u);
/* How many of users 0..opt->users-1 have this type. */
uint64_t simdata_user_count(const struct simdata_options *opt, enum simdata_user_type type);
/* The index of the k-th user (from 0) of this type: k < simdata_user_count
 * gives a served user. */
uint64_t simdata_user_nth(enum simdata_user_type type, uint64_t k);
/* User u's id into out. */
void simdata_user_id(uint64_t u, char out[SIMDATA_USER_ID_MAX]);
/* The index of the user with this id (any u < 2^40), or -1 if no user has
 * it; whether that user is served is u < opt->users. */
long long simdata_user_index(const char *id);
void simdata_user(const struct simdata_options *opt, uint64_t u, struct simdata_user *out);
/* The record as /listusers serves it; locations as objects
 * ({"name","grade_level"}) or, with location_strings, as plain names. */
void simdata_user_json(const struct simdata_user *user, bool location_strings,
		       struct buf *out);

#define SIMDATA_CLASS_STUDENTS_MAX 30
#define SIMDATA_CLASS_COORDINATORS_MAX 2

struct simdata_class {
	uint64_t index;
	char id[24];          /* "c00042" */
	uint64_t idclass;     /* index + 1 */
	char name[64];        /* "Math 5A" */
	char course_name[48]; /* "Math 5" */
	const char *location; /* the teacher's school */
	bool has_teacher;
	uint64_t teacher;     /* a TEACHER user's index, when has_teacher */
	unsigned ncoordinators;
	uint64_t coordinators[SIMDATA_CLASS_COORDINATORS_MAX];
	unsigned nstudents;
	uint64_t students[SIMDATA_CLASS_STUDENTS_MAX]; /* STUDENT users' indexes */
};

/* Class c (any c; opt->classes only bounds what is served). */
void simdata_class(const struct simdata_options *opt, uint64_t c, struct simdata_class *out);
/* The record as /listclasses serves it; the name under "name" instead of
 * "class_name" with name_key. */
void simdata_class_json(const struct simdata_class *cls, bool name_key, struct buf *out);

#define SIMDATA_GROUP_DEVICES_MAX 60

struct simdata_group {
	enum simdata_os os;
	uint64_t index;
	uint64_t id;          /* index + 1 */
	char name[48];        /* unique per OS */
	bool smart;           /* type "smart", else "static" */
	unsigned ndevices;
	uint64_t devices[SIMDATA_GROUP_DEVICES_MAX]; /* device indexes, each < opt->devices[os] */
};

void simdata_group(const struct simdata_options *opt, enum simdata_os os, uint64_t g,
		   struct simdata_group *out);
/* The record as /listdevicegroups serves it (devices_count = ndevices). */
void simdata_group_json(const struct simdata_group *grp, struct buf *out);
/* The record as /listdevicegroupsdevices serves it: id, name, deviceudids. */
void simdata_group_devices_json(const struct simdata_options *opt,
				const struct simdata_group *grp, struct buf *out);

/* The district's accounts (schools), ids 1..SIMDATA_NACCOUNTS. */
#define SIMDATA_NACCOUNTS 6

struct simdata_account {
	uint64_t id;
	const char *name;
	const char *school_code;
	const char *address;
	const char *timezone;
};

void simdata_account(unsigned k, struct simdata_account *out);
void simdata_account_json(const struct simdata_account *acct, struct buf *out);

#define SIMDATA_CUSTOM_ATTRIBUTES_MAX 4

struct simdata_custom_attribute {
	uint64_t id;          /* unique across OSes */
	const char *name;
	const char *type;     /* "text", "list", "number", "date" */
	uint64_t values_count;
};

/* The OS's custom device attributes into out; returns how many (ios 4,
 * mac 3, tvos 1, visionos none). values_count depends on opt->devices. */
unsigned simdata_custom_attributes(const struct simdata_options *opt, enum simdata_os os,
				   struct simdata_custom_attribute out[SIMDATA_CUSTOM_ATTRIBUTES_MAX]);
void simdata_custom_attribute_json(const struct simdata_custom_attribute *attr,
				   struct buf *out);

#define SIMDATA_ADMIN_LOG_ID_BASE 90001

struct simdata_admin_log {
	uint64_t index;
	uint64_t id;          /* SIMDATA_ADMIN_LOG_ID_BASE + index */
	long long date;       /* Unix seconds */
	char admin[96];       /* an ADMIN user's email */
	const char *action;
	char target[48];      /* a UDID or a user id */
	char ip[16];
	char details[128];
};

/* Log k's date: non-decreasing in k, independent of opt->admin_logs. */
long long simdata_admin_log_date(const struct simdata_options *opt, uint64_t k);
/* The first log (from 0) whose date is at least date; opt->admin_logs if
 * none. Logs with start <= date <= end are [first_at(start), first_at(end + 1)). */
uint64_t simdata_admin_log_first_at(const struct simdata_options *opt, long long date);
void simdata_admin_log(const struct simdata_options *opt, uint64_t k,
		       struct simdata_admin_log *out);
void simdata_admin_log_json(const struct simdata_admin_log *log, struct buf *out);

/* ------------------------------------------------------------------ */
/* Syncro MSP data (simdata_syncro.c)
 *
 * An MSP with customers, their contacts and their assets. Customer c,
 * contact k and asset i are pure functions of the options and their index,
 * so tests compute what the simulator served. Quirks, by asset index i:
 *   - i % 3 == 0   agent-managed: properties.kabuto_information holds the
 *                  RMM inventory (general, os, network_adapters, cpu, ram, hdd);
 *   - i % 4 == 1   contact_id is null;
 *   - i % 4 == 2   properties hold both "Notes" and "notes" (different values);
 *   - i % 10 == 7  asset_serial is null (otherwise serials are unique);
 *   - i % 50 == 11 the name holds a double quote, a backslash and "é".
 * Every asset's properties hold keys with spaces; rmm_store holds booleans
 * as the strings "false"/"true"; rmm_links is [].
 * By customer index c:
 *   - c % 9 == 4   the customer is disabled ("disabled":true): /customers
 *                  lists it only when asked with include_disabled=true, as
 *                  Syncro does; assets of such customers are served as any
 *                  other (see simdata_syncro_customer_disabled). */

#define SIMDATA_SYNCRO_ASSET_ID_BASE 100000
#define SIMDATA_SYNCRO_CUSTOMER_ID_BASE 500000
#define SIMDATA_SYNCRO_CONTACT_ID_BASE 700000
#define SIMDATA_SYNCRO_ASSET_TYPE_ID_BASE 9000
#define SIMDATA_SYNCRO_NASSET_TYPES 5

struct simdata_syncro_options {
	uint64_t seed;
	uint64_t customers;             /* >= 1 when there are assets */
	uint64_t contacts_per_customer; /* 0: every contact_id is null */
};

struct simdata_syncro_customer {
	long long id;
	char business_name[64];
	char firstname[32];
	char lastname[32];
	char email[96];
	char created_at[32]; /* "2024-03-01T12:34:56.789Z" */
	char updated_at[32];
	bool disabled;       /* simdata_syncro_customer_disabled(c) */
};

struct simdata_syncro_contact {
	long long id;
	long long customer_id;
	char name[64];
	char email[96];
};

struct simdata_syncro_asset {
	uint64_t index;
	long long id;              /* SIMDATA_SYNCRO_ASSET_ID_BASE + index */
	char name[96];
	long long customer_id;
	uint64_t customer_index;
	bool has_contact;
	long long contact_id;      /* when has_contact */
	char created_at[32];
	char updated_at[32];
	const char *asset_type;    /* one of simdata_syncro_asset_type_names */
	bool has_serial;
	char asset_serial[24];     /* when has_serial */
	bool agent_managed;        /* has properties.kabuto_information */
	bool notes_pair;           /* properties has "Notes" and "notes" */
	char manufacturer[32];     /* kabuto general, when agent_managed */
	char model[48];
	char os_name[48];
	char os_build[24];
};

/* The asset type names, as /settings lists them with ids
 * SIMDATA_SYNCRO_ASSET_TYPE_ID_BASE + k. */
extern const char *const simdata_syncro_asset_type_names[SIMDATA_SYNCRO_NASSET_TYPES];

/* True for the disabled customers: c % 9 == 4. */
static inline bool simdata_syncro_customer_disabled(uint64_t c)
{
	return c % 9 == 4;
}

/* How many of the customers 0..n-1 are not disabled. */
uint64_t simdata_syncro_enabled_customers(uint64_t n);

/* The index of the k-th (from 0) customer that is not disabled: what
 * /customers without include_disabled serves at position k. */
uint64_t simdata_syncro_enabled_customer(uint64_t k);

/* Customer c (0 <= c < opt->customers). */
void simdata_syncro_customer(const struct simdata_syncro_options *opt, uint64_t c,
			     struct simdata_syncro_customer *out);
/* Contact k (0 <= k < customers * contacts_per_customer): contacts of
 * customer c are k = c * contacts_per_customer + j. */
void simdata_syncro_contact(const struct simdata_syncro_options *opt, uint64_t k,
			    struct simdata_syncro_contact *out);
/* Asset i (any i < 2^40). */
void simdata_syncro_asset(const struct simdata_syncro_options *opt, uint64_t i,
			  struct simdata_syncro_asset *out);

/* Append the record as one JSON object (the asset with its customer
 * embedded in full) to out. */
void simdata_syncro_customer_json(const struct simdata_syncro_customer *cust, struct buf *out);
void simdata_syncro_contact_json(const struct simdata_syncro_contact *contact, struct buf *out);
void simdata_syncro_asset_json(const struct simdata_syncro_options *opt,
			       const struct simdata_syncro_asset *asset, struct buf *out);

#endif
