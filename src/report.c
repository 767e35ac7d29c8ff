/* report.c - `invsync report` (see report.h).
 *
 * The report is a list of tables. Each is one SQL query over the reporting
 * views (sql/008_reporting_views.sql), the history (007) and the run log,
 * or is computed here from other tables (the summary, the reconciliation
 * counts). Every query runs in one REPEATABLE READ READ ONLY transaction
 * that first takes ACCESS SHARE locks on the tables a sync swaps, before
 * its snapshot exists: a sync committing meanwhile either finishes before
 * the report reads anything or waits until it is done, so every section
 * describes the same inventory. Queries are set-based, one per table, and
 * format times and durations themselves; values are kept as the text
 * libpq returns. The writers (text, JSON, CSV, HTML) render the same
 * tables, each in its own way, every string redacted and escaped for its
 * format.
 */
#include "report.h"
#include "log.h"
#include "pgsink.h"
#include "schema.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

/* Objects the report reads that the oldest schema it can read has. */
#define REQUIRED_OBJECTS                                                            \
	"'inventory_by_model', 'last_runs', 'run_trend', 'record_changes', "        \
	"'mosyle_devices_not_in_syncro', 'syncro_assets_not_in_mosyle', "           \
	"'serial_mismatches', 'devices_needing_os_update', 'devices_without_user'"

/* Text format: the widest a line may be, in terminal columns. */
#define TEXT_COLUMNS 100

/* ---- What a table is ------------------------------------------------------ */

enum col_type {
	COL_TEXT,
	COL_INT,     /* a quantity: a JSON number; 1,234 in text */
	COL_ID,      /* an integer id (a run, an asset): a JSON number, never grouped */
	COL_SECONDS, /* a duration in seconds, one decimal: a JSON number; 2m05s in text */
	COL_TIME,    /* UTC, 2026-11-24T08:01:21Z: a JSON string; 2026-11-24 08:01 in text */
	COL_BOOL,    /* "t" or "f": JSON true or false */
};

enum {
	COL_KEY = 1 << 0,  /* names the row in the HTML page's data-k attributes */
	COL_WIDE = 1 << 1, /* left out of the text format (JSON, CSV and HTML have it) */
	COL_NOTE = 1 << 2, /* text format: on a line of its own under the row */
};

struct column {
	const char *name;  /* JSON key, CSV heading, data-k part */
	const char *title; /* heading in text and HTML */
	enum col_type type;
	unsigned flags;
	int width;         /* text: the most columns shown (longer text is cut, with "…");
			    * narrower still when the line would not fit */
	const char *yes;   /* COL_BOOL in text and HTML; NULL: "yes" and "no" */
	const char *no;
};

struct table_def {
	const char *section; /* JSON key; with name, the CSV block and data-k prefix */
	const char *name;    /* NULL: the section's only table */
	const char *title;
	const struct column *cols;
	size_t ncols;
	bool single;         /* exactly one row: a JSON object rather than an array */
	const char *sql;     /* NULL: computed from other tables */
	size_t nextra;       /* columns the query returns after cols: the totals of a list
			      * cut at --top, the same on every row */
};

enum table_id {
	T_SUMMARY,
	T_BY_OS,
	T_BY_VERSION,
	T_LAST_RUNS,
	T_CHANGES,
	T_CHANGED_FIELDS,
	T_GAP_COUNTS,
	T_GAP_MOSYLE,
	T_GAP_SYNCRO,
	T_GAP_MISMATCH,
	T_ATTENTION,
	T_TREND,
	T_COUNT
};

#define MAX_EXTRA 3

struct table {
	const struct table_def *def;
	size_t nrows;
	char **cells;            /* nrows x ncols, row by row; NULL for SQL NULL */
	char *extra[MAX_EXTRA];  /* the extra columns (NULL: the query had no row) */
};

#define CELL(t, r, c) ((t)->cells[(r) * (t)->def->ncols + (c)])

/* ---- The queries --------------------------------------------------------- */

/* $1: the sources asked for (text[], NULL for all); $2: --top (int). */
#define ONLY_SOURCES "($1::text[] IS NULL OR source = ANY ($1))"
#define ISO(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define SECONDS(x) "round(extract(epoch FROM (" x "))::numeric, 1)"

/* The latest run of each source that succeeded: the run whose changes
 * "changes since the previous run" are. */
#define LATEST_SUCCEEDED                                                                      \
	"WITH l AS (SELECT DISTINCT ON (source) source, kind, run_id, started_at, finished_at" \
	" FROM sync_runs WHERE status = 'succeeded' AND " ONLY_SOURCES                        \
	" ORDER BY source, run_id DESC) "

/* record_changes of run l.run_id: changed_at is the commit's time, after the
 * run started, which keeps the (source, changed_at) index's range to the
 * run's own rows however long the history grows. */
#define CHANGES_OF_L "c.source = l.source AND c.changed_at >= l.started_at AND c.run_id = l.run_id"

static const struct column summary_cols[] = {
	{"generated_at", "generated", COL_TIME, COL_WIDE, 16, NULL, NULL},
	{"sources", "sources", COL_INT, 0, 0, NULL, NULL},
	{"mosyle_devices", "Mosyle devices", COL_INT, 0, 0, NULL, NULL},
	{"syncro_assets", "Syncro assets", COL_INT, 0, 0, NULL, NULL},
	{"last_runs_succeeded", "last runs succeeded", COL_INT, 0, 0, NULL, NULL},
	{"last_runs_failed", "last runs failed", COL_INT, 0, 0, NULL, NULL},
	{"last_runs_running", "last runs running", COL_INT, 0, 0, NULL, NULL},
};

static const struct column by_os_cols[] = {
	{"kind", "kind", COL_TEXT, 0, 6, NULL, NULL},
	{"source", "source", COL_TEXT, COL_KEY, 32, NULL, NULL},
	{"os", "OS or asset type", COL_TEXT, COL_KEY, 32, NULL, NULL},
	{"devices", "devices", COL_INT, 0, 0, NULL, NULL},
};

static const struct column by_version_cols[] = {
	{"os", "OS", COL_TEXT, COL_KEY, 10, NULL, NULL},
	{"os_version", "version", COL_TEXT, COL_KEY, 24, NULL, NULL},
	{"devices", "devices", COL_INT, 0, 0, NULL, NULL},
};

static const struct column last_runs_cols[] = {
	{"source", "source", COL_TEXT, COL_KEY, 24, NULL, NULL},
	{"kind", "kind", COL_TEXT, COL_WIDE, 0, NULL, NULL},
	{"run_id", "run", COL_ID, COL_WIDE, 0, NULL, NULL},
	{"status", "status", COL_TEXT, 0, 9, NULL, NULL},
	{"started_at", "started (UTC)", COL_TIME, 0, 16, NULL, NULL},
	{"finished_at", "finished (UTC)", COL_TIME, COL_WIDE, 0, NULL, NULL},
	{"duration_s", "took", COL_SECONDS, 0, 0, NULL, NULL},
	{"records", "records", COL_INT, COL_WIDE, 0, NULL, NULL},
	{"loaded", "loaded", COL_INT, 0, 0, NULL, NULL},
	{"last_succeeded_at", "last success (UTC)", COL_TIME, 0, 18, NULL, NULL},
	{"recent_runs", "recent runs", COL_INT, COL_WIDE, 0, NULL, NULL},
	{"recent_failures", "failed", COL_INT, 0, 0, NULL, NULL},
	{"error", "error", COL_TEXT, COL_NOTE, 0, NULL, NULL},
};

static const struct column changes_cols[] = {
	{"source", "source", COL_TEXT, COL_KEY, 24, NULL, NULL},
	{"kind", "kind", COL_TEXT, COL_WIDE, 0, NULL, NULL},
	{"run_id", "run", COL_ID, 0, 0, NULL, NULL},
	{"previous_run_id", "previous", COL_ID, 0, 0, NULL, NULL},
	{"committed_at", "committed (UTC)", COL_TIME, 0, 16, NULL, NULL},
	{"appeared", "appeared", COL_INT, 0, 0, NULL, NULL},
	{"removed", "removed", COL_INT, 0, 0, NULL, NULL},
	{"changed", "changed", COL_INT, 0, 0, NULL, NULL},
	{"field_changes", "field changes", COL_INT, COL_WIDE, 0, NULL, NULL},
};

