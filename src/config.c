/* config.c - load the INI configuration file (see config.h).
 *
 * inih splits lines into sections and key = value pairs; this file does
 * the rest. inih does not tell its handler the line number, truncates long
 * section names and treats an indented line as the continuation of the
 * previous value, so the file is fed to it through read_line(), which
 * counts lines, parses section headers itself, strips leading blanks (no
 * continuation lines), splits lines too long for inih's buffer itself and
 * rejects lines that are neither a section, a comment nor key = value.
 * Keys are validated as they arrive, so the first error in file order is
 * the one reported; a section's missing keys are reported when it ends.
 */
#include "config.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FILE_MAX (1024 * 1024)
#define SECRET_FILE_MAX (64 * 1024)
#define SOURCE_NAME_MAX 64
#define SCHEMA_NAME_MAX 63
#define SUBDOMAIN_MAX 63
#define MAX_GROUPS 16

#define MOSYLE_DEFAULT_URL "https://managerapi.mosyle.com/v2"

enum section_kind {
	SECTION_NONE = 0,
	SECTION_DATABASE,
	SECTION_FETCH,
	SECTION_MOSYLE,
	SECTION_SYNCRO,
};

/* How a value is given: inline, as the name of a file holding it, or as
 * the name of an environment variable holding it. */
enum key_form {
	FORM_VALUE = 0,
	FORM_FILE,
	FORM_ENV,
};

struct parse_state;
struct key_spec;

typedef int (*key_setter)(struct parse_state *st, const struct key_spec *key,
			  const char *value);

struct key_spec {
	const char *name;
	unsigned group;  /* the forms of one setting share a group */
	key_setter set;
	size_t offset;   /* of the field in the section's struct */
	long min, max;   /* integers */
	enum key_form form;
	bool optional;   /* integers: an empty value means min */
};

struct parse_state {
	struct config *cfg;
	const char *text; /* the whole file */
	size_t len;
	size_t pos;
	int lineno;
	char *dir; /* the file's directory with a trailing '/', or NULL */
	bool failed;
	struct buf msg; /* the first error */

	enum section_kind section;
	char label[96]; /* "mosyle a", for messages */
	int section_line;
	size_t source; /* index in cfg->sources */
	const struct key_spec *keys;
	size_t nkeys;
	int seen_line[MAX_GROUPS];
	const char *seen_name[MAX_GROUPS];

	int database_line;
	int fetch_line;
};

static int set_int(struct parse_state *st, const struct key_spec *key, const char *value);
static int set_schema(struct parse_state *st, const struct key_spec *key, const char *value);
static int set_conninfo(struct parse_state *st, const struct key_spec *key, const char *value);
static int set_tablespace(struct parse_state *st, const struct key_spec *key, const char *value);
static int set_secret(struct parse_state *st, const struct key_spec *key, const char *value);
static int set_base_url(struct parse_state *st, const struct key_spec *key, const char *value);
static int set_os(struct parse_state *st, const struct key_spec *key, const char *value);
static int set_subdomain(struct parse_state *st, const struct key_spec *key, const char *value);
static int set_ca_file(struct parse_state *st, const struct key_spec *key, const char *value);
static int set_endpoints(struct parse_state *st, const struct key_spec *key, const char *value);
static int set_egress(struct parse_state *st, const struct key_spec *key, const char *value);

static int handle_key(void *user, const char *section, const char *name, const char *value);

#define CFG(f) offsetof(struct config, f)
#define FETCH(f) offsetof(struct config_fetch, f)
#define SRC(f) offsetof(struct config_source, f)

#define SECRET_KEYS(nm, grp, setter, off)                                        \
	{.name = nm, .group = grp, .set = setter, .offset = off, .form = FORM_VALUE}, \
	{.name = nm "_file", .group = grp, .set = setter, .offset = off, .form = FORM_FILE}, \
	{.name = nm "_env", .group = grp, .set = setter, .offset = off, .form = FORM_ENV}

static const struct key_spec database_keys[] = {
	SECRET_KEYS("conninfo", 0, set_conninfo, CFG(conninfo)),
	{.name = "schema", .group = 1, .set = set_schema, .offset = CFG(schema)},
	{"lock_timeout", 2, set_int, CFG(lock_timeout_s), 0, 86400, FORM_VALUE, false},
	{.name = "tablespace", .group = 3, .set = set_tablespace, .offset = CFG(tablespace)},
	{"connections", 4, set_int, CFG(db_connections), 1, 10000, FORM_VALUE, false},
};

