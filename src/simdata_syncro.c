/* simdata_syncro.c - the simulator's deterministic Syncro MSP data.
 *
 * Customers, contacts and assets are pure functions of the options and
 * their index (see simdata.h for the quirk rules). simdata_syncro_asset()
 * computes the values tests check; simdata_syncro_asset_json() renders the
 * whole record from them plus pseudo-random numbers keyed on (seed, index),
 * so the JSON needs nothing but the struct and the options.
 *
 * Ids: asset i is SIMDATA_SYNCRO_ASSET_ID_BASE + i, customer c
 * SIMDATA_SYNCRO_CUSTOMER_ID_BASE + c, contact k SIMDATA_SYNCRO_CONTACT_ID_BASE
 * + k. Asset i belongs to customer i % customers; its contact (when it has
 * one) is one of that customer's contacts. Serials are "SR" and 10 hex
 * digits of a bijection of [0, 2^40) applied to i, so they never repeat.
 */
#include "simdata.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Timestamps lie in the year before this instant (Unix seconds), so the
 * data does not depend on the clock. */
#define T0 1712000000ULL
#define DAY_MS (86400ULL * 1000)
#define M40 ((UINT64_C(1) << 40) - 1)

const char *const simdata_syncro_asset_type_names[SIMDATA_SYNCRO_NASSET_TYPES] = {
	"Windows Workstation", "Mac", "Network Device", "Printer", "Server",
};

static const char *const business_words[] = {
	"Acme", "Bluebird", "Cedar", "Delta", "Evergreen", "Foxglove", "Granite", "Harbor",
	"Ironwood", "Juniper", "Keystone", "Lakeside", "Maple", "Northwind", "Oakridge",
	"Pioneer",
};
static const char *const business_kinds[] = {
	"Dental", "Law Group", "Accounting", "Logistics", "Clinic", "Realty", "Bakery",
	"Architects",
};
static const char *const first_names[] = {
	"Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas",
	"Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya",
};
static const char *const last_names[] = {
	"Adams", "Brown", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad",
	"Ivanova", "Jensen", "Kim", "Lopez", "Moreau", "Nakamura", "Okafor", "Patel",
};

/* ------------------------------------------------------------------ */
/* values */

static uint64_t key_of(uint64_t seed, uint64_t kind, uint64_t index)
{
	return simdata_mix64(simdata_mix64(seed ^ (kind << 60)) ^ index);
}

/* "2024-03-01T12:34:56.789Z" for ms milliseconds since the epoch. */
static void iso_ms(char out[32], unsigned long long ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char date[24];
	gmtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%.19s.%03uZ", date, (unsigned)(ms % 1000));
}

/* A bijection of [0, 2^40): odd multiplications and xor-shifts, each
 * invertible modulo 2^40. */
static uint64_t permute40(uint64_t x, uint64_t seed)
{
	x = (x ^ (seed & M40)) & M40;
	x = (x * UINT64_C(0x9E3779B97F)) & M40; /* odd */
	x ^= x >> 19;
	x = (x * UINT64_C(0xC2B2AE3D27)) & M40; /* odd */
	x ^= x >> 17;
	return x;
}

void simdata_syncro_customer(const struct simdata_syncro_options *opt, uint64_t c,
			     struct simdata_syncro_customer *out)
{
	uint64_t h = key_of(opt->seed, 1, c);
	unsigned long long created = (T0 - 400ULL * 86400) * 1000 + h % (200 * DAY_MS);

