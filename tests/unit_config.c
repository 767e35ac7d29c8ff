/* unit_config.c - the configuration file: defaults, every key, every error.
 *
 * Each test works in its own temporary directory (it chdir()s there, so
 * messages name "invsync.ini") and removes it at the end. */
#include "config.h"
#include "log.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CREDS                                   \
	"access_token = tok-aaaa-1111\n"        \
	"email = admin@example.org\n"           \
	"password = pw-bbbb-2222\n"

struct fixture {
	char dir[64];
	struct config cfg;
	struct buf err;
};

static void fx_init(struct fixture *fx)
{
	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/invsync-config-XXXXXX");
	ASSERT(mkdtemp(fx->dir) != NULL);
	ASSERT_EQ_INT(chdir(fx->dir), 0);
}

static void write_file(const char *name, const char *text, mode_t mode)
{
	FILE *f = fopen(name, "wb");
	ASSERT(f != NULL);
	ASSERT_EQ_INT(fwrite(text, 1, strlen(text), f), strlen(text));
	ASSERT_EQ_INT(fclose(f), 0);
	ASSERT_EQ_INT(chmod(name, mode), 0);
}

/* Write ini as invsync.ini and load it; returns config_load's result. */
static int fx_load(struct fixture *fx, const char *ini)
{
	write_file("invsync.ini", ini, 0600);
	buf_reset(&fx->err);
	return config_load(&fx->cfg, "invsync.ini", &fx->err);
}

/* Load ini expecting failure with exactly the message msg. */
static void fx_expect_error(struct fixture *fx, const char *ini, const char *msg)
{
	int rc = fx_load(fx, ini);
	if (rc != -EINVAL)
		test_fail(__FILE__, __LINE__, "expected -EINVAL for:\n%s\ngot %d", ini, rc);
	ASSERT_EQ_STR(buf_str(&fx->err), msg);
	/* A failed load leaves cfg zeroed. */
	ASSERT(fx->cfg.path == NULL && fx->cfg.sources == NULL && fx->cfg.nsources == 0);
}

static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	if (!d) {
		unlink(path);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char sub[512];
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		remove_tree(sub);
	}
	closedir(d);
	rmdir(path);
}

static void fx_done(struct fixture *fx)
{
	config_free(&fx->cfg);
	buf_free(&fx->err);
	ASSERT_EQ_INT(chdir("/"), 0);
	remove_tree(fx->dir);
	log_clear_secrets();
}

static bool is_redacted(const char *secret)
{
	struct buf b = BUF_INIT;
	log_redact(&b, secret);
	bool r = strcmp(buf_str(&b), "[redacted]") == 0;
	buf_free(&b);
	return r;
}

TEST(config_defaults_values)
{
	struct config cfg;
	config_defaults(&cfg);
	ASSERT_EQ_STR(cfg.conninfo, "");
	ASSERT_EQ_STR(cfg.schema, "invsync");
	ASSERT_EQ_INT(cfg.fetch.concurrency, 32);
	ASSERT_EQ_INT(cfg.fetch.per_host, 32);
	ASSERT_EQ_INT(cfg.fetch.window, 16);
	ASSERT_EQ_INT(cfg.fetch.connect_timeout_s, 10);
	ASSERT_EQ_INT(cfg.fetch.timeout_s, 60);
	ASSERT_EQ_INT(cfg.fetch.retries, 4);
	ASSERT_EQ_INT(cfg.fetch.retry_delay_ms, 500);
	ASSERT_EQ_INT(cfg.fetch.max_pages, 100000);
	ASSERT_EQ_INT(cfg.fetch.max_response_mb, 256);
	ASSERT_EQ_INT(cfg.fetch.first_byte_timeout_s, 30);
	ASSERT_EQ_INT(cfg.nsources, 0);
	ASSERT(cfg.sources == NULL);
	ASSERT_EQ_INT(cfg.warnings.len, 0);
	config_free(&cfg);
	ASSERT(cfg.conninfo == NULL && cfg.schema == NULL && cfg.fetch.concurrency == 0);
}

TEST(config_empty_file_gives_defaults)
{
	struct fixture fx;
	fx_init(&fx);
	ASSERT_EQ_INT(fx_load(&fx, "; nothing here\n\n# nor here\n"), 0);
	ASSERT_EQ_STR(fx.cfg.path, "invsync.ini");
	ASSERT_EQ_STR(fx.cfg.conninfo, "");
	ASSERT_EQ_STR(fx.cfg.schema, "invsync");
	ASSERT_EQ_INT(fx.cfg.fetch.max_pages, 100000);
	ASSERT_EQ_INT(fx.cfg.nsources, 0);
	ASSERT_EQ_STR(buf_str(&fx.err), "");
	fx_done(&fx);
}

