/* test_main.c - the runner behind test.h. */
#include "test.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

struct test_case {
	const char *name;
	const char *file;
	test_fn fn;
};

static struct test_case tests[512];
static size_t ntests;

void test_register(const char *name, test_fn fn, const char *file)
{
	if (ntests == sizeof(tests) / sizeof(tests[0])) {
		fprintf(stderr, "too many tests\n");
		abort();
	}
	tests[ntests].name = name;
	tests[ntests].file = file;
	tests[ntests].fn = fn;
	ntests++;
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stdout, "# %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fprintf(stdout, "\n");
	fflush(stdout);
	_exit(1);
}

void test_set_timeout(unsigned seconds)
{
	alarm(seconds);
}

static int selected(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (strstr(name, argv[i]))
			return 1;
	return 0;
}

static int by_file_then_name(const void *a, const void *b)
{
	const struct test_case *x = a, *y = b;
	int c = strcmp(x->file, y->file);
	return c ? c : strcmp(x->name, y->name);
}

int main(int argc, char **argv)
{
	size_t passed = 0, failed = 0, n = 0;
	const char *env = getenv("TEST_TIMEOUT");
	unsigned timeout = env ? (unsigned)atoi(env) : 120;

	qsort(tests, ntests, sizeof(tests[0]), by_file_then_name);
	for (size_t i = 0; i < ntests; i++)
		if (selected(tests[i].name, argc, argv))
			n++;
	printf("1..%zu\n", n);
	fflush(stdout);
	n = 0;
	for (size_t i = 0; i < ntests; i++) {
		if (!selected(tests[i].name, argc, argv))
			continue;
		n++;
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0) {
			signal(SIGPIPE, SIG_IGN);
			alarm(timeout);
			tests[i].fn();
			fflush(NULL);
			_exit(0);
		}
		int status = 0;
		while (waitpid(pid, &status, 0) < 0)
			;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			printf("ok %zu - %s\n", n, tests[i].name);
			passed++;
		} else {
			if (WIFSIGNALED(status))
				printf("# killed by signal %d%s\n", WTERMSIG(status),
				       WTERMSIG(status) == SIGALRM ? " (time limit)" : "");
			printf("not ok %zu - %s\n", n, tests[i].name);
			failed++;
		}
		fflush(stdout);
	}
	printf("%zu passed, %zu failed\n", passed, failed);
	return failed ? 1 : 0;
}
