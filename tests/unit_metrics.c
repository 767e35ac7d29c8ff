/* unit_metrics.c - the metrics file: read back with a strict parser of the
 * text exposition format, checked value by value, replaced atomically
 * under a reader, and refused with a clear error where it cannot go. */
#include "metrics.h"
#include "test.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- a strict reader of the text format -------------------------------- */

struct sample {
	char *name;
	char *labels; /* canonical: name="decoded value" joined by ',' in file order */
	double value;
};

struct exposition {
	struct sample *samples;
	size_t n;
	char *families[128]; /* names with HELP and TYPE, in order */
	char *types[128];
	size_t nfamilies;
};

static bool name_char(char c, bool first, bool colon_ok)
{
	return isalpha((unsigned char)c) || c == '_' || (colon_ok && c == ':') ||
	       (!first && isdigit((unsigned char)c));
}

/* Read a metric or label name at *p; fails the test if there is none. */
static char *read_name(const char **p, bool colon_ok, int lineno)
{
	const char *s = *p;
	if (!name_char(*s, true, colon_ok))
		test_fail(__FILE__, __LINE__, "line %d: bad name at \"%s\"", lineno, s);
	while (name_char(*s, false, colon_ok))
		s++;
	char *name = strndup(*p, (size_t)(s - *p));
	*p = s;
	return name;
}

static double read_value(const char *s, int lineno)
{
	if (strcmp(s, "NaN") == 0 || strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0)
		return strtod(s, NULL);
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	/* a plain decimal number, nothing after it: no time stamp, no "nan" */
	if (end == s || *end != '\0' || errno || strpbrk(s, "nNiIxXpP"))
		test_fail(__FILE__, __LINE__, "line %d: bad value \"%s\"", lineno, s);
	return v;
}

static size_t family_index(const struct exposition *x, const char *name)
{
	for (size_t i = 0; i < x->nfamilies; i++)
		if (strcmp(x->families[i], name) == 0)
			return i;
	return SIZE_MAX;
}