TEST(config_every_key)
{
	struct fixture fx;
	fx_init(&fx);
	int rc = fx_load(&fx,
			 "[database]\n"
			 "conninfo = host=db.example.org dbname=inv user=sync\n"
			 "schema = inv_2026\n"
			 "[fetch]\n"
			 "concurrency = 64\n"
			 "per_host = 8\n"
			 "window = 256\n"
			 "connect_timeout = 600\n"
			 "timeout = 3600\n"
			 "retries = 0\n"
			 "retry_delay_ms = 600000\n"
			 "max_pages = 10000000\n"
			 "max_response_mb = 4096\n"
			 "first_byte_timeout = 0\n"
			 "[mosyle district-a]\n"
			 "base_url = https://mosyle.example.org/api/v2///\n"
			 CREDS
			 "first_page = 0\n"
			 "page_size = 250\n"
			 "os = iOS, mac\n"
			 "[syncro shop_1.b]\n"
			 "subdomain = acme-it\n"
			 "api_key = T0ken-syncro-xyz\n");
	ASSERT_EQ_STR(buf_str(&fx.err), "");
	ASSERT_EQ_INT(rc, 0);
	ASSERT_EQ_STR(fx.cfg.conninfo, "host=db.example.org dbname=inv user=sync");
	ASSERT_EQ_STR(fx.cfg.schema, "inv_2026");
	ASSERT_EQ_INT(fx.cfg.fetch.concurrency, 64);
	ASSERT_EQ_INT(fx.cfg.fetch.per_host, 8);
	ASSERT_EQ_INT(fx.cfg.fetch.window, 256);
	ASSERT_EQ_INT(fx.cfg.fetch.connect_timeout_s, 600);
	ASSERT_EQ_INT(fx.cfg.fetch.timeout_s, 3600);
	ASSERT_EQ_INT(fx.cfg.fetch.retries, 0);
	ASSERT_EQ_INT(fx.cfg.fetch.retry_delay_ms, 600000);
	ASSERT_EQ_INT(fx.cfg.fetch.max_pages, 10000000);
	ASSERT_EQ_INT(fx.cfg.fetch.max_response_mb, 4096);
	ASSERT_EQ_INT(fx.cfg.fetch.first_byte_timeout_s, 0);
	ASSERT_EQ_INT(fx.cfg.nsources, 2);

	struct config_source *m = &fx.cfg.sources[0];
	ASSERT_EQ_INT(m->kind, CONFIG_SOURCE_MOSYLE);
	ASSERT_EQ_STR(m->name, "district-a");
	ASSERT_EQ_STR(m->base_url, "https://mosyle.example.org/api/v2");
	ASSERT_EQ_STR(m->access_token, "tok-aaaa-1111");
	ASSERT_EQ_STR(m->email, "admin@example.org");
	ASSERT_EQ_STR(m->password, "pw-bbbb-2222");
	ASSERT_EQ_INT(m->first_page, 0);
	ASSERT_EQ_INT(m->page_size, 250);
	ASSERT_EQ_INT(m->os_mask, CONFIG_OS_IOS | CONFIG_OS_MAC);
	ASSERT_EQ_INT(m->line, 15);

	struct config_source *s = &fx.cfg.sources[1];
	ASSERT_EQ_INT(s->kind, CONFIG_SOURCE_SYNCRO);
	ASSERT_EQ_STR(s->name, "shop_1.b");
	ASSERT_EQ_STR(s->subdomain, "acme-it");
	ASSERT_EQ_STR(s->base_url, "https://acme-it.syncromsp.com/api/v1");
	ASSERT_EQ_STR(s->api_key, "T0ken-syncro-xyz");
	ASSERT_EQ_INT(s->line, 23);

	ASSERT(is_redacted("tok-aaaa-1111"));
	ASSERT(is_redacted("admin@example.org"));
	ASSERT(is_redacted("pw-bbbb-2222"));
	ASSERT(is_redacted("T0ken-syncro-xyz"));
	ASSERT_EQ_INT(fx.cfg.warnings.len, 0);

	config_free(&fx.cfg);
	ASSERT(fx.cfg.path == NULL && fx.cfg.sources == NULL && fx.cfg.nsources == 0);
	ASSERT(fx.cfg.conninfo == NULL && fx.cfg.warnings.data == NULL);
	fx_done(&fx);
}

TEST(config_mosyle_defaults_and_order)
{
	struct fixture fx;
	fx_init(&fx);
	ASSERT_EQ_INT(fx_load(&fx,
			      "[mosyle zeta]\n" CREDS
			      "[mosyle alpha]\n" CREDS
			      "  [ MOSYLE   mid ]  ; comment\n" CREDS),
		      0);
	ASSERT_EQ_INT(fx.cfg.nsources, 3);
	ASSERT_EQ_STR(fx.cfg.sources[0].name, "zeta");
	ASSERT_EQ_STR(fx.cfg.sources[1].name, "alpha");
	ASSERT_EQ_STR(fx.cfg.sources[2].name, "mid");
	ASSERT_EQ_INT(fx.cfg.sources[2].line, 9);
	for (size_t i = 0; i < 3; i++) {
		struct config_source *m = &fx.cfg.sources[i];
		ASSERT_EQ_STR(m->base_url, "https://managerapi.mosyle.com/v2");
		ASSERT_EQ_INT(m->first_page, 1);
		ASSERT_EQ_INT(m->page_size, 0);
		ASSERT_EQ_INT(m->os_mask, CONFIG_OS_ALL);
		ASSERT(m->api_key == NULL && m->subdomain == NULL);
	}
	fx_done(&fx);
}

TEST(config_syntax_details)
{
	struct fixture fx;
	fx_init(&fx);
	/* A BOM, CRLF line ends, indented keys (not continuation lines),
	 * inline comments, ':' as separator, an empty optional page_size. */
	ASSERT_EQ_INT(fx_load(&fx,
			      "\xEF\xBB\xBF[fetch]\r\n"
			      "    concurrency = 7 ; seven\r\n"
			      "    per_host: 3\r\n"
			      "[mosyle a]\n"
			      "\taccess_token = tok;with;semicolons\n"
			      "\temail = e@x.org\n"
			      "\tpassword = pw-pw-pw ; trailing comment\n"
			      "\tpage_size =           ; optional\n"),
		      0);
	ASSERT_EQ_INT(fx.cfg.fetch.concurrency, 7);
	ASSERT_EQ_INT(fx.cfg.fetch.per_host, 3);
	ASSERT_EQ_STR(fx.cfg.sources[0].access_token, "tok;with;semicolons");
	ASSERT_EQ_STR(fx.cfg.sources[0].password, "pw-pw-pw");
	ASSERT_EQ_INT(fx.cfg.sources[0].page_size, 0);
	fx_done(&fx);
}

TEST(config_fetch_integer_errors)
{
	static const struct {
		const char *line;
		const char *msg;
	} cases[] = {
		{"concurrency = 12abc", "key 'concurrency': '12abc' is not a whole number"},
		{"concurrency = 0", "key 'concurrency': must be from 1 to 1024 (got 0)"},
		{"concurrency = 1025", "key 'concurrency': must be from 1 to 1024 (got 1025)"},
		{"concurrency =", "key 'concurrency': '' is not a whole number"},
		{"concurrency = 1.5", "key 'concurrency': '1.5' is not a whole number"},
		{"concurrency = 0x10", "key 'concurrency': '0x10' is not a whole number"},
		{"per_host = 2000", "key 'per_host': must be from 1 to 1024 (got 2000)"},
		{"window = 257", "key 'window': must be from 1 to 256 (got 257)"},
		{"connect_timeout = 601", "key 'connect_timeout': must be from 1 to 600 (got 601)"},
		{"timeout = 0", "key 'timeout': must be from 1 to 3600 (got 0)"},
		{"retries = -1", "key 'retries': must be from 0 to 100 (got -1)"},
		{"retries = 101", "key 'retries': must be from 0 to 100 (got 101)"},
		{"retry_delay_ms = 600001", "key 'retry_delay_ms': must be from 0 to 600000 (got 600001)"},
		{"max_pages = 99999999999999999999999",
		 "key 'max_pages': must be from 1 to 10000000 (got 99999999999999999999999)"},
		{"max_pages = 0", "key 'max_pages': must be from 1 to 10000000 (got 0)"},
		{"max_response_mb = 0", "key 'max_response_mb': must be from 1 to 4096 (got 0)"},
		{"max_response_mb = 4097", "key 'max_response_mb': must be from 1 to 4096 (got 4097)"},
		{"max_response_mb = 1M", "key 'max_response_mb': '1M' is not a whole number"},
		{"first_byte_timeout = 3601",
		 "key 'first_byte_timeout': must be from 0 to 3600 (got 3601)"},
	};
	struct fixture fx;
	fx_init(&fx);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char ini[256], msg[256];
		snprintf(ini, sizeof(ini), "; comment\n[fetch]\n\n%s\n", cases[i].line);
		snprintf(msg, sizeof(msg), "invsync.ini:4: [fetch] %s", cases[i].msg);
		fx_expect_error(&fx, ini, msg);
	}
	fx_done(&fx);
}