static const struct column changed_fields_cols[] = {
	{"source", "source", COL_TEXT, COL_KEY, 24, NULL, NULL},
	{"table_name", "table", COL_TEXT, COL_KEY, 16, NULL, NULL},
	{"field", "field", COL_TEXT, COL_KEY, 24, NULL, NULL},
	{"records", "records", COL_INT, 0, 0, NULL, NULL},
};

static const struct column gap_counts_cols[] = {
	{"gap", "list", COL_TEXT, COL_KEY, 30, NULL, NULL},
	{"records", "records", COL_INT, 0, 0, NULL, NULL},
	{"name_differs", "names differ", COL_INT, 0, 0, NULL, NULL},
	{"user_differs", "users differ", COL_INT, 0, 0, NULL, NULL},
};

static const struct column gap_mosyle_cols[] = {
	{"source", "source", COL_TEXT, 0, 20, NULL, NULL},
	{"device_key", "device key", COL_TEXT, COL_WIDE, 0, NULL, NULL},
	{"serial_number", "serial", COL_TEXT, 0, 20, NULL, NULL},
	{"device_name", "device", COL_TEXT, 0, 32, NULL, NULL},
	{"os", "OS", COL_TEXT, 0, 8, NULL, NULL},
	{"model", "model", COL_TEXT, COL_WIDE, 0, NULL, NULL},
	{"user_name", "user", COL_TEXT, 0, 24, NULL, NULL},
	{"last_checkin", "last check-in", COL_TIME, 0, 16, NULL, NULL},
};

static const struct column gap_syncro_cols[] = {
	{"source", "source", COL_TEXT, 0, 20, NULL, NULL},
	{"asset_id", "asset", COL_ID, 0, 0, NULL, NULL},
	{"asset_serial", "serial", COL_TEXT, 0, 20, NULL, NULL},
	{"name", "name", COL_TEXT, 0, 32, NULL, NULL},
	{"asset_type", "type", COL_TEXT, 0, 24, NULL, NULL},
	{"customer_name", "customer", COL_TEXT, 0, 32, NULL, NULL},
};

static const struct column gap_mismatch_cols[] = {
	{"serial_key", "serial", COL_TEXT, 0, 20, NULL, NULL},
	{"mosyle_source", "Mosyle source", COL_TEXT, COL_WIDE, 0, NULL, NULL},
	{"device_key", "device key", COL_TEXT, COL_WIDE, 0, NULL, NULL},
	{"mosyle_name", "Mosyle name", COL_TEXT, 0, 32, NULL, NULL},
	{"mosyle_user", "Mosyle user", COL_TEXT, 0, 24, NULL, NULL},
	{"mosyle_user_email", "Mosyle user e-mail", COL_TEXT, COL_WIDE, 0, NULL, NULL},
	{"syncro_source", "Syncro source", COL_TEXT, COL_WIDE, 0, NULL, NULL},
	{"asset_id", "asset", COL_ID, COL_WIDE, 0, NULL, NULL},
	{"syncro_name", "Syncro name", COL_TEXT, 0, 32, NULL, NULL},
	{"syncro_contact", "Syncro contact", COL_TEXT, 0, 24, NULL, NULL},
	{"syncro_contact_email", "Syncro contact e-mail", COL_TEXT, COL_WIDE, 0, NULL, NULL},
	{"name_differs", "names", COL_BOOL, 0, 6, "differ", "agree"},
	{"user_differs", "users", COL_BOOL, 0, 6, "differ", "agree"},
};

static const struct column attention_cols[] = {
	{"source", "source", COL_TEXT, COL_KEY, 32, NULL, NULL},
	{"stale_30d", "no check-in for 30 days", COL_INT, 0, 0, NULL, NULL},
	{"needing_os_update", "OS update", COL_INT, 0, 0, NULL, NULL},
	{"without_user", "no user", COL_INT, 0, 0, NULL, NULL},
};

static const struct column trend_cols[] = {
	{"source", "source", COL_TEXT, COL_KEY, 24, NULL, NULL},
	{"kind", "kind", COL_TEXT, COL_WIDE, 0, NULL, NULL},
	{"run_id", "run", COL_ID, COL_KEY, 0, NULL, NULL},
	{"runs_ago", "runs ago", COL_INT, COL_WIDE, 0, NULL, NULL},
	{"started_at", "started (UTC)", COL_TIME, 0, 16, NULL, NULL},
	{"status", "status", COL_TEXT, 0, 9, NULL, NULL},
	{"duration_s", "took", COL_SECONDS, 0, 0, NULL, NULL},
	{"records", "records", COL_INT, COL_WIDE, 0, NULL, NULL},
	{"loaded", "loaded", COL_INT, 0, 0, NULL, NULL},
	{"loaded_change", "change", COL_INT, 0, 0, NULL, NULL},
};

#define COLS(a) a, ARRAY_SIZE(a)

static const struct table_def table_defs[T_COUNT] = {
	[T_SUMMARY] = {"summary", NULL, "Summary", COLS(summary_cols), true, NULL, 0},
	[T_BY_OS] = {"inventory", "by_os", "Inventory by source and OS (Syncro: by asset type)",
		     COLS(by_os_cols), false,
		     "SELECT kind, source, os, sum(devices)::bigint FROM inventory_by_model"
		     " WHERE " ONLY_SOURCES " GROUP BY kind, source, os ORDER BY kind, source, 4 DESC, os",
		     0},
	[T_BY_VERSION] = {"inventory", "by_os_version", "Mosyle devices by OS version",
			  COLS(by_version_cols), false,
			  "SELECT os, os_version, sum(devices)::bigint FROM inventory_by_model"
			  " WHERE kind = 'mosyle' AND " ONLY_SOURCES " GROUP BY os, os_version"
			  " ORDER BY os, os_version_key(os_version) DESC NULLS LAST, os_version",
			  0},
	[T_LAST_RUNS] = {"last_runs", NULL, "Last run of each source", COLS(last_runs_cols), false,
			 "SELECT source, kind, run_id, status, " ISO("started_at") ", "
			 ISO("finished_at") ", " SECONDS("duration") ", records, loaded, "
			 ISO("last_succeeded_at") ", recent_runs, recent_failures, error"
			 " FROM last_runs WHERE " ONLY_SOURCES " ORDER BY source",
			 0},
	[T_CHANGES] = {"changes", "runs", "Changes recorded by each source's latest successful run",
		       COLS(changes_cols), false,
		       LATEST_SUCCEEDED
		       "SELECT l.source, l.kind, l.run_id, p.run_id, " ISO("l.finished_at") ","
		       " c.appeared, c.removed, c.changed, c.field_changes FROM l"
		       " LEFT JOIN LATERAL (SELECT max(s.run_id) AS run_id FROM sync_runs s"
		       "  WHERE s.source = l.source AND s.status = 'succeeded'"
		       "  AND s.run_id < l.run_id) p ON true"
		       " CROSS JOIN LATERAL (SELECT"
		       "  count(*) FILTER (WHERE c.change = 'appeared') AS appeared,"
		       "  count(*) FILTER (WHERE c.change = 'removed') AS removed,"
		       "  count(DISTINCT (c.table_name, c.record_key))"
		       "   FILTER (WHERE c.change = 'changed') AS changed,"
		       "  count(*) FILTER (WHERE c.change = 'changed') AS field_changes"
		       "  FROM record_changes c WHERE " CHANGES_OF_L ") c"
		       " ORDER BY l.source",
		       0},
	[T_CHANGED_FIELDS] = {"changes", "fields", "Fields changed most in those runs",
			      COLS(changed_fields_cols), false,
			      LATEST_SUCCEEDED
			      "SELECT source, table_name, field, records FROM ("
			      " SELECT c.source, c.table_name, c.field, count(*) AS records,"
			      "  row_number() OVER (PARTITION BY c.source"
			      "   ORDER BY count(*) DESC, c.table_name, c.field) AS rank"
			      " FROM l JOIN record_changes c ON " CHANGES_OF_L
			      " WHERE c.change = 'changed' GROUP BY c.source, c.table_name, c.field) f"
			      " WHERE rank <= $2 ORDER BY source, records DESC, table_name, field",
			      0},
	[T_GAP_COUNTS] = {"gaps", "counts", "Reconciliation of serial numbers",
			  COLS(gap_counts_cols), false, NULL, 0},
	/* each list: its total with a window count, so the view's function
	 * runs once for both */
	[T_GAP_MOSYLE] = {"gaps", "mosyle_devices_not_in_syncro",
			  "Mosyle devices not in Syncro (latest check-in first)",
			  COLS(gap_mosyle_cols), false,
			  "SELECT source, device_key, serial_number, device_name, os, model, user_name, "
			  ISO("last_checkin") ", count(*) OVER () FROM mosyle_devices_not_in_syncro"
			  " WHERE " ONLY_SOURCES
			  " ORDER BY last_checkin DESC NULLS LAST, source, device_key"
			  " LIMIT greatest($2, 1)",
			  1},
	[T_GAP_SYNCRO] = {"gaps", "syncro_assets_not_in_mosyle",
			  "Syncro assets not in Mosyle (newest first)", COLS(gap_syncro_cols), false,
			  "SELECT source, asset_id, asset_serial, name, asset_type, customer_name,"
			  " count(*) OVER () FROM syncro_assets_not_in_mosyle WHERE " ONLY_SOURCES
			  " ORDER BY asset_id DESC, source LIMIT greatest($2, 1)",
			  1},
	[T_GAP_MISMATCH] = {"gaps", "serial_mismatches",
			    "Devices in both whose names or users disagree",
			    COLS(gap_mismatch_cols), false,
			    "SELECT serial_key, mosyle_source, device_key, mosyle_name, mosyle_user,"
			    " mosyle_user_email, syncro_source, asset_id, syncro_name, syncro_contact,"
			    " syncro_contact_email, name_differs, user_differs, count(*) OVER (),"
			    " count(*) FILTER (WHERE name_differs) OVER (),"
			    " count(*) FILTER (WHERE user_differs) OVER ()"
			    " FROM serial_mismatches WHERE ($1::text[] IS NULL"
			    " OR mosyle_source = ANY ($1) OR syncro_source = ANY ($1))"
			    " ORDER BY (name_differs AND user_differs) DESC, serial_key, mosyle_source,"
			    " device_key, syncro_source, asset_id LIMIT greatest($2, 1)",
			    3},
	[T_ATTENTION] = {"attention", NULL, "Mosyle devices needing attention",
			 COLS(attention_cols), false,
			 "SELECT r.source, coalesce(s.n, 0), coalesce(u.n, 0), coalesce(w.n, 0)"
			 " FROM (SELECT source FROM sync_runs WHERE kind = 'mosyle' AND " ONLY_SOURCES
			 "  GROUP BY source) r"
			 " LEFT JOIN (SELECT source, count(*) AS n FROM stale_devices(30)"
			 "  WHERE " ONLY_SOURCES " GROUP BY source) s ON s.source = r.source"
			 " LEFT JOIN (SELECT source, count(*) AS n FROM devices_needing_os_update"
			 "  WHERE " ONLY_SOURCES " GROUP BY source) u ON u.source = r.source"
			 " LEFT JOIN (SELECT source, count(*) AS n FROM devices_without_user"
			 "  WHERE " ONLY_SOURCES " GROUP BY source) w ON w.source = r.source"
			 " ORDER BY r.source",
			 0},
	[T_TREND] = {"trend", NULL, "The last 30 runs of each source", COLS(trend_cols), false,
		     "SELECT source, kind, run_id, runs_ago, " ISO("started_at") ", status, "
		     SECONDS("duration") ", records, loaded, loaded_change FROM run_trend"
		     " WHERE " ONLY_SOURCES " ORDER BY source, runs_ago DESC",
		     0},
};