static void parse_exposition(struct exposition *x, const char *text)
{
	memset(x, 0, sizeof(*x));
	size_t len = strlen(text);
	ASSERT(len > 0 && text[len - 1] == '\n');
	char *copy = strdup(text);
	char *save = NULL;
	int lineno = 0;
	size_t current = SIZE_MAX; /* family whose samples are being read */
	bool help_seen = false;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		const char *p = line;
		if (strncmp(p, "# HELP ", 7) == 0) {
			p += 7;
			char *name = read_name(&p, true, lineno);
			if (family_index(x, name) != SIZE_MAX)
				test_fail(__FILE__, __LINE__, "line %d: second HELP for %s", lineno, name);
			ASSERT(*p == ' ' && p[1] != '\0');
			for (const char *h = p + 1; *h; h++) /* only \\ and \n escapes */
				if (*h == '\\' && h[1] != '\\' && h[1] != 'n')
					test_fail(__FILE__, __LINE__, "line %d: bad escape in HELP", lineno);
			ASSERT(x->nfamilies < 128);
			x->families[x->nfamilies] = name;
			x->types[x->nfamilies] = NULL;
			current = x->nfamilies++;
			help_seen = true;
		} else if (strncmp(p, "# TYPE ", 7) == 0) {
			p += 7;
			char *name = read_name(&p, true, lineno);
			/* TYPE right after the HELP of the same metric, once */
			if (!help_seen || current == SIZE_MAX || strcmp(x->families[current], name) != 0 ||
			    x->types[current])
				test_fail(__FILE__, __LINE__, "line %d: TYPE %s out of place", lineno, name);
			ASSERT(*p == ' ');
			p++;
			if (strcmp(p, "gauge") != 0 && strcmp(p, "counter") != 0)
				test_fail(__FILE__, __LINE__, "line %d: unexpected type %s", lineno, p);
			if (strcmp(p, "counter") == 0) {
				size_t n = strlen(name);
				ASSERT(n > 6 && strcmp(name + n - 6, "_total") == 0);
			}
			x->types[current] = strdup(p);
			free(name);
			help_seen = false;
		} else if (*p == '#') {
			test_fail(__FILE__, __LINE__, "line %d: unexpected comment: %s", lineno, line);
		} else {
			char *name = read_name(&p, true, lineno);
			/* samples only for the metric just introduced */
			if (current == SIZE_MAX || strcmp(x->families[current], name) != 0 ||
			    !x->types[current])
				test_fail(__FILE__, __LINE__, "line %d: sample of %s out of its group",
					  lineno, name);
			struct buf labels = BUF_INIT;
			if (*p == '{') {
				p++;
				while (*p != '}') {
					char *lname = read_name(&p, false, lineno);
					if (p[0] != '=' || p[1] != '"')
						test_fail(__FILE__, __LINE__, "line %d: bad label", lineno);
					p += 2;
					if (labels.len)
						buf_putc(&labels, ',');
					buf_printf(&labels, "%s=", lname);
					free(lname);
					for (;; p++) {
						if (*p == '\0')
							test_fail(__FILE__, __LINE__, "line %d: open label", lineno);
						if (*p == '"')
							break;
						if (*p == '\\') {
							p++;
							if (*p == 'n')
								buf_putc(&labels, '\n');
							else if (*p == '\\' || *p == '"')
								buf_putc(&labels, *p);
							else
								test_fail(__FILE__, __LINE__,
									  "line %d: bad escape \\%c", lineno, *p);
						} else {
							buf_putc(&labels, *p);
						}
					}
					p++;
					if (*p == ',' && p[1] != '}')
						p++;
					else if (*p != '}')
						test_fail(__FILE__, __LINE__, "line %d: after a label: %s",
							  lineno, p);
				}
				p++;
			}
			if (*p != ' ')
				test_fail(__FILE__, __LINE__, "line %d: no value: %s", lineno, line);
			double v = read_value(p + 1, lineno);
			for (size_t i = 0; i < x->n; i++)
				if (strcmp(x->samples[i].name, name) == 0 &&
				    strcmp(x->samples[i].labels, buf_str(&labels)) == 0)
					test_fail(__FILE__, __LINE__, "line %d: same series twice", lineno);
			x->samples = realloc(x->samples, (x->n + 1) * sizeof(*x->samples));
			x->samples[x->n++] = (struct sample){name, strdup(buf_str(&labels)), v};
			buf_free(&labels);
		}
	}
	for (size_t i = 0; i < x->nfamilies; i++)
		ASSERT(x->types[i] != NULL);
	free(copy);
}

static void free_exposition(struct exposition *x)
{
	for (size_t i = 0; i < x->n; i++) {
		free(x->samples[i].name);
		free(x->samples[i].labels);
	}
	free(x->samples);
	for (size_t i = 0; i < x->nfamilies; i++) {
		free(x->families[i]);
		free(x->types[i]);
	}
}

/* The value of a series, by its decoded labels; fails if it is missing. */
static double value_of(const struct exposition *x, const char *name, const char *labels)
{
	for (size_t i = 0; i < x->n; i++)
		if (strcmp(x->samples[i].name, name) == 0 && strcmp(x->samples[i].labels, labels) == 0)
			return x->samples[i].value;
	test_fail(__FILE__, __LINE__, "no sample %s{%s}", name, labels);
}

static bool has_series(const struct exposition *x, const char *name)
{
	for (size_t i = 0; i < x->n; i++)
		if (strcmp(x->samples[i].name, name) == 0)
			return true;
	return false;
}

#define ASSERT_VALUE(x, name, labels, expected) \
	ASSERT_EQ_INT((long long)(value_of((x), (name), (labels)) * 1000), \
		      (long long)((expected) * 1000.0))

/* --- a run to write ---------------------------------------------------- */

struct fixture {
	struct obs_endpoint eps[3];
	struct obs_source sources[2];
	struct obs_run run;
};