TEST(config_mosyle_value_errors)
{
	struct fixture fx;
	fx_init(&fx);
	fx_expect_error(&fx, "[mosyle a]\n" CREDS "first_page = 2\n",
			"invsync.ini:5: [mosyle a] key 'first_page': must be 0 or 1 (got 2)");
	fx_expect_error(&fx, "[mosyle a]\n" CREDS "page_size = 10001\n",
			"invsync.ini:5: [mosyle a] key 'page_size': must be from 0 to 10000 (got 10001)");
	fx_expect_error(&fx, "[mosyle a]\nbase_url = ftp://x.org\n",
			"invsync.ini:2: [mosyle a] key 'base_url': must start with http:// or https://");
	fx_expect_error(&fx, "[mosyle a]\nbase_url = https:///v2\n",
			"invsync.ini:2: [mosyle a] key 'base_url': has no host name");
	fx_expect_error(&fx, "[mosyle a]\nbase_url = https://\n",
			"invsync.ini:2: [mosyle a] key 'base_url': has no host name");
	fx_expect_error(&fx, "[mosyle a]\nbase_url = https://a b\n",
			"invsync.ini:2: [mosyle a] key 'base_url': must not contain spaces or control characters");
	fx_expect_error(&fx, "[mosyle a]\nbase_url =\n",
			"invsync.ini:2: [mosyle a] key 'base_url': must start with http:// or https://");
	fx_expect_error(&fx, "[mosyle a]\naccess_token =\n",
			"invsync.ini:2: [mosyle a] key 'access_token': is empty");
	ASSERT_EQ_INT(fx_load(&fx, "[mosyle a]\n" CREDS "base_url = HTTP://localhost:8080/\n"), 0);
	ASSERT_EQ_STR(fx.cfg.sources[0].base_url, "HTTP://localhost:8080");
	fx_done(&fx);
}

TEST(config_os_list)
{
	static const struct {
		const char *value;
		unsigned mask;
	} ok[] = {
		{"ios", CONFIG_OS_IOS},
		{"mac", CONFIG_OS_MAC},
		{"tvos", CONFIG_OS_TVOS},
		{"visionos", CONFIG_OS_VISIONOS},
		{"IOS,,Mac", CONFIG_OS_IOS | CONFIG_OS_MAC},
		{"tvos tvos\tvisionOS", CONFIG_OS_TVOS | CONFIG_OS_VISIONOS},
		{"ios, mac, tvos, visionos", CONFIG_OS_ALL},
	};
	struct fixture fx;
	fx_init(&fx);
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		char ini[256];
		snprintf(ini, sizeof(ini), "[mosyle a]\n" CREDS "os = %s\n", ok[i].value);
		ASSERT_EQ_INT(fx_load(&fx, ini), 0);
		ASSERT_EQ_INT(fx.cfg.sources[0].os_mask, ok[i].mask);
		config_free(&fx.cfg);
	}
	fx_expect_error(&fx, "[mosyle a]\nos =\n",
			"invsync.ini:2: [mosyle a] key 'os': is empty (use any of ios, mac, tvos, visionos)");
	fx_expect_error(&fx, "[mosyle a]\nos = , ,\n",
			"invsync.ini:2: [mosyle a] key 'os': is empty (use any of ios, mac, tvos, visionos)");
	fx_expect_error(&fx, "[mosyle a]\nos = ios, android\n",
			"invsync.ini:2: [mosyle a] key 'os': unknown OS 'android' (use ios, mac, tvos or visionos)");
	ASSERT_EQ_STR(config_os_name(CONFIG_OS_IOS), "ios");
	ASSERT_EQ_STR(config_os_name(CONFIG_OS_MAC), "mac");
	ASSERT_EQ_STR(config_os_name(CONFIG_OS_TVOS), "tvos");
	ASSERT_EQ_STR(config_os_name(CONFIG_OS_VISIONOS), "visionos");
	fx_done(&fx);
}

TEST(config_schema)
{
	struct fixture fx;
	fx_init(&fx);
	char ini[256];
	snprintf(ini, sizeof(ini), "[database]\nschema = _%s\n",
		 "abcdefghijklmnopqrstuvwxyz0123456789_abcdefghijklmnopqrstuvwxy");
	ASSERT_EQ_INT(fx_load(&fx, ini), 0); /* 63 characters */
	ASSERT_EQ_INT(strlen(fx.cfg.schema), 63);
	config_free(&fx.cfg);
	snprintf(ini, sizeof(ini), "[database]\nschema = _%s\n",
		 "abcdefghijklmnopqrstuvwxyz0123456789_abcdefghijklmnopqrstuvwxyz");
	ASSERT_EQ_INT(fx_load(&fx, ini), -EINVAL);
	ASSERT_CONTAINS(buf_str(&fx.err), "invsync.ini:2: [database] key 'schema': '_abc");
	fx_expect_error(&fx, "[database]\nschema = Invsync\n",
			"invsync.ini:2: [database] key 'schema': 'Invsync' is not a valid schema name "
			"(use 1-63 of a-z, 0-9 and _, not starting with a digit)");
	fx_expect_error(&fx, "[database]\nschema = 1abc\n",
			"invsync.ini:2: [database] key 'schema': '1abc' is not a valid schema name "
			"(use 1-63 of a-z, 0-9 and _, not starting with a digit)");
	fx_expect_error(&fx, "[database]\nschema = a-b\n",
			"invsync.ini:2: [database] key 'schema': 'a-b' is not a valid schema name "
			"(use 1-63 of a-z, 0-9 and _, not starting with a digit)");
	fx_expect_error(&fx, "[database]\nschema =\n",
			"invsync.ini:2: [database] key 'schema': '' is not a valid schema name "
			"(use 1-63 of a-z, 0-9 and _, not starting with a digit)");
	fx_done(&fx);
}

