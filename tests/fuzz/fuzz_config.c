/* fuzz_config.c - libFuzzer target for the configuration parser.
 *
 * Each input is written as invsync.ini into a private temporary directory
 * and loaded with config_load(), then freed (leaks are reported by the
 * sanitizer). The directory also holds a few secret files (one private, one
 * readable by others, one world-writable, an empty one, one of two lines)
 * and the environment a few variables, so that inputs naming them with
 * *_file and *_env reach both the accepting and the refusing paths.
 *
 * What must hold for every input:
 *   - a failed load returns a negative code, leaves cfg zeroed and puts one
 *     line into err that starts with the file's name;
 *   - a successful load leaves err empty and every value inside its
 *     documented range: schema and source names well formed and unique,
 *     base URLs with a scheme and no trailing '/', every Mosyle source with
 *     its three secrets, every Syncro source with its key;
 *   - every secret of four bytes or more is registered for redaction, and
 *     none holds a newline;
 *   - each warning is a whole line.
 *
 * Build: make -f tests/fuzz/Makefile.fuzz; run: make -f tests/fuzz/Makefile.fuzz run-config
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",      \
				__FILE__, __LINE__, #cond);                   \
			abort();                                              \
		}                                                             \
	} while (0)

static char dir[256];
static char ini_path[300];

static const struct {
	const char *name;
	const char *text;
	mode_t mode;
} secret_files[] = {
	{"token", "fuzz-token-from-file\n", 0600},
	{"shared", "shared-secret-value\n", 0644},
	{"writable", "writable-secret-value\n", 0666},
	{"empty", "", 0600},
	{"twolines", "first-line\nsecond-line\n", 0600},
};

static void write_file(const char *path, const void *data, size_t size, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	const char *p = data;
	while (size > 0) {
		ssize_t n = write(fd, p, size);
		if (n < 0 && errno == EINTR)
			continue;
		CHECK(n > 0);
		p += n;
		size -= (size_t)n;
	}
	CHECK(fchmod(fd, mode) == 0); /* not subject to the umask */
	CHECK(close(fd) == 0);
}

static void remove_dir(void)
{
	char path[320];
	for (size_t i = 0; i < sizeof(secret_files) / sizeof(secret_files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, secret_files[i].name);
		unlink(path);
	}
	unlink(ini_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/invsync-fuzz-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(ini_path, sizeof(ini_path), "%s/invsync.ini", dir);
	for (size_t i = 0; i < sizeof(secret_files) / sizeof(secret_files[0]); i++) {
		char path[320];
		snprintf(path, sizeof(path), "%s/%s", dir, secret_files[i].name);
		write_file(path, secret_files[i].text, strlen(secret_files[i].text),
			   secret_files[i].mode);
	}
	setenv("INVSYNC_FUZZ_SECRET", "env-secret-value", 1);
	setenv("INVSYNC_FUZZ_EMPTY", "", 1);
	setenv("INVSYNC_FUZZ_LINES", "first-line\nsecond-line", 1);
	atexit(remove_dir);
	return 0;
}

static bool is_redacted(const char *secret)
{
	struct buf b = BUF_INIT;
	log_redact(&b, secret);
	bool r = strcmp(buf_str(&b), "[redacted]") == 0;
	buf_free(&b);
	return r;
}

/* A secret is one line (files and variables of several are refused) and,
 * from four bytes on, registered for redaction. */
static void check_secret(const char *s)
{
	CHECK(s != NULL);
	CHECK(strchr(s, '\n') == NULL);
	if (strlen(s) >= 4)
		CHECK(is_redacted(s));
}

static bool name_ok(const char *s, size_t max, const char *extra, bool digit_first)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || (!digit_first && s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr(extra, c);
		if (!ok)
			return false;
	}
	return true;
}