static void fx_init(struct fixture *fx)
{
	memset(fx, 0, sizeof(*fx));
	fx->eps[0] = (struct obs_endpoint){"devices/ios", 201, 201, 20000, 57600000, 2, 0, true};
	fx->eps[1] = (struct obs_endpoint){"users", 12, -1, 6000, 2000000, 0, 0, false};
	fx->eps[2] = (struct obs_endpoint){"assets", 21, 21, 2000, 3900000, 1, 3, true};
	fx->sources[0] = (struct obs_source){
		.name = "district-a", .kind = "mosyle", .state = OBS_RUNNING,
		.started_s = 1795939281.5, .elapsed_s = 2.25, .records = 26000,
		.bytes = 59600000, .pages_done = 213, .pages_planned = -1, .retries = 2,
		.throttled = 0, .loaded = -1, .last_success_s = 1795852881,
		.endpoints = fx->eps, .nendpoints = 2,
	};
	fx->sources[1] = (struct obs_source){
		.name = "acme \"north\"\\msp\nx", .kind = "syncro", .state = OBS_SUCCEEDED,
		.started_s = 1795939281, .elapsed_s = 4.2, .records = 2000, .bytes = 3900000,
		.pages_done = 21, .pages_planned = 21, .retries = 1, .throttled = 3,
		.loaded = 2000, .last_success_s = 1795939285.25,
		.endpoints = fx->eps + 2, .nendpoints = 1,
	};
	fx->run = (struct obs_run){.run_id = 42, .started_s = 1795939280.75,
				   .now_s = 1795939290, .sources = fx->sources, .nsources = 2};
}

static char *read_whole(const char *path)
{
	FILE *f = fopen(path, "r");
	ASSERT(f != NULL);
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	return b.data ? b.data : strdup("");
}

