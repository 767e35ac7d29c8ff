/* schema.h - versioned migrations of invsync's PostgreSQL schema.
 *
 * The migrations are the files sql/NNN_name.sql, compiled into the binary.
 * schema_migrate() applies the ones a database does not have yet, each in
 * its own transaction, under an advisory lock so that two invsync
 * processes starting together do not race. */
#ifndef INVSYNC_SCHEMA_H
#define INVSYNC_SCHEMA_H

#include <libpq-fe.h>

#include "buf.h"
#include "util.h"

struct schema_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct schema_migration schema_migrations[];
extern const unsigned schema_nmigrations;

/* Create schema_name if needed, point the session's search_path at it and
 * apply the missing migrations (blocking). Returns 0, or -1 with a reason
 * in err. */
int schema_migrate(PGconn *conn, const char *schema_name, struct buf *err) MUSTCHECK;

/* SET search_path to schema_name (blocking). Returns 0 or -1 + err. */
int schema_use(PGconn *conn, const char *schema_name, struct buf *err) MUSTCHECK;

#endif
