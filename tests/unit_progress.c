/* unit_progress.c - progress lines: plain lines on a pipe (exact text, one
 * interval between them, silence when nothing changed) and live lines on a
 * pseudo-terminal, replayed through a small terminal emulator to check that
 * they redraw in place, step aside for log lines and fit the width. */
#include "log.h"
#include "progress.h"
#include "test.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <yajl_tree.h>

/* A run of two sources, edited by each test between snapshots. */
struct fixture {
	struct obs_endpoint district_eps[3];
	struct obs_endpoint msp_eps[2];
	struct obs_source sources[2];
	struct obs_run run;
};

static void fx_init(struct fixture *fx)
{
	memset(fx, 0, sizeof(*fx));
	fx->district_eps[0] = (struct obs_endpoint){.name = "devices/ios", .pages_planned = -1};
	fx->district_eps[1] = (struct obs_endpoint){.name = "devices/mac", .pages_planned = -1};
	fx->district_eps[2] = (struct obs_endpoint){.name = "users", .pages_planned = -1};
	fx->msp_eps[0] = (struct obs_endpoint){.name = "assets", .pages_planned = -1};
	fx->msp_eps[1] = (struct obs_endpoint){.name = "customers", .pages_planned = -1};
	fx->sources[0] = (struct obs_source){
		.name = "district-a", .kind = "mosyle", .state = OBS_QUEUED,
		.pages_planned = -1, .loaded = -1,
		.endpoints = fx->district_eps, .nendpoints = 3,
	};
	fx->sources[1] = (struct obs_source){
		.name = "acme-msp", .kind = "syncro", .state = OBS_QUEUED,
		.pages_planned = -1, .loaded = -1,
		.endpoints = fx->msp_eps, .nendpoints = 2,
	};
	fx->run = (struct obs_run){
		.run_id = 7, .started_s = 1000, .now_s = 1000,
		.sources = fx->sources, .nsources = 2,
	};
}

/* Set a source's figures; elapsed follows from now_s. */
static void fx_source(struct fixture *fx, size_t i, enum obs_state state, long done,
		      long planned, uint64_t records, long retries, long throttled)
{
	struct obs_source *s = &fx->sources[i];
	s->state = state;
	if (state != OBS_QUEUED && s->started_s == 0)
		s->started_s = fx->run.now_s;
	if (s->started_s && state <= OBS_COMMITTING)
		s->elapsed_s = fx->run.now_s - s->started_s;
	s->pages_done = done;
	s->pages_planned = planned;
	s->records = records;
	s->retries = retries;
	s->throttled = throttled;
}

/* --- pipe -------------------------------------------------------------- */

struct capture {
	FILE *f;
	char *data;
	size_t len;
	size_t seen; /* bytes already returned by news() */
};

static void cap_open(struct capture *c)
{
	memset(c, 0, sizeof(*c));
	c->f = open_memstream(&c->data, &c->len);
	ASSERT(c->f != NULL);
}

/* What was written since the last call. */
static const char *news(struct capture *c)
{
	fflush(c->f);
	const char *s = c->data + c->seen;
	c->seen = c->len;
	return s;
}

static void cap_close(struct capture *c)
{
	fclose(c->f);
	free(c->data);
}