	memset(out, 0, sizeof(*out));
	out->id = (long long)(SIMDATA_SYNCRO_CUSTOMER_ID_BASE + c);
	snprintf(out->business_name, sizeof(out->business_name), "%s %s %llu",
		 business_words[c % ARRAY_SIZE(business_words)],
		 business_kinds[(h >> 8) % ARRAY_SIZE(business_kinds)], (unsigned long long)c);
	snprintf(out->firstname, sizeof(out->firstname), "%s",
		 first_names[(h >> 16) % ARRAY_SIZE(first_names)]);
	snprintf(out->lastname, sizeof(out->lastname), "%s",
		 last_names[(h >> 24) % ARRAY_SIZE(last_names)]);
	snprintf(out->email, sizeof(out->email), "office@customer%llu.example",
		 (unsigned long long)c);
	iso_ms(out->created_at, created);
	iso_ms(out->updated_at, created + (h >> 32) % (150 * DAY_MS));
	out->disabled = simdata_syncro_customer_disabled(c);
}

/* Eight customers of every nine are enabled: the fifth of each nine
 * (c % 9 == 4) is not. */
uint64_t simdata_syncro_enabled_customers(uint64_t n)
{
	uint64_t rest = n % 9;
	return n / 9 * 8 + (rest <= 4 ? rest : rest - 1);
}

uint64_t simdata_syncro_enabled_customer(uint64_t k)
{
	uint64_t rest = k % 8;
	return k / 8 * 9 + (rest < 4 ? rest : rest + 1);
}

void simdata_syncro_contact(const struct simdata_syncro_options *opt, uint64_t k,
			    struct simdata_syncro_contact *out)
{
	uint64_t h = key_of(opt->seed, 2, k);
	uint64_t per = opt->contacts_per_customer ? opt->contacts_per_customer : 1;

	memset(out, 0, sizeof(*out));
	out->id = (long long)(SIMDATA_SYNCRO_CONTACT_ID_BASE + k);
	out->customer_id = (long long)(SIMDATA_SYNCRO_CUSTOMER_ID_BASE + k / per);
	snprintf(out->name, sizeof(out->name), "%s %s", first_names[h % ARRAY_SIZE(first_names)],
		 last_names[(h >> 8) % ARRAY_SIZE(last_names)]);
	snprintf(out->email, sizeof(out->email), "contact%llu@customer%llu.example",
		 (unsigned long long)k, (unsigned long long)(k / per));
}

void simdata_syncro_asset(const struct simdata_syncro_options *opt, uint64_t i,
			  struct simdata_syncro_asset *out)
{
	static const char *const agent_types[] = {"Windows Workstation", "Mac", "Server"};
	uint64_t h = key_of(opt->seed, 3, i);
	uint64_t customers = opt->customers ? opt->customers : 1;
	unsigned long long created = (T0 - 365ULL * 86400) * 1000 + h % (300 * DAY_MS);

