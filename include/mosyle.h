/* mosyle.h - what is specific to Mosyle Manager: login, request bodies,
 * answers, and its endpoints as data (see endpoint.h). */
#ifndef INVSYNC_MOSYLE_H
#define INVSYNC_MOSYLE_H

#include <stdbool.h>

#include "buf.h"
#include "config.h"
#include "endpoint.h"

/* The endpoints, by the name used in a source's endpoints = list:
 * devices (/listdevices, per OS), users, classes, device_groups and
 * device_group_members (per OS), accounts (district accounts only:
 * NOT_ALLOWED elsewhere loads nothing), custom_attributes (per OS) and
 * admin_logs (incremental: appended, from the newest entry loaded). */
extern const struct endpoint mosyle_devices_endpoint;
extern const struct endpoint mosyle_users_endpoint;
extern const struct endpoint mosyle_classes_endpoint;
extern const struct endpoint mosyle_device_groups_endpoint;
extern const struct endpoint mosyle_device_group_members_endpoint;
extern const struct endpoint mosyle_accounts_endpoint;
extern const struct endpoint mosyle_custom_attributes_endpoint;
extern const struct endpoint mosyle_admin_logs_endpoint;

/* All of the above, devices first, then NULL. */
extern const struct endpoint *const mosyle_endpoints[];

/* JSON body of POST /login. */
void mosyle_login_body(struct buf *out, const struct config_source *src);

/* The JWT from a login answer's Authorization header value ("Bearer
 * <jwt>", any case, surrounding spaces): returns a new string, or NULL if
 * the header is missing or holds no token. */
char *mosyle_login_token(const char *authorization);

/* JSON body of one page request: {"accessToken":...,"options":{"os":...,
 * "page":N[,"page_size":S]}}. os may be NULL for endpoints without it. */
void mosyle_page_body(struct buf *out, const struct config_source *src, const char *os, int page);

/* True when an answer's inner status or body text says the token or the
 * accessToken was refused. */
bool mosyle_auth_refused(const char *status_or_body);

#endif
