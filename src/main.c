/* main.c - the invsync command line. The only place that exits. */
#include "buf.h"
#include "check.h"
#include "config.h"
#include "log.h"
#include "pgsink.h"
#include "progress.h"
#include "report.h"
#include "run.h"
#include "version.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <libpq-fe.h>

#include "schema.h"

#define EXIT_SOME_FAILED 1
#define EXIT_USAGE 2

static const char usage_main[] =
	"usage: invsync [--version] [--help] COMMAND [options]\n"
	"\n"
	"Pull device inventories from Mosyle Manager and Syncro into PostgreSQL.\n"
	"\n"
	"commands:\n"
	"  sync -c FILE      fetch every configured source and load it\n"
	"  check -c FILE     check the database connection and every source's\n"
	"                    credentials, load nothing\n"
	"  migrate -c FILE   create or upgrade the database schema, load nothing\n"
	"  report -c FILE    summarise what the database holds: inventory, last\n"
	"                    runs, changes, reconciliation gaps (text, JSON, CSV, HTML)\n"
	"\n"
	"Run 'invsync COMMAND --help' for a command's options.\n"
	"exit status: 0 every source succeeded, 1 some source failed, 2 usage or\n"
	"configuration error.\n";

static const char usage_sync[] =
	"usage: invsync sync -c FILE [--source NAME]... [--worker [--schedule ID]\n"
	"                    [--lease SECONDS]] [--verbose | --quiet]\n"
	"\n"
	"Fetch every source in FILE in parallel and load it into PostgreSQL. Each\n"
	"source is replaced atomically when all its pages were read; a source that\n"
	"fails keeps its previous inventory and its reason in invsync.sync_runs.\n"
	"\n"
	"  -c, --config FILE  configuration file (see README: Configuration)\n"
	"  -s, --source NAME  load only this source (repeatable)\n"
	"  --worker           share the sources with other workers through the\n"
	"                     database: claim them one at a time from the queue of\n"
	"                     the schedule, so each is loaded once per schedule\n"
	"  --schedule ID      the schedule's name (default: today's UTC date)\n"
	"  --lease SECONDS    how long a claim outlives a worker that died\n"
	"                     (default 60; renewed every third of it)\n"
	"  -v, --verbose      log every page\n"
	"  -q, --quiet        log errors only: no progress, no report\n"
	"  --log-format text|json\n"
	"                     log lines as text (default) or one JSON object each\n"
	"  --progress-interval SECONDS\n"
	"                     least time between progress updates (default 1 on a\n"
	"                     terminal, 10 otherwise; 0: no progress)\n"
	"  --metrics-file PATH\n"
	"                     keep a Prometheus text file of the run's figures\n"
	"                     (rewritten every 15 s and at the end)\n"
	"  -h, --help         this text\n";

static const char usage_migrate[] =
	"usage: invsync migrate -c FILE\n"
	"\n"
	"Create the schema named in FILE's [database] section, or apply the\n"
	"migrations it lacks. 'sync' does this by itself; this command lets a\n"
	"database administrator do it ahead of time.\n";

static const char usage_check[] =
	"usage: invsync check -c FILE\n"
	"\n"
	"Connect to the database and check every source's credentials (a Mosyle\n"
	"login; Syncro's GET /me and the token permissions the source's endpoints\n"
	"need), loading nothing. One line per check: OK, or FAILED and why.\n"
	"Exit status 0 when every check passed, 1 otherwise.\n";

static const char usage_report[] =
	"usage: invsync report -c FILE [--format text|json|csv] [--html FILE]\n"
	"                      [--source NAME]... [--top N]\n"
	"\n"
	"Summarise what the database holds, read in one consistent snapshot and\n"
	"changing nothing: devices per source and OS and per OS version, the last\n"
	"run of each source, the changes each source's latest successful run\n"
	"recorded, serial numbers Mosyle and Syncro do not agree on, devices\n"
	"needing attention, and the records loaded by each of the last 30 runs.\n"
	"\n"
	"  -c, --config FILE  configuration file (its database and schema)\n"
	"  --format FORMAT    text (default; fits 100 columns), json (one object)\n"
	"                     or csv (a '# name' line, then a heading line, per table)\n"
	"  --html FILE        also write the report as a self-contained HTML page\n"
	"                     with charts to FILE (replaced atomically, mode 0644)\n"
	"  -s, --source NAME  only this source (repeatable; default: every source\n"
	"                     in the database)\n"
	"  --top N            rows of each reconciliation list, and changed fields\n"
	"                     per source (default 10; 0-10000)\n"
	"  -h, --help         this text\n"
	"\n"
	"Exit status 0 when the report was written, 1 when the database could not\n"
	"be read (no connection, no such schema) or the page not written, 2 for a\n"
	"usage or configuration error.\n";

