/* metrics.c - a run's figures as a Prometheus text file (see metrics.h).
 *
 * The text is composed whole in memory, one metric after another, each
 * metric's samples together under its HELP and TYPE lines as the format
 * requires; a metric without samples (every page total still unknown) is
 * left out whole. Writing goes through a temporary file and rename(2)
 * (util_write_file_atomic()): a scraper reading the file while a run rewrites it every few seconds gets
 * the previous figures or the new ones, never half of each.
 */
#include "metrics.h"
#include "version.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum source_figure {
	SF_START,
	SF_DURATION,
	SF_RECORDS,
	SF_BYTES,
	SF_PAGES,
	SF_PAGES_PLANNED,
	SF_RETRIES,
	SF_THROTTLED,
	SF_LOADED,
	SF_LAST_SUCCESS,
};

struct source_metric {
	enum source_figure figure;
	const char *name;
	const char *type;
	const char *help;
};

static const struct source_metric source_metrics[] = {
	{SF_START, "invsync_source_start_timestamp_seconds", "gauge",
	 "Unix time the source started loading in this run, 0 before it starts."},
	{SF_DURATION, "invsync_source_duration_seconds", "gauge",
	 "Seconds the source has been loading in this run, or took."},
	{SF_RECORDS, "invsync_source_records", "gauge",
	 "Records received from the API in this run."},
	{SF_BYTES, "invsync_source_bytes", "gauge",
	 "Bytes of API answers received in this run."},
	{SF_PAGES, "invsync_source_pages", "gauge",
	 "Pages fetched in this run."},
	{SF_PAGES_PLANNED, "invsync_source_pages_planned", "gauge",
	 "Pages the source's lists hold in all, once every endpoint has said."},
	{SF_RETRIES, "invsync_source_retries_total", "counter",
	 "Pages fetched again after a failed attempt in this run."},
	{SF_THROTTLED, "invsync_source_throttled_total", "counter",
	 "Answers refused with HTTP 429 (rate limited) in this run."},
	{SF_LOADED, "invsync_source_loaded", "gauge",
	 "Rows current in PostgreSQL after this run's commit."},
	{SF_LAST_SUCCESS, "invsync_source_last_success_timestamp_seconds", "gauge",
	 "Unix time the source last loaded successfully, 0 if it never did."},
};

enum endpoint_figure {
	EF_RECORDS,
	EF_BYTES,
	EF_PAGES,
	EF_PAGES_PLANNED,
	EF_RETRIES,
	EF_THROTTLED,
	EF_FINISHED,
};

struct endpoint_metric {
	enum endpoint_figure figure;
	const char *name;
	const char *type;
	const char *help;
};

static const struct endpoint_metric endpoint_metrics[] = {
	{EF_RECORDS, "invsync_endpoint_records", "gauge",
	 "Records received from the endpoint in this run."},
	{EF_BYTES, "invsync_endpoint_bytes", "gauge",
	 "Bytes of the endpoint's answers received in this run."},
	{EF_PAGES, "invsync_endpoint_pages", "gauge",
	 "Pages of the endpoint fetched in this run."},
	{EF_PAGES_PLANNED, "invsync_endpoint_pages_planned", "gauge",
	 "Pages the endpoint's list holds, once the API has said."},
	{EF_RETRIES, "invsync_endpoint_retries_total", "counter",
	 "Pages of the endpoint fetched again after a failed attempt in this run."},
	{EF_THROTTLED, "invsync_endpoint_throttled_total", "counter",
	 "Answers for the endpoint refused with HTTP 429 in this run."},
	{EF_FINISHED, "invsync_endpoint_finished", "gauge",
	 "1 once every page of the endpoint has been read, 0 before."},
};

static const char *const state_labels[] = {
	[OBS_QUEUED] = "queued",
	[OBS_RUNNING] = "running",
	[OBS_COMMITTING] = "committing",
	[OBS_SUCCEEDED] = "succeeded",
	[OBS_FAILED] = "failed",
	[OBS_SKIPPED] = "skipped",
};

/* Append s as a label value between double quotes: backslash, double
 * quote and newline escaped, ill-formed UTF-8 as U+FFFD. */
static void put_label_value(struct buf *out, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	buf_putc(out, '"');
	size_t i = 0;
	while (i < n) {
		size_t len;
		if (!util_utf8_next(s + i, n - i, &len))
			buf_puts(out, "\xEF\xBF\xBD");
		else if (s[i] == '\\')
			buf_puts(out, "\\\\");
		else if (s[i] == '"')
			buf_puts(out, "\\\"");
		else if (s[i] == '\n')
			buf_puts(out, "\\n");
		else
			buf_append(out, s + i, len);
		i += len;
	}
	buf_putc(out, '"');
}