	memset(out, 0, sizeof(*out));
	out->index = i;
	out->id = (long long)(SIMDATA_SYNCRO_ASSET_ID_BASE + i);
	out->customer_index = i % customers;
	out->customer_id = (long long)(SIMDATA_SYNCRO_CUSTOMER_ID_BASE + out->customer_index);
	out->has_contact = i % 4 != 1 && opt->contacts_per_customer > 0;
	if (out->has_contact)
		out->contact_id = (long long)(SIMDATA_SYNCRO_CONTACT_ID_BASE +
					      out->customer_index * opt->contacts_per_customer +
					      (i / customers) % opt->contacts_per_customer);
	iso_ms(out->created_at, created);
	iso_ms(out->updated_at, created + (h >> 24) % (60 * DAY_MS));
	out->agent_managed = i % 3 == 0;
	out->asset_type = out->agent_managed
				  ? agent_types[(h >> 40) % ARRAY_SIZE(agent_types)]
				  : simdata_syncro_asset_type_names[(h >> 40) % SIMDATA_SYNCRO_NASSET_TYPES];
	out->has_serial = i % 10 != 7;
	if (out->has_serial)
		snprintf(out->asset_serial, sizeof(out->asset_serial), "SR%010llX",
			 (unsigned long long)permute40(i, opt->seed));
	out->notes_pair = i % 4 == 2;
	if (i % 50 == 11)
		snprintf(out->name, sizeof(out->name), "Front desk \"%llu\" \\ caf\xc3\xa9",
			 (unsigned long long)i);
	else
		snprintf(out->name, sizeof(out->name), "%c%llu-%s-%05llu",
			 "WMNPS"[(h >> 40) % 5], (unsigned long long)out->customer_index,
			 out->agent_managed ? "AGENT" : "ASSET", (unsigned long long)i);
	if (out->agent_managed) {
		if (strcmp(out->asset_type, "Mac") == 0) {
			snprintf(out->manufacturer, sizeof(out->manufacturer), "Apple Inc.");
			snprintf(out->model, sizeof(out->model), "MacBookPro18,%u",
				 (unsigned)(1 + (h >> 48) % 4));
			snprintf(out->os_name, sizeof(out->os_name), "macOS 14.%u",
				 (unsigned)((h >> 52) % 5));
			snprintf(out->os_build, sizeof(out->os_build), "23E%u",
				 (unsigned)(100 + (h >> 20) % 150));
		} else {
			snprintf(out->manufacturer, sizeof(out->manufacturer), "%s",
				 (h >> 48) % 2 ? "Dell Inc." : "LENOVO");
			snprintf(out->model, sizeof(out->model), "%s %u",
				 (h >> 48) % 2 ? "OptiPlex" : "ThinkCentre M",
				 (unsigned)(3000 + (h >> 20) % 1000));
			snprintf(out->os_name, sizeof(out->os_name), "%s",
				 strcmp(out->asset_type, "Server") == 0
					 ? "Microsoft Windows Server 2022 Standard"
					 : "Microsoft Windows 11 Pro");
			snprintf(out->os_build, sizeof(out->os_build), "%u",
				 (unsigned)(22000 + (h >> 52) % 700));
		}
	}
}

/* ------------------------------------------------------------------ */
/* JSON */

static void put_string(struct buf *b, const char *s)
{
	buf_putc(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf_putc(b, '\\');
			buf_putc(b, (char)c);
		} else if (c < 0x20) {
			buf_printf(b, "\\u%04x", c);
		} else {
			buf_putc(b, (char)c);
		}
	}
	buf_putc(b, '"');
}

static void put_key_string(struct buf *b, const char *key, const char *value)
{
	buf_printf(b, "\"%s\":", key);
	put_string(b, value);
}

void simdata_syncro_customer_json(const struct simdata_syncro_customer *cust, struct buf *out)
{
	uint64_t c = (uint64_t)cust->id - SIMDATA_SYNCRO_CUSTOMER_ID_BASE;

	buf_printf(out, "{\"id\":%lld,", cust->id);
	put_key_string(out, "firstname", cust->firstname);
	buf_putc(out, ',');
	put_key_string(out, "lastname", cust->lastname);
	buf_printf(out, ",\"fullname\":\"%s %s\",", cust->firstname, cust->lastname);
	put_key_string(out, "business_name", cust->business_name);
	buf_putc(out, ',');
	put_key_string(out, "email", cust->email);
	buf_printf(out, ",\"phone\":\"555-01%02llu\",\"mobile\":null,", (unsigned long long)(c % 100));
	buf_printf(out, "\"created_at\":\"%s\",\"updated_at\":\"%s\",", cust->created_at,
		   cust->updated_at);
	buf_printf(out, "\"pdf_url\":null,\"address\":\"%llu Main Street\",\"address_2\":null,"
		   "\"city\":\"Springfield\",\"state\":\"IL\",\"zip\":\"627%02llu\",",
		   (unsigned long long)(100 + c), (unsigned long long)(c % 100));
	buf_printf(out, "\"latitude\":null,\"longitude\":null,\"notes\":\"\","
		   "\"get_sms\":false,\"opt_out\":false,\"disabled\":%s,\"no_email\":false,"
		   "\"location_name\":null,\"location_id\":null,\"properties\":{},"
		   "\"online_profile_url\":\"https://sim.example/p/%lld\",\"tax_rate_id\":null,"
		   "\"notification_email\":null,\"invoice_cc_emails\":null,"
		   "\"invoice_term_id\":null,\"referred_by\":\"\",\"ref_customer_id\":null,"
		   "\"business_and_full_name\":\"", cust->disabled ? "true" : "false", cust->id);
	/* business_name and the names hold no characters needing escapes */
	buf_printf(out, "%s - %s %s\",\"business_then_name\":\"%s\",\"contacts\":[]}",
		   cust->business_name, cust->firstname, cust->lastname, cust->business_name);
}