static const struct key_spec fetch_keys[] = {
	{"concurrency", 0, set_int, FETCH(concurrency), 1, 1024, FORM_VALUE, false},
	{"per_host", 1, set_int, FETCH(per_host), 1, 1024, FORM_VALUE, false},
	{"window", 2, set_int, FETCH(window), 1, 256, FORM_VALUE, false},
	{"connect_timeout", 3, set_int, FETCH(connect_timeout_s), 1, 600, FORM_VALUE, false},
	{"timeout", 4, set_int, FETCH(timeout_s), 1, 3600, FORM_VALUE, false},
	{"retries", 5, set_int, FETCH(retries), 0, 100, FORM_VALUE, false},
	{"retry_delay_ms", 6, set_int, FETCH(retry_delay_ms), 0, 600000, FORM_VALUE, false},
	{"max_pages", 7, set_int, FETCH(max_pages), 1, 10000000, FORM_VALUE, false},
	{"max_response_mb", 8, set_int, FETCH(max_response_mb), 1, 4096, FORM_VALUE, false},
	{.name = "ca_file", .group = 9, .set = set_ca_file, .offset = FETCH(ca_file)},
	{"first_byte_timeout", 10, set_int, FETCH(first_byte_timeout_s), 0, 3600, FORM_VALUE, false},
	{"syncro_requests_per_minute", 11, set_int, FETCH(syncro_per_minute), 1, 1000000,
	 FORM_VALUE, false},
	{"syncro_safety_margin", 12, set_int, FETCH(syncro_margin_pct), 0, 90, FORM_VALUE, false},
	{"syncro_backoff", 13, set_int, FETCH(syncro_backoff_s), 1, 3600, FORM_VALUE, false},
};

static const struct key_spec mosyle_keys[] = {
	{.name = "base_url", .group = 0, .set = set_base_url, .offset = SRC(base_url)},
	SECRET_KEYS("access_token", 1, set_secret, SRC(access_token)),
	SECRET_KEYS("email", 2, set_secret, SRC(email)),
	SECRET_KEYS("password", 3, set_secret, SRC(password)),
	{"first_page", 4, set_int, SRC(first_page), 0, 1, FORM_VALUE, false},
	{"page_size", 5, set_int, SRC(page_size), 0, 10000, FORM_VALUE, true},
	{.name = "os", .group = 6, .set = set_os, .offset = SRC(os_mask)},
	{.name = "endpoints", .group = 7, .set = set_endpoints, .offset = SRC(endpoints)},
	{"token_renew_after", 8, set_int, SRC(token_renew_after_s), 1, 86400, FORM_VALUE, false},
};

static const struct key_spec syncro_keys[] = {
	{.name = "subdomain", .group = 0, .set = set_subdomain, .offset = SRC(subdomain)},
	{.name = "base_url", .group = 1, .set = set_base_url, .offset = SRC(base_url)},
	SECRET_KEYS("api_key", 2, set_secret, SRC(api_key)),
	{.name = "endpoints", .group = 3, .set = set_endpoints, .offset = SRC(endpoints)},
	{.name = "egress", .group = 4, .set = set_egress, .offset = SRC(egress)},
};

/* Endpoint names of each source kind, in load order (mosyle.c and syncro.c
 * describe them; a unit test checks the lists agree). */
const char *const config_mosyle_endpoints[] = {
	"devices", "users", "classes", "device_groups", "device_group_members", "accounts",
	"custom_attributes", "admin_logs", NULL,
};
const char *const config_syncro_endpoints[] = {
	"assets", "customers", "contacts", "asset_types", NULL,
};

static const struct {
	const char *name;
	enum config_os os;
} os_names[] = {
	{"ios", CONFIG_OS_IOS},
	{"mac", CONFIG_OS_MAC},
	{"tvos", CONFIG_OS_TVOS},
	{"visionos", CONFIG_OS_VISIONOS},
};

/* ---- messages ---- */

/* Record the first error, as "FILE:LINE: ...". */
__attribute__((format(printf, 3, 4)))
static void fail_at(struct parse_state *st, int line, const char *fmt, ...)
{
	if (st->failed)
		return;
	st->failed = true;
	buf_printf(&st->msg, "%s:%d: ", st->cfg->path, line);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&st->msg, fmt, ap);
	va_end(ap);
}

/* Record the first error about key at the current line. */
__attribute__((format(printf, 3, 4)))
static void key_fail(struct parse_state *st, const struct key_spec *key, const char *fmt, ...)
{
	if (st->failed)
		return;
	st->failed = true;
	buf_printf(&st->msg, "%s:%d: [%s] key '%s': ", st->cfg->path, st->lineno, st->label,
		   key->name);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&st->msg, fmt, ap);
	va_end(ap);
}

/* ---- small helpers ---- */

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void *section_struct(struct parse_state *st)
{
	switch (st->section) {
	case SECTION_DATABASE:
		return st->cfg;
	case SECTION_FETCH:
		return &st->cfg->fetch;
	case SECTION_MOSYLE:
	case SECTION_SYNCRO:
		return &st->cfg->sources[st->source];
	case SECTION_NONE:
		break;
	}
	return NULL;
}

static char **field_str(struct parse_state *st, const struct key_spec *key)
{
	return (char **)(void *)((char *)section_struct(st) + key->offset);
}

static void replace_str(char **field, char *value)
{
	free(*field);
	*field = value;
}

static bool valid_source_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SOURCE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

/* The name of the plain form of key's setting ("access_token" for
 * "access_token_env"). */