/* The order of the text format: the trend, long, goes last. */
static const enum table_id text_order[] = {
	T_SUMMARY,    T_BY_OS,      T_BY_VERSION, T_LAST_RUNS,    T_CHANGES,   T_CHANGED_FIELDS,
	T_GAP_COUNTS, T_GAP_MOSYLE, T_GAP_SYNCRO, T_GAP_MISMATCH, T_ATTENTION, T_TREND,
};

struct report {
	struct table t[T_COUNT];
	char *generated_at;
	int top;
	const char *const *sources;
};

bool report_format_parse(const char *name, enum report_format *out)
{
	static const char *const names[] = {
		[REPORT_FORMAT_TEXT] = "text",
		[REPORT_FORMAT_JSON] = "json",
		[REPORT_FORMAT_CSV] = "csv",
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum report_format)i;
			return true;
		}
	}
	return false;
}

/* ---- Reading ------------------------------------------------------------- */

static char *dup_or_null(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

static void table_free(struct table *t)
{
	if (t->cells)
		for (size_t i = 0; i < t->nrows * t->def->ncols; i++)
			free(t->cells[i]);
	free(t->cells);
	for (size_t i = 0; i < MAX_EXTRA; i++)
		free(t->extra[i]);
	memset(t, 0, sizeof(*t));
}

static void report_free(struct report *rep)
{
	for (size_t i = 0; i < T_COUNT; i++)
		table_free(&rep->t[i]);
	free(rep->generated_at);
}

static void table_alloc(struct table *t, size_t nrows)
{
	t->nrows = nrows;
	t->cells = xcalloc(nrows ? nrows * t->def->ncols : 1, sizeof(char *));
}

/* The server's error for a person, redacted. */
static void query_error(struct buf *err, const char *what, const PGresult *r)
{
	struct buf e = BUF_INIT;
	pgsink_describe_error(&e, r);
	buf_printf(err, "reading %s: ", what);
	log_redact(err, buf_str(&e));
	buf_free(&e);
}

static int exec_command(PGconn *conn, const char *sql, const char *what, struct buf *err)
{
	PGresult *r = PQexec(conn, sql);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		query_error(err, what, r);
		rc = -1;
	}
	PQclear(r);
	return rc;
}

/* A query of the report with its two parameters (see ONLY_SOURCES). */
static PGresult *query(PGconn *conn, const char *sql, const char *sources, int top)
{
	static const Oid types[2] = {1009 /* text[] */, 23 /* int4 */};
	char top_text[16];
	snprintf(top_text, sizeof(top_text), "%d", top);
	const char *values[2] = {sources, top_text};
	return PQexecParams(conn, sql, 2, types, values, NULL, NULL, 0);
}

static int read_table(PGconn *conn, struct table *t, const char *sources, int top,
		      struct buf *err)
{
	const struct table_def *d = t->def;
	PGresult *r = query(conn, d->sql, sources, top);
	if (PQresultStatus(r) != PGRES_TUPLES_OK ||
	    (size_t)PQnfields(r) != d->ncols + d->nextra) {
		struct buf what = BUF_INIT;
		buf_printf(&what, "%s%s%s", d->section, d->name ? "." : "", d->name ? d->name : "");
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			buf_printf(err, "reading %s: %d columns, expected %zu", what.data, PQnfields(r),
				   d->ncols + d->nextra);
		else
			query_error(err, what.data, r);
		buf_free(&what);
		PQclear(r);
		return -1;
	}
	size_t n = (size_t)PQntuples(r);
	/* lists are asked for at least one row, for their totals */
	if (d->nextra && n > (size_t)top)
		n = (size_t)top;
	table_alloc(t, n);
	for (size_t i = 0; i < n; i++)
		for (size_t c = 0; c < d->ncols; c++)
			CELL(t, i, c) = dup_or_null(r, (int)i, (int)c);
	for (size_t x = 0; x < d->nextra && PQntuples(r) > 0; x++)
		t->extra[x] = dup_or_null(r, 0, (int)(d->ncols + x));
	PQclear(r);
	return 0;
}

static long long cell_ll(const struct table *t, size_t row, size_t col)
{
	const char *v = CELL(t, row, col);
	return v ? atoll(v) : 0;
}

static char *fmt_ll(long long v)
{
	char s[32];
	snprintf(s, sizeof(s), "%lld", v);
	return xstrdup(s);
}

