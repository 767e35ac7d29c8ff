/* config.h - the INI configuration file.
 *
 *   [database]
 *   conninfo = host=... dbname=...      ; any libpq conninfo or URI; empty: PG* environment
 *   conninfo_file / conninfo_env        ; instead of conninfo (it may hold a password)
 *   schema = invsync
 *
 *   [fetch]
 *   concurrency = 32      ; transfers in flight in the whole process
 *   per_host = 32         ; connections to one host
 *   window = 16           ; speculative pages in flight per endpoint without a total
 *   connect_timeout = 10  ; seconds
 *   timeout = 60          ; seconds for one page, first byte to last
 *   retries = 4           ; extra attempts for one page
 *   retry_delay_ms = 500  ; first backoff; doubles each attempt, with jitter
 *   max_pages = 100000    ; page cap per endpoint
 *
 *   [mosyle NAME]
 *   base_url = https://managerapi.mosyle.com/v2
 *   access_token | access_token_file | access_token_env
 *   email        | email_file        | email_env
 *   password     | password_file     | password_env
 *   first_page = 1
 *   page_size =           ; optional; sent as options.page_size when set
 *   os = ios, mac, tvos, visionos
 *
 * Secrets given by file: the file's content with trailing CR/LF/space
 * stripped; a file readable by group or others gives a warning, one that
 * is world-writable is refused. Secrets given by environment variable: the
 * variable must be set and non-empty.
 */
#ifndef INVSYNC_CONFIG_H
#define INVSYNC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "util.h"

enum config_source_kind {
	CONFIG_SOURCE_MOSYLE = 1,
	CONFIG_SOURCE_SYNCRO,
};

enum config_os {
	CONFIG_OS_IOS = 1u << 0,
	CONFIG_OS_MAC = 1u << 1,
	CONFIG_OS_TVOS = 1u << 2,
	CONFIG_OS_VISIONOS = 1u << 3,
	CONFIG_OS_ALL = 0xf,
};

struct config_fetch {
	int concurrency;
	int per_host;
	int window;
	int connect_timeout_s;
	int timeout_s;
	int retries;
	int retry_delay_ms;
	int max_pages;
};

struct config_source {
	enum config_source_kind kind;
	char *name;        /* the NAME of [mosyle NAME]; unique across sources */
	char *base_url;    /* without trailing slash */
	/* Mosyle */
	char *access_token; /* secret */
	char *email;        /* secret */
	char *password;     /* secret */
	int first_page;     /* 0 or 1 */
	int page_size;      /* 0: not sent */
	unsigned os_mask;   /* enum config_os bits */
	int line;           /* line of the section header, for messages */
};

struct config {
	char *path;
	char *conninfo; /* "" means libpq's PG* environment; secret */
	char *schema;
	struct config_fetch fetch;
	struct config_source *sources;
	size_t nsources;
	/* Non-fatal findings ("FILE:LINE: ..."), one per line. */
	struct buf warnings;
};

/* Fill cfg with defaults (no sources). */
void config_defaults(struct config *cfg);

/* Load path into cfg (which config_load initialises). On success returns 0.
 * On error returns -EINVAL (or -errno if the file cannot be read) and puts
 * one line into err naming the file, the line and the key, e.g.
 * "invsync.ini:12: [mosyle a] key 'first_page': must be 0 or 1". cfg is
 * then freed. Every secret read is registered with log_add_secret(). */
int config_load(struct config *cfg, const char *path, struct buf *err) MUSTCHECK;

void config_free(struct config *cfg);

/* "ios" for CONFIG_OS_IOS, etc. */
const char *config_os_name(enum config_os os);

#endif