static const char *group_name(const struct parse_state *st, const struct key_spec *key)
{
	for (size_t i = 0; i < st->nkeys; i++)
		if (st->keys[i].group == key->group)
			return st->keys[i].name;
	return key->name;
}

static bool has_line_break(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* ---- secrets from files and the environment ---- */

/* Read the secret file at path into *out (trailing blanks stripped). On
 * error records a message about key and returns -1. */
static int read_secret_file(struct parse_state *st, const struct key_spec *key,
			    const char *path, char **out)
{
	int rc = -1;
	char *data = NULL;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		key_fail(st, key, "cannot open secret file %s: %s", path, strerror(errno));
		goto out;
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		key_fail(st, key, "cannot read secret file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		key_fail(st, key, "secret file %s is not a regular file", path);
		goto out;
	}
	if (sb.st_mode & S_IWOTH) {
		key_fail(st, key, "refusing to read secret file %s: it is world-writable", path);
		goto out;
	}
	if (sb.st_size > SECRET_FILE_MAX) {
		key_fail(st, key, "secret file %s is larger than %d KiB", path, SECRET_FILE_MAX / 1024);
		goto out;
	}
	/* One byte more than the cap, to notice a file that grew meanwhile. */
	data = xmalloc(SECRET_FILE_MAX + 2);
	for (;;) {
		ssize_t n = read(fd, data + len, SECRET_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			key_fail(st, key, "cannot read secret file %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > SECRET_FILE_MAX) {
			key_fail(st, key, "secret file %s is larger than %d KiB", path,
				 SECRET_FILE_MAX / 1024);
			goto out;
		}
	}
	if (memchr(data, '\0', len)) {
		key_fail(st, key, "secret file %s contains a NUL byte", path);
		goto out;
	}
	while (len > 0 && strchr("\r\n \t", data[len - 1]))
		len--;
	data[len] = '\0';
	if (len == 0) {
		key_fail(st, key, "secret file %s is empty", path);
		goto out;
	}
	if (has_line_break(data)) {
		key_fail(st, key, "secret file %s holds more than one line", path);
		goto out;
	}
	if (sb.st_mode & (S_IRGRP | S_IROTH))
		buf_printf(&st->cfg->warnings,
			   "%s:%d: secret file %s is readable by other users (chmod 600 it)\n",
			   st->cfg->path, st->lineno, path);
	*out = xstrndup(data, len);
	rc = 0;
out:
	if (data) {
		explicit_bzero(data, SECRET_FILE_MAX + 2);
		free(data);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Resolve value according to key's form into *out (allocated). An empty
 * inline value is accepted only when allow_empty. Returns 0, or -1 with
 * the error recorded. */
static int resolve_secret(struct parse_state *st, const struct key_spec *key,
			  const char *value, bool allow_empty, char **out)
{
	switch (key->form) {
	case FORM_VALUE:
		if (!allow_empty && value[0] == '\0') {
			key_fail(st, key, "is empty");
			return -1;
		}
		*out = xstrdup(value);
		return 0;
	case FORM_FILE: {
		if (value[0] == '\0') {
			key_fail(st, key, "needs a file name");
			return -1;
		}
		struct buf path = BUF_INIT;
		if (value[0] != '/' && st->dir)
			buf_puts(&path, st->dir);
		buf_puts(&path, value);
		int rc = read_secret_file(st, key, path.data, out);
		buf_free(&path);
		return rc;
	}
	case FORM_ENV: {
		if (value[0] == '\0') {
			key_fail(st, key, "needs the name of an environment variable");
			return -1;
		}
		const char *env = getenv(value);
		if (!env) {
			key_fail(st, key, "environment variable %s is not set", value);
			return -1;
		}
		if (env[0] == '\0') {
			key_fail(st, key, "environment variable %s is empty", value);
			return -1;
		}
		if (has_line_break(env)) {
			key_fail(st, key, "environment variable %s holds more than one line", value);
			return -1;
		}
		*out = xstrdup(env);
		return 0;
	}
	}
	return -1;
}

/* ---- setters: each validates one value and stores it ---- */

static int set_int(struct parse_state *st, const struct key_spec *key, const char *value)
{
	long v;
	if (value[0] == '\0' && key->optional) {
		v = key->min;
	} else {
		char *end = NULL;
		errno = 0;
		v = strtol(value, &end, 10);
		bool numeric = value[0] != '\0' && !isspace((unsigned char)value[0]) &&
			       end && *end == '\0';
		if (!numeric) {
			key_fail(st, key, "'%.64s' is not a whole number", value);
			return -1;
		}
		if (errno == ERANGE || v < key->min || v > key->max) {
			if (key->max - key->min == 1)
				key_fail(st, key, "must be %ld or %ld (got %.64s)", key->min,
					 key->max, value);
			else
				key_fail(st, key, "must be from %ld to %ld (got %.64s)", key->min,
					 key->max, value);
			return -1;
		}
	}
	*(int *)(void *)((char *)section_struct(st) + key->offset) = (int)v;
	return 0;
}

static int set_schema(struct parse_state *st, const struct key_spec *key, const char *value)
{
	size_t n = strlen(value);
	bool ok = n >= 1 && n <= SCHEMA_NAME_MAX && !isdigit((unsigned char)value[0]);
	for (size_t i = 0; ok && i < n; i++) {
		char c = value[i];
		ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
	}
	if (!ok) {
		key_fail(st, key, "'%.64s' is not a valid schema name (use 1-%d of a-z, 0-9 and _, "
			 "not starting with a digit)", value, SCHEMA_NAME_MAX);
		return -1;
	}
	replace_str(field_str(st, key), xstrdup(value));
	return 0;
}

/* Any name PostgreSQL accepts (it is quoted where used); empty: the
 * database's default tablespace. */
static int set_tablespace(struct parse_state *st, const struct key_spec *key, const char *value)
{
	size_t n = strlen(value);
	bool ok = n <= SCHEMA_NAME_MAX;
	for (size_t i = 0; ok && i < n; i++)
		ok = !iscntrl((unsigned char)value[i]);
	if (!ok) {
		key_fail(st, key, "'%.64s' is not a valid tablespace name (at most %d characters,"
			 " no control characters)", value, SCHEMA_NAME_MAX);
		return -1;
	}
	replace_str(field_str(st, key), n ? xstrdup(value) : NULL);
	return 0;
}

/* Register the password of a postgresql:// URI as it is written (still
 * percent-encoded), next to the decoded one libpq reports. */
static void add_uri_password_secret(const char *conninfo)
{
	static const char *const schemes[] = {"postgresql://", "postgres://"};
	const char *rest = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++)
		if (strncmp(conninfo, schemes[i], strlen(schemes[i])) == 0)
			rest = conninfo + strlen(schemes[i]);
	if (!rest)
		return;
	size_t authority = strcspn(rest, "/?");
	const char *at = memchr(rest, '@', authority);
	if (at) {
		const char *colon = memchr(rest, ':', (size_t)(at - rest));
		if (colon) {
			char *raw = xstrndup(colon + 1, (size_t)(at - colon - 1));
			log_add_secret(raw);
			free_secret(raw);
		}
	}
	const char *query = strchr(rest, '?');
	while (query) {
		query++;
		if (strncmp(query, "password=", 9) == 0) {
			char *raw = xstrndup(query + 9, strcspn(query + 9, "&"));
			log_add_secret(raw);
			free_secret(raw);
		}
		query = strchr(query, '&');
	}
}

static int set_conninfo(struct parse_state *st, const struct key_spec *key, const char *value)
{
	char *conninfo = NULL;
	if (resolve_secret(st, key, value, true, &conninfo) < 0)
		return -1;
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
	/* libpq's message quotes the text it choked on, which may be the
	 * password: never pass it on. */
	if (errmsg)
		PQfreemem(errmsg);
	if (!opts) {
		free_secret(conninfo);
		key_fail(st, key, "is not a valid PostgreSQL connection string or URI "
			 "(not shown: it may hold a password)");
		return -1;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val)
			log_add_secret(o->val);
	PQconninfoFree(opts);
	add_uri_password_secret(conninfo);
	char **field = field_str(st, key);
	free_secret(*field);
	*field = conninfo;
	return 0;
}

static int set_secret(struct parse_state *st, const struct key_spec *key, const char *value)
{
	char *secret = NULL;
	if (resolve_secret(st, key, value, false, &secret) < 0)
		return -1;
	log_add_secret(secret);
	char **field = field_str(st, key);
	free_secret(*field);
	*field = secret;
	return 0;
}

static int set_base_url(struct parse_state *st, const struct key_spec *key, const char *value)
{
	size_t scheme;
	if (strncasecmp(value, "https://", 8) == 0)
		scheme = 8;
	else if (strncasecmp(value, "http://", 7) == 0)
		scheme = 7;
	else {
		key_fail(st, key, "must start with http:// or https://");
		return -1;
	}
	for (const char *p = value; *p; p++) {
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p)) {
			key_fail(st, key, "must not contain spaces or control characters");
			return -1;
		}
	}
	size_t n = strlen(value);
	while (n > scheme && value[n - 1] == '/')
		n--;
	if (n == scheme || value[scheme] == '/') {
		key_fail(st, key, "has no host name");
		return -1;
	}
	replace_str(field_str(st, key), xstrndup(value, n));
	return 0;
}

static int set_os(struct parse_state *st, const struct key_spec *key, const char *value)
{
	static const char seps[] = ", \t";
	unsigned mask = 0;
	const char *p = value;
	for (;;) {
		p += strspn(p, seps);
		if (*p == '\0')
			break;
		size_t n = strcspn(p, seps);
		unsigned bit = 0;
		for (size_t i = 0; i < ARRAY_SIZE(os_names); i++)
			if (strlen(os_names[i].name) == n && strncasecmp(p, os_names[i].name, n) == 0)
				bit = os_names[i].os;
		if (!bit) {
			key_fail(st, key, "unknown OS '%.*s' (use ios, mac, tvos or visionos)",
				 (int)(n > 32 ? 32 : n), p);
			return -1;
		}
		mask |= bit;
		p += n;
	}
	if (!mask) {
		key_fail(st, key, "is empty (use any of ios, mac, tvos, visionos)");
		return -1;
	}
	*(unsigned *)(void *)((char *)section_struct(st) + key->offset) = mask;
	return 0;
}

/* "users, devices": a subset of the source kind's endpoints, stored as a
 * NULL-terminated list in the kind's own order. */
static int set_endpoints(struct parse_state *st, const struct key_spec *key, const char *value)
{
	static const char seps[] = ", \t";
	const struct config_source *src = section_struct(st);
	const char *const *known = src->kind == CONFIG_SOURCE_MOSYLE ? config_mosyle_endpoints
								     : config_syncro_endpoints;
	size_t nknown = 0;
	while (known[nknown])
		nknown++;
	bool want[16] = {false};
	bool any = false;
	const char *p = value;
	for (;;) {
		p += strspn(p, seps);
		if (*p == '\0')
			break;
		size_t n = strcspn(p, seps);
		size_t i;
		for (i = 0; i < nknown; i++)
			if (strlen(known[i]) == n && strncmp(p, known[i], n) == 0)
				break;
		if (i == nknown) {
			struct buf names = BUF_INIT;
			for (size_t k = 0; k < nknown; k++)
				buf_printf(&names, "%s%s", k ? ", " : "", known[k]);
			key_fail(st, key, "unknown endpoint '%.*s' (use any of %s)",
				 (int)(n > 40 ? 40 : n), p, names.data);
			buf_free(&names);
			return -1;
		}
		want[i] = any = true;
		p += n;
	}
	if (!any) {
		key_fail(st, key, "is empty (leave it out to load every endpoint)");
		return -1;
	}
	char **list = xcalloc(nknown + 1, sizeof(char *));
	size_t out = 0;
	for (size_t i = 0; i < nknown; i++)
		if (want[i])
			list[out++] = xstrdup(known[i]);
	char ***field = (char ***)(void *)((char *)section_struct(st) + key->offset);
	config_free_list(*field);
	*field = list;
	return 0;
}

static int set_egress(struct parse_state *st, const struct key_spec *key, const char *value)
{
	size_t n = strlen(value);
	bool ok = n >= 1 && n <= 64;
	for (size_t i = 0; ok && i < n; i++) {
		char c = value[i];
		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '-' || c == '_' || c == '.';
	}
	if (!ok) {
		key_fail(st, key, "'%.64s' is not a valid egress name (use 1-64 of A-Z a-z 0-9 _ . -)",
			 value);
		return -1;
	}
	replace_str(field_str(st, key), xstrdup(value));
	return 0;
}

static int set_subdomain(struct parse_state *st, const struct key_spec *key, const char *value)
{
	size_t n = strlen(value);
	bool ok = n >= 1 && n <= SUBDOMAIN_MAX;
	for (size_t i = 0; ok && i < n; i++) {
		char c = value[i];
		ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
	}
	if (!ok) {
		key_fail(st, key, "'%.64s' is not a valid subdomain (use 1-%d of a-z, 0-9 and -, "
			 "as in NAME.syncromsp.com)", value, SUBDOMAIN_MAX);
		return -1;
	}
	replace_str(field_str(st, key), xstrdup(value));
	return 0;
}

/* A file of CA certificates: the path is kept (relative to the config
 * file's directory), and the file must be readable now, so a typo is a
 * configuration error rather than a failed run. */
static int set_ca_file(struct parse_state *st, const struct key_spec *key, const char *value)
{
	struct buf path = BUF_INIT;
	struct stat sb;
	int rc = -1;

	if (value[0] == '\0') {
		key_fail(st, key, "needs a file name");
		return -1;
	}
	if (value[0] != '/' && st->dir)
		buf_puts(&path, st->dir);
	buf_puts(&path, value);
	int fd = open(path.data, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		key_fail(st, key, "cannot open CA file %s: %s", path.data, strerror(errno));
		goto out;
	}
	if (fstat(fd, &sb) != 0) {
		key_fail(st, key, "cannot read CA file %s: %s", path.data, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		key_fail(st, key, "CA file %s is not a regular file", path.data);
		goto out;
	}
	replace_str(field_str(st, key), xstrdup(path.data));
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	buf_free(&path);
	return rc;
}

/* ---- sections ---- */

/* Check that the section just ended is complete and fill in defaults. */
static void finish_section(struct parse_state *st)
{
	if (st->failed || (st->section != SECTION_MOSYLE && st->section != SECTION_SYNCRO))
		return;
	struct config_source *src = &st->cfg->sources[st->source];
	if (st->section == SECTION_MOSYLE) {
		static const char *const required[] = {"access_token", "email", "password"};
		char *const values[] = {src->access_token, src->email, src->password};
		for (size_t i = 0; i < ARRAY_SIZE(required); i++) {
			if (!values[i]) {
				fail_at(st, st->section_line, "[%s] missing %s (or %s_file / %s_env)",
					st->label, required[i], required[i], required[i]);
				return;
			}
		}
		if (!src->base_url)
			src->base_url = xstrdup(MOSYLE_DEFAULT_URL);
	} else {
		if (!src->api_key) {
			fail_at(st, st->section_line,
				"[%s] missing api_key (or api_key_file / api_key_env)", st->label);
			return;
		}
		if (!src->base_url && !src->subdomain) {
			fail_at(st, st->section_line, "[%s] missing subdomain (or base_url)", st->label);
			return;
		}
		if (!src->base_url) {
			struct buf url = BUF_INIT;
			buf_printf(&url, "https://%s.syncromsp.com/api/v1", src->subdomain);
			src->base_url = url.data;
		}
	}
}

static void begin_section(struct parse_state *st, enum section_kind kind,
			  const struct key_spec *keys, size_t nkeys)
{
	st->section = kind;
	st->section_line = st->lineno;
	st->keys = keys;
	st->nkeys = nkeys;
	memset(st->seen_line, 0, sizeof(st->seen_line));
	memset(st->seen_name, 0, sizeof(st->seen_name));
}

static void begin_source(struct parse_state *st, enum section_kind kind, const char *kind_name,
			 const char *name)
{
	struct config *cfg = st->cfg;
	if (!valid_source_name(name)) {
		fail_at(st, st->lineno, "[%s %.80s]: invalid name (use 1-%d of A-Z a-z 0-9 _ . -)",
			kind_name, name, SOURCE_NAME_MAX);
		return;
	}
	for (size_t i = 0; i < cfg->nsources; i++) {
		if (strcmp(cfg->sources[i].name, name) == 0) {
			fail_at(st, st->lineno,
				"duplicate source name '%s': [%s %s] here and [%s %s] at line %d",
				name, kind_name, name,
				cfg->sources[i].kind == CONFIG_SOURCE_MOSYLE ? "mosyle" : "syncro",
				name, cfg->sources[i].line);
			return;
		}
	}
	cfg->sources = xrealloc(cfg->sources, (cfg->nsources + 1) * sizeof(*cfg->sources));
	struct config_source *src = &cfg->sources[cfg->nsources];
	memset(src, 0, sizeof(*src));
	src->name = xstrdup(name);
	src->line = st->lineno;
	if (kind == SECTION_MOSYLE) {
		src->kind = CONFIG_SOURCE_MOSYLE;
		src->first_page = 1;
		src->page_size = 0;
		src->os_mask = CONFIG_OS_ALL;
		src->token_renew_after_s = 23 * 3600;
		begin_section(st, kind, mosyle_keys, ARRAY_SIZE(mosyle_keys));
	} else {
		src->kind = CONFIG_SOURCE_SYNCRO;
		begin_section(st, kind, syncro_keys, ARRAY_SIZE(syncro_keys));
	}
	st->source = cfg->nsources++;
	snprintf(st->label, sizeof(st->label), "%s %s", kind_name, name);
}

static void begin_single(struct parse_state *st, enum section_kind kind, const char *kind_name,
			 int *first_line, const struct key_spec *keys, size_t nkeys)
{
	if (*first_line) {
		fail_at(st, st->lineno, "duplicate section [%s] (first at line %d)", kind_name,
			*first_line);
		return;
	}
	*first_line = st->lineno;
	begin_section(st, kind, keys, nkeys);
	snprintf(st->label, sizeof(st->label), "%s", kind_name);
}

/* Parse the header "[...]" in line (n bytes, no leading blanks). */
static void parse_header(struct parse_state *st, const char *line, size_t n)
{
	const char *close = memchr(line, ']', n);
	if (!close) {
		fail_at(st, st->lineno, "section header without ']'");
		return;
	}
	const char *after = close + 1;
	while (after < line + n && (*after == ' ' || *after == '\t'))
		after++;
	if (after < line + n && *after != ';' && *after != '#') {
		fail_at(st, st->lineno, "unexpected text after the section header");
		return;
	}
	const char *p = line + 1;
	const char *end = close;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	char *inner = xstrndup(p, (size_t)(end - p));
	size_t kind_len = strcspn(inner, " \t");
	const char *name = inner + kind_len + strspn(inner + kind_len, " \t");

	finish_section(st);
	if (st->failed)
		goto out;

	static const struct {
		const char *name;
		enum section_kind kind;
		bool named;
	} kinds[] = {
		{"database", SECTION_DATABASE, false},
		{"fetch", SECTION_FETCH, false},
		{"mosyle", SECTION_MOSYLE, true},
		{"syncro", SECTION_SYNCRO, true},
	};
	size_t k = 0;
	while (k < ARRAY_SIZE(kinds) &&
	       !(strlen(kinds[k].name) == kind_len && strncasecmp(inner, kinds[k].name, kind_len) == 0))
		k++;
	if (k == ARRAY_SIZE(kinds)) {
		fail_at(st, st->lineno, "unknown section [%.80s] (expected [database], [fetch], "
			"[mosyle NAME] or [syncro NAME])", inner);
		goto out;
	}
	if (kinds[k].named && name[0] == '\0') {
		fail_at(st, st->lineno, "section [%s] needs a name: [%s NAME]", kinds[k].name,
			kinds[k].name);
		goto out;
	}
	if (!kinds[k].named && name[0] != '\0') {
		fail_at(st, st->lineno, "section [%s] takes no name", kinds[k].name);
		goto out;
	}
	switch (kinds[k].kind) {
	case SECTION_DATABASE:
		begin_single(st, SECTION_DATABASE, "database", &st->database_line, database_keys,
			     ARRAY_SIZE(database_keys));
		break;
	case SECTION_FETCH:
		begin_single(st, SECTION_FETCH, "fetch", &st->fetch_line, fetch_keys,
			     ARRAY_SIZE(fetch_keys));
		break;
	case SECTION_MOSYLE:
	case SECTION_SYNCRO:
		begin_source(st, kinds[k].kind, kinds[k].name, name);
		break;
	case SECTION_NONE:
		break;
	}
out:
	free(inner);
}

/* ---- the inih glue ---- */

/* Where inih would end the key of a "key = value" line (its rule: at '='
 * or ':', or at an inline ';' comment that follows a blank). */
static bool has_separator(const char *line, size_t n)
{
	bool was_space = false;
	for (size_t i = 0; i < n; i++) {
		char c = line[i];
		if (c == '=' || c == ':')
			return true;
		if (was_space && c == ';')
			return false;
		was_space = isspace((unsigned char)c);
	}
	return false;
}

/* Split a key = value line (which has_separator() accepted) the way inih
 * does: the key ends at the first '=' or ':', an inline ';' comment after
 * a blank ends the value, and both are trimmed. */
static void split_key_value(char *line, char **name, char **value)
{
	char *sep = line + strcspn(line, "=:");
	*sep = '\0';
	char *v = sep + 1;
	bool was_space = false;
	for (char *p = v; *p; p++) {
		if (was_space && *p == ';') {
			*p = '\0';
			break;
		}
		was_space = isspace((unsigned char)*p);
	}
	while (isspace((unsigned char)*v))
		v++;
	size_t vn = strlen(v);
	while (vn > 0 && isspace((unsigned char)v[vn - 1]))
		v[--vn] = '\0';
	size_t kn = strlen(line);
	while (kn > 0 && isspace((unsigned char)line[kn - 1]))
		line[--kn] = '\0';
	*name = line;
	*value = v;
}

/* inih's reader: hand over one line at a time, as fgets() would. Returns
 * NULL at the end of the file or once an error is recorded, which stops
 * inih. */
static char *read_line(char *str, int num, void *stream)
{
	struct parse_state *st = stream;
	if (st->failed || st->pos >= st->len)
		return NULL;
	const char *line = st->text + st->pos;
	const char *nl = memchr(line, '\n', st->len - st->pos);
	size_t n = nl ? (size_t)(nl - line) : st->len - st->pos;
	st->pos += n + (nl != NULL);
	st->lineno++;

	if (st->lineno == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
		line += 3;
		n -= 3;
	}
	if (memchr(line, '\0', n)) {
		fail_at(st, st->lineno, "line contains a NUL byte");
		return NULL;
	}
	while (n > 0 && isspace((unsigned char)*line)) {
		line++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;

	if (n == 0 || line[0] == ';' || line[0] == '#') {
		/* blank or comment */
	} else if (line[0] == '[') {
		parse_header(st, line, n);
		if (st->failed)
			return NULL;
	} else if (!has_separator(line, n)) {
		fail_at(st, st->lineno, "expected 'key = value' or a [section] header");
		return NULL;
	} else if (num < 2 || n > (size_t)num - 2) {
		/* inih would cut the line at num - 1 bytes and read the rest as
		 * another line: split it here by the same rules instead. */
		char *copy = xstrndup(line, n);
		char *name, *value;
		split_key_value(copy, &name, &value);
		handle_key(st, NULL, name, value);
		explicit_bzero(copy, n);
		free(copy);
		if (st->failed)
			return NULL;
	} else {
		memcpy(str, line, n);
		str[n] = '\n';
		str[n + 1] = '\0';
		return str;
	}
	/* What read_line handled itself reaches inih as a blank line. */
	snprintf(str, (size_t)num, "\n");
	return str;
}

static int handle_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	UNUSED(section); /* read_line tracks sections; inih truncates long names */
	if (st->failed)
		return 0;
	if (st->section == SECTION_NONE) {
		fail_at(st, st->lineno, "key '%.64s' is outside any section", name);
		return 0;
	}
	const struct key_spec *key = NULL;
	for (size_t i = 0; i < st->nkeys; i++)
		if (strcmp(st->keys[i].name, name) == 0)
			key = &st->keys[i];
	if (!key) {
		fail_at(st, st->lineno, "unknown key '%.64s' in [%s]", name, st->label);
		return 0;
	}
	unsigned g = key->group;
	if (st->seen_line[g]) {
		if (strcmp(st->seen_name[g], key->name) == 0)
			key_fail(st, key, "duplicate key (first at line %d)", st->seen_line[g]);
		else
			key_fail(st, key, "%s is already given by '%s' at line %d; use only one of "
				 "%s, %s_file and %s_env", group_name(st, key), st->seen_name[g],
				 st->seen_line[g], group_name(st, key), group_name(st, key),
				 group_name(st, key));
		return 0;
	}
	st->seen_line[g] = st->lineno;
	st->seen_name[g] = key->name;
	return key->set(st, key, value) == 0;
}

/* Read the file at path into text; -errno with a message in err on error. */
static int read_config_file(const char *path, struct buf *text, struct buf *err)
{
	int rc = 0;
	FILE *f = fopen(path, "rb");
	if (!f) {
		rc = -errno;
		buf_printf(err, "%s: cannot open: %s", path, strerror(errno));
		return rc;
	}
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (text->len + n > CONFIG_FILE_MAX) {
			buf_printf(err, "%s: larger than %d KiB; is it the right file?", path,
				   CONFIG_FILE_MAX / 1024);
			rc = -EINVAL;
			goto out;
		}
		buf_append(text, chunk, n);
	}
	if (ferror(f)) {
		rc = errno ? -errno : -EIO;
		buf_printf(err, "%s: cannot read: %s", path, strerror(-rc));
	}
out:
	explicit_bzero(chunk, sizeof(chunk));
	fclose(f);
	return rc;
}

/* ---- the public interface ---- */

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->conninfo = xstrdup("");
	cfg->schema = xstrdup("invsync");
	cfg->lock_timeout_s = 60;
	cfg->db_connections = 32;
	cfg->fetch.concurrency = 32;
	cfg->fetch.per_host = 32;
	cfg->fetch.window = 16;
	cfg->fetch.connect_timeout_s = 10;
	cfg->fetch.timeout_s = 60;
	cfg->fetch.retries = 4;
	cfg->fetch.retry_delay_ms = 500;
	cfg->fetch.max_pages = 100000;
	cfg->fetch.first_byte_timeout_s = 30;
	cfg->fetch.max_response_mb = 256;
	cfg->fetch.syncro_per_minute = 180;
	cfg->fetch.syncro_margin_pct = 2;
	cfg->fetch.syncro_backoff_s = 60;
	buf_init(&cfg->warnings);
}