TEST(progress_pipe_lines)
{
	struct fixture fx;
	fx_init(&fx);
	struct capture cap;
	cap_open(&cap);
	struct progress *p = progress_new(cap.f, false, 10);

	/* the first lines come one interval after the run started */
	fx_source(&fx, 0, OBS_RUNNING, 0, -1, 0, 0, 0);
	progress_update(p, &fx.run);
	ASSERT_EQ_STR(news(&cap), "");
	fx.run.now_s = 1005;
	fx_source(&fx, 0, OBS_RUNNING, 40, -1, 4000, 0, 0);
	progress_update(p, &fx.run);
	ASSERT_EQ_STR(news(&cap), "");

	/* 1010: one line for the running source, none for the queued one */
	fx.run.now_s = 1010;
	fx.district_eps[2].finished = true;
	fx_source(&fx, 0, OBS_RUNNING, 120, 250, 12000, 1, 0);
	progress_update(p, &fx.run);
	ASSERT_EQ_STR(news(&cap), "progress [district-a] devices/ios +1 120/250 pages, 12000 records "
				  "(1200/s), 1 retry, 0 429s, ETA 11 s\n");

	/* within the interval: nothing, whatever changed */
	fx.run.now_s = 1015;
	fx_source(&fx, 1, OBS_RUNNING, 0, -1, 0, 0, 0);
	progress_update(p, &fx.run);
	ASSERT_EQ_STR(news(&cap), "");

	/* 1020: the district's figures did not move (its rate did): only
	 * the Syncro source, which started, has a line */
	fx.run.now_s = 1020;
	fx_source(&fx, 0, OBS_RUNNING, 120, 250, 12000, 1, 0);
	fx_source(&fx, 1, OBS_RUNNING, 5, 21, 500, 0, 2);
	progress_update(p, &fx.run);
	ASSERT_EQ_STR(news(&cap), "progress [acme-msp] assets +1 5/21 pages, 500 records (100/s), "
				  "0 retries, 2 429s, ETA 16 s\n");

	/* 1030: nothing changed at all: nothing printed */
	fx.run.now_s = 1030;
	fx_source(&fx, 0, OBS_RUNNING, 120, 250, 12000, 1, 0);
	fx_source(&fx, 1, OBS_RUNNING, 5, 21, 500, 0, 2);
	progress_update(p, &fx.run);
	ASSERT_EQ_STR(news(&cap), "");

	/* 1040: both finished, one each way; the plain line leaves the
	 * error to the log */
	fx.run.now_s = 1040;
	for (int i = 0; i < 3; i++)
		fx.district_eps[i].finished = true;
	fx_source(&fx, 0, OBS_COMMITTING, 250, 250, 25000, 1, 0);
	fx_source(&fx, 0, OBS_SUCCEEDED, 250, 250, 25000, 1, 0);
	fx.sources[0].elapsed_s = 38.25;
	fx_source(&fx, 1, OBS_FAILED, 7, 21, 700, 4, 2);
	fx.sources[1].elapsed_s = 4.5;
	fx.sources[1].error = "Syncro answered HTTP 401";
	progress_update(p, &fx.run);
	ASSERT_EQ_STR(news(&cap),
		      "progress [district-a] succeeded 250/250 pages, 25000 records (654/s), "
		      "1 retry, 0 429s, in 38 s\n"
		      "progress [acme-msp] failed 7/21 pages, 700 records (156/s), 4 retries, "
		      "2 429s, after 4.5 s\n");

	/* finishing prints nothing more on a pipe, nor do later updates */
	fx.run.now_s = 1100;
	fx.sources[1].records = 1;
	progress_finish(p, &fx.run);
	progress_update(p, &fx.run);
	progress_clear(p);
	progress_redraw(p);
	ASSERT_EQ_STR(news(&cap), "");
	progress_free(p);
	cap_close(&cap);
}

TEST(progress_pipe_interval)
{
	struct fixture fx;
	fx_init(&fx);
	struct capture cap;
	cap_open(&cap);
	struct progress *p = progress_new(cap.f, false, 10);
	/* an update every second, figures moving each time: a line every
	 * ten seconds, counted from the last line */
	int lines = 0;
	for (int t = 0; t <= 35; t++) {
		fx.run.now_s = 1000 + t;
		fx_source(&fx, 0, OBS_RUNNING, t, -1, (uint64_t)t * 100, 0, 0);
		progress_update(p, &fx.run);
		const char *got = news(&cap);
		if (*got) {
			ASSERT(t == 10 || t == 20 || t == 30);
			ASSERT_EQ_INT(strchr(got, '\n') - got + 1, (long)strlen(got));
			lines++;
		}
	}
	ASSERT_EQ_INT(lines, 3);
	const char *last = "progress [district-a] devices/ios +2 30/? pages, 3000 records (100/s), "
			   "0 retries, 0 429s\n";
	ASSERT(cap.len > strlen(last));
	ASSERT_EQ_STR(cap.data + cap.len - strlen(last), last);
	progress_free(p);

	/* a run shorter than the interval says nothing */
	cap.seen = cap.len;
	fx_init(&fx);
	p = progress_new(cap.f, false, 10);
	for (int t = 0; t <= 9; t++) {
		fx.run.now_s = 1000 + t;
		fx_source(&fx, 0, t < 9 ? OBS_RUNNING : OBS_SUCCEEDED, t, 9, (uint64_t)t, 0, 0);
		progress_update(p, &fx.run);
	}
	progress_finish(p, &fx.run);
	ASSERT_EQ_STR(news(&cap), "");
	progress_free(p);

	/* interval 0: every update that brings news prints */
	fx_init(&fx);
	p = progress_new(cap.f, false, 0);
	fx_source(&fx, 0, OBS_RUNNING, 1, -1, 10, 0, 0);
	progress_update(p, &fx.run);
	ASSERT_CONTAINS(news(&cap), " 1/? pages");
	progress_update(p, &fx.run);
	ASSERT_EQ_STR(news(&cap), "");
	fx_source(&fx, 0, OBS_RUNNING, 2, -1, 20, 0, 0);
	progress_update(p, &fx.run);
	ASSERT_CONTAINS(news(&cap), " 2/? pages");
	progress_free(p);
	cap_close(&cap);
}