/* The summary and the reconciliation counts, from the tables read. */
static void compute_tables(struct report *rep)
{
	struct table *s = &rep->t[T_SUMMARY];
	const struct table *os = &rep->t[T_BY_OS], *runs = &rep->t[T_LAST_RUNS];
	long long mosyle = 0, syncro = 0, ok = 0, failed = 0, running = 0;
	for (size_t i = 0; i < os->nrows; i++) {
		const char *kind = CELL(os, i, 0);
		if (kind && strcmp(kind, "mosyle") == 0)
			mosyle += cell_ll(os, i, 3);
		else
			syncro += cell_ll(os, i, 3);
	}
	for (size_t i = 0; i < runs->nrows; i++) {
		const char *st = CELL(runs, i, 3);
		st = st ? st : "";
		ok += strcmp(st, "succeeded") == 0;
		failed += strcmp(st, "failed") == 0;
		running += strcmp(st, "running") == 0;
	}
	table_alloc(s, 1);
	CELL(s, 0, 0) = xstrdup(rep->generated_at);
	CELL(s, 0, 1) = fmt_ll((long long)runs->nrows);
	CELL(s, 0, 2) = fmt_ll(mosyle);
	CELL(s, 0, 3) = fmt_ll(syncro);
	CELL(s, 0, 4) = fmt_ll(ok);
	CELL(s, 0, 5) = fmt_ll(failed);
	CELL(s, 0, 6) = fmt_ll(running);

	static const struct {
		enum table_id list;
		bool differs;
	} lists[] = {{T_GAP_MOSYLE, false}, {T_GAP_SYNCRO, false}, {T_GAP_MISMATCH, true}};
	struct table *g = &rep->t[T_GAP_COUNTS];
	table_alloc(g, ARRAY_SIZE(lists));
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		const struct table *l = &rep->t[lists[i].list];
		CELL(g, i, 0) = xstrdup(l->def->name);
		for (size_t x = 0; x < (lists[i].differs ? 3u : 1u); x++)
			CELL(g, i, 1 + x) = xstrdup(l->extra[x] ? l->extra[x] : "0");
	}
}

/* "{"a","b"}" for $1, or NULL for every source. */
static char *sources_array(const char *const *sources)
{
	if (!sources || !*sources)
		return NULL;
	struct buf b = BUF_INIT;
	buf_putc(&b, '{');
	for (const char *const *s = sources; *s; s++) {
		buf_puts(&b, s == sources ? "\"" : ",\"");
		for (const char *p = *s; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_putc(&b, '\\');
			buf_putc(&b, *p);
		}
		buf_putc(&b, '"');
	}
	buf_putc(&b, '}');
	return b.data;
}

/* Every --source must be configured or in the run log. */
static int check_sources(PGconn *conn, const struct config *cfg, const char *const *sources,
			 struct buf *err)
{
	const char **unknown = xcalloc(1, sizeof(char *));
	size_t n = 0;
	for (const char *const *s = sources; s && *s; s++) {
		size_t k = 0;
		while (k < cfg->nsources && strcmp(cfg->sources[k].name, *s) != 0)
			k++;
		if (k == cfg->nsources) {
			unknown = xrealloc(unknown, (n + 2) * sizeof(char *));
			unknown[n++] = *s;
			unknown[n] = NULL;
		}
	}
	int rc = 0;
	char *arr = sources_array(unknown);
	if (arr) {
		PGresult *r = query(conn,
				    "SELECT s FROM unnest($1::text[]) s WHERE NOT EXISTS"
				    " (SELECT 1 FROM sync_runs r WHERE r.source = s)",
				    arr, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			query_error(err, "the run log", r);
			rc = -1;
		} else if (PQntuples(r) > 0) {
			buf_printf(err, "--source %s: no such source in the configuration or the run log",
				   PQgetvalue(r, 0, 0));
			rc = REPORT_EUSAGE;
		}
		PQclear(r);
	}
	free(arr);
	free(unknown);
	return rc;
}

/* The schema must exist and have the reporting views; the report creates
 * nothing. */
static int check_schema(PGconn *conn, const char *schema, struct buf *err)
{
	const char *values[1] = {schema};
	PGresult *r = PQexecParams(conn,
				   "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),"
				   " (SELECT string_agg(o, ', ' ORDER BY i)"
				   "  FROM unnest(ARRAY[" REQUIRED_OBJECTS "]) WITH ORDINALITY AS x(o, i)"
				   "  WHERE to_regclass(quote_ident($1) || '.' || o) IS NULL)",
				   1, NULL, values, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		query_error(err, "the schema", r);
		rc = -1;
	} else if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		buf_printf(err, "schema \"%s\" does not exist in this database: nothing has been"
				" loaded there yet ('invsync sync' or 'invsync migrate' creates it)",
			   schema);
		rc = -1;
	} else if (!PQgetisnull(r, 0, 1)) {
		buf_printf(err, "schema \"%s\" has no %s: it predates the reporting views;"
				" 'invsync migrate' upgrades it",
			   schema, PQgetvalue(r, 0, 1));
		rc = -1;
	}
	PQclear(r);
	return rc;
}

static int read_report(PGconn *conn, const struct config *cfg, const struct report_options *opt,
		       struct report *rep, struct buf *err)
{
	if (check_schema(conn, cfg->schema, err) < 0 || schema_use(conn, cfg->schema, err) < 0)
		return -1;
	/* The locks come before the snapshot (the first query takes it): a
	 * sync swapping a partition in has committed by then, or waits. */
	if (exec_command(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "the database",
			 err) < 0 ||
	    exec_command(conn, "SET LOCAL jit = off", "the database", err) < 0 ||
	    exec_command(conn, "LOCK TABLE mosyle_devices, syncro_assets, syncro_contacts, sync_runs,"
			       " record_changes IN ACCESS SHARE MODE", "the inventory", err) < 0)
		return -1;
	int rc = check_sources(conn, cfg, opt->sources, err);
	if (rc < 0)
		return rc;
	PGresult *r = PQexec(conn, "SELECT " ISO("now()"));
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		query_error(err, "the time", r);
		PQclear(r);
		return -1;
	}
	rep->generated_at = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	char *sources = sources_array(opt->sources);
	for (size_t i = 0; i < T_COUNT && rc == 0; i++) {
		if (table_defs[i].sql)
			rc = read_table(conn, &rep->t[i], sources, opt->top, err);
	}
	free(sources);
	if (rc == 0)
		rc = exec_command(conn, "COMMIT", "the database", err);
	if (rc == 0)
		compute_tables(rep);
	return rc;
}

/* ---- Values ---------------------------------------------------------------- */

/* 1234567 as 1,234,567 (a sign and a fraction kept as they are). */
static void put_grouped(struct buf *out, const char *v)
{
	if (*v == '-' || *v == '+')
		buf_putc(out, *v++);
	size_t digits = strspn(v, "0123456789");
	for (size_t i = 0; i < digits; i++) {
		if (i > 0 && (digits - i) % 3 == 0)
			buf_putc(out, ',');
		buf_putc(out, v[i]);
	}
	buf_puts(out, v + digits);
}

/* 7.1s, 2m05s, 1h02m */
static void put_duration(struct buf *out, const char *v)
{
	double s = strtod(v, NULL);
	if (s < 60)
		buf_printf(out, "%.1fs", s);
	else if (s < 3600)
		buf_printf(out, "%dm%02ds", (int)(s / 60), (int)s % 60);
	else
		buf_printf(out, "%dh%02dm", (int)(s / 3600), (int)s / 60 % 60);
}

static const char *bool_word(const struct column *c, const char *v)
{
	bool t = v[0] == 't';
	return t ? (c->yes ? c->yes : "yes") : (c->no ? c->no : "no");
}

/* A value as a person reads it (text and HTML), not yet escaped; NULL is
 * empty. Strings are redacted. */
static void put_display(struct buf *out, const struct column *c, const char *v)
{
	if (!v)
		return;
	switch (c->type) {
	case COL_INT:
		put_grouped(out, v);
		break;
	case COL_ID:
		buf_puts(out, v);
		break;
	case COL_SECONDS:
		put_duration(out, v);
		break;
	case COL_TIME: {
		/* 2026-11-24T08:01:21Z -> 2026-11-24 08:01 */
		size_t at = out->len;
		buf_append(out, v, strnlen(v, 16));
		if (out->len > at + 10 && out->data[at + 10] == 'T')
			out->data[at + 10] = ' ';
		break;
	}
	case COL_BOOL:
		buf_puts(out, bool_word(c, v));
		break;
	case COL_TEXT:
		log_redact(out, v);
		break;
	}
}

static bool is_number_type(enum col_type t)
{
	return t == COL_INT || t == COL_ID || t == COL_SECONDS;
}

/* A number as libpq prints bigint and numeric is a JSON number, unless it
 * is NaN or infinite (not in these queries, but never invalid JSON). */
static bool json_number_ok(const char *v)
{
	const char *p = v + (*v == '-');
	size_t d = strspn(p, "0123456789");
	if (d == 0 || (d > 1 && *p == '0'))
		return false;
	p += d;
	if (*p == '.') {
		p++;
		size_t f = strspn(p, "0123456789");
		if (f == 0)
			return false;
		p += f;
	}
	return *p == '\0';
}

/* ---- Text -------------------------------------------------------------- */

/* The columns a terminal gives code point c: 2 for East Asian wide and
 * fullwidth characters and most emoji, 0 for combining marks, variation
 * selectors and zero-width characters, 1 for the rest. A close enough
 * stand-in for wcwidth(), which would depend on the locale. */