static void make_dir(char *dir, size_t size)
{
	const char *tmp = getenv("INVSYNC_TEST_TMP");
	snprintf(dir, size, "%s/metrics.XXXXXX", tmp ? tmp : "/tmp");
	ASSERT(mkdtemp(dir) != NULL);
	ASSERT(chmod(dir, 0755) == 0);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	ASSERT(d != NULL);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

#define SRC_A "source=district-a,kind=mosyle"
#define SRC_B "source=acme \"north\"\\msp\nx,kind=syncro"

TEST(metrics_format_values)
{
	struct fixture fx;
	fx_init(&fx);
	struct buf text = BUF_INIT;
	metrics_format(&text, &fx.run);
	struct exposition x;
	parse_exposition(&x, buf_str(&text));

	ASSERT_VALUE(&x, "invsync_run_id", "", 42);
	ASSERT_VALUE(&x, "invsync_run_start_timestamp_seconds", "", 1795939280.75);
	ASSERT_VALUE(&x, "invsync_metrics_timestamp_seconds", "", 1795939290);
	ASSERT_VALUE(&x, "invsync_build_info", "version=0.1.0", 1);

	ASSERT_VALUE(&x, "invsync_source_status", SRC_A ",state=running", 1);
	ASSERT_VALUE(&x, "invsync_source_status", SRC_A ",state=queued", 0);
	ASSERT_VALUE(&x, "invsync_source_status", SRC_A ",state=succeeded", 0);
	ASSERT_VALUE(&x, "invsync_source_status", SRC_B ",state=succeeded", 1);
	ASSERT_VALUE(&x, "invsync_source_status", SRC_B ",state=failed", 0);
	int states = 0;
	for (size_t i = 0; i < x.n; i++)
		if (strcmp(x.samples[i].name, "invsync_source_status") == 0)
			states++;
	ASSERT_EQ_INT(states, 12);

	ASSERT_VALUE(&x, "invsync_source_records", SRC_A, 26000);
	ASSERT_VALUE(&x, "invsync_source_bytes", SRC_A, 59600000);
	ASSERT_VALUE(&x, "invsync_source_pages", SRC_A, 213);
	ASSERT_VALUE(&x, "invsync_source_retries_total", SRC_A, 2);
	ASSERT_VALUE(&x, "invsync_source_throttled_total", SRC_B, 3);
	ASSERT_VALUE(&x, "invsync_source_duration_seconds", SRC_A, 2.25);
	ASSERT_VALUE(&x, "invsync_source_start_timestamp_seconds", SRC_A, 1795939281.5);
	ASSERT_VALUE(&x, "invsync_source_last_success_timestamp_seconds", SRC_A, 1795852881);
	ASSERT_VALUE(&x, "invsync_source_last_success_timestamp_seconds", SRC_B, 1795939285.25);
	ASSERT_VALUE(&x, "invsync_source_pages_planned", SRC_B, 21);
	ASSERT_VALUE(&x, "invsync_source_loaded", SRC_B, 2000);

	/* not known yet: no sample rather than a made-up -1 */
	for (size_t i = 0; i < x.n; i++) {
		if (strcmp(x.samples[i].name, "invsync_source_pages_planned") == 0 ||
		    strcmp(x.samples[i].name, "invsync_source_loaded") == 0)
			ASSERT_EQ_STR(x.samples[i].labels, SRC_B);
	}

	ASSERT_VALUE(&x, "invsync_endpoint_records", "source=district-a,endpoint=devices/ios", 20000);
	ASSERT_VALUE(&x, "invsync_endpoint_pages", "source=district-a,endpoint=users", 12);
	ASSERT_VALUE(&x, "invsync_endpoint_pages_planned", "source=district-a,endpoint=devices/ios",
		     201);
	ASSERT_VALUE(&x, "invsync_endpoint_finished", "source=district-a,endpoint=users", 0);
	ASSERT_VALUE(&x, "invsync_endpoint_finished", "source=district-a,endpoint=devices/ios", 1);
	ASSERT_VALUE(&x, "invsync_endpoint_throttled_total",
		     "source=acme \"north\"\\msp\nx,endpoint=assets", 3);
	ASSERT_VALUE(&x, "invsync_endpoint_retries_total",
		     "source=acme \"north\"\\msp\nx,endpoint=assets", 1);
	ASSERT_VALUE(&x, "invsync_endpoint_bytes", "source=district-a,endpoint=devices/ios", 57600000);

	/* every metric the README promises is there, typed as promised */
	static const char *const gauges[] = {
		"invsync_source_records", "invsync_source_pages", "invsync_source_bytes",
		"invsync_source_duration_seconds", "invsync_source_last_success_timestamp_seconds",
		"invsync_source_status", "invsync_source_loaded", "invsync_endpoint_records",
		"invsync_endpoint_pages", "invsync_run_start_timestamp_seconds",
		"invsync_metrics_timestamp_seconds",
	};
	for (size_t i = 0; i < ARRAY_SIZE(gauges); i++) {
		size_t f = family_index(&x, gauges[i]);
		ASSERT(f != SIZE_MAX);
		ASSERT_EQ_STR(x.types[f], "gauge");
	}
	ASSERT_EQ_STR(x.types[family_index(&x, "invsync_source_retries_total")], "counter");
	ASSERT_EQ_STR(x.types[family_index(&x, "invsync_source_throttled_total")], "counter");
	free_exposition(&x);
	buf_free(&text);
}

TEST(metrics_format_escapes_labels)
{
	struct fixture fx;
	fx_init(&fx);
	fx.sources[0].name = "bad\xff utf8 \xc3\xa9";
	struct buf text = BUF_INIT;
	metrics_format(&text, &fx.run);
	const char *t = buf_str(&text);
	ASSERT_CONTAINS(t, "invsync_source_records{source=\"acme \\\"north\\\"\\\\msp\\nx\","
			   "kind=\"syncro\"} 2000\n");
	ASSERT_CONTAINS(t, "invsync_source_records{source=\"bad\xef\xbf\xbd utf8 \xc3\xa9\","
			   "kind=\"mosyle\"} 26000\n");
	ASSERT_CONTAINS(t, "invsync_source_duration_seconds{source=\"acme \\\"north\\\"\\\\msp\\nx\","
			   "kind=\"syncro\"} 4.200\n");
	struct exposition x;
	parse_exposition(&x, t);
	free_exposition(&x);

	/* a run with no source yet is a valid file too */
	fx.run.nsources = 0;
	buf_reset(&text);
	metrics_format(&text, &fx.run);
	parse_exposition(&x, buf_str(&text));
	ASSERT(!has_series(&x, "invsync_source_records"));
	ASSERT_VALUE(&x, "invsync_run_id", "", 42);
	free_exposition(&x);
	buf_free(&text);
}

TEST(metrics_write_replaces_atomically)
{
	char dir[256], path[300];
	make_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/invsync.prom", dir);
	umask(077); /* the file is 0644 whatever the umask */

	struct fixture fx;
	fx_init(&fx);
	struct buf err = BUF_INIT;
	ASSERT_EQ_INT(metrics_write(path, &fx.run, &err), 0);
	ASSERT_EQ_INT(err.len, 0);
	struct stat st1;
	ASSERT(stat(path, &st1) == 0);
	ASSERT_EQ_INT(st1.st_mode & 07777, 0644);

	/* someone reading the first file while the second is written */
	FILE *old = fopen(path, "r");
	ASSERT(old != NULL);
	fx.run.now_s += 10;
	fx.sources[0].records = 30000;
	ASSERT_EQ_INT(metrics_write(path, &fx.run, &err), 0);

	/* a new file took the name; the reader still has the old one, whole */
	struct stat st2;
	ASSERT(stat(path, &st2) == 0);
	ASSERT(st2.st_ino != st1.st_ino);
	ASSERT_EQ_INT(st2.st_mode & 07777, 0644);
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), old)) > 0)
		buf_append(&b, chunk, n);
	fclose(old);
	struct exposition x;
	parse_exposition(&x, buf_str(&b));
	ASSERT_VALUE(&x, "invsync_source_records", SRC_A, 26000);
	free_exposition(&x);
	buf_free(&b);

	char *now = read_whole(path);
	parse_exposition(&x, now);
	ASSERT_VALUE(&x, "invsync_source_records", SRC_A, 30000);
	ASSERT_VALUE(&x, "invsync_metrics_timestamp_seconds", "", 1795939300);
	free_exposition(&x);
	free(now);

	/* no temporary file left behind */
	ASSERT_EQ_INT(count_entries(dir), 1);

	/* a relative path works too (the temporary file in the same place) */
	ASSERT(chdir(dir) == 0);
	ASSERT_EQ_INT(metrics_write("rel.prom", &fx.run, &err), 0);
	ASSERT_EQ_INT(count_entries(dir), 2);
	buf_free(&err);
}