TEST(config_lock_timeout_and_tablespace)
{
	struct fixture fx;
	fx_init(&fx);
	ASSERT_EQ_INT(fx_load(&fx, "[database]\nschema = s\n"), 0);
	ASSERT_EQ_INT(fx.cfg.lock_timeout_s, 60);
	ASSERT(fx.cfg.tablespace == NULL);
	config_free(&fx.cfg);
	ASSERT_EQ_INT(fx_load(&fx, "[database]\nlock_timeout = 0\ntablespace = Fast Disk\n"), 0);
	ASSERT_EQ_INT(fx.cfg.lock_timeout_s, 0);
	ASSERT_EQ_STR(fx.cfg.tablespace, "Fast Disk");
	config_free(&fx.cfg);
	ASSERT_EQ_INT(fx_load(&fx, "[database]\ntablespace =\n"), 0);
	ASSERT(fx.cfg.tablespace == NULL);
	config_free(&fx.cfg);
	fx_expect_error(&fx, "[database]\nlock_timeout = 86401\n",
			"invsync.ini:2: [database] key 'lock_timeout': must be from 0 to 86400 (got 86401)");
	fx_expect_error(&fx, "[database]\nlock_timeout = 2s\n",
			"invsync.ini:2: [database] key 'lock_timeout': '2s' is not a whole number");
	fx_expect_error(&fx, "[database]\ntablespace = a\x01z\n",
			"invsync.ini:2: [database] key 'tablespace': 'a\x01z' is not a valid tablespace"
			" name (at most 63 characters, no control characters)");
	fx_done(&fx);
}

TEST(config_structure_errors)
{
	struct fixture fx;
	fx_init(&fx);
	fx_expect_error(&fx, "[fetch]\n[foo]\n",
			"invsync.ini:2: unknown section [foo] (expected [database], [fetch], "
			"[mosyle NAME] or [syncro NAME])");
	fx_expect_error(&fx, "[jamf x]\n",
			"invsync.ini:1: unknown section [jamf x] (expected [database], [fetch], "
			"[mosyle NAME] or [syncro NAME])");
	fx_expect_error(&fx, "[fetch]\nconcurrency = 3\nwindows = 3\n",
			"invsync.ini:3: unknown key 'windows' in [fetch]");
	fx_expect_error(&fx, "[mosyle a]\nsubdomain = x\n",
			"invsync.ini:2: unknown key 'subdomain' in [mosyle a]");
	fx_expect_error(&fx, "; top\nconcurrency = 3\n",
			"invsync.ini:2: key 'concurrency' is outside any section");
	fx_expect_error(&fx, "[fetch]\nwindow = 3\n\nwindow = 4\n",
			"invsync.ini:4: [fetch] key 'window': duplicate key (first at line 2)");
	fx_expect_error(&fx, "[database]\nschema = a\n[fetch]\n[database]\n",
			"invsync.ini:4: duplicate section [database] (first at line 1)");
	fx_expect_error(&fx, "[fetch]\n[database]\n[fetch]\n",
			"invsync.ini:3: duplicate section [fetch] (first at line 1)");
	fx_expect_error(&fx, "[mosyle a]\n" CREDS "[syncro a]\n",
			"invsync.ini:5: duplicate source name 'a': [syncro a] here and [mosyle a] at line 1");
	fx_expect_error(&fx, "[mosyle a]\n" CREDS "[mosyle b]\n" CREDS "[mosyle a]\n",
			"invsync.ini:9: duplicate source name 'a': [mosyle a] here and [mosyle a] at line 1");
	fx_expect_error(&fx, "[mosyle]\n",
			"invsync.ini:1: section [mosyle] needs a name: [mosyle NAME]");
	fx_expect_error(&fx, "[syncro  ]\n",
			"invsync.ini:1: section [syncro] needs a name: [syncro NAME]");
	fx_expect_error(&fx, "[fetch x]\n", "invsync.ini:1: section [fetch] takes no name");
	fx_expect_error(&fx, "[mosyle a b]\n",
			"invsync.ini:1: [mosyle a b]: invalid name (use 1-64 of A-Z a-z 0-9 _ . -)");
	fx_expect_error(&fx, "[mosyle a/b]\n",
			"invsync.ini:1: [mosyle a/b]: invalid name (use 1-64 of A-Z a-z 0-9 _ . -)");
	fx_expect_error(&fx, "\n[fetch\n", "invsync.ini:2: section header without ']'");
	fx_expect_error(&fx, "[fetch] x\n", "invsync.ini:1: unexpected text after the section header");
	fx_expect_error(&fx, "[fetch]\nconcurrency 3\n",
			"invsync.ini:2: expected 'key = value' or a [section] header");
	fx_expect_error(&fx, "[fetch]\nconcurrency ; = 3\n",
			"invsync.ini:2: expected 'key = value' or a [section] header");

	/* A 64-character name is fine; 65 is not. */
	char ini[512];
	const char *n64 = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._";
	snprintf(ini, sizeof(ini), "[mosyle %s]\n" CREDS, n64);
	ASSERT_EQ_INT(fx_load(&fx, ini), 0);
	ASSERT_EQ_STR(fx.cfg.sources[0].name, n64);
	config_free(&fx.cfg);
	snprintf(ini, sizeof(ini), "[mosyle %s-]\n" CREDS, n64);
	ASSERT_EQ_INT(fx_load(&fx, ini), -EINVAL);
	ASSERT_CONTAINS(buf_str(&fx.err), ": invalid name (use 1-64");
	fx_done(&fx);
}

/* Lines longer than inih's line buffer are split by the same rules. */
TEST(config_long_lines)
{
	struct fixture fx;
	fx_init(&fx);
	char token[1001];
	memset(token, 'x', 1000);
	token[1000] = '\0';
	struct buf ini = BUF_INIT;
	buf_printf(&ini, "[mosyle a]\n"
			 "access_token = %s   ; a long token\n"
			 "email   :   %s@example.org\n"
			 "password = p;%s;\n", token, token, token);
	ASSERT_EQ_INT(fx_load(&fx, buf_str(&ini)), 0);
	ASSERT_EQ_STR(fx.cfg.sources[0].access_token, token);
	ASSERT_EQ_INT(strlen(fx.cfg.sources[0].email), 1000 + strlen("@example.org"));
	ASSERT_EQ_INT(strlen(fx.cfg.sources[0].password), 1003);
	config_free(&fx.cfg);

	buf_reset(&ini);
	buf_printf(&ini, "[mosyle a]\n\nno_such_key = %s\n", token);
	fx_expect_error(&fx, buf_str(&ini), "invsync.ini:3: unknown key 'no_such_key' in [mosyle a]");
	buf_reset(&ini);
	buf_printf(&ini, "[fetch]\n\nwindow = %s\n", token);
	ASSERT_EQ_INT(fx_load(&fx, buf_str(&ini)), -EINVAL);
	ASSERT_CONTAINS(buf_str(&fx.err), "invsync.ini:3: [fetch] key 'window': 'xxx");
	buf_free(&ini);
	fx_done(&fx);
}

