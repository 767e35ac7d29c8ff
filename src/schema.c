/* schema.c - apply the embedded sql/ migrations (see schema.h). */
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int exec_ok(PGconn *conn, const char *sql, struct buf *err, const char *what)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		buf_printf(err, "%s: %s", what, PQresultErrorMessage(r));
		while (err->len && (err->data[err->len - 1] == '\n'))
			err->data[--err->len] = '\0';
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

int schema_use(PGconn *conn, const char *schema_name, struct buf *err)
{
	char *ident = PQescapeIdentifier(conn, schema_name, strlen(schema_name));
	if (!ident) {
		buf_printf(err, "bad schema name: %s", PQerrorMessage(conn));
		return -1;
	}
	struct buf sql = BUF_INIT;
	buf_printf(&sql, "SET search_path = %s, pg_catalog", ident);
	int rc = exec_ok(conn, sql.data, err, "setting search_path");
	buf_free(&sql);
	PQfreemem(ident);
	return rc;
}

int schema_migrate(PGconn *conn, const char *schema_name, struct buf *err)
{
	int rc = -1;
	struct buf sql = BUF_INIT;
	char *ident = PQescapeIdentifier(conn, schema_name, strlen(schema_name));
	if (!ident) {
		buf_printf(err, "bad schema name: %s", PQerrorMessage(conn));
		return -1;
	}
	if (exec_ok(conn, "SET client_min_messages = warning", err, "session setup") < 0)
		goto out;
	/* one lock for every invsync process on this database */
	if (exec_ok(conn, "SELECT pg_advisory_lock(hashtext('invsync schema migration'))", err,
		    "waiting for the schema lock") < 0)
		goto out;
	buf_printf(&sql, "CREATE SCHEMA IF NOT EXISTS %s", ident);
	if (exec_ok(conn, sql.data, err, "creating the schema") < 0)
		goto unlock;
	if (schema_use(conn, schema_name, err) < 0)
		goto unlock;
	if (exec_ok(conn,
		    "CREATE TABLE IF NOT EXISTS schema_migrations ("
		    " version int PRIMARY KEY, name text NOT NULL,"
		    " applied_at timestamptz NOT NULL DEFAULT now())",
		    err, "creating schema_migrations") < 0)
		goto unlock;
	for (unsigned i = 0; i < schema_nmigrations; i++) {
		const struct schema_migration *m = &schema_migrations[i];
		char version[16];
		snprintf(version, sizeof(version), "%d", m->version);
		const char *params[1] = {version};
		PGresult *r = PQexecParams(conn, "SELECT 1 FROM schema_migrations WHERE version = $1",
					   1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			buf_printf(err, "reading schema_migrations: %s", PQresultErrorMessage(r));
			PQclear(r);
			goto unlock;
		}
		int have = PQntuples(r) > 0;
		PQclear(r);
		if (have)
			continue;
		buf_reset(&sql);
		buf_printf(&sql, "BEGIN;\n%s\nINSERT INTO schema_migrations (version, name) VALUES (%d, '%s');\nCOMMIT;",
			   m->sql, m->version, m->name);
		struct buf what = BUF_INIT;
		buf_printf(&what, "applying migration %s", m->name);
		int ok = exec_ok(conn, sql.data, err, what.data);
		buf_free(&what);
		if (ok < 0) {
			PQclear(PQexec(conn, "ROLLBACK"));
			goto unlock;
		}
	}
	rc = 0;
unlock:
	PQclear(PQexec(conn, "SELECT pg_advisory_unlock(hashtext('invsync schema migration'))"));
out:
	PQfreemem(ident);
	buf_free(&sql);
	return rc;
}