static const char *str_field(yajl_val v, const char *name)
{
	const char *path[] = {name, NULL};
	yajl_val f = yajl_tree_get(v, path, yajl_t_string);
	return f ? YAJL_GET_STRING(f) : NULL;
}

TEST(progress_pipe_through_the_log)
{
	struct fixture fx;
	fx_init(&fx);
	struct capture cap;
	cap_open(&cap);
	log_set_stream(cap.f);
	log_set_format(LOG_FORMAT_JSON);
	log_add_secret("tok-secret-1");
	struct progress *p = progress_new(NULL, false, 10);
	fx.district_eps[0].name = "devices/tok-secret-1";
	fx_source(&fx, 0, OBS_RUNNING, 0, -1, 0, 0, 0);
	fx.run.now_s = 1010;
	fx_source(&fx, 0, OBS_RUNNING, 3, 9, 300, 0, 0);
	progress_update(p, &fx.run);

	const char *line = news(&cap);
	ASSERT(strstr(line, "tok-secret-1") == NULL);
	char errbuf[128];
	yajl_val v = yajl_tree_parse(line, errbuf, sizeof(errbuf));
	ASSERT(v != NULL);
	ASSERT_EQ_STR(str_field(v, "level"), "info");
	ASSERT_EQ_STR(str_field(v, "source"), "district-a");
	ASSERT_EQ_STR(str_field(v, "event"), "progress");
	ASSERT_EQ_STR(str_field(v, "message"), "devices/[redacted] +2 3/9 pages, 300 records "
					       "(30/s), 0 retries, 0 429s, ETA 20 s");
	yajl_tree_free(v);

	/* --quiet (errors only) silences them with the other info lines */
	log_set_level(LOG_LEVEL_ERROR);
	fx.run.now_s = 1020;
	fx_source(&fx, 0, OBS_RUNNING, 4, 9, 400, 0, 0);
	progress_update(p, &fx.run);
	ASSERT_EQ_STR(news(&cap), "");

	progress_free(p);
	log_set_level(LOG_LEVEL_INFO);
	log_set_format(LOG_FORMAT_TEXT);
	log_set_stream(NULL);
	log_clear_secrets();
	cap_close(&cap);
}

/* --- terminal ---------------------------------------------------------- */

#define TERM_MAX_ROWS 40
#define TERM_MAX_COLS 200

/* A pseudo-terminal and just enough of a terminal to replay what was
 * written to it: printable text, CR, LF (scrolling at the bottom), CSI n A
 * (cursor up), CSI 2 K (clear line) and CSI J (clear to the end of the
 * screen). Anything else fails the test; so does writing past the last
 * column, which a real terminal would wrap. UTF-8 continuation bytes take
 * no cell. */
struct term {
	int master;
	FILE *slave;
	int rows, cols;
	char grid[TERM_MAX_ROWS][TERM_MAX_COLS + 1];
	int row, col;
	struct buf chunk; /* bytes of the last term_read() */
	/* escape parser */
	int esc;          /* 0 text, 1 after ESC, 2 in CSI */
	struct buf csi;
};

static void term_open(struct term *t, int cols, int rows)
{
	memset(t, 0, sizeof(*t));
	ASSERT(rows <= TERM_MAX_ROWS && cols <= TERM_MAX_COLS);
	struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
	int m, s;
	ASSERT(openpty(&m, &s, NULL, NULL, &ws) == 0);
	ASSERT(fcntl(m, F_SETFL, O_NONBLOCK) == 0);
	t->master = m;
	t->slave = fdopen(s, "w");
	ASSERT(t->slave != NULL);
	t->rows = rows;
	t->cols = cols;
	for (int r = 0; r < rows; r++)
		memset(t->grid[r], ' ', (size_t)cols);
}

static void term_close(struct term *t)
{
	fclose(t->slave);
	close(t->master);
	buf_free(&t->chunk);
	buf_free(&t->csi);
}

