/* progress.c - live progress lines on a terminal, plain ones elsewhere
 * (see progress.h).
 *
 * Each source becomes a row of cells (name, what it is doing, pages,
 * records, rate, retries, 429s, and an ETA, a duration or an error). A
 * terminal gets them as a table, each row cut to the terminal's width; a
 * pipe gets them as a sentence, and only when the figures (not the rate or
 * the ETA, which move by themselves) differ from the source's last line.
 *
 * On a terminal the live lines always end with a newline, so the cursor
 * rests at the start of the line below them: moving up frame_lines lines
 * reaches their first line whatever the terminal scrolled meanwhile.
 * Every string from a snapshot is redacted and stripped of control
 * characters before it reaches the terminal: a server's error text must
 * not be able to move the cursor.
 */
#include "progress.h"
#include "buf.h"
#include "log.h"
#include "util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define DEFAULT_COLUMNS 100
#define NAME_MAX_COLUMNS 24
#define WHAT_MAX_COLUMNS 28

enum cell {
	CELL_NAME,
	CELL_WHAT,
	CELL_PAGES,
	CELL_RECORDS,
	CELL_RATE,
	CELL_RETRIES,
	CELL_THROTTLED,
	CELL_TAIL,
	NCELLS,
};

/* Cells whose figures line up on the right in the live table. */
static const bool cell_right[NCELLS] = {
	[CELL_PAGES] = true, [CELL_RECORDS] = true, [CELL_RATE] = true,
	[CELL_RETRIES] = true, [CELL_THROTTLED] = true,
};

struct row {
	struct buf cell[NCELLS];
	size_t width[NCELLS]; /* in terminal columns */
};

struct progress {
	FILE *out;             /* NULL: plain lines through the log */
	bool tty;
	double interval_s;
	int columns, rows;     /* 0: ask the terminal */
	bool started;          /* a first update came */
	double last_s;         /* now_s of the last draw (pipe: or of the run's start) */
	bool finished;
	bool log_attached;

	/* terminal */
	struct buf frame;      /* the live lines last drawn, ready to write again */
	int frame_lines;
	size_t width[NCELLS];  /* column widths so far: they only grow, so
				* columns do not jump from one draw to the next */
	int shown_lines;       /* live lines on the screen now */
	bool hidden;           /* progress_clear() took them off */

	/* pipe: each source's figures at its last line, by position */
	char **last_figures;
	size_t nlast;
};

static const char *const state_words[] = {
	[OBS_QUEUED] = "queued",
	[OBS_RUNNING] = "running",
	[OBS_COMMITTING] = "committing",
	[OBS_SUCCEEDED] = "succeeded",
	[OBS_FAILED] = "failed",
	[OBS_SKIPPED] = "skipped",
};

struct progress *progress_new(FILE *out, bool tty, double interval_s)
{
	struct progress *p = xcalloc(1, sizeof(*p));
	p->out = out ? out : (tty ? stderr : NULL);
	p->tty = tty;
	p->interval_s = interval_s > 0 ? interval_s : 0;
	return p;
}

bool progress_is_terminal(FILE *f)
{
	const char *term = getenv("TERM");
	return f && isatty(fileno(f)) && term && *term && strcmp(term, "dumb") != 0;
}

void progress_set_size(struct progress *p, int columns, int rows)
{
	p->columns = columns > 0 ? columns : 0;
	p->rows = rows > 0 ? rows : 0;
}

/* --- text helpers ------------------------------------------------------ */

/* Wide (two-column) code points: CJK, Hangul, fullwidth forms, emoji. Not
 * exhaustive; combining marks count as one column, which errs on the safe
 * side (a line may end up shorter, never wider). */