static size_t char_width(unsigned long c)
{
	static const unsigned long zero[][2] = {
		{0x0300, 0x036f}, {0x1ab0, 0x1aff}, {0x1dc0, 0x1dff}, {0x200b, 0x200f},
		{0x20d0, 0x20ff}, {0xfe00, 0xfe0f}, {0xfe20, 0xfe2f}, {0xe0100, 0xe01ef},
	};
	static const unsigned long wide[][2] = {
		{0x1100, 0x115f},   {0x2329, 0x232a},	{0x2e80, 0x303e},   {0x3041, 0x33ff},
		{0x3400, 0x4dbf},   {0x4e00, 0x9fff},	{0xa000, 0xa4cf},   {0xac00, 0xd7a3},
		{0xf900, 0xfaff},   {0xfe30, 0xfe4f},	{0xff00, 0xff60},   {0xffe0, 0xffe6},
		{0x1f300, 0x1f64f}, {0x1f680, 0x1f6ff}, {0x1f900, 0x1f9ff}, {0x20000, 0x3fffd},
	};
	for (size_t i = 0; i < ARRAY_SIZE(zero); i++)
		if (c >= zero[i][0] && c <= zero[i][1])
			return 0;
	for (size_t i = 0; i < ARRAY_SIZE(wide); i++)
		if (c >= wide[i][0] && c <= wide[i][1])
			return 2;
	return 1;
}

/* The code point of the well-formed UTF-8 character of len bytes at s. */
static unsigned long code_point(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	if (len == 1)
		return u[0];
	unsigned long c = u[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++)
		c = c << 6 | (u[i] & 0x3f);
	return c;
}

/* As much of the clean text s (well-formed UTF-8, no control character)
 * as fits in width - 1 columns, then "…". Returns the columns written. */
static size_t put_cut(struct buf *out, const char *s, size_t width)
{
	size_t at = 0, n = strlen(s), cols = 0, len;
	while (at < n) {
		(void)util_utf8_next(s + at, n - at, &len);
		size_t w = char_width(code_point(s + at, len));
		if (cols + w + 1 > width)
			break;
		cols += w;
		at += len;
	}
	buf_append(out, s, at);
	buf_puts(out, "\xE2\x80\xA6");
	return cols + 1;
}

/* s made safe for a terminal: redacted, control characters (C0, DEL, C1)
 * as spaces, ill-formed UTF-8 as U+FFFD, cut to width columns with "…"
 * (width 0: no limit). Returns the columns written. */
static size_t put_clean(struct buf *out, const char *s, size_t width)
{
	struct buf red = BUF_INIT, clean = BUF_INIT;
	log_redact(&red, s);
	const char *p = buf_str(&red);
	size_t n = red.len, cols = 0;
	for (size_t i = 0, len; i < n; i += len) {
		unsigned char c = (unsigned char)p[i];
		if (!util_utf8_next(p + i, n - i, &len)) {
			buf_puts(&clean, "\xEF\xBF\xBD");
			cols++;
		} else if (c < 0x20 || c == 0x7f || (c == 0xc2 && (unsigned char)p[i + 1] < 0xa0)) {
			buf_putc(&clean, ' ');
			cols++;
		} else {
			buf_append(&clean, p + i, len);
			cols += char_width(code_point(p + i, len));
		}
	}
	if (width && cols > width)
		cols = put_cut(out, buf_str(&clean), width);
	else
		buf_puts(out, buf_str(&clean));
	buf_free(&red);
	buf_free(&clean);
	return cols;
}

static void put_spaces(struct buf *out, size_t n)
{
	while (n--)
		buf_putc(out, ' ');
}

/* Drop trailing spaces and end the line. */
static void end_line(struct buf *out)
{
	while (out->len && out->data[out->len - 1] == ' ')
		out->data[--out->len] = '\0';
	buf_putc(out, '\n');
}

struct text_cell {
	struct buf text;
	size_t cols; /* its width on a terminal */
};

static bool text_visible(const struct column *col)
{
	return !(col->flags & (COL_WIDE | COL_NOTE));
}

/* A one-row table as "label  value" lines, the values right-aligned. */
static void text_single(struct buf *out, const struct table *t)
{
	const struct table_def *d = t->def;
	size_t label = 0, value = 0;
	struct buf *v = xcalloc(d->ncols, sizeof(struct buf));
	for (size_t c = 0; c < d->ncols && t->nrows; c++) {
		if (!text_visible(&d->cols[c]))
			continue;
		if (strlen(d->cols[c].title) > label)
			label = strlen(d->cols[c].title);
		struct buf disp = BUF_INIT;
		put_display(&disp, &d->cols[c], CELL(t, 0, c));
		size_t cols = put_clean(&v[c], disp.len ? disp.data : "-", 0);
		if (cols > value)
			value = cols;
		buf_free(&disp);
	}
	for (size_t c = 0; c < d->ncols && t->nrows; c++) {
		if (!text_visible(&d->cols[c]))
			continue;
		buf_printf(out, "  %-*s  %*s", (int)label, d->cols[c].title, (int)value,
			   buf_str(&v[c]));
		end_line(out);
	}
	for (size_t c = 0; c < d->ncols; c++)
		buf_free(&v[c]);
	free(v);
}

static void text_table(struct buf *out, const struct table *t)
{
	const struct table_def *d = t->def;
	buf_printf(out, "\n%s\n", d->title);
	if (d->single) {
		text_single(out, t);
		return;
	}
	if (t->nrows == 0) {
		buf_puts(out, "  (none)\n");
		return;
	}
	size_t nc = d->ncols;
	struct text_cell *cells = xcalloc(t->nrows * nc, sizeof(*cells));
	size_t *width = xcalloc(nc, sizeof(size_t));
	for (size_t c = 0; c < nc; c++)
		width[c] = strlen(d->cols[c].title);
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < nc; c++) {
			const struct column *col = &d->cols[c];
			if (!text_visible(col))
				continue;
			struct text_cell *tc = &cells[r * nc + c];
			struct buf v = BUF_INIT;
			put_display(&v, col, CELL(t, r, c));
			/* numbers are never cut */
			tc->cols = put_clean(&tc->text, v.len ? v.data : "-",
					     is_number_type(col->type) ? 0 : (size_t)col->width);
			if (tc->cols > width[c])
				width[c] = tc->cols;
			buf_free(&v);
		}
	}
	/* Each column takes its width and two spaces. Past TEXT_COLUMNS, the
	 * widest text column gives up a column, again and again, down to its
	 * heading's width (or 6). */
	for (;;) {
		size_t total = 0, widest = nc;
		for (size_t c = 0; c < nc; c++) {
			const struct column *col = &d->cols[c];
			if (!text_visible(col))
				continue;
			total += width[c] + 2;
			size_t floor = strlen(col->title) > 6 ? strlen(col->title) : 6;
			if (col->type == COL_TEXT && width[c] > floor &&
			    (widest == nc || width[c] > width[widest]))
				widest = c;
		}
		if (total <= TEXT_COLUMNS || widest == nc)
			break;
		width[widest]--;
	}
	/* headings, then rows: numbers right-aligned */
	for (int head = 1; head >= 0; head--) {
		for (size_t r = 0; r < (head ? 1 : t->nrows); r++) {
			buf_puts(out, " ");
			for (size_t c = 0; c < nc; c++) {
				const struct column *col = &d->cols[c];
				if (!text_visible(col))
					continue;
				const struct text_cell *tc = &cells[r * nc + c];
				const char *s = head ? col->title : buf_str(&tc->text);
				size_t cols = head ? strlen(col->title) : tc->cols;
				struct buf cell = BUF_INIT;
				if (cols > width[c])
					cols = put_cut(&cell, s, width[c]);
				else
					buf_puts(&cell, s);
				size_t pad = width[c] > cols ? width[c] - cols : 0;
				buf_puts(out, " ");
				if (is_number_type(col->type))
					put_spaces(out, pad);
				buf_puts(out, buf_str(&cell));
				if (!is_number_type(col->type))
					put_spaces(out, pad);
				buf_puts(out, " ");
				buf_free(&cell);
			}
			end_line(out);
			for (size_t c = 0; !head && c < nc; c++) {
				const struct column *col = &d->cols[c];
				if (!(col->flags & COL_NOTE) || !CELL(t, r, c))
					continue;
				size_t lead = 4 + strlen(col->title) + 2;
				buf_printf(out, "    %s: ", col->title);
				put_clean(out, CELL(t, r, c), TEXT_COLUMNS - lead);
				end_line(out);
			}
		}
	}
	for (size_t i = 0; i < t->nrows * nc; i++)
		buf_free(&cells[i].text);
	free(cells);
	free(width);
	/* a list cut at --top says how long it is */
	if (d->nextra && t->extra[0] && (size_t)atoll(t->extra[0]) > t->nrows) {
		buf_printf(out, "  (%zu of ", t->nrows);
		put_grouped(out, t->extra[0]);
		buf_puts(out, ")\n");
	}
}