TEST(config_missing_secrets)
{
	struct fixture fx;
	fx_init(&fx);
	fx_expect_error(&fx, "[fetch]\n[mosyle a]\nemail = e@x.org\npassword = pw-1\n[fetch]\n",
			"invsync.ini:2: [mosyle a] missing access_token "
			"(or access_token_file / access_token_env)");
	fx_expect_error(&fx, "[mosyle a]\naccess_token = t-1234\npassword = pw-1\n",
			"invsync.ini:1: [mosyle a] missing email (or email_file / email_env)");
	fx_expect_error(&fx, "[mosyle a]\naccess_token = t-1234\nemail = e@x.org\n[database]\n",
			"invsync.ini:1: [mosyle a] missing password (or password_file / password_env)");
	fx_done(&fx);
}

TEST(config_two_forms_of_one_secret)
{
	struct fixture fx;
	fx_init(&fx);
	setenv("INVSYNC_TEST_TOKEN", "env-token-5678", 1);
	fx_expect_error(&fx,
			"[mosyle a]\naccess_token = inline-token-1234\n"
			"access_token_env = INVSYNC_TEST_TOKEN\n",
			"invsync.ini:3: [mosyle a] key 'access_token_env': access_token is already "
			"given by 'access_token' at line 2; use only one of access_token, "
			"access_token_file and access_token_env");
	fx_expect_error(&fx,
			"[mosyle a]\naccess_token = inline-token-1234\naccess_token = other-token-99\n",
			"invsync.ini:3: [mosyle a] key 'access_token': duplicate key (first at line 2)");
	fx_expect_error(&fx, "[database]\nconninfo = host=x\nconninfo_file = y\n",
			"invsync.ini:3: [database] key 'conninfo_file': conninfo is already given by "
			"'conninfo' at line 2; use only one of conninfo, conninfo_file and conninfo_env");
	fx_done(&fx);
}

TEST(config_secrets_from_files)
{
	struct fixture fx;
	fx_init(&fx);
	ASSERT_EQ_INT(mkdir("conf", 0700), 0);
	ASSERT_EQ_INT(mkdir("conf/secrets", 0700), 0);
	write_file("conf/secrets/token", "file-token-0001\r\n \t\n", 0600);
	write_file("conf/secrets/email", "file@example.org", 0400);
	char abs[256];
	snprintf(abs, sizeof(abs), "%s/pw", fx.dir);
	write_file("pw", "file-password-02\n", 0600);
	char ini[512];
	snprintf(ini, sizeof(ini),
		 "[mosyle a]\n"
		 "access_token_file = secrets/token\n"
		 "email_file = secrets/email\n"
		 "password_file = %s\n", abs);
	write_file("conf/invsync.ini", ini, 0600);
	ASSERT_EQ_INT(config_load(&fx.cfg, "conf/invsync.ini", &fx.err), 0);
	ASSERT_EQ_STR(fx.cfg.sources[0].access_token, "file-token-0001");
	ASSERT_EQ_STR(fx.cfg.sources[0].email, "file@example.org");
	ASSERT_EQ_STR(fx.cfg.sources[0].password, "file-password-02");
	ASSERT_EQ_INT(fx.cfg.warnings.len, 0);
	ASSERT(is_redacted("file-token-0001"));
	ASSERT(is_redacted("file@example.org"));
	ASSERT(is_redacted("file-password-02"));
	fx_done(&fx);
}

TEST(config_secret_file_permissions)
{
	struct fixture fx;
	fx_init(&fx);
	write_file("tok", "readable-token-1\n", 0644);
	write_file("tok2", "group-token-0002\n", 0640);
	ASSERT_EQ_INT(fx_load(&fx,
			      "[mosyle a]\n"
			      "access_token_file = tok\n"
			      "email = e@x.org\n"
			      "password = pw-1\n"
			      "[syncro b]\n"
			      "subdomain = b\n"
			      "api_key_file = tok2\n"),
		      0);
	ASSERT_EQ_STR(buf_str(&fx.cfg.warnings),
		      "invsync.ini:2: secret file tok is readable by other users (chmod 600 it)\n"
		      "invsync.ini:7: secret file tok2 is readable by other users (chmod 600 it)\n");
	ASSERT_EQ_STR(fx.cfg.sources[1].api_key, "group-token-0002");
	config_free(&fx.cfg);

	write_file("tok", "writable-token-1\n", 0666);
	fx_expect_error(&fx, "[mosyle a]\n\naccess_token_file = tok\n",
			"invsync.ini:3: [mosyle a] key 'access_token_file': refusing to read secret "
			"file tok: it is world-writable");
	ASSERT(strstr(buf_str(&fx.err), "writable-token") == NULL);
	fx_done(&fx);
}

TEST(config_secret_file_errors)
{
	struct fixture fx;
	fx_init(&fx);
	write_file("empty", " \r\n\n", 0600);
	write_file("twolines", "line-one-secret\nline-two-secret\n", 0600);
	ASSERT_EQ_INT(mkdir("adir", 0700), 0);
	fx_expect_error(&fx, "[mosyle a]\npassword_file = empty\n",
			"invsync.ini:2: [mosyle a] key 'password_file': secret file empty is empty");
	fx_expect_error(&fx, "[mosyle a]\npassword_file = missing\n",
			"invsync.ini:2: [mosyle a] key 'password_file': cannot open secret file "
			"missing: No such file or directory");
	fx_expect_error(&fx, "[mosyle a]\npassword_file =\n",
			"invsync.ini:2: [mosyle a] key 'password_file': needs a file name");
	fx_expect_error(&fx, "[mosyle a]\npassword_file = adir\n",
			"invsync.ini:2: [mosyle a] key 'password_file': secret file adir is not a "
			"regular file");
	fx_expect_error(&fx, "[mosyle a]\npassword_file = twolines\n",
			"invsync.ini:2: [mosyle a] key 'password_file': secret file twolines holds "
			"more than one line");
	ASSERT(strstr(buf_str(&fx.err), "line-one") == NULL);

	struct buf big = BUF_INIT;
	for (int i = 0; i < 64 * 1024 + 1; i++)
		buf_putc(&big, 'k');
	write_file("big", buf_str(&big), 0600);
	fx_expect_error(&fx, "[mosyle a]\npassword_file = big\n",
			"invsync.ini:2: [mosyle a] key 'password_file': secret file big is larger "
			"than 64 KiB");
	/* Exactly 64 KiB is fine. */
	big.len--;
	big.data[big.len] = '\0';
	write_file("big", buf_str(&big), 0600);
	ASSERT_EQ_INT(fx_load(&fx, "[mosyle a]\n" "access_token = t-1234\nemail = e@x.org\n"
				   "password_file = big\n"), 0);
	ASSERT_EQ_INT(strlen(fx.cfg.sources[0].password), 64 * 1024);
	buf_free(&big);
	fx_done(&fx);
}