static void put_head(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Unix times and durations: milliseconds are plenty. */
static void put_seconds(struct buf *out, double s)
{
	if (!isfinite(s))
		buf_puts(out, "NaN"); /* the format's spelling, not printf's "nan" */
	else if (s == floor(s))
		buf_printf(out, "%.0f", s);
	else
		buf_printf(out, "%.3f", s);
}

static void put_source_labels(struct buf *out, const struct obs_source *src)
{
	buf_puts(out, "{source=");
	put_label_value(out, src->name);
	buf_puts(out, ",kind=");
	put_label_value(out, src->kind);
}

/* Append the sample's value; false when the source has none yet. */
static bool source_value(struct buf *out, const struct obs_source *src, enum source_figure f)
{
	switch (f) {
	case SF_START:
		put_seconds(out, src->started_s);
		return true;
	case SF_DURATION:
		put_seconds(out, src->elapsed_s);
		return true;
	case SF_RECORDS:
		buf_printf(out, "%llu", (unsigned long long)src->records);
		return true;
	case SF_BYTES:
		buf_printf(out, "%llu", (unsigned long long)src->bytes);
		return true;
	case SF_PAGES:
		buf_printf(out, "%ld", src->pages_done);
		return true;
	case SF_PAGES_PLANNED:
		if (src->pages_planned < 0)
			return false;
		buf_printf(out, "%ld", src->pages_planned);
		return true;
	case SF_RETRIES:
		buf_printf(out, "%ld", src->retries);
		return true;
	case SF_THROTTLED:
		buf_printf(out, "%ld", src->throttled);
		return true;
	case SF_LOADED:
		if (src->loaded < 0)
			return false;
		buf_printf(out, "%ld", src->loaded);
		return true;
	case SF_LAST_SUCCESS:
		put_seconds(out, src->last_success_s);
		return true;
	}
	return false;
}

static bool endpoint_value(struct buf *out, const struct obs_endpoint *ep, enum endpoint_figure f)
{
	switch (f) {
	case EF_RECORDS:
		buf_printf(out, "%llu", (unsigned long long)ep->records);
		return true;
	case EF_BYTES:
		buf_printf(out, "%llu", (unsigned long long)ep->bytes);
		return true;
	case EF_PAGES:
		buf_printf(out, "%ld", ep->pages_done);
		return true;
	case EF_PAGES_PLANNED:
		if (ep->pages_planned < 0)
			return false;
		buf_printf(out, "%ld", ep->pages_planned);
		return true;
	case EF_RETRIES:
		buf_printf(out, "%ld", ep->retries);
		return true;
	case EF_THROTTLED:
		buf_printf(out, "%ld", ep->throttled);
		return true;
	case EF_FINISHED:
		buf_puts(out, ep->finished ? "1" : "0");
		return true;
	}
	return false;
}

void metrics_format(struct buf *out, const struct obs_run *snap)
{
	put_head(out, "invsync_build_info", "gauge", "The invsync release that wrote this file.");
	buf_puts(out, "invsync_build_info{version=");
	put_label_value(out, INVSYNC_VERSION);
	buf_puts(out, "} 1\n");
	put_head(out, "invsync_run_id", "gauge", "Id of the run in the sync_runs table.");
	buf_printf(out, "invsync_run_id %lld\n", snap->run_id);
	put_head(out, "invsync_run_start_timestamp_seconds", "gauge",
		 "Unix time the run started.");
	buf_puts(out, "invsync_run_start_timestamp_seconds ");
	put_seconds(out, snap->started_s);
	buf_putc(out, '\n');
	put_head(out, "invsync_metrics_timestamp_seconds", "gauge",
		 "Unix time the figures in this file were taken.");
	buf_puts(out, "invsync_metrics_timestamp_seconds ");
	put_seconds(out, snap->now_s);
	buf_putc(out, '\n');

	if (snap->nsources == 0)
		return;

	put_head(out, "invsync_source_status", "gauge",
		 "1 for the state the source is in, 0 for the other states.");
	for (size_t i = 0; i < snap->nsources; i++) {
		const struct obs_source *src = &snap->sources[i];
		for (size_t st = 0; st < ARRAY_SIZE(state_labels); st++) {
			buf_puts(out, "invsync_source_status");
			put_source_labels(out, src);
			buf_printf(out, ",state=\"%s\"} %d\n", state_labels[st],
				   (size_t)src->state == st);
		}
	}

	struct buf samples = BUF_INIT;
	for (size_t m = 0; m < ARRAY_SIZE(source_metrics); m++) {
		const struct source_metric *sm = &source_metrics[m];
		buf_reset(&samples);
		for (size_t i = 0; i < snap->nsources; i++) {
			const struct obs_source *src = &snap->sources[i];
			size_t mark = samples.len;
			buf_puts(&samples, sm->name);
			put_source_labels(&samples, src);
			buf_puts(&samples, "} ");
			if (source_value(&samples, src, sm->figure)) {
				buf_putc(&samples, '\n');
			} else {
				samples.len = mark;
				samples.data[mark] = '\0';
			}
		}
		if (samples.len) {
			put_head(out, sm->name, sm->type, sm->help);
			buf_append(out, samples.data, samples.len);
		}
	}

	for (size_t m = 0; m < ARRAY_SIZE(endpoint_metrics); m++) {
		const struct endpoint_metric *em = &endpoint_metrics[m];
		buf_reset(&samples);
		for (size_t i = 0; i < snap->nsources; i++) {
			const struct obs_source *src = &snap->sources[i];
			for (size_t e = 0; e < src->nendpoints; e++) {
				const struct obs_endpoint *ep = &src->endpoints[e];
				size_t mark = samples.len;
				buf_puts(&samples, em->name);
				buf_puts(&samples, "{source=");
				put_label_value(&samples, src->name);
				buf_puts(&samples, ",endpoint=");
				put_label_value(&samples, ep->name);
				buf_puts(&samples, "} ");
				if (endpoint_value(&samples, ep, em->figure)) {
					buf_putc(&samples, '\n');
				} else {
					samples.len = mark;
					samples.data[mark] = '\0';
				}
			}
		}
		if (samples.len) {
			put_head(out, em->name, em->type, em->help);
			buf_append(out, samples.data, samples.len);
		}
	}
	buf_free(&samples);
}

int metrics_write(const char *path, const struct obs_run *snap, struct buf *err)
{
	struct buf text = BUF_INIT;
	metrics_format(&text, snap);
	int rc = util_write_file_atomic(path, "metrics file", text.data, text.len, 0644, err);
	buf_free(&text);
	return rc;
}