static void write_text(struct buf *out, const struct report *rep)
{
	buf_puts(out, "invsync report, ");
	put_display(out, &summary_cols[0], rep->generated_at);
	buf_puts(out, " UTC");
	if (rep->sources && *rep->sources) {
		buf_puts(out, "; sources:");
		for (const char *const *s = rep->sources; *s; s++) {
			buf_putc(out, ' ');
			put_clean(out, *s, 0);
		}
	}
	buf_putc(out, '\n');
	for (size_t i = 0; i < ARRAY_SIZE(text_order); i++)
		text_table(out, &rep->t[text_order[i]]);
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_value(struct buf *out, const struct column *c, const char *v)
{
	if (!v) {
		buf_puts(out, "null");
		return;
	}
	if (is_number_type(c->type) && json_number_ok(v))
		buf_puts(out, v);
	else if (c->type == COL_BOOL)
		buf_puts(out, v[0] == 't' ? "true" : "false");
	else
		log_json_string(out, v, strlen(v));
}

static void json_row(struct buf *out, const struct table *t, size_t r)
{
	buf_putc(out, '{');
	for (size_t c = 0; c < t->def->ncols; c++) {
		buf_printf(out, "%s\"%s\":", c ? "," : "", t->def->cols[c].name);
		json_value(out, &t->def->cols[c], CELL(t, r, c));
	}
	buf_putc(out, '}');
}

static void json_table(struct buf *out, const struct table *t, const char *indent)
{
	if (t->def->single) {
		if (t->nrows)
			json_row(out, t, 0);
		else
			buf_puts(out, "null");
		return;
	}
	if (t->nrows == 0) {
		buf_puts(out, "[]");
		return;
	}
	buf_puts(out, "[\n");
	for (size_t r = 0; r < t->nrows; r++) {
		buf_printf(out, "%s  ", indent);
		json_row(out, t, r);
		buf_puts(out, r + 1 < t->nrows ? ",\n" : "\n");
	}
	buf_printf(out, "%s]", indent);
}

static void write_json(struct buf *out, const struct report *rep)
{
	buf_puts(out, "{");
	for (size_t i = 0; i < T_COUNT;) {
		const struct table_def *d = &table_defs[i];
		buf_printf(out, "%s\n  \"%s\": ", i ? "," : "", d->section);
		if (!d->name) {
			json_table(out, &rep->t[i], "  ");
			i++;
			continue;
		}
		/* a section of several tables: an object of them */
		buf_puts(out, "{");
		for (size_t first = i; i < T_COUNT && strcmp(table_defs[i].section, d->section) == 0;
		     i++) {
			buf_printf(out, "%s\n    \"%s\": ", i > first ? "," : "", table_defs[i].name);
			json_table(out, &rep->t[i], "    ");
		}
		buf_puts(out, "\n  }");
	}
	buf_puts(out, "\n}\n");
}

/* ---- CSV ------------------------------------------------------------------- */

/* RFC 4180: a field holding a comma, a quote, CR or LF is quoted, quotes
 * doubled. A field starting with '#' is quoted too, so that no data line
 * reads as a block's "# name" line. */
static void csv_field(struct buf *out, const char *s)
{
	if (!strpbrk(s, ",\"\r\n") && s[0] != '#') {
		buf_puts(out, s);
		return;
	}
	buf_putc(out, '"');
	for (; *s; s++) {
		if (*s == '"')
			buf_putc(out, '"');
		buf_putc(out, *s);
	}
	buf_putc(out, '"');
}

static void block_name(struct buf *out, const struct table_def *d)
{
	buf_puts(out, d->section);
	if (d->name)
		buf_printf(out, ".%s", d->name);
}

static void write_csv(struct buf *out, const struct report *rep)
{
	for (size_t i = 0; i < T_COUNT; i++) {
		const struct table *t = &rep->t[i];
		const struct table_def *d = t->def;
		if (i)
			buf_puts(out, "\r\n");
		buf_puts(out, "# ");
		block_name(out, d);
		buf_puts(out, "\r\n");
		for (size_t c = 0; c < d->ncols; c++)
			buf_printf(out, "%s%s", c ? "," : "", d->cols[c].name);
		buf_puts(out, "\r\n");
		for (size_t r = 0; r < t->nrows; r++) {
			for (size_t c = 0; c < d->ncols; c++) {
				const char *v = CELL(t, r, c);
				if (c)
					buf_putc(out, ',');
				if (!v)
					continue;
				if (d->cols[c].type == COL_BOOL) {
					buf_puts(out, v[0] == 't' ? "true" : "false");
				} else {
					struct buf red = BUF_INIT;
					log_redact(&red, v);
					csv_field(out, buf_str(&red));
					buf_free(&red);
				}
			}
			buf_puts(out, "\r\n");
		}
	}
}

/* ---- HTML ------------------------------------------------------------------ */

/* Text for HTML content or a quoted attribute: redacted; & < > " '
 * escaped; control characters but tab, LF and CR as spaces; ill-formed
 * UTF-8 as U+FFFD. */
static void html_text(struct buf *out, const char *s)
{
	struct buf red = BUF_INIT;
	log_redact(&red, s);
	const char *p = buf_str(&red);
	size_t n = red.len;
	for (size_t i = 0, len; i < n; i += len) {
		unsigned char c = (unsigned char)p[i];
		if (!util_utf8_next(p + i, n - i, &len)) {
			buf_puts(out, "\xEF\xBF\xBD");
			continue;
		}
		switch (c) {
		case '&':
			buf_puts(out, "&amp;");
			break;
		case '<':
			buf_puts(out, "&lt;");
			break;
		case '>':
			buf_puts(out, "&gt;");
			break;
		case '"':
			buf_puts(out, "&quot;");
			break;
		case '\'':
			buf_puts(out, "&#39;");
			break;
		default:
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
				buf_putc(out, ' ');
			else
				buf_append(out, p + i, len);
		}
	}
	buf_free(&red);
}

/* The data-k attribute of cell (r, c): the block, the row's key values
 * and the column, dot-separated. */
static void html_key(struct buf *out, const struct table *t, size_t r, size_t c)
{
	const struct table_def *d = t->def;
	struct buf k = BUF_INIT;
	block_name(&k, d);
	for (size_t i = 0; i < d->ncols; i++) {
		if (d->cols[i].flags & COL_KEY) {
			buf_putc(&k, '.');
			buf_puts(&k, CELL(t, r, i) ? CELL(t, r, i) : "");
		}
	}
	buf_printf(&k, ".%s", d->cols[c].name);
	buf_puts(out, " data-k=\"");
	html_text(out, k.data);
	buf_putc(out, '"');
	buf_free(&k);
}

static bool has_keys(const struct table_def *d)
{
	for (size_t i = 0; i < d->ncols; i++)
		if (d->cols[i].flags & COL_KEY)
			return true;
	return d->single;
}

static const char *status_class(const char *v)
{
	static const char *const known[] = {"succeeded", "failed", "running"};
	for (size_t i = 0; v && i < ARRAY_SIZE(known); i++)
		if (strcmp(v, known[i]) == 0)
			return known[i];
	return NULL;
}

static void html_cell(struct buf *out, const struct table *t, size_t r, size_t c, bool keyed)
{
	const struct column *col = &t->def->cols[c];
	const char *v = CELL(t, r, c);
	const char *cls = NULL;
	if (is_number_type(col->type))
		cls = "n";
	else if (col->type == COL_TIME)
		cls = "t";
	else if (strcmp(col->name, "error") == 0)
		cls = "err";
	else if (strcmp(col->name, "status") == 0)
		cls = status_class(v);
	buf_puts(out, "<td");
	if (cls)
		buf_printf(out, " class=\"%s\"", cls);
	if (keyed && !(col->flags & COL_KEY)) {
		html_key(out, t, r, c);
		if (v) {
			buf_puts(out, " data-v=\"");
			html_text(out, col->type == COL_BOOL ? (v[0] == 't' ? "true" : "false") : v);
			buf_putc(out, '"');
		}
	}
	buf_putc(out, '>');
	struct buf disp = BUF_INIT;
	put_display(&disp, col, v);
	html_text(out, disp.len ? disp.data : (v ? "" : "\xE2\x80\x93"));
	buf_free(&disp);
	buf_puts(out, "</td>");
}

static void html_table(struct buf *out, const struct table *t)
{
	const struct table_def *d = t->def;
	bool keyed = has_keys(d);
	buf_puts(out, "<div class=\"scroll\"><table data-t=\"");
	block_name(out, d);
	buf_puts(out, "\">\n<tr>");
	for (size_t c = 0; c < d->ncols; c++) {
		buf_printf(out, "<th%s>", is_number_type(d->cols[c].type) ? " class=\"n\"" : "");
		html_text(out, d->cols[c].title);
		buf_puts(out, "</th>");
	}
	buf_puts(out, "</tr>\n");
	for (size_t r = 0; r < t->nrows; r++) {
		buf_puts(out, "<tr>");
		for (size_t c = 0; c < d->ncols; c++)
			html_cell(out, t, r, c, keyed);
		buf_puts(out, "</tr>\n");
	}
	if (t->nrows == 0)
		buf_printf(out, "<tr><td class=\"none\" colspan=\"%zu\">none</td></tr>\n", d->ncols);
	buf_puts(out, "</table></div>\n");
	if (d->nextra && t->extra[0] && (size_t)atoll(t->extra[0]) > t->nrows) {
		buf_printf(out, "<p class=\"more\">The first %zu of ", t->nrows);
		put_grouped(out, t->extra[0]);
		buf_puts(out, ".</p>\n");
	}
}

static void html_heading(struct buf *out, const char *tag, const char *text)
{
	buf_printf(out, "<%s>", tag);
	html_text(out, text);
	buf_printf(out, "</%s>\n", tag);
}

/* An SVG text element at (x, y). */
static void svg_text(struct buf *out, int x, int y, const char *anchor, const char *text)
{
	buf_printf(out, "<text x=\"%d\" y=\"%d\"%s%s%s>", x, y, anchor ? " text-anchor=\"" : "",
		   anchor ? anchor : "", anchor ? "\"" : "");
	html_text(out, text);
	buf_puts(out, "</text>");
}

static const char *os_colour(const char *os)
{
	static const struct {
		const char *os, *colour;
	} colours[] = {{"ios", "#2f6fde"}, {"mac", "#6b7380"}, {"tvos", "#8a4fd1"},
		       {"visionos", "#14907f"}};
	for (size_t i = 0; os && i < ARRAY_SIZE(colours); i++)
		if (strcmp(os, colours[i].os) == 0)
			return colours[i].colour;
	return "#d2782a";
}

#define VERSION_BARS 40

/* Horizontal bars: Mosyle devices per OS version, in the table's order
 * (per OS, newest version first); past VERSION_BARS, one bar for the rest. */
static void html_version_chart(struct buf *out, const struct table *t)
{
	enum { W = 960, LABEL = 200, BAR_X = 210, BAR_MAX = 640, ROW = 20, TOP = 6 };
	size_t n = t->nrows, shown = n > VERSION_BARS ? VERSION_BARS - 1 : n;
	long long rest = 0, max = 1;
	for (size_t i = 0; i < n; i++) {
		long long v = cell_ll(t, i, 2);
		if (i < shown && v > max)
			max = v;
		if (i >= shown)
			rest += v;
	}
	if (rest > max)
		max = rest;
	size_t bars = shown + (n > shown);
	if (bars == 0)
		return;
	buf_printf(out, "<svg class=\"chart versions\" role=\"img\" width=\"%d\" height=\"%zu\""
			" viewBox=\"0 0 %d %zu\" aria-label=\"Mosyle devices by OS version\">\n",
		   W, TOP + bars * ROW + 4, W, TOP + bars * ROW + 4);
	for (size_t i = 0; i < bars; i++) {
		bool other = i == shown;
		const char *os = other ? NULL : CELL(t, i, 0);
		const char *version = other ? NULL : CELL(t, i, 1);
		long long v = other ? rest : cell_ll(t, i, 2);
		int y = TOP + (int)i * ROW;
		int w = (int)((double)v / (double)max * BAR_MAX);
		if (w < 1 && v > 0)
			w = 1;
		struct buf label = BUF_INIT, value = BUF_INIT, num = BUF_INIT;
		if (other)
			buf_printf(&label, "%zu more versions", n - shown);
		else
			buf_printf(&label, "%s %s", os ? os : "", version ? version : "(none)");
		buf_printf(&num, "%lld", v);
		put_grouped(&value, num.data);
		buf_puts(out, "<g class=\"bar\"");
		if (!other) {
			buf_puts(out, " data-os=\"");
			html_text(out, os ? os : "");
			buf_puts(out, "\" data-version=\"");
			html_text(out, version ? version : "");
			buf_putc(out, '"');
		}
		buf_printf(out, " data-devices=\"%lld\"><title>", v);
		html_text(out, label.data);
		buf_puts(out, ": ");
		html_text(out, value.data);
		buf_puts(out, "</title>");
		svg_text(out, LABEL, y + 14, "end", label.data);
		buf_printf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>",
			   BAR_X, y + 3, w, ROW - 6, other ? "#b7bdc7" : os_colour(os));
		svg_text(out, BAR_X + w + 6, y + 14, NULL, value.data);
		buf_puts(out, "</g>\n");
		buf_free(&label);
		buf_free(&value);
		buf_free(&num);
	}
	buf_puts(out, "</svg>\n");
}

