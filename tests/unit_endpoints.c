/* unit_endpoints.c - the endpoint lists agree with what the configuration
 * accepts, and every endpoint description is complete. */
#include "config.h"
#include "endpoint.h"
#include "mosyle.h"
#include "syncro.h"
#include "test.h"

#include <string.h>

static void check_list(const struct endpoint *const *eps, const char *const *names)
{
	size_t i = 0;
	for (; eps[i] && names[i]; i++) {
		const struct endpoint *ep = eps[i];
		ASSERT_EQ_STR(ep->name, names[i]);
		ASSERT(ep->path && ep->path[0] == '/');
		ASSERT(ep->request && ep->record_key && ep->encode_row);
		ASSERT(ep->table && ep->key_columns && ep->copy_columns);
		ASSERT(strncmp(ep->copy_columns, "attempt, page, ", 15) == 0);
		ASSERT(ep->spec.list_path && ep->spec.list_path[0]);
		ASSERT(ep->first_page >= -1 && ep->first_page <= 1);
		/* an incremental endpoint reads where it left off */
		ASSERT((ep->commit == ENDPOINT_APPEND) == (ep->cursor_sql != NULL));
	}
	ASSERT(eps[i] == NULL && names[i] == NULL);
}

TEST(endpoints_match_the_configuration)
{
	check_list(mosyle_endpoints, config_mosyle_endpoints);
	check_list(syncro_endpoints, config_syncro_endpoints);
}