TEST(config_ca_file)
{
	struct fixture fx;
	fx_init(&fx);
	ASSERT_EQ_INT(mkdir("conf", 0700), 0);
	ASSERT_EQ_INT(mkdir("conf/tls", 0700), 0);
	/* only its existence is checked at load; curl reads the PEM */
	write_file("conf/tls/ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
	write_file("ca-abs.pem", "-----BEGIN CERTIFICATE-----\n", 0644);

	/* relative to the config file's directory, like secret files */
	write_file("conf/invsync.ini", "[fetch]\nca_file = tls/ca.pem ; the district CA\n", 0600);
	ASSERT_EQ_INT(config_load(&fx.cfg, "conf/invsync.ini", &fx.err), 0);
	ASSERT_EQ_STR(fx.cfg.fetch.ca_file, "conf/tls/ca.pem");
	ASSERT_EQ_INT(fx.cfg.warnings.len, 0);
	config_free(&fx.cfg);

	char ini[512];
	snprintf(ini, sizeof(ini), "[fetch]\nca_file = %s/ca-abs.pem\n", fx.dir);
	write_file("conf/invsync.ini", ini, 0600);
	ASSERT_EQ_INT(config_load(&fx.cfg, "conf/invsync.ini", &fx.err), 0);
	char abs[256];
	snprintf(abs, sizeof(abs), "%s/ca-abs.pem", fx.dir);
	ASSERT_EQ_STR(fx.cfg.fetch.ca_file, abs);
	config_free(&fx.cfg);

	/* unset by default: the system's CAs only */
	ASSERT_EQ_INT(fx_load(&fx, "[fetch]\nwindow = 2\n"), 0);
	ASSERT(fx.cfg.fetch.ca_file == NULL);
	config_free(&fx.cfg);

	fx_expect_error(&fx, "[fetch]\nca_file = missing.pem\n",
			"invsync.ini:2: [fetch] key 'ca_file': cannot open CA file missing.pem: "
			"No such file or directory");
	fx_expect_error(&fx, "[fetch]\n\nca_file =\n",
			"invsync.ini:3: [fetch] key 'ca_file': needs a file name");
	fx_expect_error(&fx, "[fetch]\nca_file = conf\n",
			"invsync.ini:2: [fetch] key 'ca_file': CA file conf is not a regular file");
	fx_expect_error(&fx, "[fetch]\nca_file = ca-abs.pem\nca_file = ca-abs.pem\n",
			"invsync.ini:3: [fetch] key 'ca_file': duplicate key (first at line 2)");
	fx_expect_error(&fx, "[mosyle a]\nca_file = ca-abs.pem\n",
			"invsync.ini:2: unknown key 'ca_file' in [mosyle a]");
	if (geteuid() != 0) {
		/* root reads whatever the mode says */
		write_file("unreadable.pem", "x\n", 0200);
		fx_expect_error(&fx, "[fetch]\nca_file = unreadable.pem\n",
				"invsync.ini:2: [fetch] key 'ca_file': cannot open CA file "
				"unreadable.pem: Permission denied");
	}
	fx_done(&fx);
}

TEST(config_secrets_from_env)
{
	struct fixture fx;
	fx_init(&fx);
	setenv("INVSYNC_T_TOKEN", "env-token-abcd", 1);
	setenv("INVSYNC_T_EMAIL", "env@example.org", 1);
	setenv("INVSYNC_T_PW", "env-password-1", 1);
	setenv("INVSYNC_T_EMPTY", "", 1);
	setenv("INVSYNC_T_NL", "two\nlines", 1);
	unsetenv("INVSYNC_T_UNSET");
	ASSERT_EQ_INT(fx_load(&fx,
			      "[mosyle a]\n"
			      "access_token_env = INVSYNC_T_TOKEN\n"
			      "email_env = INVSYNC_T_EMAIL\n"
			      "password_env = INVSYNC_T_PW\n"),
		      0);
	ASSERT_EQ_STR(fx.cfg.sources[0].access_token, "env-token-abcd");
	ASSERT_EQ_STR(fx.cfg.sources[0].email, "env@example.org");
	ASSERT_EQ_STR(fx.cfg.sources[0].password, "env-password-1");
	ASSERT(is_redacted("env-token-abcd"));
	ASSERT(is_redacted("env@example.org"));
	ASSERT(is_redacted("env-password-1"));
	config_free(&fx.cfg);

	fx_expect_error(&fx, "[syncro s]\napi_key_env = INVSYNC_T_UNSET\n",
			"invsync.ini:2: [syncro s] key 'api_key_env': environment variable "
			"INVSYNC_T_UNSET is not set");
	fx_expect_error(&fx, "[syncro s]\napi_key_env = INVSYNC_T_EMPTY\n",
			"invsync.ini:2: [syncro s] key 'api_key_env': environment variable "
			"INVSYNC_T_EMPTY is empty");
	fx_expect_error(&fx, "[syncro s]\napi_key_env =\n",
			"invsync.ini:2: [syncro s] key 'api_key_env': needs the name of an "
			"environment variable");
	fx_expect_error(&fx, "[syncro s]\napi_key_env = INVSYNC_T_NL\n",
			"invsync.ini:2: [syncro s] key 'api_key_env': environment variable "
			"INVSYNC_T_NL holds more than one line");
	fx_done(&fx);
}

TEST(config_secret_never_in_errors)
{
	struct fixture fx;
	fx_init(&fx);
	fx_expect_error(&fx,
			"[mosyle a]\naccess_token = first-secret-1\naccess_token = second-secret-2\n",
			"invsync.ini:3: [mosyle a] key 'access_token': duplicate key (first at line 2)");
	fx_expect_error(&fx, "[database]\nconninfo = host=x password=hunter2-pw 'oops\n",
			"invsync.ini:2: [database] key 'conninfo': is not a valid PostgreSQL connection "
			"string or URI (not shown: it may hold a password)");
	fx_expect_error(&fx, "[database]\nconninfo = host=x password=hunter2-pw bogus=1\n",
			"invsync.ini:2: [database] key 'conninfo': is not a valid PostgreSQL connection "
			"string or URI (not shown: it may hold a password)");
	fx_expect_error(&fx, "[database]\nconninfo = postgresql://u:hunter2-pw%zz@host/db\n",
			"invsync.ini:2: [database] key 'conninfo': is not a valid PostgreSQL connection "
			"string or URI (not shown: it may hold a password)");
	fx_expect_error(&fx, "[mosyle a]\nbase_url = ftp://user:hunter2-pw@host\n",
			"invsync.ini:2: [mosyle a] key 'base_url': must start with http:// or https://");
	fx_done(&fx);
}

TEST(config_conninfo)
{
	struct fixture fx;
	fx_init(&fx);
	ASSERT_EQ_INT(fx_load(&fx, "[database]\nconninfo = host=db user=u password='se cret\\'pw'\n"), 0);
	ASSERT_EQ_STR(fx.cfg.conninfo, "host=db user=u password='se cret\\'pw'");
	ASSERT(is_redacted("se cret'pw"));
	ASSERT(!is_redacted("host=db"));
	config_free(&fx.cfg);
	log_clear_secrets();

	ASSERT_EQ_INT(fx_load(&fx, "[database]\nconninfo = postgresql://sync:p%40ss-word@db:5432/inv?sslmode=require\n"), 0);
	ASSERT(is_redacted("p@ss-word"));
	ASSERT(is_redacted("p%40ss-word"));
	config_free(&fx.cfg);
	log_clear_secrets();

	ASSERT_EQ_INT(fx_load(&fx, "[database]\nconninfo = postgres://db/inv?password=q%20pass1&user=x\n"), 0);
	ASSERT(is_redacted("q pass1"));
	ASSERT(is_redacted("q%20pass1"));
	config_free(&fx.cfg);
	log_clear_secrets();

	/* No password: nothing registered, the empty conninfo is fine. */
	ASSERT_EQ_INT(fx_load(&fx, "[database]\nconninfo =\n"), 0);
	ASSERT_EQ_STR(fx.cfg.conninfo, "");
	config_free(&fx.cfg);

	write_file("pg", "dbname=inv password=file-pg-pw\n", 0600);
	setenv("INVSYNC_T_PG", "dbname=inv password=env-pg-pw", 1);
	ASSERT_EQ_INT(fx_load(&fx, "[database]\nconninfo_file = pg\n"), 0);
	ASSERT_EQ_STR(fx.cfg.conninfo, "dbname=inv password=file-pg-pw");
	ASSERT(is_redacted("file-pg-pw"));
	config_free(&fx.cfg);
	ASSERT_EQ_INT(fx_load(&fx, "[database]\nconninfo_env = INVSYNC_T_PG\n"), 0);
	ASSERT_EQ_STR(fx.cfg.conninfo, "dbname=inv password=env-pg-pw");
	ASSERT(is_redacted("env-pg-pw"));
	fx_done(&fx);
}

TEST(config_syncro)
{
	struct fixture fx;
	fx_init(&fx);
	ASSERT_EQ_INT(fx_load(&fx,
			      "[syncro one]\n"
			      "base_url = http://127.0.0.1:8081/api/v1/\n"
			      "api_key = key-one-1234\n"
			      "[syncro two]\n"
			      "subdomain = 0-two\n"
			      "base_url = https://proxy.example.org/syncro\n"
			      "api_key = key-two-1234\n"),
		      0);
	ASSERT_EQ_INT(fx.cfg.nsources, 2);
	ASSERT_EQ_STR(fx.cfg.sources[0].base_url, "http://127.0.0.1:8081/api/v1");
	ASSERT(fx.cfg.sources[0].subdomain == NULL);
	ASSERT_EQ_STR(fx.cfg.sources[1].base_url, "https://proxy.example.org/syncro");
	ASSERT_EQ_STR(fx.cfg.sources[1].subdomain, "0-two");
	ASSERT(fx.cfg.sources[1].access_token == NULL && fx.cfg.sources[1].os_mask == 0);
	config_free(&fx.cfg);

	fx_expect_error(&fx, "[syncro s]\napi_key = key-1234\n[fetch]\n",
			"invsync.ini:1: [syncro s] missing subdomain (or base_url)");
	fx_expect_error(&fx, "[syncro s]\nsubdomain = s\n",
			"invsync.ini:1: [syncro s] missing api_key (or api_key_file / api_key_env)");
	fx_expect_error(&fx, "[syncro s]\nsubdomain = Acme\n",
			"invsync.ini:2: [syncro s] key 'subdomain': 'Acme' is not a valid subdomain "
			"(use 1-63 of a-z, 0-9 and -, as in NAME.syncromsp.com)");
	fx_expect_error(&fx, "[syncro s]\nsubdomain =\n",
			"invsync.ini:2: [syncro s] key 'subdomain': '' is not a valid subdomain "
			"(use 1-63 of a-z, 0-9 and -, as in NAME.syncromsp.com)");
	fx_expect_error(&fx, "[syncro s]\nsubdomain = a.b\n",
			"invsync.ini:2: [syncro s] key 'subdomain': 'a.b' is not a valid subdomain "
			"(use 1-63 of a-z, 0-9 and -, as in NAME.syncromsp.com)");
	fx_expect_error(&fx, "[syncro s]\nemail = x\n",
			"invsync.ini:2: unknown key 'email' in [syncro s]");
	fx_done(&fx);
}

TEST(config_unreadable_file)
{
	struct config cfg;
	struct buf err = BUF_INIT;
	ASSERT_EQ_INT(config_load(&cfg, "/nonexistent/invsync.ini", &err), -ENOENT);
	ASSERT_EQ_STR(buf_str(&err), "/nonexistent/invsync.ini: cannot open: No such file or directory");
	ASSERT(cfg.path == NULL && cfg.conninfo == NULL && cfg.schema == NULL);
	buf_free(&err);

	struct fixture fx;
	fx_init(&fx);
	write_file("nul.ini", "[fetch]\nwindow = 1", 0600);
	FILE *f = fopen("nul.ini", "ab");
	ASSERT(f != NULL);
	fputc('\0', f);
	fputs("2\n", f);
	fclose(f);
	ASSERT_EQ_INT(config_load(&fx.cfg, "nul.ini", &fx.err), -EINVAL);
	ASSERT_EQ_STR(buf_str(&fx.err), "nul.ini:2: line contains a NUL byte");
	fx_done(&fx);
}

TEST(config_endpoints_egress_and_budget)
{
	struct fixture fx;
	fx_init(&fx);
	ASSERT_EQ_INT(fx_load(&fx,
			      "[fetch]\nsyncro_requests_per_minute = 1800\nsyncro_safety_margin = 5\n"
			      "syncro_backoff = 65\n"
			      "[mosyle a]\n" CREDS "endpoints = users,, devices admin_logs\n"
			      "token_renew_after = 3600\n"
			      "[syncro s]\nsubdomain = s\napi_key = key-1234\nendpoints = assets\n"
			      "egress = office-2\n"
			      "[syncro t]\nsubdomain = t\napi_key = key-5678\n"),
		      0);
	ASSERT_EQ_INT(fx.cfg.fetch.syncro_per_minute, 1800);
	ASSERT_EQ_INT(fx.cfg.fetch.syncro_margin_pct, 5);
	ASSERT_EQ_INT(fx.cfg.fetch.syncro_backoff_s, 65);
	const struct config_source *a = &fx.cfg.sources[0], *s = &fx.cfg.sources[1];
	const struct config_source *t = &fx.cfg.sources[2];
	/* kept in the kind's own order, whatever the order written */
	ASSERT_EQ_STR(a->endpoints[0], "devices");
	ASSERT_EQ_STR(a->endpoints[1], "users");
	ASSERT_EQ_STR(a->endpoints[2], "admin_logs");
	ASSERT(a->endpoints[3] == NULL);
	ASSERT(config_source_wants(a, "users") && !config_source_wants(a, "classes"));
	ASSERT_EQ_INT(a->token_renew_after_s, 3600);
	ASSERT(config_source_wants(s, "assets") && !config_source_wants(s, "contacts"));
	ASSERT_EQ_STR(s->egress, "office-2");
	/* defaults: every endpoint, the default egress */
	ASSERT(t->endpoints == NULL && t->egress == NULL);
	ASSERT(config_source_wants(t, "contacts"));
	config_free(&fx.cfg);
	ASSERT_EQ_INT(fx_load(&fx, "[mosyle a]\n" CREDS), 0);
	ASSERT_EQ_INT(fx.cfg.fetch.syncro_per_minute, 180);
	ASSERT_EQ_INT(fx.cfg.fetch.syncro_margin_pct, 2);
	ASSERT_EQ_INT(fx.cfg.fetch.syncro_backoff_s, 60);
	ASSERT_EQ_INT(fx.cfg.sources[0].token_renew_after_s, 23 * 3600);
	config_free(&fx.cfg);

	fx_expect_error(&fx, "[mosyle a]\nendpoints = devices, assets\n",
			"invsync.ini:2: [mosyle a] key 'endpoints': unknown endpoint 'assets' (use any"
			" of devices, users, classes, device_groups, device_group_members, accounts,"
			" custom_attributes, admin_logs)");
	fx_expect_error(&fx, "[syncro s]\nendpoints = devices\n",
			"invsync.ini:2: [syncro s] key 'endpoints': unknown endpoint 'devices' (use any"
			" of assets, customers, contacts, asset_types)");
	fx_expect_error(&fx, "[syncro s]\nendpoints = ,\n",
			"invsync.ini:2: [syncro s] key 'endpoints': is empty (leave it out to load"
			" every endpoint)");
	fx_expect_error(&fx, "[syncro s]\negress = two words\n",
			"invsync.ini:2: [syncro s] key 'egress': 'two words' is not a valid egress"
			" name (use 1-64 of A-Z a-z 0-9 _ . -)");
	fx_expect_error(&fx, "[mosyle a]\negress = x\n",
			"invsync.ini:2: unknown key 'egress' in [mosyle a]");
	fx_done(&fx);
}

/* The LoadCredential= lines of a unit in contrib/systemd, as "ID:PATH"
 * strings in file order, into creds (at most max); returns how many. */
static int unit_credentials(const char *unit, char creds[][128], int max)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/contrib/systemd/%s", getenv("INVSYNC_SRCDIR"), unit);
	FILE *f = fopen(path, "r");
	ASSERT(f != NULL);
	char line[512];
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "LoadCredential=", 15) != 0)
			continue;
		line[strcspn(line, "\r\n")] = '\0';
		size_t len = strlen(line + 15);
		ASSERT(n < max && len < 128);
		memcpy(creds[n++], line + 15, len + 1);
	}
	fclose(f);
	return n;
}