/* Vertical bars: the rows loaded by each run of one source (rows from
 * to end of the trend table, oldest first). A failed or unfinished run is
 * a short red or amber bar on the axis. */
static void html_trend_chart(struct buf *out, const struct table *t, size_t from, size_t end)
{
	enum { W = 960, H = 190, LEFT = 70, RIGHT = 20, TOP = 16, BASE = 150 };
	size_t n = end - from;
	long long max = 1;
	for (size_t i = from; i < end; i++)
		if (cell_ll(t, i, 8) > max)
			max = cell_ll(t, i, 8);
	int slot = (W - LEFT - RIGHT) / (int)(n < 10 ? 10 : n);
	int bar = slot * 7 / 10;
	buf_printf(out, "<svg class=\"chart trend\" role=\"img\" width=\"%d\" height=\"%d\""
			" viewBox=\"0 0 %d %d\" data-source=\"", W, H, W, H);
	html_text(out, CELL(t, from, 0) ? CELL(t, from, 0) : "");
	buf_puts(out, "\" aria-label=\"records loaded per run\">\n");
	struct buf num = BUF_INIT, label = BUF_INIT;
	buf_printf(&num, "%lld", max);
	put_grouped(&label, num.data);
	buf_printf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#9aa3b0\"/>"
			"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#e1e5eb\"/>",
		   LEFT - 4, BASE, W - RIGHT, BASE, LEFT - 4, TOP, W - RIGHT, TOP);
	svg_text(out, LEFT - 8, TOP + 4, "end", label.data);
	svg_text(out, LEFT - 8, BASE + 4, "end", "0");
	for (size_t i = from; i < end; i++) {
		const char *status = CELL(t, i, 5) ? CELL(t, i, 5) : "";
		const char *loaded = CELL(t, i, 8);
		const char *cls = status_class(status);
		int x = LEFT + (int)(i - from) * slot;
		int h;
		const char *fill;
		if (strcmp(status, "succeeded") == 0 && loaded) {
			h = (int)((double)atoll(loaded) / (double)max * (BASE - TOP));
			if (h < 1)
				h = 1;
			fill = "#2f6fde";
		} else {
			h = 6;
			fill = strcmp(status, "failed") == 0 ? "#c62828" : "#e0a100";
		}
		buf_printf(out, "<rect class=\"run%s%s\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\""
				" fill=\"%s\" data-run=\"%s\" data-status=\"",
			   cls ? " " : "", cls ? cls : "", x, BASE - h, bar, h, fill,
			   CELL(t, i, 2) ? CELL(t, i, 2) : "");
		html_text(out, status);
		buf_puts(out, "\"");
		if (loaded) {
			buf_puts(out, " data-loaded=\"");
			html_text(out, loaded);
			buf_putc(out, '"');
		}
		buf_puts(out, "><title>run ");
		html_text(out, CELL(t, i, 2) ? CELL(t, i, 2) : "");
		buf_puts(out, ", ");
		struct buf when = BUF_INIT, what = BUF_INIT;
		put_display(&when, &trend_cols[4], CELL(t, i, 4));
		put_display(&what, &trend_cols[8], loaded);
		html_text(out, when.data ? when.data : "");
		buf_puts(out, " UTC: ");
		html_text(out, status);
		if (loaded) {
			buf_puts(out, ", ");
			html_text(out, what.data);
			buf_puts(out, " loaded");
		}
		buf_puts(out, "</title></rect>");
		/* the figure over the bar, where there is room for it */
		if (loaded && slot >= 44) {
			buf_reset(&what);
			put_grouped(&what, loaded);
			svg_text(out, x + bar / 2, BASE - h - 4, "middle", what.data);
		}
		/* dates under the first and the last run */
		if (i == from || i + 1 == end) {
			buf_reset(&when);
			const char *iso = CELL(t, i, 4);
			if (iso)
				buf_append(&when, iso, strnlen(iso, 10));
			svg_text(out, x + bar / 2, BASE + 16, "middle", buf_str(&when));
		}
		buf_free(&when);
		buf_free(&what);
		buf_puts(out, "\n");
	}
	buf_free(&num);
	buf_free(&label);
	buf_puts(out, "</svg>\n");
}