#define MAX_ONLY 256

struct cli {
	const char *config;
	int verbose;
	int quiet;
	/* sync only */
	const char *only[MAX_ONLY + 1];
	int nonly;
	int worker;
	const char *schedule;
	int lease_s;
	int json_logs;
	double progress_interval_s; /* < 0: the default */
	const char *metrics_file;
	/* report only */
	const char *format;
	const char *html;
	int top;
};

enum {
	OPT_WORKER = 256,
	OPT_SCHEDULE,
	OPT_LEASE,
	OPT_LOG_FORMAT,
	OPT_PROGRESS_INTERVAL,
	OPT_METRICS_FILE,
	OPT_FORMAT,
	OPT_HTML,
	OPT_TOP,
};

static int parse_cli(int argc, char **argv, const char *usage, struct cli *cli)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"source", required_argument, NULL, 's'},
		{"worker", no_argument, NULL, OPT_WORKER},
		{"schedule", required_argument, NULL, OPT_SCHEDULE},
		{"lease", required_argument, NULL, OPT_LEASE},
		{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
		{"progress-interval", required_argument, NULL, OPT_PROGRESS_INTERVAL},
		{"metrics-file", required_argument, NULL, OPT_METRICS_FILE},
		{"format", required_argument, NULL, OPT_FORMAT},
		{"html", required_argument, NULL, OPT_HTML},
		{"top", required_argument, NULL, OPT_TOP},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	bool sync_cmd = usage == usage_sync;
	bool report_cmd = usage == usage_report;
	cli->lease_s = 60;
	cli->progress_interval_s = -1;
	cli->top = 10;
	while ((c = getopt_long(argc, argv, sync_cmd || report_cmd ? "c:s:vqh" : "c:vqh", opts,
				NULL)) != -1) {
		bool report_opt = c >= OPT_FORMAT && c <= OPT_TOP;
		if (report_opt && !report_cmd) {
			fprintf(stderr, "invsync: that option is for 'invsync report' only\n%s", usage);
			return -1;
		}
		if (!sync_cmd && !report_opt &&
		    ((c == 's' && !report_cmd) || (c >= OPT_WORKER && c < OPT_FORMAT))) {
			fprintf(stderr, "invsync: that option is for 'invsync sync' only\n%s", usage);
			return -1;
		}
		switch (c) {
		case 'c':
			cli->config = optarg;
			break;
		case 's':
			if (cli->nonly == MAX_ONLY) {
				fprintf(stderr, "invsync: at most %d --source options\n", MAX_ONLY);
				return -1;
			}
			cli->only[cli->nonly++] = optarg;
			break;
		case OPT_WORKER:
			cli->worker = 1;
			break;
		case OPT_SCHEDULE:
			if (!*optarg || strlen(optarg) > 128) {
				fprintf(stderr, "invsync: --schedule wants 1-128 characters\n");
				return -1;
			}
			cli->schedule = optarg;
			break;
		case OPT_LEASE: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 3 || v > 86400) {
				fprintf(stderr, "invsync: --lease wants 3 to 86400 seconds, not '%s'\n",
					optarg);
				return -1;
			}
			cli->lease_s = (int)v;
			break;
		}
		case OPT_LOG_FORMAT:
			if (strcmp(optarg, "text") != 0 && strcmp(optarg, "json") != 0) {
				fprintf(stderr, "invsync: --log-format is text or json, not '%s'\n", optarg);
				return -1;
			}
			cli->json_logs = strcmp(optarg, "json") == 0;
			break;
		case OPT_PROGRESS_INTERVAL: {
			char *end;
			double v = strtod(optarg, &end);
			if (*end || end == optarg || !(v >= 0 && v <= 3600)) {
				fprintf(stderr, "invsync: --progress-interval wants 0 to 3600 seconds,"
						" not '%s'\n", optarg);
				return -1;
			}
			cli->progress_interval_s = v;
			break;
		}
		case OPT_METRICS_FILE:
			if (!*optarg) {
				fprintf(stderr, "invsync: --metrics-file wants a path\n");
				return -1;
			}
			cli->metrics_file = optarg;
			break;
		case OPT_FORMAT:
			cli->format = optarg;
			break;
		case OPT_HTML:
			if (!*optarg) {
				fprintf(stderr, "invsync: --html wants a file name\n");
				return -1;
			}
			cli->html = optarg;
			break;
		case OPT_TOP: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 0 || v > 10000) {
				fprintf(stderr, "invsync: --top wants 0 to 10000 rows, not '%s'\n", optarg);
				return -1;
			}
			cli->top = (int)v;
			break;
		}
		case 'v':
			cli->verbose = 1;
			break;
		case 'q':
			cli->quiet = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return 1;
		default:
			fputs(usage, stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "invsync: unexpected argument '%s'\n%s", argv[optind], usage);
		return -1;
	}
	if (!cli->config) {
		fprintf(stderr, "invsync: -c FILE is required\n%s", usage);
		return -1;
	}
	return 0;
}