/* contrib/invsync.ini.example loads, and names exactly the secret files
 * the systemd units hand over as credentials: run from a directory holding
 * one file per LoadCredential= ID (as $CREDENTIALS_DIRECTORY does), every
 * relative *_file of the example resolves. Both units list the same
 * credentials, each read from /etc/invsync/ID, so the example also works
 * when root runs invsync by hand on /etc/invsync/invsync.ini. */
TEST(config_contrib_example_and_units)
{
	char sync_creds[16][128], check_creds[16][128];
	int n = unit_credentials("invsync.service", sync_creds, 16);
	int m = unit_credentials("invsync-check.service", check_creds, 16);
	ASSERT(n > 1);
	ASSERT_EQ_INT(m, n);
	for (int i = 0; i < n; i++) {
		ASSERT_EQ_STR(check_creds[i], sync_creds[i]);
		char *colon = strchr(sync_creds[i], ':');
		ASSERT(colon != NULL);
		*colon = '\0';
		char want[160];
		snprintf(want, sizeof(want), "/etc/invsync/%s", sync_creds[i]);
		ASSERT_EQ_STR(colon + 1, want);
	}
	ASSERT_EQ_STR(sync_creds[0], "invsync.ini");

	char example[512];
	snprintf(example, sizeof(example), "%s/contrib/invsync.ini.example",
		 getenv("INVSYNC_SRCDIR"));
	FILE *f = fopen(example, "r");
	ASSERT(f != NULL);
	struct buf text = BUF_INIT;
	char chunk[4096];
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&text, chunk, got);
	fclose(f);

	struct fixture fx;
	fx_init(&fx);
	write_file("invsync.ini", buf_str(&text), 0400);
	buf_free(&text);
	for (int i = 1; i < n; i++) {
		char secret[200];
		if (strcmp(sync_creds[i], "pg-conninfo") == 0)
			snprintf(secret, sizeof(secret),
				 "host=db.example.org dbname=inventory user=invsync password=pw-%d", i);
		else
			snprintf(secret, sizeof(secret), "secret-%s-%d\n", sync_creds[i], i);
		write_file(sync_creds[i], secret, 0400);
	}
	if (config_load(&fx.cfg, "invsync.ini", &fx.err) != 0)
		test_fail(__FILE__, __LINE__, "contrib/invsync.ini.example: %s", buf_str(&fx.err));
	ASSERT_EQ_INT(fx.cfg.warnings.len, 0);
	ASSERT_EQ_INT(fx.cfg.nsources, 3);
	ASSERT_EQ_STR(fx.cfg.sources[0].name, "district");
	ASSERT_EQ_INT(fx.cfg.sources[0].kind, CONFIG_SOURCE_MOSYLE);
	ASSERT(strncmp(fx.cfg.sources[0].password, "secret-mosyle-password-", 23) == 0);
	ASSERT_EQ_STR(fx.cfg.sources[1].name, "acme");
	ASSERT_EQ_INT(fx.cfg.sources[1].kind, CONFIG_SOURCE_SYNCRO);
	ASSERT_EQ_STR(fx.cfg.sources[2].name, "beta");
	ASSERT_EQ_INT(fx.cfg.sources[2].kind, CONFIG_SOURCE_SYNCRO);
	ASSERT(strncmp(fx.cfg.conninfo, "host=db.example.org", 19) == 0);
	fx_done(&fx);
}
