/* simdata.c - the simulator's deterministic synthetic Mosyle inventory.
 *
 * Device i of an OS is a pure function of (seed, os, i). simdata_device()
 * computes the values tests check; simdata_device_json() renders the full
 * record (every documented column, 2-3 KB) from those values plus a stream
 * of pseudo-random numbers keyed on (seed, serial_number), so it needs no
 * index. Rendering is built from constant fragments with memcpy and
 * hand-written number formatting: the simulator calls it for every device
 * it serves, thousands of pages a second.
 *
 * Quirk rules, by index i within its OS (counted from 0):
 *   i % 97 == 13   no "deviceudid" key (has_udid false)
 *   i % 5 == 0     no userid/username/useremail/usertype keys (has_user false)
 *   i % 50 == 7    device_name holds a tab, a newline, a double quote, a
 *                  backslash, "é" (2-byte UTF-8), "✓" (3-byte) and "🍎"
 *                  (U+1F34E, 4-byte)
 *   i % 100 == 3   only with opt->nul_in_names: device_name holds "\u0000"
 *                  (a 0 byte in dev->name; name_len counts it)
 *   i % 10 == 4    asset_tag contains a comma
 *   i % 20 == 9    date_last_beat is null (dev->date_last_beat == 0)
 *   i % opt->rename_every == 0 (when set)   " (renamed)" ends device_name
 *                  and ".1" osversion
 * The rules are independent: a device can have several quirks.
 *
 * Identity: udid is unique per (os, i) for a given seed (it embeds a
 * bijective 64-bit mix of (os, i)); serial_number is 12 characters, an OS
 * letter (F ios, C mac, D tvos, H visionos) and 11 base-34 digits of a
 * bijective mix of i, so it is unique across every OS and every i < 2^55.
 *
 * Users: i % 7 == 1 is a TEACHER ("tch-N"), i % 7 == 2 STAFF ("stf-N"),
 * others STUDENT ("stu-N"), with N = 100000 + i; the same i in every OS has
 * the same user, user i of the district (simdata_user), which is why a
 * device at i >= opt->users (when set) has none.
 *
 * The rest of the district (users, classes, groups, accounts, custom
 * attributes, admin logs) is at the end of the file.
 */
#include "simdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Device timestamps are spread over the weeks before this instant, so the
 * inventory does not depend on the clock. */
#define T0 1712000000ULL

/* Upper bound of one rendered device: every struct string escaped at
 * 6 bytes per byte plus the fixed part (about 2.5 KB). */
#define DEVICE_JSON_MAX 12288

/* JSON quote inside a JSON string: the columns holding JSON text. */
#define Q "\\\""

#define M55 ((UINT64_C(1) << 55) - 1)

/* ------------------------------------------------------------------ */
/* hashing */

uint64_t simdata_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

struct rng {
	uint64_t s;
};

static inline uint64_t next(struct rng *r)
{
	r->s += UINT64_C(0x9e3779b97f4a7c15);
	return simdata_mix64(r->s);
}

/* Bijective in (os, index) for index < 2^56. */
static uint64_t device_key(uint64_t seed, enum simdata_os os, uint64_t index)
{
	return simdata_mix64(simdata_mix64(seed) ^ ((uint64_t)os << 56) ^ index);
}

/* A bijection of [0, 2^55): multiplications by odd numbers and xor-shifts
 * are each invertible modulo 2^55. */
static uint64_t perm55(uint64_t x, uint64_t key)
{
	x = (x ^ key) & M55;
	x = (x * UINT64_C(0x2545f4914f6cdd1d)) & M55;
	x ^= x >> 27;
	x = (x * UINT64_C(0x9e3779b97f4a7c15)) & M55;
	x ^= x >> 31;
	return x;
}

/* ------------------------------------------------------------------ */
/* writers: each appends at p and returns the new end */

#define PUT_LIT(p, s) (memcpy((p), (s), sizeof(s) - 1), (p) += sizeof(s) - 1)