static void clear_cells(struct term *t, int row, int from)
{
	memset(t->grid[row] + from, ' ', (size_t)(t->cols - from));
}

static void term_byte(struct term *t, unsigned char c)
{
	if (t->esc == 1) {
		if (c != '[')
			test_fail(__FILE__, __LINE__, "escape ESC %c not understood", c);
		t->esc = 2;
		buf_reset(&t->csi);
		return;
	}
	if (t->esc == 2) {
		if ((c >= '0' && c <= '9') || c == ';') {
			buf_putc(&t->csi, (char)c);
			return;
		}
		int n = t->csi.len ? atoi(buf_str(&t->csi)) : 0;
		t->esc = 0;
		if (c == 'A') {
			t->row -= n ? n : 1;
			ASSERT(t->row >= 0); /* moving up past the top tears the display */
		} else if (c == 'K' && n == 2) {
			clear_cells(t, t->row, 0);
		} else if (c == 'J' && n == 0) {
			clear_cells(t, t->row, t->col);
			for (int r = t->row + 1; r < t->rows; r++)
				clear_cells(t, r, 0);
		} else {
			test_fail(__FILE__, __LINE__, "escape CSI %s%c not understood",
				  buf_str(&t->csi), c);
		}
		return;
	}
	if (c == 0x1b) {
		t->esc = 1;
	} else if (c == '\r') {
		t->col = 0;
	} else if (c == '\n') {
		if (++t->row == t->rows) {
			memmove(t->grid[0], t->grid[1], sizeof(t->grid[0]) * (size_t)(t->rows - 1));
			clear_cells(t, t->rows - 1, 0);
			t->row = t->rows - 1;
		}
	} else if (c < 0x20 || c == 0x7f) {
		test_fail(__FILE__, __LINE__, "control character %#x reached the terminal", c);
	} else if ((c & 0xC0) != 0x80) {
		if (t->col >= t->cols - 1)
			test_fail(__FILE__, __LINE__, "line %d reaches the last column", t->row);
		t->grid[t->row][t->col++] = c >= 0x80 ? '*' : (char)c;
	}
}

/* Read whatever the programme wrote (waiting a little for it to cross the
 * pty) and play it; returns those bytes. */
static const char *term_read(struct term *t)
{
	fflush(t->slave);
	buf_reset(&t->chunk);
	for (;;) {
		struct pollfd pfd = {.fd = t->master, .events = POLLIN};
		if (poll(&pfd, 1, 100) <= 0)
			break;
		char b[4096];
		ssize_t n = read(t->master, b, sizeof(b));
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0)
			break;
		buf_append(&t->chunk, b, (size_t)n);
	}
	for (size_t i = 0; i < t->chunk.len; i++)
		term_byte(t, (unsigned char)t->chunk.data[i]);
	return buf_str(&t->chunk);
}

/* Row r of the screen, trailing blanks dropped. */
static const char *term_line(struct term *t, int r)
{
	static char line[TERM_MAX_COLS + 1];
	memcpy(line, t->grid[r], (size_t)t->cols);
	int n = t->cols;
	while (n > 0 && line[n - 1] == ' ')
		n--;
	line[n] = '\0';
	return line;
}

/* The log line's text after its time stamp. */
static const char *after_stamp(const char *line)
{
	return strlen(line) > 21 ? line + 21 : line;
}