static int load_config(const char *path, struct config *cfg)
{
	struct buf err = BUF_INIT;
	if (config_load(cfg, path, &err) < 0) {
		fprintf(stderr, "invsync: %s\n", buf_str(&err));
		buf_free(&err);
		return -1;
	}
	buf_free(&err);
	if (cfg->warnings.len) {
		/* one finding per line */
		const char *p = cfg->warnings.data;
		while (*p) {
			const char *nl = strchr(p, '\n');
			size_t n = nl ? (size_t)(nl - p) : strlen(p);
			if (n)
				log_warn(NULL, "%.*s", (int)n, p);
			p += n + (nl ? 1 : 0);
		}
	}
	return 0;
}

static int cmd_sync(int argc, char **argv)
{
	struct cli cli = {0};
	int rc = parse_cli(argc, argv, usage_sync, &cli);
	if (rc)
		return rc > 0 ? 0 : EXIT_USAGE;
	if (cli.verbose)
		log_set_level(LOG_LEVEL_DEBUG);
	if (cli.quiet)
		log_set_level(LOG_LEVEL_ERROR);
	if (cli.json_logs)
		log_set_format(LOG_FORMAT_JSON);
	struct config cfg;
	if (load_config(cli.config, &cfg) < 0)
		return EXIT_USAGE;
	if (cfg.nsources == 0) {
		fprintf(stderr, "invsync: %s: no sources configured (add a [mosyle NAME] or [syncro NAME]"
			" section)\n",
			cli.config);
		config_free(&cfg);
		return EXIT_USAGE;
	}
	for (int i = 0; i < cli.nonly; i++) {
		size_t k = 0;
		while (k < cfg.nsources && strcmp(cfg.sources[k].name, cli.only[i]) != 0)
			k++;
		if (k == cfg.nsources) {
			fprintf(stderr, "invsync: --source %s: no such source in %s\n", cli.only[i],
				cli.config);
			config_free(&cfg);
			return EXIT_USAGE;
		}
	}
	if ((cli.schedule || cli.lease_s != 60) && !cli.worker) {
		fprintf(stderr, "invsync: --schedule and --lease go with --worker\n");
		config_free(&cfg);
		return EXIT_USAGE;
	}
	char today[16];
	time_t now = time(NULL);
	strftime(today, sizeof(today), "%Y-%m-%d", gmtime(&now));
	/* progress: live lines on a terminal, log lines elsewhere */
	struct progress *progress = NULL;
	bool tty = progress_is_terminal(stderr);
	double every = cli.progress_interval_s >= 0 ? cli.progress_interval_s : tty ? 1 : 10;
	if (!cli.quiet && every > 0) {
		/* elsewhere its lines are log lines (timestamped, JSON with
		 * --log-format json) */
		progress = progress_new(tty ? stderr : NULL, tty, every);
		if (tty)
			progress_attach_log(progress);
	}
	struct run_options opt = {
		.report = cli.quiet ? NULL : stdout,
		.only = cli.nonly ? cli.only : NULL,
		.worker = cli.worker,
		.schedule = cli.schedule ? cli.schedule : today,
		.lease_s = cli.lease_s,
		.progress = progress,
		.metrics_file = cli.metrics_file,
		.metrics_interval_s = 15,
	};
	struct buf err = BUF_INIT;
	rc = run_sync(&cfg, &opt, &err);
	if (progress) {
		log_set_hooks(NULL, NULL, NULL);
		progress_free(progress);
	}
	if (rc < 0) {
		log_error(NULL, "%s", buf_str(&err));
		rc = EXIT_SOME_FAILED;
	}
	buf_free(&err);
	config_free(&cfg);
	return rc;
}