static bool url_ok(const char *u)
{
	size_t scheme = strncasecmp(u, "https://", 8) == 0 ? 8
			: strncasecmp(u, "http://", 7) == 0 ? 7 : 0;
	size_t n = strlen(u);
	if (!scheme || n == scheme || u[scheme] == '/' || u[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] <= ' ' || u[i] == 0x7f)
			return false;
	return true;
}

static void check_loaded(const struct config *cfg)
{
	const struct config_fetch *f = &cfg->fetch;
	CHECK(cfg->path && strcmp(cfg->path, ini_path) == 0);
	/* only the password inside conninfo is registered, not the whole */
	CHECK(cfg->conninfo && strchr(cfg->conninfo, '\n') == NULL);
	CHECK(cfg->schema && name_ok(cfg->schema, 63, "_", false));
	CHECK(f->concurrency >= 1 && f->concurrency <= 1024);
	CHECK(f->per_host >= 1 && f->per_host <= 1024);
	CHECK(f->window >= 1 && f->window <= 256);
	CHECK(f->connect_timeout_s >= 1 && f->connect_timeout_s <= 600);
	CHECK(f->timeout_s >= 1 && f->timeout_s <= 3600);
	CHECK(f->retries >= 0 && f->retries <= 100);
	CHECK(f->retry_delay_ms >= 0 && f->retry_delay_ms <= 600000);
	CHECK(f->max_pages >= 1 && f->max_pages <= 10000000);
	CHECK(f->max_response_mb >= 1 && f->max_response_mb <= 4096);
	CHECK((cfg->nsources == 0) == (cfg->sources == NULL));
	for (size_t i = 0; i < cfg->nsources; i++) {
		const struct config_source *s = &cfg->sources[i];
		CHECK(s->name && strlen(s->name) <= 64);
		for (const char *p = s->name; *p; p++)
			CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || strchr("_.-", *p));
		CHECK(s->name[0] != '\0');
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(cfg->sources[j].name, s->name) != 0);
		CHECK(s->base_url && url_ok(s->base_url));
		CHECK(s->line >= 1);
		if (s->kind == CONFIG_SOURCE_MOSYLE) {
			check_secret(s->access_token);
			check_secret(s->email);
			check_secret(s->password);
			CHECK(s->api_key == NULL && s->subdomain == NULL);
			CHECK(s->first_page == 0 || s->first_page == 1);
			CHECK(s->page_size >= 0 && s->page_size <= 10000);
			CHECK(s->os_mask != 0 && (s->os_mask & ~(unsigned)CONFIG_OS_ALL) == 0);
		} else {
			CHECK(s->kind == CONFIG_SOURCE_SYNCRO);
			check_secret(s->api_key);
			CHECK(s->access_token == NULL && s->email == NULL && s->password == NULL);
			CHECK(s->subdomain == NULL || name_ok(s->subdomain, 63, "-", true));
		}
	}
	const struct buf *w = &cfg->warnings;
	CHECK(w->len == 0 || w->data[w->len - 1] == '\n');
	CHECK(w->len == 0 || memchr(w->data, '\0', w->len) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	struct buf err = BUF_INIT;

	write_file(ini_path, data, size, 0600);
	int rc = config_load(&cfg, ini_path, &err);
	if (rc == 0) {
		CHECK(err.len == 0);
		check_loaded(&cfg);
		config_free(&cfg);
	} else {
		CHECK(rc < 0);
		CHECK(err.len > 0);
		CHECK(strlen(err.data) == err.len);
		CHECK(strchr(err.data, '\n') == NULL);
		CHECK(strncmp(err.data, ini_path, strlen(ini_path)) == 0);
		CHECK(err.data[strlen(ini_path)] == ':');
		CHECK(cfg.path == NULL && cfg.sources == NULL && cfg.nsources == 0);
		CHECK(cfg.conninfo == NULL && cfg.schema == NULL && cfg.warnings.data == NULL);
	}
	/* both free cfg completely: nothing is left for the next input */
	CHECK(cfg.path == NULL && cfg.sources == NULL);
	buf_free(&err);
	log_clear_secrets();
	return 0;
}
