/* pgsink.h - one PostgreSQL connection loading rows with COPY, driven by
 * the libuv loop.
 *
 * A sink is opened (blocking connect, before or between loop work), then
 * set up with blocking statements through pgsink_conn() (BEGIN, creating
 * the staging table, ...), then switched to COPY with pgsink_copy_begin().
 * From then on everything is non-blocking: producers append COPY text to
 * pgsink_buf() and call pgsink_rows_added(); the sink hands full batches to
 * libpq and flushes. When PostgreSQL falls behind (PQflush() says data is
 * still queued) the sink is congested: producers must stop (pause their
 * transfers) until on_drain fires. Nothing here grows without bound while
 * producers honour pgsink_congested().
 *
 * After pgsink_copy_end() and pgsink_query(), the result arrives through a
 * completion callback. Any failure of the connection or of the COPY puts
 * the sink in a failed state; on_error fires once (from the loop, never
 * from inside a pgsink_* call) and the open transaction is lost. A lost
 * connection is noticed at once. An error the server raises during the
 * COPY (a full disk, a violated constraint) is noticed when it arrives,
 * the sink then ends the COPY to read it (libpq would keep it unread until
 * then), or at the latest at the end of the chunk it was raised in: the
 * COPY is sent in chunks of PGSINK_CHUNK_BYTES, each ended and its
 * verdict read before the next begins (the same statement again, in one
 * transaction), because libpq can read the error while sending and then
 * nothing shows it. Notices the server sends are logged as warnings.
 *
 * Error texts are written for a person: the server's message, a short
 * detail and its hint, without "ERROR:" or context lines; a lost
 * connection reads "the database ended the connection: <why>" or "lost
 * the connection to the database: <libpq's reason>". */
#ifndef INVSYNC_PGSINK_H
#define INVSYNC_PGSINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "buf.h"
#include "util.h"

struct pgsink;

/* The COPY is ended and begun again after about this much COPY text: the
 * most that is sent after the server has failed the load, yet big enough
 * that the round trip of each chunk end is lost in its loading time (and
 * at least PostgreSQL's 16 MB bulk-write ring). */
#define PGSINK_CHUNK_BYTES ((uint64_t)32 << 20)

struct pgsink_callbacks {
	void (*on_drain)(void *arg);                     /* congestion cleared */
	void (*on_error)(void *arg, const char *reason); /* sink failed */
	void *arg;
};

/* res is NULL when the command failed; error then says why. The result is
 * cleared after the callback returns. */
typedef void (*pgsink_done_fn)(void *arg, PGresult *res, const char *error);

/* Connect (blocking) the way every invsync connection does: conninfo (a
 * conninfo string or URI; "" means the PG* environment), application_name
 * "invsync" unless conninfo or PGAPPNAME names one, client_encoding UTF8
 * always. Returns 0 with *out connected, or -1 with *out NULL and a reason
 * in err (no secret in it). */
int pgsink_connect(PGconn **out, const char *conninfo, struct buf *err) MUSTCHECK;

/* The server's error in res as one line for a person (see above), appended
 * to out. Not redacted. */
void pgsink_describe_error(struct buf *out, const PGresult *res);

/* Connect with pgsink_connect(), SET search_path to schema. Returns 0, or
 * -1 with a reason in err (no secret in it). */
int pgsink_open(struct pgsink **out, uv_loop_t *loop, const char *conninfo,
		const char *schema, const struct pgsink_callbacks *cb, struct buf *err) MUSTCHECK;

/* The connection, for blocking setup statements while no COPY or query is
 * in progress. */
PGconn *pgsink_conn(struct pgsink *s);

/* Blocking helper: run sql (no parameters); 0 or -1 with reason in err. */
int pgsink_exec(struct pgsink *s, const char *sql, struct buf *err) MUSTCHECK;

/* Start COPY ... FROM STDIN (blocking until the server accepts). Outside
 * a transaction the sink begins one, so that the chunks commit together
 * when the COPY ends, or not at all. */
int pgsink_copy_begin(struct pgsink *s, const char *copy_sql, struct buf *err) MUSTCHECK;

/* Where producers append COPY text rows (complete rows only). */
struct buf *pgsink_buf(struct pgsink *s);

/* Tell the sink rows were appended; it sends a batch once enough has
 * accumulated. Returns 0, or -1 if the sink has failed. */
int pgsink_rows_added(struct pgsink *s);

/* True while producers must hold off. */
bool pgsink_congested(const struct pgsink *s);

/* True once the sink has failed (on_error has fired or is about to). */
bool pgsink_failed(const struct pgsink *s);

/* The SQLSTATE of the last error the server reported for a COPY end or
 * query ("" if none, or the connection was lost); valid in the completion
 * callback that reports the error. */
const char *pgsink_sqlstate(const struct pgsink *s);

/* Send what is buffered and end the COPY (and commit the transaction the
 * sink began); done fires with the result of its last chunk, or the
 * error. Returns 0, or -1 (no callback) if the sink is not copying or has
 * failed. */
int pgsink_copy_end(struct pgsink *s, pgsink_done_fn done, void *arg) MUSTCHECK;

/* Rows the COPY loaded: the command tuples of all its chunks (the result
 * done gets counts its last chunk only). Complete in copy_end's done. */
uint64_t pgsink_copy_rows(const struct pgsink *s);

/* Send one statement with text parameters (copied), or, with params NULL,
 * one or more ';'-separated statements; done fires with the first error,
 * else the first result that has rows, else the first result. Only one COPY end or query at a time. */
int pgsink_query(struct pgsink *s, const char *sql, int nparams, const char *const *params,
		 pgsink_done_fn done, void *arg) MUSTCHECK;

/* Bytes handed to libpq so far. */
uint64_t pgsink_bytes_sent(const struct pgsink *s);

/* Close the connection (an open transaction is rolled back by the server)
 * and free the sink once its poll handle has closed. No callback fires
 * after this call. */
void pgsink_close(struct pgsink *s);

#endif