static int cmd_check(int argc, char **argv)
{
	struct cli cli = {0};
	int rc = parse_cli(argc, argv, usage_check, &cli);
	if (rc)
		return rc > 0 ? 0 : EXIT_USAGE;
	struct config cfg;
	if (load_config(cli.config, &cfg) < 0)
		return EXIT_USAGE;
	rc = check_run(&cfg, stdout);
	config_free(&cfg);
	return rc;
}

static int cmd_migrate(int argc, char **argv)
{
	struct cli cli = {0};
	int rc = parse_cli(argc, argv, usage_migrate, &cli);
	if (rc)
		return rc > 0 ? 0 : EXIT_USAGE;
	struct config cfg;
	if (load_config(cli.config, &cfg) < 0)
		return EXIT_USAGE;
	PGconn *conn;
	struct buf err = BUF_INIT;
	rc = 0;
	if (pgsink_connect(&conn, cfg.conninfo, &err) < 0) {
		log_error(NULL, "%s", buf_str(&err));
		rc = EXIT_SOME_FAILED;
	} else if (schema_migrate(conn, cfg.schema, &err) < 0) {
		log_error(NULL, "%s", buf_str(&err));
		rc = EXIT_SOME_FAILED;
	} else {
		log_info(NULL, "schema %s is up to date", cfg.schema);
	}
	PQfinish(conn);
	buf_free(&err);
	config_free(&cfg);
	return rc;
}

static int cmd_report(int argc, char **argv)
{
	struct cli cli = {0};
	int rc = parse_cli(argc, argv, usage_report, &cli);
	if (rc)
		return rc > 0 ? 0 : EXIT_USAGE;
	struct report_options opt = {
		.format = REPORT_FORMAT_TEXT,
		.out = stdout,
		.html_path = cli.html,
		.sources = cli.nonly ? cli.only : NULL,
		.top = cli.top,
	};
	if (cli.format && !report_format_parse(cli.format, &opt.format)) {
		fprintf(stderr, "invsync: --format is text, json or csv, not '%s'\n", cli.format);
		return EXIT_USAGE;
	}
	struct config cfg;
	if (load_config(cli.config, &cfg) < 0)
		return EXIT_USAGE;
	struct buf err = BUF_INIT;
	rc = report_run(&cfg, &opt, &err);
	if (rc < 0)
		fprintf(stderr, "invsync report: %s\n", buf_str(&err));
	rc = rc == REPORT_EUSAGE ? EXIT_USAGE : rc < 0 ? EXIT_SOME_FAILED : 0;
	buf_free(&err);
	config_free(&cfg);
	return rc;
}

int main(int argc, char **argv)
{
	int rc;
	if (argc < 2) {
		fputs(usage_main, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("invsync %s (libcurl %s, libpq %d)\n", INVSYNC_VERSION,
		       curl_version_info(CURLVERSION_NOW)->version, PQlibVersion());
		return 0;
	}
	if (strcmp(cmd, "sync") == 0)
		rc = cmd_sync(argc - 1, argv + 1);
	else if (strcmp(cmd, "check") == 0)
		rc = cmd_check(argc - 1, argv + 1);
	else if (strcmp(cmd, "migrate") == 0)
		rc = cmd_migrate(argc - 1, argv + 1);
	else if (strcmp(cmd, "report") == 0)
		rc = cmd_report(argc - 1, argv + 1);
	else {
		fprintf(stderr, "invsync: unknown command '%s'\n%s", cmd, usage_main);
		rc = EXIT_USAGE;
	}
	log_clear_secrets();
	curl_global_cleanup();
	exit(rc);
}