int config_load(struct config *cfg, const char *path, struct buf *err)
{
	struct parse_state st;
	struct buf text = BUF_INIT;
	int rc;

	config_defaults(cfg);
	cfg->path = xstrdup(path);
	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	buf_init(&st.msg);

	rc = read_config_file(path, &text, err);
	if (rc < 0)
		goto fail;
	st.text = text.data ? text.data : "";
	st.len = text.len;
	const char *slash = strrchr(path, '/');
	if (slash)
		st.dir = xstrndup(path, (size_t)(slash - path) + 1);

	int r = ini_parse_stream(read_line, &st, handle_key, &st);
	if (!st.failed) {
		if (r > 0)
			fail_at(&st, r, "expected 'key = value' or a [section] header");
		else if (r < 0)
			fail_at(&st, st.lineno, "cannot parse the file (out of memory)");
		else
			finish_section(&st);
	}
	if (st.failed) {
		buf_puts(err, buf_str(&st.msg));
		rc = -EINVAL;
		goto fail;
	}
	rc = 0;
	goto out;
fail:
	config_free(cfg);
out:
	if (text.data)
		explicit_bzero(text.data, text.len);
	buf_free(&text);
	buf_free(&st.msg);
	free(st.dir);
	return rc;
}

void config_free(struct config *cfg)
{
	free(cfg->path);
	free_secret(cfg->conninfo);
	free(cfg->schema);
	free(cfg->tablespace);
	free(cfg->fetch.ca_file);
	for (size_t i = 0; i < cfg->nsources; i++) {
		struct config_source *src = &cfg->sources[i];
		free(src->name);
		free(src->base_url);
		free_secret(src->access_token);
		free_secret(src->email);
		free_secret(src->password);
		free_secret(src->api_key);
		free(src->subdomain);
		free(src->egress);
		config_free_list(src->endpoints);
	}
	free(cfg->sources);
	buf_free(&cfg->warnings);
	memset(cfg, 0, sizeof(*cfg));
}

void config_free_list(char **list)
{
	for (size_t i = 0; list && list[i]; i++)
		free(list[i]);
	free(list);
}

bool config_source_wants(const struct config_source *src, const char *endpoint)
{
	if (!src->endpoints)
		return true;
	for (size_t i = 0; src->endpoints[i]; i++)
		if (strcmp(src->endpoints[i], endpoint) == 0)
			return true;
	return false;
}

const char *config_os_name(enum config_os os)
{
	for (size_t i = 0; i < ARRAY_SIZE(os_names); i++)
		if (os_names[i].os == os)
			return os_names[i].name;
	return "?";
}
