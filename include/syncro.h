/* syncro.h - what is specific to Syncro: its read endpoints as data (see
 * endpoint.h) and the permissions an API token needs for them.
 *
 * Every endpoint is a GET whose page request is a query string; the API
 * key goes in the Authorization header (config.c builds the base URL from
 * the subdomain). A refused token answers 401 {"error":"..."}: cap_error
 * captures that message. */
#ifndef INVSYNC_SYNCRO_H
#define INVSYNC_SYNCRO_H

#include "buf.h"
#include "endpoint.h"
#include "jstream.h"

/* per_page asked of /customer_assets. Syncro may serve another size: the
 * planner believes meta.per_page, never this. */
#define SYNCRO_ASSETS_PER_PAGE 100

/* GET /customer_assets?page=N&per_page=100 -> syncro_assets */
extern const struct endpoint syncro_assets_endpoint;
/* GET /customers?page=N&include_disabled=true -> syncro_customers */
extern const struct endpoint syncro_customers_endpoint;
/* GET /contacts?page=N -> syncro_contacts */
extern const struct endpoint syncro_contacts_endpoint;
/* GET /settings, its asset_types list (one request) -> syncro_asset_types */
extern const struct endpoint syncro_asset_types_endpoint;

/* The endpoints a [syncro NAME] source loads, assets first, then
 * NULL. */
extern const struct endpoint *const syncro_endpoints[];

/* The token permission /customer_assets needs: "Assets - List/Search". */
extern const char syncro_asset_permission[];

/* The token permission ep needs, for a message after a 401, or NULL when
 * it is not known (contacts, settings). */
const char *syncro_endpoint_permission(const struct endpoint *ep);

/* Append the customer_name column of an asset (COPY text, like the
 * rowenc_* functions) from its embedded "customer" object, given as the
 * JSTREAM_JSON value jstream extracted: the customer's business_name, or
 * when that is missing, null or blank, "firstname lastname" (either part
 * may be missing); NULL when neither gives a name. JSON escapes are
 * decoded. ABSENT/NULL give NULL and return 0; anything that is not an
 * object gives NULL and returns 1. */
int syncro_customer_name(struct buf *b, const struct jstream_value *customer);

#endif