static bool is_wide(uint32_t c)
{
	return (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0xA4CF) ||
	       (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
	       (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
	       (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1FAFF) ||
	       (c >= 0x20000 && c <= 0x3FFFD);
}

static uint32_t decode(const unsigned char *s, size_t len)
{
	if (len == 1)
		return s[0];
	uint32_t c = s[0] & (0x7F >> len);
	for (size_t i = 1; i < len; i++)
		c = (c << 6) | (s[i] & 0x3F);
	return c;
}

/* Append s redacted, every control character (C0, DEL, C1) as a space and
 * every ill-formed byte sequence as U+FFFD: text safe to put on a terminal. */
static void put_clean(struct buf *out, const char *s)
{
	struct buf red = BUF_INIT;
	log_redact(&red, s ? s : "");
	const char *p = buf_str(&red);
	size_t i = 0;
	while (i < red.len) {
		size_t len;
		if (!util_utf8_next(p + i, red.len - i, &len)) {
			buf_puts(out, "\xEF\xBF\xBD");
		} else {
			uint32_t c = decode((const unsigned char *)p + i, len);
			if (c < 0x20 || (c >= 0x7F && c <= 0x9F))
				buf_putc(out, ' ');
			else
				buf_append(out, p + i, len);
		}
		i += len;
	}
	buf_free(&red);
}

/* Bytes of the well-formed UTF-8 text s (n bytes) that fit in max
 * columns; *width gets the columns they take. */
static size_t fit(const char *s, size_t n, size_t max, size_t *width)
{
	size_t i = 0, w = 0;
	while (i < n) {
		size_t len;
		util_utf8_next(s + i, n - i, &len);
		size_t cw = is_wide(decode((const unsigned char *)s + i, len)) ? 2 : 1;
		if (w + cw > max)
			break;
		w += cw;
		i += len;
	}
	*width = w;
	return i;
}

static size_t text_width(const char *s, size_t n)
{
	size_t w;
	fit(s, n, SIZE_MAX, &w);
	return w;
}

static void put_spaces(struct buf *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf_putc(out, ' ');
}

/* Seconds for people: "3 s", "4 min 10 s", "2 h 5 min". round_up for an
 * ETA (never "0 s" while work is left); otherwise short durations keep a
 * tenth ("2.4 s"). */
static void put_duration(struct buf *out, double secs, bool round_up)
{
	if (!(secs >= 0))
		secs = 0;
	if (!round_up && secs < 9.95) {
		buf_printf(out, "%.1f s", secs);
		return;
	}
	double whole = round_up ? ceil(secs) : floor(secs + 0.5);
	if (whole > 359999)
		whole = 359999;
	long s = (long)whole;
	if (s < 60)
		buf_printf(out, "%ld s", s);
	else if (s < 3600)
		buf_printf(out, "%ld min %ld s", s / 60, s % 60);
	else
		buf_printf(out, "%ld h %ld min", s / 3600, s % 3600 / 60);
}

/* --- one source as cells ----------------------------------------------- */

static void row_init(struct row *r)
{
	for (int i = 0; i < NCELLS; i++)
		buf_init(&r->cell[i]);
}

static void row_free(struct row *r)
{
	for (int i = 0; i < NCELLS; i++)
		buf_free(&r->cell[i]);
}

/* What the source is doing: the first endpoint still loading (and how
 * many more are), or its state. */
static void put_what(struct buf *out, const struct obs_source *src)
{
	if (src->state != OBS_RUNNING || src->nendpoints == 0) {
		unsigned st = (unsigned)src->state;
		buf_puts(out, st < ARRAY_SIZE(state_words) ? state_words[st] : "?");
		return;
	}
	const struct obs_endpoint *first = NULL;
	size_t others = 0;
	for (size_t i = 0; i < src->nendpoints; i++) {
		if (src->endpoints[i].finished)
			continue;
		if (!first)
			first = &src->endpoints[i];
		else
			others++;
	}
	if (!first) {
		buf_puts(out, "running"); /* every endpoint read: about to commit */
		return;
	}
	put_clean(out, first->name);
	if (others)
		buf_printf(out, " +%zu", others);
}

static void make_row(struct row *r, const struct obs_source *src, bool live)
{
	put_clean(&r->cell[CELL_NAME], src->name);
	put_what(&r->cell[CELL_WHAT], src);

	if (src->pages_planned >= 0)
		buf_printf(&r->cell[CELL_PAGES], "%ld/%ld pages", src->pages_done,
			   src->pages_planned);
	else
		buf_printf(&r->cell[CELL_PAGES], "%ld/? pages", src->pages_done);
	buf_printf(&r->cell[CELL_RECORDS], "%llu records", (unsigned long long)src->records);
	double rate = src->elapsed_s > 0 ? (double)src->records / src->elapsed_s : 0;
	buf_printf(&r->cell[CELL_RATE], "%.0f/s", rate);
	buf_printf(&r->cell[CELL_RETRIES], "%ld %s", src->retries,
		   src->retries == 1 ? "retry" : "retries");
	buf_printf(&r->cell[CELL_THROTTLED], "%ld 429s", src->throttled);

	struct buf *tail = &r->cell[CELL_TAIL];
	switch (src->state) {
	case OBS_RUNNING:
		if (src->pages_planned > src->pages_done && src->pages_done > 0 &&
		    src->elapsed_s > 0) {
			double left = (double)(src->pages_planned - src->pages_done);
			buf_puts(tail, "ETA ");
			put_duration(tail, src->elapsed_s * left / (double)src->pages_done, true);
		}
		break;
	case OBS_SUCCEEDED:
		buf_puts(tail, "in ");
		put_duration(tail, src->elapsed_s, false);
		break;
	case OBS_FAILED:
		/* the live line keeps the reason in view; a plain line leaves
		 * it to the log line that said it first */
		if (live && src->error) {
			put_clean(tail, src->error);
		} else if (!live) {
			buf_puts(tail, "after ");
			put_duration(tail, src->elapsed_s, false);
		}
		break;
	case OBS_SKIPPED:
		if (live)
			buf_puts(tail, "another run holds its lock");
		break;
	default:
		break;
	}
	for (int i = 0; i < NCELLS; i++)
		r->width[i] = text_width(buf_str(&r->cell[i]), r->cell[i].len);
}

/* --- terminal ---------------------------------------------------------- */

static void terminal_size(const struct progress *p, size_t *columns, size_t *rows)
{
	int c = p->columns, r = p->rows;
	if (c == 0 || r == 0) {
		struct winsize ws;
		if (p->out && ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0) {
			if (c == 0)
				c = ws.ws_col;
			if (r == 0)
				r = ws.ws_row;
		}
	}
	*columns = c > 0 ? (size_t)c : DEFAULT_COLUMNS;
	*rows = r > 0 ? (size_t)r : 0;
}

/* Append one live line: "\033[2K" (clear the line), text cut to max
 * columns, newline. */
static void put_live_line(struct buf *frame, const char *text, size_t len, size_t max)
{
	while (len && text[len - 1] == ' ')
		len--;
	size_t w;
	buf_puts(frame, "\033[2K");
	buf_append(frame, text, fit(text, len, max, &w));
	buf_putc(frame, '\n');
}

static void build_frame(struct progress *p, const struct obs_run *snap)
{
	size_t columns, rows;
	terminal_size(p, &columns, &rows);
	size_t max = columns > 1 ? columns - 1 : 1;

	/* With more sources than the terminal has rows, moving up would stop
	 * at the top and the redraw would tear: show what fits and a sum. */
	size_t shown = snap->nsources;
	if (rows > 1 && shown > rows - 1)
		shown = rows - 2;

	struct row *r = xcalloc(shown ? shown : 1, sizeof(*r));
	size_t *width = p->width;
	for (size_t i = 0; i < shown; i++) {
		row_init(&r[i]);
		make_row(&r[i], &snap->sources[i], true);
		for (int c = 0; c < NCELLS; c++)
			if (r[i].width[c] > width[c])
				width[c] = r[i].width[c];
	}
	if (width[CELL_NAME] > NAME_MAX_COLUMNS)
		width[CELL_NAME] = NAME_MAX_COLUMNS;
	if (width[CELL_WHAT] > WHAT_MAX_COLUMNS)
		width[CELL_WHAT] = WHAT_MAX_COLUMNS;

	buf_reset(&p->frame);
	p->frame_lines = 0;
	struct buf line = BUF_INIT;
	for (size_t i = 0; i < shown; i++) {
		buf_reset(&line);
		for (int c = 0; c < NCELLS; c++) {
			const struct buf *cell = &r[i].cell[c];
			if (c == CELL_TAIL && cell->len == 0)
				break;
			if (c > 0)
				buf_puts(&line, "  ");
			size_t w;
			size_t n = fit(buf_str(cell), cell->len, width[c], &w);
			if (cell_right[c])
				put_spaces(&line, width[c] - w);
			buf_append(&line, buf_str(cell), n);
			if (!cell_right[c] && c != CELL_TAIL)
				put_spaces(&line, width[c] - w);
		}
		put_live_line(&p->frame, buf_str(&line), line.len, max);
		p->frame_lines++;
		row_free(&r[i]);
	}
	if (shown < snap->nsources) {
		size_t count[ARRAY_SIZE(state_words)] = {0};
		for (size_t i = shown; i < snap->nsources; i++)
			if ((unsigned)snap->sources[i].state < ARRAY_SIZE(state_words))
				count[snap->sources[i].state]++;
		buf_reset(&line);
		buf_printf(&line, "and %zu more sources:", snap->nsources - shown);
		const char *sep = " ";
		for (size_t s = 0; s < ARRAY_SIZE(state_words); s++) {
			if (!count[s])
				continue;
			buf_printf(&line, "%s%zu %s", sep, count[s], state_words[s]);
			sep = ", ";
		}
		put_live_line(&p->frame, buf_str(&line), line.len, max);
		p->frame_lines++;
	}
	buf_free(&line);
	free(r);
}

static void write_out(struct progress *p, const struct buf *b)
{
	if (b->len == 0)
		return;
	/* one write: a half-drawn frame would show */
	fwrite(b->data, 1, b->len, p->out);
	fflush(p->out);
}

static void draw_live(struct progress *p, const struct obs_run *snap)
{
	build_frame(p, snap);
	struct buf out = BUF_INIT;
	if (p->shown_lines > 0)
		buf_printf(&out, "\r\033[%dA", p->shown_lines);
	buf_append(&out, buf_str(&p->frame), p->frame.len);
	/* fewer lines than last time: clear what is left of the old ones */
	if (p->frame_lines < p->shown_lines)
		buf_puts(&out, "\033[J");
	write_out(p, &out);
	buf_free(&out);
	p->shown_lines = p->frame_lines;
	p->hidden = false;
}

void progress_clear(struct progress *p)
{
	if (!p->tty || p->finished || p->shown_lines == 0)
		return;
	struct buf out = BUF_INIT;
	buf_printf(&out, "\r\033[%dA\033[J", p->shown_lines);
	write_out(p, &out);
	buf_free(&out);
	p->shown_lines = 0;
	p->hidden = true;
}

void progress_redraw(struct progress *p)
{
	if (!p->tty || p->finished || !p->hidden)
		return;
	write_out(p, &p->frame);
	p->shown_lines = p->frame_lines;
	p->hidden = false;
}

/* --- pipe -------------------------------------------------------------- */

static void print_changed(struct progress *p, const struct obs_run *snap)
{
	if (p->nlast < snap->nsources) {
		p->last_figures = xrealloc(p->last_figures, snap->nsources * sizeof(char *));
		memset(p->last_figures + p->nlast, 0,
		       (snap->nsources - p->nlast) * sizeof(char *));
		p->nlast = snap->nsources;
	}
	struct buf figures = BUF_INIT, line = BUF_INIT, out = BUF_INIT;
	for (size_t i = 0; i < snap->nsources; i++) {
		const struct obs_source *src = &snap->sources[i];
		if (src->state == OBS_QUEUED)
			continue;
		struct row r;
		row_init(&r);
		make_row(&r, src, false);

		buf_reset(&figures);
		buf_printf(&figures, "%s %s, %s", buf_str(&r.cell[CELL_WHAT]),
			   buf_str(&r.cell[CELL_PAGES]), buf_str(&r.cell[CELL_RECORDS]));
		buf_reset(&line);
		buf_printf(&line, "%s (%s), %s, %s", buf_str(&figures), buf_str(&r.cell[CELL_RATE]),
			   buf_str(&r.cell[CELL_RETRIES]), buf_str(&r.cell[CELL_THROTTLED]));
		if (r.cell[CELL_TAIL].len)
			buf_printf(&line, ", %s", buf_str(&r.cell[CELL_TAIL]));
		/* the figures decide whether the line is news, with the name so
		 * that a source list that changed order still prints */
		buf_printf(&figures, " %s %s %s", buf_str(&r.cell[CELL_RETRIES]),
			   buf_str(&r.cell[CELL_THROTTLED]), buf_str(&r.cell[CELL_NAME]));

		if (!p->last_figures[i] || strcmp(p->last_figures[i], buf_str(&figures)) != 0) {
			free(p->last_figures[i]);
			p->last_figures[i] = xstrdup(buf_str(&figures));
			if (p->out)
				buf_printf(&out, "progress [%s] %s\n", buf_str(&r.cell[CELL_NAME]),
					   buf_str(&line));
			else
				log_event(LOG_LEVEL_INFO, src->name, NULL, -1, "progress", "%s",
					  buf_str(&line));
		}
		row_free(&r);
	}
	if (p->out)
		write_out(p, &out);
	buf_free(&out);
	buf_free(&line);
	buf_free(&figures);
}

/* --- updates ----------------------------------------------------------- */

void progress_update(struct progress *p, const struct obs_run *snap)
{
	if (p->finished)
		return;
	if (!p->started) {
		p->started = true;
		if (p->tty) {
			p->last_s = snap->now_s;
			draw_live(p, snap);
			return;
		}
		/* a pipe hears nothing from a run shorter than one interval */
		p->last_s = snap->started_s > 0 ? snap->started_s : snap->now_s;
	}
	if (snap->now_s < p->last_s)
		p->last_s = snap->now_s; /* the clock went back: start counting again */
	if (snap->now_s - p->last_s < p->interval_s)
		return;
	p->last_s = snap->now_s;
	if (p->tty)
		draw_live(p, snap);
	else
		print_changed(p, snap);
}

void progress_finish(struct progress *p, const struct obs_run *snap)
{
	if (p->finished)
		return;
	if (p->tty)
		draw_live(p, snap);
	/* the lines stay; nothing moves the cursor back over them again */
	p->shown_lines = 0;
	p->hidden = false;
	p->finished = true;
}

static void clear_hook(void *arg)
{
	progress_clear(arg);
}

static void redraw_hook(void *arg)
{
	progress_redraw(arg);
}

void progress_attach_log(struct progress *p)
{
	log_set_hooks(clear_hook, redraw_hook, p);
	p->log_attached = true;
}

void progress_free(struct progress *p)
{
	if (!p)
		return;
	if (p->log_attached)
		log_set_hooks(NULL, NULL, NULL);
	for (size_t i = 0; i < p->nlast; i++)
		free(p->last_figures[i]);
	free(p->last_figures);
	buf_free(&p->frame);
	free(p);
}