void simdata_syncro_contact_json(const struct simdata_syncro_contact *contact, struct buf *out)
{
	buf_printf(out, "{\"id\":%lld,", contact->id);
	put_key_string(out, "name", contact->name);
	buf_putc(out, ',');
	buf_printf(out, "\"address1\":null,\"address2\":null,\"city\":null,\"state\":null,"
		   "\"zip\":null,");
	put_key_string(out, "email", contact->email);
	buf_printf(out, ",\"phone\":null,\"mobile\":\"555-02%02lld\",\"latitude\":null,"
		   "\"longitude\":null,\"customer_id\":%lld,\"account_id\":1,\"notes\":null,"
		   "\"created_at\":\"2024-01-02T03:04:05.678Z\","
		   "\"updated_at\":\"2024-02-03T04:05:06.789Z\",\"vendor_id\":null,"
		   "\"properties\":{},\"opt_out\":false,\"extension\":null,\"processed_phone\":null,"
		   "\"processed_mobile\":null,\"ticket_matching_emails\":null}",
		   contact->id % 100, contact->customer_id);
}

static void put_kabuto(struct buf *b, const struct simdata_syncro_asset *a, uint64_t h)
{
	buf_puts(b, "\"kabuto_information\":{\"general\":{");
	put_key_string(b, "manufacturer", a->manufacturer);
	buf_putc(b, ',');
	put_key_string(b, "model", a->model);
	buf_putc(b, ',');
	if (a->has_serial)
		put_key_string(b, "serial_number", a->asset_serial);
	else
		buf_puts(b, "\"serial_number\":\"To Be Filled By O.E.M.\"");
	buf_printf(b, ",\"form_factor\":\"%s\"},\"os\":{", strcmp(a->asset_type, "Server") == 0
								 ? "Rack" : "Desktop");
	put_key_string(b, "name", a->os_name);
	buf_printf(b, ",\"build\":\"%s\",\"serial\":\"%05llu-%05llu\",\"install_date\":\"%s\"},",
		   a->os_build, (unsigned long long)(h % 100000),
		   (unsigned long long)((h >> 20) % 100000), a->created_at);
	buf_printf(b, "\"network_adapters\":[{\"name\":\"Ethernet\",\"mac\":"
		   "\"00:1A:2B:%02X:%02X:%02X\",\"ipv4\":\"10.%u.%u.%u\",\"speed\":\"1 Gbps\"}",
		   (unsigned)(h >> 8) & 0xff, (unsigned)(h >> 16) & 0xff, (unsigned)(h >> 24) & 0xff,
		   (unsigned)(a->customer_index % 256), (unsigned)(h >> 32) % 256,
		   (unsigned)(1 + (h >> 40) % 254));
	if (h % 2)
		buf_printf(b, ",{\"name\":\"Wi-Fi\",\"mac\":\"00:1A:2C:%02X:%02X:%02X\","
			   "\"ipv4\":null,\"speed\":\"866 Mbps\"}",
			   (unsigned)(h >> 8) & 0xff, (unsigned)(h >> 16) & 0xff,
			   (unsigned)(h >> 24) & 0xff);
	buf_printf(b, "],\"system_partition\":\"C:\",\"cpu\":[{\"name\":\"%s\",\"cores\":%u,"
		   "\"speed_mhz\":%u}],", strcmp(a->asset_type, "Mac") == 0 ? "Apple M1 Pro"
			   : "Intel(R) Core(TM) i5-12500", (unsigned)(4 << (h >> 44) % 3),
		   (unsigned)(2400 + (h >> 50) % 1200));
	buf_printf(b, "\"ram\":[{\"bank\":\"DIMM 0\",\"capacity_bytes\":%llu}],",
		   (unsigned long long)(8ULL << ((h >> 54) % 3)) << 30);
	buf_printf(b, "\"hdd\":[{\"name\":\"Disk 0\",\"size_bytes\":%llu,\"free_bytes\":%llu}]}",
		   (unsigned long long)(256ULL << ((h >> 57) % 3)) << 30,
		   (unsigned long long)((h >> 10) % (200ULL << 30)));
}