static const char html_style[] =
	"body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
	"margin:24px auto;max-width:1200px;padding:0 16px;color:#1d2330;background:#fff}"
	"h1{font-size:22px;margin:0 0 2px}"
	"h2{font-size:18px;margin:30px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}"
	"h3{font-size:15px;margin:18px 0 6px}"
	".meta{color:#5b6472;margin:0 0 16px}"
	".cards{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}"
	".card{border:1px solid #d8dde6;border-radius:6px;padding:8px 14px;min-width:130px}"
	".card .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}"
	".card .l{color:#5b6472;font-size:12px}"
	"table{border-collapse:collapse;margin:4px 0 10px;font-size:13px}"
	"th,td{border-bottom:1px solid #e6e9ef;padding:3px 10px;text-align:left;vertical-align:top}"
	"th{background:#f3f5f8;font-weight:600}"
	"td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
	"td.err{max-width:460px;overflow-wrap:anywhere;color:#8a1f11}"
	"td.succeeded{color:#1a7f37}td.failed{color:#c62828;font-weight:600}td.running{color:#b26a00}"
	"td.none,.more{color:#5b6472;font-style:italic}td.t{white-space:nowrap}"
	".scroll{overflow-x:auto}"
	"svg.chart{display:block;margin:6px 0 12px;font-size:11px;fill:#1d2330}";

static void html_card(struct buf *out, const struct table *s, size_t col, const char *label)
{
	buf_puts(out, "<div class=\"card\"><div class=\"v\"");
	html_key(out, s, 0, col);
	buf_printf(out, " data-v=\"%s\">", CELL(s, 0, col));
	put_grouped(out, CELL(s, 0, col));
	buf_puts(out, "</div><div class=\"l\">");
	html_text(out, label);
	buf_puts(out, "</div></div>\n");
}

static void write_html(struct buf *out, const struct report *rep)
{
	const struct table *t = rep->t;
	struct buf when = BUF_INIT;
	put_display(&when, &summary_cols[0], rep->generated_at);
	/* nothing may load or run: the page is data only */
	buf_puts(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';"
		      " style-src 'unsafe-inline'\">\n"
		      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		      "<title>invsync report, ");
	html_text(out, when.data);
	buf_printf(out, " UTC</title>\n<style>%s</style>\n</head>\n<body>\n", html_style);
	buf_puts(out, "<h1>invsync report</h1>\n<p class=\"meta\">Generated ");
	html_text(out, when.data);
	buf_puts(out, " UTC");
	if (rep->sources && *rep->sources) {
		buf_puts(out, "; sources:");
		for (const char *const *s = rep->sources; *s; s++) {
			buf_putc(out, ' ');
			html_text(out, *s);
		}
	}
	buf_puts(out, "</p>\n");
	buf_free(&when);

	buf_puts(out, "<section id=\"summary\">\n<div class=\"cards\">\n");
	static const char *const card_labels[] = {
		NULL, "sources", "Mosyle devices", "Syncro assets", "last runs succeeded",
		"last runs failed", "last runs still running"};
	for (size_t c = 1; c < ARRAY_SIZE(card_labels); c++)
		html_card(out, &t[T_SUMMARY], c, card_labels[c]);
	buf_puts(out, "</div>\n</section>\n");

	buf_puts(out, "<section id=\"inventory\">\n<h2>Inventory</h2>\n");
	html_heading(out, "h3", t[T_BY_OS].def->title);
	html_table(out, &t[T_BY_OS]);
	html_heading(out, "h3", t[T_BY_VERSION].def->title);
	html_version_chart(out, &t[T_BY_VERSION]);
	html_table(out, &t[T_BY_VERSION]);
	buf_puts(out, "</section>\n");

	buf_puts(out, "<section id=\"last_runs\">\n");
	html_heading(out, "h2", t[T_LAST_RUNS].def->title);
	html_table(out, &t[T_LAST_RUNS]);
	buf_puts(out, "</section>\n");

	buf_puts(out, "<section id=\"changes\">\n<h2>Changes since the previous run</h2>\n");
	html_heading(out, "h3", t[T_CHANGES].def->title);
	html_table(out, &t[T_CHANGES]);
	html_heading(out, "h3", t[T_CHANGED_FIELDS].def->title);
	html_table(out, &t[T_CHANGED_FIELDS]);
	buf_puts(out, "</section>\n");

	buf_puts(out, "<section id=\"gaps\">\n");
	html_heading(out, "h2", t[T_GAP_COUNTS].def->title);
	html_table(out, &t[T_GAP_COUNTS]);
	for (enum table_id i = T_GAP_MOSYLE; i <= T_GAP_MISMATCH; i++) {
		html_heading(out, "h3", t[i].def->title);
		html_table(out, &t[i]);
	}
	buf_puts(out, "</section>\n");

	buf_puts(out, "<section id=\"attention\">\n");
	html_heading(out, "h2", t[T_ATTENTION].def->title);
	html_table(out, &t[T_ATTENTION]);
	buf_puts(out, "</section>\n");

	buf_puts(out, "<section id=\"trend\">\n<h2>Records loaded per run</h2>\n");
	const struct table *tr = &t[T_TREND];
	for (size_t from = 0, end; from < tr->nrows; from = end) {
		end = from + 1;
		while (end < tr->nrows && CELL(tr, end, 0) && CELL(tr, from, 0) &&
		       strcmp(CELL(tr, end, 0), CELL(tr, from, 0)) == 0)
			end++;
		html_heading(out, "h3", CELL(tr, from, 0) ? CELL(tr, from, 0) : "");
		html_trend_chart(out, tr, from, end);
	}
	html_heading(out, "h3", tr->def->title);
	html_table(out, tr);
	buf_puts(out, "</section>\n</body>\n</html>\n");
}

/* ---- The command ----------------------------------------------------------- */

int report_run(const struct config *cfg, const struct report_options *opt, struct buf *err)
{
	struct report rep;
	memset(&rep, 0, sizeof(rep));
	for (size_t i = 0; i < T_COUNT; i++)
		rep.t[i].def = &table_defs[i];
	rep.top = opt->top;
	rep.sources = opt->sources;

	PGconn *conn;
	if (pgsink_connect(&conn, cfg->conninfo, err) < 0)
		return -1;
	int rc = read_report(conn, cfg, opt, &rep, err);
	PQfinish(conn);
	if (rc < 0)
		goto out;

	struct buf text = BUF_INIT;
	switch (opt->format) {
	case REPORT_FORMAT_TEXT:
		write_text(&text, &rep);
		break;
	case REPORT_FORMAT_JSON:
		write_json(&text, &rep);
		break;
	case REPORT_FORMAT_CSV:
		write_csv(&text, &rep);
		break;
	}
	if (fwrite(text.data, 1, text.len, opt->out) != text.len || fflush(opt->out) != 0) {
		buf_printf(err, "writing the report: %s", strerror(errno));
		rc = -1;
	}
	buf_free(&text);
	if (rc == 0 && opt->html_path) {
		struct buf page = BUF_INIT;
		write_html(&page, &rep);
		if (util_write_file_atomic(opt->html_path, "report file", page.data, page.len, 0644,
					   err) < 0)
			rc = -1;
		buf_free(&page);
	}
out:
	report_free(&rep);
	return rc;
}