TEST(metrics_write_under_a_reader)
{
	test_set_timeout(60);
	char dir[256], path[300];
	make_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/invsync.prom", dir);
	struct fixture fx;
	fx_init(&fx);
	struct buf err = BUF_INIT;
	ASSERT_EQ_INT(metrics_write(path, &fx.run, &err), 0);

	/* A scraper in another process reads the file as fast as it can
	 * while this one rewrites it: every read must parse whole. */
	int go[2];
	ASSERT(pipe(go) == 0);
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		close(go[1]);
		fcntl(go[0], F_SETFL, O_NONBLOCK);
		int reads = 0;
		char c;
		for (;;) {
			char *text = read_whole(path);
			struct exposition x;
			parse_exposition(&x, text); /* exits 1 on a torn file */
			(void)value_of(&x, "invsync_metrics_timestamp_seconds", "");
			free_exposition(&x);
			free(text);
			reads++;
			if (read(go[0], &c, 1) == 0) /* the writer is done */
				break;
		}
		_exit(reads > 10 ? 0 : 2);
	}
	close(go[0]);
	for (int i = 0; i < 400; i++) {
		fx.run.now_s += 1;
		fx.sources[0].records += 100;
		/* vary the length too, as run names and figures would */
		fx.sources[0].name = i % 2 ? "district-a" : "district-with-a-longer-name";
		ASSERT_EQ_INT(metrics_write(path, &fx.run, &err), 0);
	}
	close(go[1]);
	int status;
	ASSERT(waitpid(pid, &status, 0) == pid);
	ASSERT(WIFEXITED(status));
	ASSERT_EQ_INT(WEXITSTATUS(status), 0);
	ASSERT_EQ_INT(count_entries(dir), 1);
	buf_free(&err);
}