TEST(progress_terminal_redraws_in_place)
{
	struct fixture fx;
	fx_init(&fx);
	struct term t;
	term_open(&t, 140, 20);
	log_set_stream(t.slave);
	struct progress *p = progress_new(t.slave, true, 1);
	progress_attach_log(p);

	/* first update: drawn at once, two lines */
	fx_source(&fx, 0, OBS_RUNNING, 0, -1, 0, 0, 0);
	progress_update(p, &fx.run);
	const char *raw = term_read(&t);
	ASSERT_EQ_STR(raw, "\033[2Kdistrict-a  devices/ios +2  0/? pages  0 records  0/s  0 retries  0 429s\r\n"
			   "\033[2Kacme-msp    queued          0/? pages  0 records  0/s  0 retries  0 429s\r\n");
	ASSERT_EQ_INT(t.row, 2);

	/* a log line takes the live lines' place and they come back below */
	log_info("district-a", "logged in");
	term_read(&t);
	ASSERT_EQ_STR(after_stamp(term_line(&t, 0)), "info  [district-a] logged in");
	ASSERT_CONTAINS(term_line(&t, 1), "district-a  devices/ios +2");
	ASSERT_CONTAINS(term_line(&t, 2), "acme-msp    queued");
	ASSERT_EQ_INT(t.row, 3);

	/* within the interval: not a byte */
	fx.run.now_s = 1000.5;
	fx_source(&fx, 0, OBS_RUNNING, 10, 250, 1000, 0, 0);
	progress_update(p, &fx.run);
	ASSERT_EQ_STR(term_read(&t), "");

	/* one interval later: both lines redrawn where they were */
	fx.run.now_s = 1002;
	fx_source(&fx, 0, OBS_RUNNING, 120, 250, 12000, 2, 0);
	fx_source(&fx, 1, OBS_RUNNING, 3, 21, 300, 0, 1);
	progress_update(p, &fx.run);
	raw = term_read(&t);
	ASSERT_EQ_STR(raw, "\r\033[2A"
			   "\033[2Kdistrict-a  devices/ios +2  120/250 pages  12000 records  6000/s  "
			   "2 retries  0 429s  ETA 3 s\r\n"
			   "\033[2Kacme-msp    assets +1          3/21 pages    300 records     0/s  "
			   "0 retries  1 429s\r\n");
	ASSERT_EQ_INT(t.row, 3);
	ASSERT_EQ_STR(after_stamp(term_line(&t, 0)), "info  [district-a] logged in");
	ASSERT_EQ_STR(term_line(&t, 1), "district-a  devices/ios +2  120/250 pages  12000 records  "
					"6000/s  2 retries  0 429s  ETA 3 s");
	ASSERT_EQ_STR(term_line(&t, 2), "acme-msp    assets +1          3/21 pages    300 records  "
					"   0/s  0 retries  1 429s");
	ASSERT_EQ_STR(term_line(&t, 3), "");

	/* more log lines, with an event: each goes above, none lost */
	log_warn_ev("acme-msp", "assets", 4, "throttled", "rate limited (HTTP 429)");
	log_info_ev("district-a", "users", -1, "finished", "all pages read");
	term_read(&t);
	ASSERT_EQ_STR(after_stamp(term_line(&t, 1)), "warn  [acme-msp] assets page 4: rate limited (HTTP 429)");
	ASSERT_EQ_STR(after_stamp(term_line(&t, 2)), "info  [district-a] users: all pages read");
	ASSERT_CONTAINS(term_line(&t, 3), "district-a  devices/ios +2  120/250 pages");
	ASSERT_CONTAINS(term_line(&t, 4), "acme-msp    assets +1");
	ASSERT_EQ_STR(term_line(&t, 5), "");

	/* the end: the final state stays on the screen, and what comes next
	 * (the report) goes below it; the columns keep the widths they had */
	fx.run.now_s = 1002.2;
	for (int i = 0; i < 3; i++)
		fx.district_eps[i].finished = true;
	fx_source(&fx, 0, OBS_SUCCEEDED, 250, 250, 25000, 2, 0);
	fx.sources[0].elapsed_s = 2.2;
	fx_source(&fx, 1, OBS_FAILED, 3, 21, 300, 0, 1);
	fx.sources[1].elapsed_s = 2.2;
	fx.sources[1].error = "Syncro answered HTTP 401 to GET /me";
	progress_finish(p, &fx.run);
	fputs("report\n", t.slave);
	log_info(NULL, "after the end: no clearing");
	term_read(&t);
	ASSERT_EQ_STR(term_line(&t, 3), "district-a  succeeded       250/250 pages  25000 records  "
					"11364/s  2 retries  0 429s  in 2.2 s");
	ASSERT_EQ_STR(term_line(&t, 4), "acme-msp    failed             3/21 pages    300 records    "
					"136/s  0 retries  1 429s  Syncro answered HTTP 401 to GET /me");
	ASSERT_EQ_STR(term_line(&t, 5), "report");
	ASSERT_EQ_STR(after_stamp(term_line(&t, 6)), "info  after the end: no clearing");

	progress_free(p);
	/* the hooks went with it */
	log_info(NULL, "plain");
	ASSERT(strchr(term_read(&t), '\033') == NULL);
	log_set_stream(NULL);
	term_close(&t);
}

