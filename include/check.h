/* check.h - `invsync check`: can every source log in, and the database be
 * reached, without loading anything? */
#ifndef INVSYNC_CHECK_H
#define INVSYNC_CHECK_H

#include <stdio.h>

#include "config.h"

/* Check the database connection and every source's credentials at once
 * (Mosyle: a login; Syncro: GET /me and the permissions it lists), and
 * print one line per check to out: "NAME: OK ..." or "NAME: FAILED: why".
 * Syncro requests take their egress's rate budget as a run's do; a 429 is
 * waited out as in a run and /me asked again, a few times at most.
 * Returns 0 when every check passed, 1 otherwise. Nothing is written to
 * the database. */
int check_run(const struct config *cfg, FILE *out);

#endif