TEST(metrics_write_errors)
{
	char dir[256], path[400];
	make_dir(dir, sizeof(dir));
	struct fixture fx;
	fx_init(&fx);
	struct buf err = BUF_INIT;

	/* a directory that does not exist */
	snprintf(path, sizeof(path), "%s/missing/invsync.prom", dir);
	ASSERT_EQ_INT(metrics_write(path, &fx.run, &err), -ENOENT);
	struct buf want = BUF_INIT;
	buf_printf(&want, "metrics file %s: cannot create a temporary file in %s/missing: "
			  "No such file or directory", path, dir);
	ASSERT_EQ_STR(buf_str(&err), buf_str(&want));

	/* a name that is a directory: the file stays as it was, no leftover */
	buf_reset(&err);
	snprintf(path, sizeof(path), "%s/taken.prom", dir);
	ASSERT(mkdir(path, 0755) == 0);
	ASSERT_EQ_INT(metrics_write(path, &fx.run, &err), -EISDIR);
	ASSERT_CONTAINS(buf_str(&err), "cannot replace it with ");
	ASSERT_CONTAINS(buf_str(&err), ": Is a directory");
	ASSERT_EQ_INT(count_entries(dir), 1);

	/* no file name at all */
	buf_reset(&err);
	snprintf(path, sizeof(path), "%s/", dir);
	ASSERT_EQ_INT(metrics_write(path, &fx.run, &err), -EINVAL);
	ASSERT_CONTAINS(buf_str(&err), "needs a file name");
	buf_free(&want);
	buf_free(&err);
}

TEST(metrics_write_unwritable_directory)
{
	char dir[256], ro[300], path[400];
	make_dir(dir, sizeof(dir));
	snprintf(ro, sizeof(ro), "%s/ro", dir);
	ASSERT(mkdir(ro, 0755) == 0);
	snprintf(path, sizeof(path), "%s/invsync.prom", ro);
	struct fixture fx;
	fx_init(&fx);
	struct buf err = BUF_INIT;
	ASSERT_EQ_INT(metrics_write(path, &fx.run, &err), 0);
	char *before = read_whole(path);
	ASSERT(chmod(ro, 0555) == 0);

	/* root writes anywhere: try as nobody, in a child so that this
	 * process can still clean up */
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 ||
				       setuid(65534) != 0))
			_exit(3);
		fx.sources[0].records = 1;
		int rc = metrics_write(path, &fx.run, &err);
		if (rc != -EACCES)
			test_fail(__FILE__, __LINE__, "rc %d: %s", rc, buf_str(&err));
		struct buf want = BUF_INIT;
		buf_printf(&want, "metrics file %s: cannot create a temporary file in %s: "
				  "Permission denied", path, ro);
		ASSERT_EQ_STR(buf_str(&err), buf_str(&want));
		_exit(0);
	}
	int status;
	ASSERT(waitpid(pid, &status, 0) == pid);
	ASSERT(WIFEXITED(status));
	ASSERT_EQ_INT(WEXITSTATUS(status), 0);

	/* the last good file is still there, unchanged */
	char *after = read_whole(path);
	ASSERT_EQ_STR(after, before);
	ASSERT_EQ_INT(count_entries(ro), 1);
	ASSERT(chmod(ro, 0755) == 0);
	free(before);
	free(after);
	buf_free(&err);
}