TEST(progress_terminal_width)
{
	struct fixture fx;
	fx_init(&fx);
	struct term t;
	term_open(&t, 40, 20); /* the width comes from the pty (TIOCGWINSZ) */
	struct progress *p = progress_new(t.slave, true, 0);
	fx.sources[0].name = "a-district-whose-name-goes-on-and-on-and-on";
	fx.district_eps[0].name = "device_group_members/visionos-and-more";
	fx_source(&fx, 0, OBS_RUNNING, 123456, 999999, 12345678901ull, 12, 3);
	fx_source(&fx, 1, OBS_FAILED, 1, 2, 3, 0, 0);
	fx.sources[1].name = "Bezirk-Süd";
	fx.sources[1].error = "a long reason that goes well past the edge of any terminal";
	progress_update(p, &fx.run);
	term_read(&t); /* fails the test if a line reached the last column */
	ASSERT_EQ_INT(t.row, 2);
	ASSERT_EQ_INT(strlen(term_line(&t, 0)), 39);
	ASSERT_EQ_STR(term_line(&t, 0), "a-district-whose-name-go  device_group_");
	ASSERT_EQ_STR(term_line(&t, 1), "Bezirk-S*d                failed");

	/* narrower: set by the caller this time */
	progress_set_size(p, 12, 0);
	progress_update(p, &fx.run);
	term_read(&t);
	ASSERT_EQ_STR(term_line(&t, 0), "a-district-");
	ASSERT_EQ_STR(term_line(&t, 1), "Bezirk-S*d");
	ASSERT_EQ_INT(t.row, 2);
	progress_free(p);
	term_close(&t);
}

TEST(progress_terminal_more_sources_than_rows)
{
	enum { N = 10 };
	struct obs_source src[N];
	char names[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "tenant-%d", i);
		src[i] = (struct obs_source){.name = names[i], .kind = "syncro",
					     .state = i < 5 ? OBS_RUNNING : OBS_QUEUED,
					     .pages_planned = -1, .loaded = -1};
	}
	struct obs_run run = {.started_s = 1000, .now_s = 1000, .sources = src, .nsources = N};
	struct term t;
	term_open(&t, 80, 6);
	log_set_stream(t.slave);
	struct progress *p = progress_new(t.slave, true, 0);
	progress_attach_log(p);
	/* six rows: four sources and a line for the six others, and the
	 * cursor on the last row; redraws and log lines many times over */
	for (int round = 0; round < 12; round++) {
		run.now_s = 1000 + round;
		src[round % N].pages_done++;
		progress_update(p, &run);
		if (round % 3 == 0)
			log_info("tenant-0", "log line %d", round);
		term_read(&t);
		ASSERT_EQ_INT(t.row, 5);
		ASSERT_CONTAINS(term_line(&t, 0), "tenant-0");
		ASSERT_CONTAINS(term_line(&t, 3), "tenant-3");
		ASSERT_EQ_STR(term_line(&t, 4), "and 6 more sources: 5 queued, 1 running");
	}
	progress_free(p);
	log_set_stream(NULL);
	term_close(&t);
}

TEST(progress_terminal_never_passes_control_characters)
{
	struct fixture fx;
	fx_init(&fx);
	struct term t;
	term_open(&t, 120, 20);
	log_add_secret("hunter2-password");
	struct progress *p = progress_new(t.slave, true, 0);
	fx.sources[0].name = "dist\033[2Jrict";
	fx_source(&fx, 0, OBS_FAILED, 1, 2, 3, 0, 0);
	fx.sources[0].error = "bad answer:\n\033]0;title\007 with password hunter2-password\x9b\xc2\x9b";
	progress_update(p, &fx.run);
	const char *raw = term_read(&t); /* fails on any escape but ours */
	ASSERT(strstr(raw, "hunter2") == NULL);
	ASSERT_CONTAINS(term_line(&t, 0), "dist [2Jrict");
	ASSERT_CONTAINS(term_line(&t, 0), "429s  bad answer:  ]0;title  with password [redacted]*");
	progress_free(p);
	log_clear_secrets();
	term_close(&t);
}

TEST(progress_is_terminal_checks_term)
{
	struct term t;
	term_open(&t, 80, 24);
	setenv("TERM", "xterm", 1);
	ASSERT(progress_is_terminal(t.slave));
	setenv("TERM", "dumb", 1);
	ASSERT(!progress_is_terminal(t.slave));
	unsetenv("TERM");
	ASSERT(!progress_is_terminal(t.slave));
	setenv("TERM", "xterm", 1);
	struct capture cap;
	cap_open(&cap);
	ASSERT(!progress_is_terminal(cap.f));
	cap_close(&cap);
	term_close(&t);
}
