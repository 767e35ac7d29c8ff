/* config.h - the INI configuration file.
 *
 *   [database]
 *   conninfo = host=... dbname=...      ; any libpq conninfo or URI; empty: PG* environment
 *   conninfo_file / conninfo_env        ; instead of conninfo (it may hold a password)
 *   schema = invsync
 *   lock_timeout = 60     ; seconds the swap at commit may wait for readers' locks; 0: no limit
 *   tablespace =          ; optional; where load tables (then partitions) are created
 *   connections = 32      ; loading connections open at once (one per endpoint
 *                         ; table being loaded); sources wait for their turn
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
 *   max_response_mb = 256 ; an answer with a larger body fails its source (no retry)
 *   first_byte_timeout = 30 ; seconds from sending a request to the first byte of
 *                         ; its answer (0: no limit besides timeout)
 *   ca_file =             ; PEM file of CA certificates for a private CA (optional)
 *   syncro_requests_per_minute = 180 ; Syncro's limit per egress address
 *   syncro_safety_margin = 2   ; percent of that limit left unused
 *   syncro_backoff = 60   ; seconds to wait after a 429 without Retry-After
 *
 *   [mosyle NAME]
 *   base_url = https://managerapi.mosyle.com/v2
 *   access_token | access_token_file | access_token_env
 *   email        | email_file        | email_env
 *   password     | password_file     | password_env
 *   first_page = 1
 *   page_size =           ; optional; sent as options.page_size when set
 *   os = ios, mac, tvos, visionos
 *   endpoints = devices, users, classes, device_groups, device_group_members,
 *               accounts, custom_attributes, admin_logs   ; default: all
 *   token_renew_after = 82800 ; seconds: a session token older than this is
 *                         ; renewed before the next page
 *
 *   [syncro NAME]
 *   subdomain = acme                    ; https://acme.syncromsp.com/api/v1
 *   base_url = https://acme.syncromsp.com/api/v1   ; instead of subdomain
 *   api_key | api_key_file | api_key_env
 *   endpoints = assets, customers, contacts, asset_types   ; default: all
 *   egress = default      ; sources with the same egress share one rate budget
 *
 * NAME is 1-64 of A-Z a-z 0-9 _ . - and unique across all sources. A key
 * may appear once per section, and a secret in only one of its three forms.
 *
 * Secrets given by file: the file's content with trailing CR/LF/space
 * stripped; a file readable by group or others gives a warning, one that
 * is world-writable is refused. A relative file name is taken relative to
 * the configuration file's directory; the file must be a regular file of
 * at most 64 KiB holding one line. Secrets given by environment variable: the
 * variable must be set and non-empty.
 *
 * For https URLs the server's certificate and host name are always
 * verified; there is no switch to turn that off. ca_file names a PEM file
 * of CA certificates to trust as well as the system's (a private CA's);
 * like a secret file it is taken relative to the configuration file's
 * directory, and it must be a readable regular file when the configuration
 * is loaded.
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
	int max_response_mb; /* cap on one answer's body (decoded), in MiB */
	int first_byte_timeout_s; /* request sent to first byte of the answer; 0: off */
	char *ca_file;       /* PEM CA certificates trusted as well; NULL: none */
	int syncro_per_minute; /* Syncro's request limit per egress address */
	int syncro_margin_pct; /* share of it left unused, in percent */
	int syncro_backoff_s;  /* wait after a 429 that gives no Retry-After */
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
	int token_renew_after_s; /* renew the session token once it is this old */
	/* Syncro */
	char *api_key;      /* secret */
	char *subdomain;    /* NULL when only base_url was given */
	char *egress;       /* rate budget name; NULL: "default" */
	/* Both kinds */
	char **endpoints;   /* NULL-terminated names to load; NULL: every endpoint */
	int line;           /* line of the section header, for messages */
};

struct config {
	char *path;
	char *conninfo; /* "" means libpq's PG* environment; secret */
	char *schema;
	int lock_timeout_s;  /* 0: wait as long as it takes */
	char *tablespace;    /* NULL: the database's default */
	int db_connections;  /* loading connections open at once */
	struct config_fetch fetch;
	struct config_source *sources;
	size_t nsources;
	/* Non-fatal findings ("FILE:LINE: ..."), one per line. */
	struct buf warnings;
};

/* Fill cfg with defaults (no sources). cfg then owns memory: release it
 * with config_free(). */
void config_defaults(struct config *cfg);

/* Load path into cfg (which config_load initialises). On success returns 0.
 * On error returns -EINVAL (or -errno if the file cannot be read) and puts
 * one line into err naming the file, the line and the key, e.g.
 * "invsync.ini:12: [mosyle a] key 'first_page': must be 0 or 1" (appended,
 * without a newline; it never holds a secret). cfg is then freed and
 * zeroed. Every secret read is registered with log_add_secret(), even when
 * loading fails later. */
int config_load(struct config *cfg, const char *path, struct buf *err) MUSTCHECK;

/* Free everything cfg owns (secrets are wiped first) and zero it. */
void config_free(struct config *cfg);

/* Endpoint names of each kind, in load order, NULL-terminated. */
extern const char *const config_mosyle_endpoints[];
extern const char *const config_syncro_endpoints[];

/* True if the source loads the named endpoint. */
bool config_source_wants(const struct config_source *src, const char *endpoint);

/* Free a NULL-terminated list of strings (NULL is fine). */
void config_free_list(char **list);

/* "ios" for CONFIG_OS_IOS, etc. */
const char *config_os_name(enum config_os os);

#endif