void simdata_syncro_asset_json(const struct simdata_syncro_options *opt,
			       const struct simdata_syncro_asset *a, struct buf *out)
{
	uint64_t h = key_of(opt->seed, 4, a->index);
	struct simdata_syncro_customer cust;

	buf_printf(out, "{\"id\":%lld,", a->id);
	put_key_string(out, "name", a->name);
	buf_printf(out, ",\"customer_id\":%lld,", a->customer_id);
	if (a->has_contact)
		buf_printf(out, "\"contact_id\":%lld,", a->contact_id);
	else
		buf_puts(out, "\"contact_id\":null,");
	buf_printf(out, "\"created_at\":\"%s\",\"updated_at\":\"%s\",", a->created_at,
		   a->updated_at);
	put_key_string(out, "asset_type", a->asset_type);
	buf_putc(out, ',');
	if (a->has_serial)
		put_key_string(out, "asset_serial", a->asset_serial);
	else
		buf_puts(out, "\"asset_serial\":null");
	if (a->agent_managed)
		buf_printf(out, ",\"external_rmm_link\":\"https://rmm.sim.example/device/%llx\",",
			   (unsigned long long)h);
	else
		buf_puts(out, ",\"external_rmm_link\":null,");

	buf_printf(out, "\"properties\":{\"Warranty Expiry\":\"%04u-%02u-%02u\","
		   "\"Purchase Order\":\"PO-%05llu\",\"Room Number\":\"%u\"",
		   (unsigned)(2025 + h % 4), (unsigned)(1 + (h >> 4) % 12),
		   (unsigned)(1 + (h >> 8) % 28), (unsigned long long)((h >> 12) % 100000),
		   (unsigned)(1 + (h >> 30) % 300));
	if (a->notes_pair)
		buf_printf(out, ",\"Notes\":\"Loaner %llu, check battery\","
			   "\"notes\":\"imported from the old PSA\"", (unsigned long long)a->index);
	if (a->agent_managed) {
		buf_putc(out, ',');
		put_kabuto(out, a, h);
	}
	buf_puts(out, "},");

	simdata_syncro_customer(opt, a->customer_index, &cust);
	buf_puts(out, "\"customer\":");
	simdata_syncro_customer_json(&cust, out);
	buf_printf(out, ",\"rmm_links\":[],\"rmm_store\":{\"id\":%llu,\"asset_id\":%lld,"
		   "\"override_alert_agent_offline_mins\":null,"
		   "\"override_alert_agent_rearm_after_mins\":null,"
		   "\"override_low_hd_threshold\":null,\"override_autoresolve_hd_alert\":\"false\","
		   "\"override_cpu_threshold\":null,\"override_autoresolve_cpu_alert\":\"false\","
		   "\"override_ram_threshold\":null,\"override_autoresolve_ram_alert\":\"false\","
		   "\"override_disable_alerts\":\"%s\",\"triggers\":{},\"created_at\":\"%s\","
		   "\"updated_at\":\"%s\"},",
		   (unsigned long long)(300000 + a->index), a->id, h % 7 == 0 ? "true" : "false",
		   a->created_at, a->updated_at);
	buf_printf(out, "\"address\":%s}", a->index % 5 == 0 ? "null" : "\"On site\"");
}