static inline char *put_mem(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

static inline char *put_cstr(char *p, const char *s)
{
	return put_mem(p, s, strlen(s));
}

static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Exactly width decimal digits (v is reduced modulo 10^width). */
static char *put_u64_width(char *p, uint64_t v, int width)
{
	for (int k = width - 1; k >= 0; k--) {
		p[k] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

/* The low 4*digits bits of v, most significant first. */
static char *put_hex(char *p, uint64_t v, int digits, const char *alphabet)
{
	for (int k = digits - 1; k >= 0; k--) {
		p[k] = alphabet[v & 15];
		v >>= 4;
	}
	return p + digits;
}

static char *put_mac_address(char *p, uint64_t v)
{
	for (int k = 0; k < 6; k++) {
		if (k)
			*p++ = ':';
		p = put_hex(p, v >> (8 * k), 2, hex_lower);
	}
	return p;
}

static char *put_uuid(char *p, uint64_t a, uint64_t b)
{
	p = put_hex(p, a >> 32, 8, hex_upper);
	*p++ = '-';
	p = put_hex(p, a >> 16, 4, hex_upper);
	*p++ = '-';
	p = put_hex(p, a, 4, hex_upper);
	*p++ = '-';
	p = put_hex(p, b >> 48, 4, hex_upper);
	*p++ = '-';
	return put_hex(p, b, 12, hex_upper);
}

static char *put_ipv4(char *p, unsigned a, uint64_t v)
{
	p = put_u64(p, a);
	for (int k = 0; k < 3; k++) {
		*p++ = '.';
		p = put_u64(p, ((v >> (8 * k)) & 0xff) % 254 + 1);
	}
	return p;
}

/* JSON string body: quote, backslash and control characters escaped,
 * everything else (UTF-8 included) copied. */
static char *put_escaped(char *p, const char *s, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		unsigned char c = (unsigned char)s[k];
		if (c >= 0x20 && c != '"' && c != '\\') {
			*p++ = (char)c;
			continue;
		}
		*p++ = '\\';
		switch (c) {
		case '"': *p++ = '"'; break;
		case '\\': *p++ = '\\'; break;
		case '\b': *p++ = 'b'; break;
		case '\f': *p++ = 'f'; break;
		case '\n': *p++ = 'n'; break;
		case '\r': *p++ = 'r'; break;
		case '\t': *p++ = 't'; break;
		default:
			PUT_LIT(p, "u00");
			*p++ = hex_lower[c >> 4];
			*p++ = hex_lower[c & 15];
		}
	}
	return p;
}

/* "text" from a NUL-terminated string. */
static inline char *put_qstr(char *p, const char *s)
{
	*p++ = '"';
	p = put_escaped(p, s, strlen(s));
	*p++ = '"';
	return p;
}

/* "1234" */
static inline char *put_qnum(char *p, uint64_t v)
{
	*p++ = '"';
	p = put_u64(p, v);
	*p++ = '"';
	return p;
}

static inline char *put_qbool(char *p, bool b)
{
	p[0] = '"';
	p[1] = b ? '1' : '0';
	p[2] = '"';
	return p + 3;
}

/* ------------------------------------------------------------------ */
/* the catalogue */

struct model {
	const char *id;
	const char *name;
	const char *family;      /* model_name */
	const char *short_name;  /* in generated device names */
	const char *device_type;
	const char *disk;        /* total_disk as served */
	unsigned disk_gb;
	bool cellular;
	bool portable;
};

static const struct model ios_models[] = {
	{"iPad7,11", "iPad (7th generation)", "iPad", "iPad", "ipad", "32.0000000000", 32, false, true},
	{"iPad7,12", "iPad (7th generation)", "iPad", "iPad", "ipad", "128.0000000000", 128, true, true},
	{"iPad11,6", "iPad (8th generation)", "iPad", "iPad", "ipad", "32.0000000000", 32, false, true},
	{"iPad12,1", "iPad (9th generation)", "iPad", "iPad", "ipad", "64.0000000000", 64, false, true},
	{"iPad13,18", "iPad (10th generation)", "iPad", "iPad", "ipad", "64.0000000000", 64, false, true},
	{"iPad13,19", "iPad (10th generation)", "iPad", "iPad", "ipad", "256.0000000000", 256, true, true},
	{"iPhone14,7", "iPhone 14", "iPhone", "iPhone", "iphone", "128.0000000000", 128, true, true},
	{"iPhone15,2", "iPhone 14 Pro", "iPhone", "iPhone", "iphone", "256.0000000000", 256, true, true},
};

static const struct model mac_models[] = {
	{"MacBookAir10,1", "MacBook Air (M1, 2020)", "MacBook Air", "MBA", "mac", "256.0000000000", 256, false, true},
	{"Mac14,2", "MacBook Air (M2, 2022)", "MacBook Air", "MBA", "mac", "512.0000000000", 512, false, true},
	{"MacBookPro18,3", "MacBook Pro (14-inch, 2021)", "MacBook Pro", "MBP", "mac", "1000.0000000000", 1000, false, true},
	{"iMac21,1", "iMac (24-inch, M1, 2021)", "iMac", "iMac", "mac", "256.0000000000", 256, false, false},
	{"Mac14,3", "Mac mini (2023)", "Mac mini", "Mini", "mac", "512.0000000000", 512, false, false},
};

static const struct model tvos_models[] = {
	{"AppleTV6,2", "Apple TV 4K", "Apple TV", "ATV", "tv", "32.0000000000", 32, false, false},
	{"AppleTV11,1", "Apple TV 4K (2nd generation)", "Apple TV", "ATV", "tv", "64.0000000000", 64, false, false},
	{"AppleTV14,1", "Apple TV 4K (3rd generation)", "Apple TV", "ATV", "tv", "128.0000000000", 128, false, false},
};

static const struct model visionos_models[] = {
	{"RealityDevice14,1", "Apple Vision Pro", "Apple Vision Pro", "AVP", "vision", "256.0000000000", 256, false, true},
};

struct os_version {
	const char *version;
	const char *build;
};

struct os_info {
	const char *name;
	char serial_letter;
	const char *udid_chip;   /* NULL: 40 hex digits; else "CHIP-" + 16 */
	const struct model *models;
	size_t nmodels;
	const struct os_version *versions;
	size_t nversions;
	const char *update_name; /* HumanReadableName prefix */
	const char *update_key;  /* ProductKey prefix */
	struct os_version latest;
};

static const struct os_version ios_versions[] = {
	{"17.4.1", "21E236"}, {"17.3", "21D50"}, {"16.7.5", "20H307"}, {"17.5", "21F79"},
};
static const struct os_version mac_versions[] = {
	{"14.4.1", "23E224"}, {"14.4", "23E214"}, {"13.6.5", "22G621"}, {"14.5", "23F79"},
};
static const struct os_version tvos_versions[] = {
	{"17.4", "21L227"}, {"17.3", "21K646"}, {"16.6", "20M73"}, {"17.5", "21L569"},
};
static const struct os_version visionos_versions[] = {
	{"1.1", "21O211"}, {"1.1.1", "21O224"}, {"1.0.3", "21N333"}, {"1.2", "21O589"},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const struct os_info os_table[SIMDATA_NOS] = {
	{"ios", 'F', NULL, ios_models, NELEM(ios_models), ios_versions, NELEM(ios_versions),
	 "iOS", "iOSUpdate", {"17.5", "21F79"}},
	{"mac", 'C', "00008103", mac_models, NELEM(mac_models), mac_versions,
	 NELEM(mac_versions), "macOS Sonoma", "MSU_UPDATE_", {"14.5", "23F79"}},
	{"tvos", 'D', NULL, tvos_models, NELEM(tvos_models), tvos_versions,
	 NELEM(tvos_versions), "tvOS", "tvOSUpdate", {"17.5", "21L569"}},
	{"visionos", 'H', "00008112", visionos_models, NELEM(visionos_models),
	 visionos_versions, NELEM(visionos_versions), "visionOS", "visionOSUpdate",
	 {"1.2", "21O589"}},
};

struct school {
	const char *code;
	const char *name;
	int grade_lo, grade_hi;  /* 0 is K; -1 for the district office */
	const char *address;
};

/* The district office comes last: users, classes and groups pick schools
 * among the first NSCHOOLS_TEACHING. */
static const struct school schools[] = {
	{"LHS", "Lincoln High School", 9, 12, "1200 Lincoln Ave, Springfield, IL 62701"},
	{"WMS", "Washington Middle School", 6, 8, "455 Washington St, Springfield, IL 62702"},
	{"REL", "Roosevelt Elementary", 0, 5, "18 Roosevelt Rd, Springfield, IL 62703"},
	{"KES", "Kennedy Elementary School", 0, 5, "902 Kennedy Dr, Springfield, IL 62704"},
	{"CHS", "Central High School", 9, 12, "300 Central Blvd, Springfield, IL 62701"},
	{"DO", "District Office", -1, -1, "1 District Plaza, Springfield, IL 62701"},
};

#define NSCHOOLS_TEACHING 5

static const char *const first_names[] = {
	"Ava", "Liam", "Sofia", "Noah", "Mia", "Mateo", "Amara", "Ethan", "Chloe",
	"Lucas", "Priya", "Diego", "Hana", "Elijah", "Zoe", "Omar", "Grace", "Kai",
	"Isabella", "Jordan", "Nadia", "Wyatt", "Leila", "Caleb",
};

static const char *const last_names[] = {
	"Garcia", "Smith", "Nguyen", "Johnson", "Patel", "Williams", "Kim", "Brown",
	"Lopez", "Davis", "Okafor", "Miller", "Hernandez", "Wilson", "Chen", "Moore",
	"Taylor", "Anderson", "Thomas", "Jackson", "Martin", "Lee", "Walker", "Young",
};

static const char *const tag_pool[] = {
	"grade-3", "grade-4", "grade-5", "grade-6", "grade-7", "grade-8", "grade-9",
	"grade-10", "grade-11", "grade-12", "cart-1", "cart-2", "cart-3", "cart-7",
	"1to1", "loaner", "testing", "library", "staff", "stem-lab",
};

static const char *const carriers[] = {"Verizon", "AT&T", "T-Mobile"};

static const char *const ssids[] = {"District-Students", "District-Staff", "District-Guest"};

const char *const simdata_column_names[] = {
	"deviceudid", "total_disk", "os", "serial_number", "device_name", "device_model",
	"idaccount", "battery", "osversion", "date_info", "carrier", "roaming_enabled",
	"isroaming", "imei", "meid", "available_disk", "wifi_mac_address", "last_ip_beat",
	"last_lan_ip", "bluetooth_mac_address", "is_supervised", "date_app_info",
	"date_last_beat", "date_last_push", "status", "isActivationLockEnabled",
	"isDeviceLocatorServiceEnabled", "isDoNotDisturbInEffect", "isCloudBackupEnabled",
	"IsNetworkTethered", "needosupdate", "productkeyupdate", "device_type",
	"lostmode_status", "is_muted", "date_muted", "activation_bypass", "date_media_info",
	"tags", "iTunesStoreAccountHash", "iTunesStoreAccountIsActive", "date_profiles_info",
	"ethernet_mac_address", "model_name", "LastCloudBackupDate",
	"SystemIntegrityProtectionEnabled", "BuildVersion", "LocalHostName", "HostName",
	"OSUpdateSettings", "ActiveManagedUsers", "CurrentConsoleManagedUser",
	"date_printers", "AutoSetupAdminAccounts", "appleTVid", "asset_tag",
	"ManagementStatus", "OSUpdateStatus", "AvailableOSUpdates", "enrollment_type",
	"userid", "useremail", "username", "usertype", "SharedCartName",
	"device_model_name", "date_kinfo", "location", "latitude", "longitude", "altitude",
	"DeviceAttestationStatus", "CustomDeviceAttributes", "last_ssid", "imeiOne",
	"imeiTwo", "iccidOne", "iccidTwo", "EIDOne", "EIDTwo",
};

const size_t simdata_ncolumns = NELEM(simdata_column_names);

_Static_assert(NELEM(simdata_column_names) <= SIMDATA_MAX_COLUMNS, "column set too small");

/* ------------------------------------------------------------------ */
/* public API */

const char *simdata_os_name(enum simdata_os os)
{
	if ((unsigned)os >= SIMDATA_NOS)
		return "unknown";
	return os_table[os].name;
}

int simdata_os_from_name(const char *name)
{
	for (int k = 0; k < SIMDATA_NOS; k++)
		if (strcmp(name, os_table[k].name) == 0)
			return k;
	return -1;
}

void simdata_huge_name(size_t bytes, struct buf *out)
{
	static const char unit[] = " huge \"name\" \\ tab\t \xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x8d\x8e ";
	size_t start = out->len;
	char num[24];
	buf_reserve(out, bytes);
	for (;;) {
		size_t done = out->len - start;
		int n = snprintf(num, sizeof(num), "[%08zu]", done);
		if (done + (size_t)n + sizeof(unit) - 1 > bytes)
			break;
		buf_append(out, num, (size_t)n);
		buf_append(out, unit, sizeof(unit) - 1);
	}
	/* ASCII up to the exact size: no character is cut */
	while (out->len - start < bytes)
		buf_putc(out, '.');
}

int simdata_column_index(const char *name, size_t len)
{
	for (size_t k = 0; k < simdata_ncolumns; k++)
		if (strlen(simdata_column_names[k]) == len &&
		    memcmp(simdata_column_names[k], name, len) == 0)
			return (int)k;
	return -1;
}

static const char base34[] = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";

static void make_serial(uint64_t seed, enum simdata_os os, uint64_t index, char *out)
{
	uint64_t x = perm55(index, simdata_mix64(seed + (uint64_t)os));
	out[0] = os_table[os].serial_letter;
	for (int k = 11; k >= 1; k--) {
		out[k] = base34[x % 34];
		x /= 34;
	}
	out[12] = '\0';
}

static void make_name(struct simdata_device *d, const struct simdata_options *opt,
		      const struct model *m, uint64_t index, struct rng *r)
{
	char *p = d->name;
	uint64_t v = next(r);

	if (index % 50 == 7) {
		PUT_LIT(p, "Caf\xc3\xa9 \"Lab\"\t\\ Cart \xe2\x9c\x93\n\xf0\x9f\x8d\x8e ");
		p = put_u64_width(p, index, 4);
	} else if (opt->nul_in_names && index % 100 == 3) {
		PUT_LIT(p, "Kiosk");
		*p++ = '\0';
		*p++ = ' ';
		p = put_cstr(p, m->short_name);
		*p++ = ' ';
		p = put_u64_width(p, index, 4);
	} else {
		switch (v % 3) {
		case 0:
			p = put_cstr(p, schools[(v >> 8) % NELEM(schools)].code);
			*p++ = '-';
			p = put_cstr(p, m->short_name);
			*p++ = '-';
			p = put_u64_width(p, index, 4);
			break;
		case 1:
			PUT_LIT(p, "Cart ");
			p = put_u64(p, 1 + (v >> 8) % 12);
			PUT_LIT(p, " - ");
			p = put_cstr(p, m->family);
			*p++ = ' ';
			p = put_u64(p, 1 + index % 30);
			break;
		default:
			p = put_cstr(p, first_names[(v >> 8) % NELEM(first_names)]);
			*p++ = ' ';
			p = put_cstr(p, last_names[(v >> 16) % NELEM(last_names)]);
			PUT_LIT(p, "'s ");
			p = put_cstr(p, m->family);
		}
	}
	d->name_len = (size_t)(p - d->name);
	*p = '\0';
}

/* One to three distinct tags, sometimes separated by ", ". */
static void make_tags(struct simdata_device *d, uint64_t v)
{
	char *p = d->tags;
	unsigned n = 1 + (unsigned)(v % 3);
	size_t first = (v >> 8) % NELEM(tag_pool);
	size_t step = 1 + (v >> 16) % (NELEM(tag_pool) / 2 - 1);
	for (unsigned k = 0; k < n; k++) {
		if (k) {
			*p++ = ',';
			if ((v >> 60) & 1)
				*p++ = ' ';
		}
		p = put_cstr(p, tag_pool[(first + k * step) % NELEM(tag_pool)]);
	}
	*p = '\0';
}

static const char *const user_prefixes[SIMDATA_NUSER_TYPES] = {
	"stu-", "tch-", "stf-", "adm-", "ldr-",
};

enum simdata_user_type simdata_user_type_of(uint64_t u)
{
	if (u % 5 != 0) {
		/* the users devices name: the rule devices always had */
		if (u % 7 == 1)
			return SIMDATA_TEACHER;
		if (u % 7 == 2)
			return SIMDATA_STAFF;
		return SIMDATA_STUDENT;
	}
	if (u % 35 == 0)
		return SIMDATA_ADMIN;
	if (u % 35 == 5)
		return SIMDATA_LOCATION_LEADER;
	return SIMDATA_STUDENT;
}

void simdata_user_id(uint64_t u, char out[SIMDATA_USER_ID_MAX])
{
	char *p = put_cstr(out, user_prefixes[simdata_user_type_of(u)]);
	p = put_u64(p, 100000 + u);
	*p = '\0';
}

/* User u's id, name and email. The name of a user no device names
 * sometimes carries a 2-byte character; device users keep the names they
 * always had. */
static void user_identity(uint64_t seed, uint64_t u, char *id, char *name, char *email)
{
	uint64_t n = 100000 + u;
	uint64_t v = simdata_mix64(simdata_mix64(seed ^ UINT64_C(0x75736572)) ^ n);
	const char *first = first_names[v % NELEM(first_names)];
	const char *last = last_names[(v >> 16) % NELEM(last_names)];
	const char *domain = simdata_user_type_of(u) == SIMDATA_STUDENT
				     ? "@students.district.example" : "@district.example";
	char *p;

	simdata_user_id(u, id);

	p = put_cstr(name, first);
	*p++ = ' ';
	p = put_cstr(p, last);
	if (u % 65 == 30)
		PUT_LIT(p, "-Mu\xc3\xb1oz");
	*p = '\0';

	p = email;
	for (const char *s = first; *s; s++)
		*p++ = (char)(*s | 0x20);
	*p++ = '.';
	for (const char *s = last; *s; s++)
		*p++ = (char)(*s | 0x20);
	p = put_u64(p, n % 1000);
	p = put_cstr(p, domain);
	*p = '\0';
}

static void make_user(struct simdata_device *d, uint64_t seed, uint64_t index)
{
	user_identity(seed, index, d->userid, d->username, d->useremail);
}

/* The UDID of device (os, index) from its key h; r is the stream seeded
 * with h, advanced past what the UDID used. */
static void make_udid(enum simdata_os os, uint64_t h, struct rng *r, char *out)
{
	const struct os_info *oi = &os_table[os];
	char *p;

	/* The udid embeds h, which is unique per (os, index). */
	if (oi->udid_chip) {
		p = put_cstr(out, oi->udid_chip);
		*p++ = '-';
		p = put_hex(p, h, 16, hex_upper);
	} else {
		p = put_hex(out, h, 16, hex_lower);
		p = put_hex(p, next(r), 16, hex_lower);
		p = put_hex(p, next(r), 8, hex_lower);
	}
	*p = '\0';
}

void simdata_device_udid(const struct simdata_options *opt, enum simdata_os os,
			 uint64_t index, char out[48])
{
	uint64_t h = device_key(opt->seed, os, index);
	struct rng r = {h};
	make_udid(os, h, &r, out);
}

/* Whether device index names a user: the users of the district bound it. */
static bool device_has_user(const struct simdata_options *opt, uint64_t index)
{
	return index % 5 != 0 && (opt->users == 0 || index < opt->users);
}

void simdata_device(const struct simdata_options *opt, enum simdata_os os,
		    uint64_t index, struct simdata_device *out)
{
	const struct os_info *oi = &os_table[os];
	uint64_t h = device_key(opt->seed, os, index);
	struct rng r = {h};
	const struct model *m;
	const struct os_version *ver;
	uint64_t v;
	char *p;

	memset(out, 0, sizeof(*out));

	out->has_udid = index % 97 != 13;
	make_udid(os, h, &r, out->udid);

	make_serial(opt->seed, os, index, out->serial_number);

	v = next(&r);
	m = &oi->models[v % oi->nmodels];
	/* Most devices run one of the recent versions; a few lag behind. */
	ver = &oi->versions[(v >> 16) % oi->nversions];
	strcpy(out->device_model, m->id);
	strcpy(out->device_model_name, m->name);
	strcpy(out->osversion, ver->version);
	strcpy(out->total_disk, m->disk);

	make_name(out, opt, m, index, &r);
	if (opt->rename_every && index % opt->rename_every == 0) {
		/* after make_name and the osversion draw, so nothing else moves */
		p = put_cstr(out->name + out->name_len, " (renamed)");
		out->name_len = (size_t)(p - out->name);
		*p = '\0';
		strcat(out->osversion, ".1");
	}

	v = next(&r);
	p = put_cstr(out->asset_tag, schools[v % NELEM(schools)].code);
	*p++ = '-';
	p = put_u64_width(p, (v >> 8) % 1000000, 6);
	if (index % 10 == 4) {
		PUT_LIT(p, ", Cart ");
		p = put_u64(p, 1 + (v >> 40) % 9);
	}
	*p = '\0';

	make_tags(out, next(&r));

	out->has_user = device_has_user(opt, index);
	if (out->has_user)
		make_user(out, opt->seed, index);

	v = next(&r);
	out->date_last_beat = index % 20 == 9 ? 0 : (long long)(T0 - v % (21 * 86400));
	out->is_supervised = os == SIMDATA_MAC ? (v >> 32) % 4 != 0 : (v >> 32) % 10 != 0;
}

static const struct model *find_model(const struct os_info *oi, const char *id)
{
	for (size_t k = 0; k < oi->nmodels; k++)
		if (strcmp(oi->models[k].id, id) == 0)
			return &oi->models[k];
	return &oi->models[0];
}

static const char *find_build(const struct os_info *oi, const char *version)
{
	for (size_t k = 0; k < oi->nversions; k++)
		if (strcmp(oi->versions[k].version, version) == 0)
			return oi->versions[k].build;
	return oi->versions[0].build;
}

#define KEY(p, k) PUT_LIT(p, ",\"" k "\":")
#define NUL(p) PUT_LIT(p, "null")

/* A "\"..\"" ProductKey like iOSUpdate21F79 inside a JSON-in-string. */
static char *put_product_key(char *p, const struct os_info *oi)
{
	p = put_cstr(p, oi->update_key);
	if (oi->name[0] == 'm') {
		/* macOS keys look like MSU_UPDATE_23F79_patch_14.5 */
		p = put_cstr(p, oi->latest.build);
		PUT_LIT(p, "_patch_");
		return put_cstr(p, oi->latest.version);
	}
	return put_cstr(p, oi->latest.build);
}

static char *put_sim_ids(char *p, struct rng *r, bool present)
{
	/* imeiOne, imeiTwo, iccidOne, iccidTwo, EIDOne, EIDTwo */
	bool dual = present && next(r) % 4 == 0;
	KEY(p, "imeiOne");
	if (present) {
		PUT_LIT(p, "\"35");
		p = put_u64_width(p, next(r), 13);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "imeiTwo");
	if (dual) {
		PUT_LIT(p, "\"35");
		p = put_u64_width(p, next(r), 13);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "iccidOne");
	if (present) {
		PUT_LIT(p, "\"8901");
		p = put_u64_width(p, next(r), 16);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "iccidTwo");
	NUL(p);
	KEY(p, "EIDOne");
	if (present) {
		PUT_LIT(p, "\"89049032");
		p = put_u64_width(p, next(r), 12);
		p = put_u64_width(p, next(r), 12);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "EIDTwo");
	if (dual) {
		PUT_LIT(p, "\"89049032");
		p = put_u64_width(p, next(r), 12);
		p = put_u64_width(p, next(r), 12);
		*p++ = '"';
	} else {
		NUL(p);
	}
	return p;
}

/* Renders the whole record at p; returns the end. */
static char *render_device(char *p, const struct simdata_options *opt, enum simdata_os os,
			   const struct simdata_device *dev)
{
	const struct os_info *oi = &os_table[os];
	const struct model *m = find_model(oi, dev->device_model);
	bool is_mac = os == SIMDATA_MAC, is_tv = os == SIMDATA_TVOS;
	bool needs_update = strcmp(dev->osversion, oi->latest.version) != 0;
	uint64_t serial_lo, serial_hi = 0;
	struct rng r;
	uint64_t v, w, beat, hw;

	memcpy(&serial_lo, dev->serial_number, 8);
	memcpy(&serial_hi, dev->serial_number + 8, 4);
	r.s = simdata_mix64(simdata_mix64(opt->seed ^ serial_lo) ^ serial_hi);
	hw = next(&r); /* hardware identity: MAC addresses */
	v = next(&r);
	w = next(&r);
	beat = dev->date_last_beat ? (uint64_t)dev->date_last_beat : T0 - 40 * 86400 - v % 86400;

	*p++ = '{';
	if (dev->has_udid) {
		PUT_LIT(p, "\"deviceudid\":");
		p = put_qstr(p, dev->udid);
		*p++ = ',';
	}
	PUT_LIT(p, "\"total_disk\":");
	p = put_qstr(p, dev->total_disk);
	KEY(p, "os");
	*p++ = '"';
	p = put_cstr(p, oi->name);
	*p++ = '"';
	KEY(p, "serial_number");
	p = put_qstr(p, dev->serial_number);
	KEY(p, "device_name");
	*p++ = '"';
	p = put_escaped(p, dev->name, dev->name_len);
	*p++ = '"';
	KEY(p, "device_model");
	p = put_qstr(p, dev->device_model);
	KEY(p, "idaccount");
	p = put_qnum(p, 10000 + simdata_mix64(opt->seed) % 90000);
	KEY(p, "battery");
	if (m->portable) {
		PUT_LIT(p, "\"0.");
		p = put_u64_width(p, 5 + v % 95, 2);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "osversion");
	p = put_qstr(p, dev->osversion);
	KEY(p, "date_info");
	p = put_qnum(p, beat - (v >> 8) % 3600);
	KEY(p, "carrier");
	if (m->cellular) {
		*p++ = '"';
		p = put_cstr(p, carriers[(v >> 20) % NELEM(carriers)]);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "roaming_enabled");
	p = put_qbool(p, m->cellular && (v >> 24) % 2);
	KEY(p, "isroaming");
	if (m->cellular)
		p = put_qbool(p, false);
	else
		NUL(p);
	KEY(p, "imei");
	if (m->cellular) {
		PUT_LIT(p, "\"35");
		p = put_u64_width(p, w, 13);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "meid");
	if (m->cellular) {
		PUT_LIT(p, "\"35");
		p = put_u64_width(p, w, 12);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "available_disk");
	*p++ = '"';
	p = put_u64(p, (w >> 20) % m->disk_gb);
	*p++ = '.';
	p = put_u64_width(p, (w >> 40) % 100, 2);
	PUT_LIT(p, "00000000\"");
	KEY(p, "wifi_mac_address");
	*p++ = '"';
	p = put_mac_address(p, hw);
	*p++ = '"';
	KEY(p, "last_ip_beat");
	*p++ = '"';
	p = put_ipv4(p, 198, (v >> 28) | 51);
	*p++ = '"';
	KEY(p, "last_lan_ip");
	*p++ = '"';
	p = put_ipv4(p, 10, w >> 8);
	*p++ = '"';
	KEY(p, "bluetooth_mac_address");
	if (is_tv) {
		NUL(p);
	} else {
		*p++ = '"';
		p = put_mac_address(p, hw + 1);
		*p++ = '"';
	}
	KEY(p, "is_supervised");
	p = put_qbool(p, dev->is_supervised);
	KEY(p, "date_app_info");
	p = put_qnum(p, beat - (w >> 12) % 7200);
	KEY(p, "date_last_beat");
	if (dev->date_last_beat)
		p = put_qnum(p, (uint64_t)dev->date_last_beat);
	else
		NUL(p);
	KEY(p, "date_last_push");
	p = put_qnum(p, beat + (v >> 40) % 900);
	KEY(p, "status");
	PUT_LIT(p, "\"enrolled\"");
	KEY(p, "isActivationLockEnabled");
	p = put_qbool(p, !dev->is_supervised && (w >> 30) % 2);
	KEY(p, "isDeviceLocatorServiceEnabled");
	p = put_qbool(p, (w >> 31) % 3 == 0);
	KEY(p, "isDoNotDisturbInEffect");
	p = put_qbool(p, (w >> 33) % 8 == 0);
	KEY(p, "isCloudBackupEnabled");
	p = put_qbool(p, !is_tv && (w >> 36) % 4 == 0);
	KEY(p, "IsNetworkTethered");
	p = put_qbool(p, false);
	KEY(p, "needosupdate");
	p = put_qbool(p, needs_update);
	KEY(p, "productkeyupdate");
	if (needs_update) {
		*p++ = '"';
		p = put_product_key(p, oi);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "device_type");
	*p++ = '"';
	p = put_cstr(p, m->device_type);
	*p++ = '"';

	v = next(&r);
	w = next(&r);
	bool lost = v % 200 == 0;
	KEY(p, "lostmode_status");
	if (lost)
		PUT_LIT(p, "\"ENABLED\"");
	else
		PUT_LIT(p, "\"DISABLED\"");
	KEY(p, "is_muted");
	p = put_qbool(p, (v >> 8) % 16 == 0);
	KEY(p, "date_muted");
	NUL(p);
	KEY(p, "activation_bypass");
	if (dev->is_supervised && !is_mac) {
		*p++ = '"';
		for (int g = 0; g < 6; g++) {
			if (g)
				*p++ = '-';
			for (int c = 0; c < 5; c++)
				*p++ = base34[((w >> (g * 10 + c * 2)) ^ (v >> (c * 7 + g))) % 34];
		}
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "date_media_info");
	p = put_qnum(p, beat - (v >> 16) % 86400);
	KEY(p, "tags");
	p = put_qstr(p, dev->tags);
	KEY(p, "iTunesStoreAccountHash");
	if (dev->has_user && !is_tv) {
		*p++ = '"';
		p = put_hex(p, next(&r), 16, hex_lower);
		p = put_hex(p, next(&r), 16, hex_lower);
		p = put_hex(p, w, 8, hex_lower);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "iTunesStoreAccountIsActive");
	p = put_qbool(p, dev->has_user && !is_tv);
	KEY(p, "date_profiles_info");
	p = put_qnum(p, beat - (v >> 24) % 43200);
	KEY(p, "ethernet_mac_address");
	if (is_mac && !m->portable) {
		*p++ = '"';
		p = put_mac_address(p, hw + 2);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "model_name");
	*p++ = '"';
	p = put_cstr(p, m->family);
	*p++ = '"';
	KEY(p, "LastCloudBackupDate");
	if (!is_tv && (v >> 32) % 3 == 0)
		p = put_qnum(p, beat - (v >> 36) % (7 * 86400));
	else
		NUL(p);
	KEY(p, "SystemIntegrityProtectionEnabled");
	if (is_mac)
		PUT_LIT(p, "\"1\"");
	else
		NUL(p);
	KEY(p, "BuildVersion");
	*p++ = '"';
	p = put_cstr(p, find_build(oi, dev->osversion));
	*p++ = '"';

	/* LocalHostName: the name with anything but letters and digits
	 * turned into '-', as Apple devices do. */
	char host[64];
	size_t hn = 0;
	for (size_t k = 0; k < dev->name_len && hn < 48; k++) {
		unsigned char c = (unsigned char)dev->name[k];
		bool alnum = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
		if (alnum)
			host[hn++] = (char)c;
		else if (hn && host[hn - 1] != '-')
			host[hn++] = '-';
	}
	while (hn && host[hn - 1] == '-')
		hn--;
	if (!hn) {
		memcpy(host, dev->serial_number, 12);
		hn = 12;
	}
	KEY(p, "LocalHostName");
	*p++ = '"';
	p = put_mem(p, host, hn);
	*p++ = '"';
	KEY(p, "HostName");
	*p++ = '"';
	p = put_mem(p, host, hn);
	PUT_LIT(p, ".local\"");

	KEY(p, "OSUpdateSettings");
	PUT_LIT(p, "\"{" Q "AutoCheckEnabled" Q ":true," Q "AutomaticAppInstallationEnabled" Q
		":true," Q "AutomaticOSInstallationEnabled" Q ":false," Q
		"AutomaticSecurityUpdatesEnabled" Q ":true," Q "CatalogURL" Q ":" Q Q "," Q "IsDefaultCatalog" Q ":true," Q
		"PerformPeriodicCheck" Q ":true," Q "PreviousScanDate" Q ":");
	p = put_u64(p, beat - (w >> 20) % 86400);
	PUT_LIT(p, "," Q "PreviousScanResult" Q ":0}\"");

	uint64_t admin_a = next(&r), admin_b = next(&r);
	KEY(p, "ActiveManagedUsers");
	if (is_mac) {
		PUT_LIT(p, "\"[" Q);
		p = put_uuid(p, admin_b, admin_a);
		PUT_LIT(p, Q "]\"");
	} else {
		PUT_LIT(p, "\"[]\"");
	}
	KEY(p, "CurrentConsoleManagedUser");
	if (is_mac) {
		*p++ = '"';
		p = put_uuid(p, admin_b, admin_a);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "date_printers");
	if (is_mac)
		p = put_qnum(p, beat - (w >> 40) % 86400);
	else
		NUL(p);
	KEY(p, "AutoSetupAdminAccounts");
	if (is_mac) {
		PUT_LIT(p, "\"[{" Q "GUID" Q ":" Q);
		p = put_uuid(p, admin_a, admin_b);
		PUT_LIT(p, Q "," Q "shortName" Q ":" Q "ladmin" Q "}]\"");
	} else {
		NUL(p);
	}
	KEY(p, "appleTVid");
	if (is_tv) {
		*p++ = '"';
		p = put_hex(p, hw >> 8, 12, hex_upper);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "asset_tag");
	p = put_qstr(p, dev->asset_tag);
	KEY(p, "ManagementStatus");
	bool dep = (v >> 44) % 10 != 0;
	PUT_LIT(p, "\"{" Q "EnrolledViaDEP" Q ":");
	if (dep)
		PUT_LIT(p, "true");
	else
		PUT_LIT(p, "false");
	PUT_LIT(p, "," Q "IsActivationLockManageable" Q ":true," Q "IsUserEnrollment" Q
		":false}\"");
	KEY(p, "OSUpdateStatus");
	if (needs_update) {
		PUT_LIT(p, "\"[{" Q "DownloadPercentComplete" Q ":0." );
		p = put_u64(p, (w >> 48) % 10);
		PUT_LIT(p, "," Q "IsDownloaded" Q ":false," Q "ProductKey" Q ":" Q);
		p = put_product_key(p, oi);
		PUT_LIT(p, Q "," Q "Status" Q ":" Q "Downloading" Q "}]\"");
	} else {
		PUT_LIT(p, "\"[]\"");
	}
	KEY(p, "AvailableOSUpdates");
	if (needs_update) {
		PUT_LIT(p, "\"[{" Q "Build" Q ":" Q);
		p = put_cstr(p, oi->latest.build);
		PUT_LIT(p, Q "," Q "DownloadSize" Q ":");
		p = put_u64(p, 900000000 + (w >> 24) % 5000000000);
		PUT_LIT(p, "," Q "HumanReadableName" Q ":" Q);
		p = put_cstr(p, oi->update_name);
		*p++ = ' ';
		p = put_cstr(p, oi->latest.version);
		PUT_LIT(p, Q "," Q "IsCritical" Q ":false," Q "ProductKey" Q ":" Q);
		p = put_product_key(p, oi);
		PUT_LIT(p, Q "," Q "RestartRequired" Q ":true," Q "Version" Q ":" Q);
		p = put_cstr(p, oi->latest.version);
		PUT_LIT(p, Q "}]\"");
	} else {
		PUT_LIT(p, "\"[]\"");
	}
	bool shared = os == SIMDATA_IOS && !dev->has_user && (v >> 48) % 2 == 0;
	KEY(p, "enrollment_type");
	if (shared)
		PUT_LIT(p, "\"Shared\"");
	else if (dep)
		PUT_LIT(p, "\"DEP\"");
	else
		PUT_LIT(p, "\"Manual\"");
	if (dev->has_user) {
		KEY(p, "userid");
		p = put_qstr(p, dev->userid);
		KEY(p, "useremail");
		p = put_qstr(p, dev->useremail);
		KEY(p, "username");
		p = put_qstr(p, dev->username);
		KEY(p, "usertype");
		if (dev->userid[0] == 't')
			PUT_LIT(p, "\"TEACHER\"");
		else if (dev->userid[1] == 't' && dev->userid[2] == 'f')
			PUT_LIT(p, "\"STAFF\"");
		else
			PUT_LIT(p, "\"STUDENT\"");
	}
	KEY(p, "SharedCartName");
	if (shared) {
		PUT_LIT(p, "\"Cart ");
		p = put_u64(p, 1 + (v >> 52) % 12);
		*p++ = '"';
	} else {
		NUL(p);
	}
	KEY(p, "device_model_name");
	p = put_qstr(p, dev->device_model_name);
	KEY(p, "date_kinfo");
	p = put_qnum(p, beat - (w >> 8) % 3600);
	KEY(p, "location");
	*p++ = '"';
	p = put_cstr(p, schools[(w >> 56) % NELEM(schools)].name);
	*p++ = '"';
	if (lost) {
		KEY(p, "latitude");
		PUT_LIT(p, "\"40.");
		p = put_u64_width(p, w, 7);
		PUT_LIT(p, "000\"");
		KEY(p, "longitude");
		PUT_LIT(p, "\"-74.");
		p = put_u64_width(p, w >> 24, 7);
		PUT_LIT(p, "000\"");
		KEY(p, "altitude");
		*p++ = '"';
		p = put_u64(p, (w >> 48) % 300);
		PUT_LIT(p, ".0000000000\"");
	} else {
		KEY(p, "latitude");
		NUL(p);
		KEY(p, "longitude");
		NUL(p);
		KEY(p, "altitude");
		NUL(p);
	}
	KEY(p, "DeviceAttestationStatus");
	if (!is_mac && dev->is_supervised) {
		PUT_LIT(p, "\"{" Q "Status" Q ":" Q "Verified" Q "," Q "Date" Q ":");
		p = put_u64(p, beat - (v >> 20) % (3 * 86400));
		PUT_LIT(p, "}\"");
	} else {
		NUL(p);
	}
	KEY(p, "CustomDeviceAttributes");
	PUT_LIT(p, "\"[{" Q "name" Q ":" Q "Room" Q "," Q "value" Q ":" Q);
	*p++ = (char)('A' + (w >> 4) % 6);
	p = put_u64(p, 100 + (w >> 12) % 200);
	PUT_LIT(p, Q "},{" Q "name" Q ":" Q "Funding" Q "," Q "value" Q ":" Q);
	if ((w >> 16) % 2)
		PUT_LIT(p, "Title I");
	else
		PUT_LIT(p, "General Fund");
	PUT_LIT(p, Q "}]\"");
	KEY(p, "last_ssid");
	if (is_mac && !m->portable) {
		NUL(p);
	} else {
		*p++ = '"';
		p = put_cstr(p, ssids[!dev->has_user ? 2 : dev->userid[2] == 'u' ? 0 : 1]);
		*p++ = '"';
	}
	p = put_sim_ids(p, &r, m->cellular);
	*p++ = '}';
	return p;
}

void simdata_device_json(const struct simdata_options *opt, enum simdata_os os,
			 const struct simdata_device *dev, struct buf *out)
{
	buf_reserve(out, DEVICE_JSON_MAX);
	char *start = out->data + out->len;
	char *end = render_device(start, opt, os, dev);
	if ((size_t)(end - start) > DEVICE_JSON_MAX)
		abort(); /* the bound above is wrong: memory is already damaged */
	out->len += (size_t)(end - start);
	out->data[out->len] = '\0';
}

/* Keeps the keys of the object at data[start..len) that are in cols. The
 * object is ours: keys have no escapes, every value is a string or null,
 * and keys come in simdata_column_names order. */
static void filter_columns(struct buf *out, size_t start, const struct simdata_columns *cols)
{
	char *r = out->data + start + 1, *w = r;
	char *end = out->data + out->len;
	size_t col = 0;
	bool first = true;

	while (r < end && *r == '"') {
		char *key = r + 1;
		char *key_end = memchr(key, '"', (size_t)(end - key));
		size_t key_len = (size_t)(key_end - key);
		char *val = key_end + 2;
		char *val_end;

		if (*val == '"') {
			val_end = val + 1;
			while (*val_end != '"') {
				if (*val_end == '\\')
					val_end++;
				val_end++;
			}
			val_end++;
		} else {
			val_end = val + 4; /* null */
		}
		while (col < simdata_ncolumns &&
		       !(strlen(simdata_column_names[col]) == key_len &&
			 memcmp(simdata_column_names[col], key, key_len) == 0))
			col++;
		if (col < simdata_ncolumns && simdata_columns_has(cols, (int)col)) {
			if (!first)
				*w++ = ',';
			memmove(w, r, (size_t)(val_end - r));
			w += val_end - r;
			first = false;
		}
		r = val_end;
		if (*r == ',')
			r++;
	}
	*w++ = '}';
	out->len = (size_t)(w - out->data);
	out->data[out->len] = '\0';
}

void simdata_device_json_columns(const struct simdata_options *opt, enum simdata_os os,
				 const struct simdata_device *dev,
				 const struct simdata_columns *cols, struct buf *out)
{
	size_t start = out->len;
	simdata_device_json(opt, os, dev, out);
	filter_columns(out, start, cols);
}

/* ------------------------------------------------------------------ */
/* the district: users, classes, groups, accounts, attributes, logs
 *
 * Nothing here keeps a table: a record is computed from its index, and
 * the few inverses tests and records need (the k-th student, the first
 * log at a date) are arithmetic over the 35-user type period or a binary
 * search over non-decreasing dates. */

#define USER_PERIOD 35
/* Admin logs: two a minute on average from this instant. */
#define LOG_T0 1704067200LL

static const char *const user_type_names[SIMDATA_NUSER_TYPES] = {
	"STUDENT", "TEACHER", "STAFF", "ADMIN", "LOCATION_LEADER",
};

static const char *const subjects[] = {
	"Math", "English", "Science", "Social Studies", "Art", "Music", "PE",
	"Espa\xc3\xb1ol", "Reading", "Computer Science",
};

/* A JSON string from a NUL-terminated one. */
static void buf_put_json(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	buf_reserve(b, n * 6 + 2);
	char *p = b->data + b->len;
	*p++ = '"';
	p = put_escaped(p, s, n);
	*p++ = '"';
	b->len = (size_t)(p - b->data);
	b->data[b->len] = '\0';
}

static void buf_put_qnum(struct buf *b, uint64_t v)
{
	buf_reserve(b, 24);
	char *p = put_qnum(b->data + b->len, v);
	b->len = (size_t)(p - b->data);
	b->data[b->len] = '\0';
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* A step in [1, n] coprime to n (n >= 1) from a random v: start + j * step
 * (mod n) then visits distinct values for j < n. */
static uint64_t coprime_step(uint64_t v, uint64_t n)
{
	uint64_t step = 1 + v % n;
	while (gcd64(step, n) != 1)
		step = step % n + 1;
	return step;
}

/* A distinct stream for each kind of record: kind is a short ASCII tag. */
static uint64_t record_key(uint64_t seed, uint64_t kind, uint64_t index)
{
	return simdata_mix64(simdata_mix64(seed ^ kind) ^ index);
}

const char *simdata_user_type_name(enum simdata_user_type type)
{
	if ((unsigned)type >= SIMDATA_NUSER_TYPES)
		return "UNKNOWN";
	return user_type_names[type];
}

/* Users of this type among 0..n-1. */
static uint64_t users_below(enum simdata_user_type type, uint64_t n)
{
	uint64_t per = 0, rest = 0;
	for (uint64_t u = 0; u < USER_PERIOD; u++) {
		if (simdata_user_type_of(u) != type)
			continue;
		per++;
		if (u < n % USER_PERIOD)
			rest++;
	}
	return n / USER_PERIOD * per + rest;
}

uint64_t simdata_user_count(const struct simdata_options *opt, enum simdata_user_type type)
{
	return users_below(type, opt->users);
}

uint64_t simdata_user_nth(enum simdata_user_type type, uint64_t k)
{
	uint64_t per = users_below(type, USER_PERIOD), r;
	if (per == 0)
		return UINT64_MAX;
	r = k % per;
	for (uint64_t u = 0; u < USER_PERIOD; u++)
		if (simdata_user_type_of(u) == type && r-- == 0)
			return k / per * USER_PERIOD + u;
	return UINT64_MAX; /* not reached */
}

long long simdata_user_index(const char *id)
{
	uint64_t n = 0;
	const char *p;
	char want[SIMDATA_USER_ID_MAX];

	if (strlen(id) < 5 || strlen(id) > 4 + 13)
		return -1;
	for (p = id + 4; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (n < 100000 || n - 100000 >= UINT64_C(1) << 40)
		return -1;
	/* the prefix must be the type's and the digits canonical */
	simdata_user_id(n - 100000, want);
	return strcmp(want, id) == 0 ? (long long)(n - 100000) : -1;
}

static char *put_grade(char *p, int grade)
{
	if (grade == 0)
		*p++ = 'K';
	else
		p = put_u64(p, (uint64_t)grade);
	*p = '\0';
	return p;
}

/* User u's school and (students and teachers) grade. */
static const struct school *user_school(uint64_t seed, uint64_t u, char grade[4])
{
	uint64_t v = record_key(seed, UINT64_C(0x7363686f6f6c), u); /* "school" */
	const struct school *s;

	grade[0] = '\0';
	switch (simdata_user_type_of(u)) {
	case SIMDATA_ADMIN:
		return &schools[NELEM(schools) - 1];
	case SIMDATA_STAFF:
		return &schools[v % NELEM(schools)];
	case SIMDATA_LOCATION_LEADER:
		return &schools[v % NSCHOOLS_TEACHING];
	default:
		s = &schools[v % NSCHOOLS_TEACHING];
		put_grade(grade, s->grade_lo + (int)((v >> 8) % (uint64_t)(s->grade_hi - s->grade_lo + 1)));
		return s;
	}
}

void simdata_user(const struct simdata_options *opt, uint64_t u, struct simdata_user *out)
{
	memset(out, 0, sizeof(*out));
	out->index = u;
	out->type = simdata_user_type_of(u);
	user_identity(opt->seed, u, out->id, out->name, out->email);
	out->has_managedappleid = u % 11 != 4;
	if (out->has_managedappleid) {
		char *p = put_cstr(out->managedappleid, out->id);
		p = put_cstr(p, "@district.example");
		*p = '\0';
	}
	out->location = user_school(opt->seed, u, out->grade)->name;
	/* the devices that name this user, the ones served with a UDID */
	if (device_has_user(opt, u) && u % 97 != 13)
		for (int os = 0; os < SIMDATA_NOS; os++)
			if (u < opt->devices[os])
				simdata_device_udid(opt, (enum simdata_os)os, u,
						    out->assigned[out->nassigned++]);
}

void simdata_user_json(const struct simdata_user *user, bool location_strings, struct buf *out)
{
	buf_puts(out, "{\"id\":");
	buf_put_json(out, user->id);
	buf_puts(out, ",\"name\":");
	buf_put_json(out, user->name);
	buf_puts(out, ",\"email\":");
	buf_put_json(out, user->email);
	if (user->has_managedappleid) {
		buf_puts(out, ",\"managedappleid\":");
		buf_put_json(out, user->managedappleid);
	}
	buf_printf(out, ",\"type\":\"%s\",\"locations\":[", user_type_names[user->type]);
	if (location_strings) {
		buf_put_json(out, user->location);
	} else {
		buf_puts(out, "{\"name\":");
		buf_put_json(out, user->location);
		buf_puts(out, ",\"grade_level\":");
		buf_put_json(out, user->grade);
		buf_putc(out, '}');
	}
	buf_puts(out, "],\"grades\":[");
	if (user->grade[0])
		buf_put_json(out, user->grade);
	buf_puts(out, "],\"serial_number\":null,\"account\":\"District\",\"assigned_devices\":[");
	for (unsigned k = 0; k < user->nassigned; k++) {
		if (k)
			buf_putc(out, ',');
		buf_put_json(out, user->assigned[k]);
	}
	buf_puts(out, "]}");
}

void simdata_class(const struct simdata_options *opt, uint64_t c, struct simdata_class *out)
{
	uint64_t h = record_key(opt->seed, UINT64_C(0x636c617373), c); /* "class" */
	struct rng r = {h};
	uint64_t teachers = simdata_user_count(opt, SIMDATA_TEACHER);
	uint64_t students = simdata_user_count(opt, SIMDATA_STUDENT);
	uint64_t t0 = 0, v;
	const char *subject = subjects[h % NELEM(subjects)];
	char grade[4], *p;

	memset(out, 0, sizeof(*out));
	out->index = c;
	out->idclass = c + 1;
	p = out->id;
	*p++ = 'c';
	p = c + 1 < 100000 ? put_u64_width(p, c + 1, 5) : put_u64(p, c + 1);
	*p = '\0';

	v = next(&r);
	out->has_teacher = teachers > 0 && c % 97 != 41;
	if (teachers) {
		t0 = v % teachers;
		if (out->has_teacher) {
			out->teacher = simdata_user_nth(SIMDATA_TEACHER, t0);
			out->location = user_school(opt->seed, out->teacher, grade)->name;
		}
	}
	if (!out->has_teacher) {
		const struct school *s = &schools[(v >> 40) % NSCHOOLS_TEACHING];
		out->location = s->name;
		put_grade(grade, s->grade_lo + (int)((v >> 48) % (uint64_t)(s->grade_hi - s->grade_lo + 1)));
	}

	/* "Math 5" and "Math 5A": the section letter keeps names apart */
	p = put_cstr(out->course_name, subject);
	*p++ = ' ';
	p = put_cstr(p, grade);
	p = put_cstr(out->name, out->course_name);
	*p++ = (char)('A' + (v >> 16) % 6);
	*p = '\0';

	/* coordinators: teachers other than the class's own */
	v = next(&r);
	out->ncoordinators = (unsigned)(v % (SIMDATA_CLASS_COORDINATORS_MAX + 1));
	if (teachers == 0)
		out->ncoordinators = 0;
	else if (out->ncoordinators > teachers - 1)
		out->ncoordinators = (unsigned)(teachers - 1);
	for (unsigned k = 0; k < out->ncoordinators; k++)
		out->coordinators[k] = simdata_user_nth(SIMDATA_TEACHER, (t0 + 1 + k) % teachers);

	v = next(&r);
	out->nstudents = (unsigned)(10 + v % 21);
	if (out->nstudents > students)
		out->nstudents = (unsigned)students;
	if (out->nstudents) {
		uint64_t start = next(&r) % students, step = coprime_step(next(&r), students);
		for (unsigned k = 0; k < out->nstudents; k++)
			out->students[k] = simdata_user_nth(SIMDATA_STUDENT,
							    (start + k * step) % students);
	}
}

static void put_user_ids(struct buf *out, const uint64_t *users, unsigned n)
{
	char id[SIMDATA_USER_ID_MAX];
	buf_putc(out, '[');
	for (unsigned k = 0; k < n; k++) {
		if (k)
			buf_putc(out, ',');
		simdata_user_id(users[k], id);
		buf_put_json(out, id);
	}
	buf_putc(out, ']');
}

void simdata_class_json(const struct simdata_class *cls, bool name_key, struct buf *out)
{
	buf_puts(out, "{\"id\":");
	buf_put_json(out, cls->id);
	buf_puts(out, ",\"idclass\":");
	buf_put_qnum(out, cls->idclass);
	buf_puts(out, name_key ? ",\"name\":" : ",\"class_name\":");
	buf_put_json(out, cls->name);
	buf_puts(out, ",\"course_name\":");
	buf_put_json(out, cls->course_name);
	buf_puts(out, ",\"location\":");
	buf_put_json(out, cls->location);
	buf_puts(out, ",\"teacher\":");
	if (cls->has_teacher) {
		char id[SIMDATA_USER_ID_MAX];
		simdata_user_id(cls->teacher, id);
		buf_put_json(out, id);
	} else {
		buf_puts(out, "null");
	}
	buf_puts(out, ",\"students\":");
	put_user_ids(out, cls->students, cls->nstudents);
	buf_puts(out, ",\"coordinators\":");
	put_user_ids(out, cls->coordinators, cls->ncoordinators);
	buf_putc(out, '}');
}

static const char *const group_kinds[] = {
	"Cart", "Room", "Lab", "Loaners", "Testing", "Biblioth\xc3\xa8que",
};

void simdata_group(const struct simdata_options *opt, enum simdata_os os, uint64_t g,
		   struct simdata_group *out)
{
	uint64_t h = record_key(opt->seed, UINT64_C(0x67726f7570) ^ ((uint64_t)os << 56), g); /* "group" */
	struct rng r = {h};
	uint64_t n_devices = opt->devices[os], want, start, step;
	char *p;

	memset(out, 0, sizeof(*out));
	out->os = os;
	out->index = g;
	out->id = g + 1;
	/* the kind and its number make the name unique within the OS */
	p = put_cstr(out->name, group_kinds[g % NELEM(group_kinds)]);
	*p++ = ' ';
	p = put_u64(p, g / NELEM(group_kinds) + 1);
	*p = '\0';
	out->smart = g % 4 == 3;

	want = g % 23 == 7 ? 0 : 5 + next(&r) % (SIMDATA_GROUP_DEVICES_MAX - 4);
	if (want > n_devices)
		want = n_devices;
	if (!want)
		return;
	start = next(&r) % n_devices;
	step = coprime_step(next(&r), n_devices);
	/* distinct indexes; a device served without a UDID cannot be a
	 * member a client could match, so it is left out */
	for (uint64_t k = 0; k < want; k++) {
		uint64_t i = (start + k * step) % n_devices;
		if (i % 97 != 13)
			out->devices[out->ndevices++] = i;
	}
}

void simdata_group_json(const struct simdata_group *grp, struct buf *out)
{
	buf_puts(out, "{\"id\":");
	buf_put_qnum(out, grp->id);
	buf_puts(out, ",\"name\":");
	buf_put_json(out, grp->name);
	buf_printf(out, ",\"os\":\"%s\",\"devices_count\":", os_table[grp->os].name);
	buf_put_qnum(out, grp->ndevices);
	buf_puts(out, grp->smart ? ",\"type\":\"smart\"}" : ",\"type\":\"static\"}");
}

void simdata_group_devices_json(const struct simdata_options *opt,
				const struct simdata_group *grp, struct buf *out)
{
	char udid[48];
	buf_puts(out, "{\"id\":");
	buf_put_qnum(out, grp->id);
	buf_puts(out, ",\"name\":");
	buf_put_json(out, grp->name);
	buf_puts(out, ",\"deviceudids\":[");
	for (unsigned k = 0; k < grp->ndevices; k++) {
		if (k)
			buf_putc(out, ',');
		simdata_device_udid(opt, grp->os, grp->devices[k], udid);
		buf_put_json(out, udid);
	}
	buf_puts(out, "]}");
}

_Static_assert(NELEM(schools) == SIMDATA_NACCOUNTS, "one account per school");

void simdata_account(unsigned k, struct simdata_account *out)
{
	const struct school *s = &schools[k % NELEM(schools)];
	out->id = k + 1;
	out->name = s->name;
	out->school_code = s->code;
	out->address = s->address;
	out->timezone = "America/Chicago";
}

void simdata_account_json(const struct simdata_account *acct, struct buf *out)
{
	buf_puts(out, "{\"id\":");
	buf_put_qnum(out, acct->id);
	buf_puts(out, ",\"name\":");
	buf_put_json(out, acct->name);
	buf_puts(out, ",\"school_code\":");
	buf_put_json(out, acct->school_code);
	buf_puts(out, ",\"address\":");
	buf_put_json(out, acct->address);
	buf_puts(out, ",\"timezone\":");
	buf_put_json(out, acct->timezone);
	buf_putc(out, '}');
}

/* Per OS: name, type, and the share of the OS's devices with a value in
 * percent. "Room" and "Funding" are the attributes devices carry in
 * CustomDeviceAttributes. */
struct attribute_def {
	const char *name;
	const char *type;
	unsigned percent;
};

static const struct attribute_def attribute_defs[SIMDATA_NOS][SIMDATA_CUSTOM_ATTRIBUTES_MAX] = {
	[SIMDATA_IOS] = {{"Room", "text", 100}, {"Funding", "list", 100},
			 {"Cart slot", "number", 60}, {"Insurance expires", "date", 35}},
	[SIMDATA_MAC] = {{"Room", "text", 100}, {"Funding", "list", 100},
			 {"Lab station", "number", 45}},
	[SIMDATA_TVOS] = {{"Room", "text", 100}},
	/* visionos: none, an empty list */
};

unsigned simdata_custom_attributes(const struct simdata_options *opt, enum simdata_os os,
				   struct simdata_custom_attribute out[SIMDATA_CUSTOM_ATTRIBUTES_MAX])
{
	unsigned n = 0;
	for (unsigned k = 0; k < SIMDATA_CUSTOM_ATTRIBUTES_MAX && attribute_defs[os][k].name; k++) {
		const struct attribute_def *d = &attribute_defs[os][k];
		out[n].id = (uint64_t)os * 10 + k + 1; /* unique across OSes */
		out[n].name = d->name;
		out[n].type = d->type;
		out[n].values_count = opt->devices[os] * d->percent / 100;
		n++;
	}
	return n;
}

void simdata_custom_attribute_json(const struct simdata_custom_attribute *attr,
				   struct buf *out)
{
	buf_puts(out, "{\"id\":");
	buf_put_qnum(out, attr->id);
	buf_puts(out, ",\"name\":");
	buf_put_json(out, attr->name);
	buf_puts(out, ",\"type\":");
	buf_put_json(out, attr->type);
	buf_puts(out, ",\"values_count\":");
	buf_put_qnum(out, attr->values_count);
	buf_putc(out, '}');
}

struct log_action {
	const char *action;
	bool on_device; /* the target is a device, else a user */
};

static const struct log_action log_actions[] = {
	{"Device wiped", true}, {"Device locked", true}, {"Lost mode enabled", true},
	{"Device renamed", true}, {"Profile installed", true}, {"App assigned", true},
	{"User created", false}, {"User updated", false}, {"Password reset", false},
	{"Class updated", false},
};

long long simdata_admin_log_date(const struct simdata_options *opt, uint64_t k)
{
	/* pair j = k / 2 lies in minute j: strictly increasing in j */
	uint64_t j = k / 2;
	return LOG_T0 + (long long)(60 * j + record_key(opt->seed, UINT64_C(0x6c6f67), j) % 60);
}

uint64_t simdata_admin_log_first_at(const struct simdata_options *opt, long long date)
{
	uint64_t lo = 0, hi = opt->admin_logs;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (simdata_admin_log_date(opt, mid) < date)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void simdata_admin_log(const struct simdata_options *opt, uint64_t k,
		       struct simdata_admin_log *out)
{
	uint64_t h = record_key(opt->seed, UINT64_C(0x61646d696e6c6f67), k); /* "adminlog" */
	struct rng r = {h};
	uint64_t admins = simdata_user_count(opt, SIMDATA_ADMIN), v = next(&r);
	const struct log_action *a = &log_actions[v % NELEM(log_actions)];
	uint64_t total_devices = 0;
	char *p;

	memset(out, 0, sizeof(*out));
	out->index = k;
	out->id = SIMDATA_ADMIN_LOG_ID_BASE + k;
	out->date = simdata_admin_log_date(opt, k);
	out->action = a->action;
	if (admins) {
		char id[SIMDATA_USER_ID_MAX], name[80];
		uint64_t u = simdata_user_nth(SIMDATA_ADMIN, (v >> 8) % admins);
		user_identity(opt->seed, u, id, name, out->admin);
	} else {
		strcpy(out->admin, "admin@district.example");
	}

	for (int os = 0; os < SIMDATA_NOS; os++)
		total_devices += opt->devices[os];
	v = next(&r);
	if ((a->on_device || !opt->users) && total_devices) {
		/* a served device, picked across the OSes in proportion */
		uint64_t i = v % total_devices;
		int os = 0;
		while (i >= opt->devices[os])
			i -= opt->devices[os++];
		if (i % 97 == 13) /* no UDID served: its neighbour has one */
			i = (i + 1) % opt->devices[os];
		simdata_device_udid(opt, (enum simdata_os)os, i, out->target);
	} else if (opt->users) {
		simdata_user_id(v % opt->users, out->target);
	} else {
		strcpy(out->target, "district");
	}

	v = next(&r);
	p = put_ipv4(out->ip, 10, v);
	*p = '\0';

	/* quotes, a backslash and non-ASCII now and then */
	p = out->details;
	switch ((v >> 32) % 5) {
	case 0:
		PUT_LIT(p, "Renamed to \"Cart ");
		p = put_u64(p, 1 + (v >> 40) % 12);
		PUT_LIT(p, " - iPad\"");
		break;
	case 1:
		PUT_LIT(p, "Requested from the web console");
		break;
	case 2:
		PUT_LIT(p, "Bulk action (");
		p = put_u64(p, 2 + (v >> 40) % 40);
		PUT_LIT(p, " items)");
		break;
	case 3:
		PUT_LIT(p, "Path C:\\Shared\\Caf\xc3\xa9 \xe2\x9c\x93");
		break;
	default:
		PUT_LIT(p, "API");
	}
	*p = '\0';
}

void simdata_admin_log_json(const struct simdata_admin_log *log, struct buf *out)
{
	buf_puts(out, "{\"id\":");
	buf_put_qnum(out, log->id);
	buf_puts(out, ",\"date\":");
	buf_put_qnum(out, (uint64_t)log->date);
	buf_puts(out, ",\"admin\":");
	buf_put_json(out, log->admin);
	buf_puts(out, ",\"action\":");
	buf_put_json(out, log->action);
	buf_puts(out, ",\"target\":");
	buf_put_json(out, log->target);
	buf_puts(out, ",\"ip\":");
	buf_put_json(out, log->ip);
	buf_puts(out, ",\"details\":");
	buf_put_json(out, log->details);
	buf_putc(out, '}');
}
