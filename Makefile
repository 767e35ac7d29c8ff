# invsync - build, test, bench, demo.
#
#   make                 build build/invsync and build/invsync-sim
#   make test            unit + end-to-end tests (throwaway PostgreSQL, simulator,
#                        headless Chromium for the HTML report); installs missing
#                        Debian packages first (make check: no install)
#   make demo            throwaway PostgreSQL + simulated district + full sync +
#                        invsync report (text, and .demo/report.html)
#   make bench           benchmark; figures printed and written to bench/results.txt
#   make bench-views     the reporting views over 1,000,000 devices (EXPLAIN ANALYZE)
#   make SANITIZE=address,undefined test
#   make valgrind        end-to-end sync under valgrind --leak-check=full
#   make fuzz            build every libFuzzer target (clang) and run each for
#                        FUZZ_SECONDS (default 30)
#   make soak            repeated syncs against a faulty simulator for SOAK_SECONDS
#                        (default 180): exact inventory after every run, flat RSS
#   make lint            cppcheck

CC      ?= cc
PKGS    := libuv libcurl libpq yajl inih libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wno-format-nonliteral -Wvla -Wundef
OPT     ?= -O2 -g
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -MMD -MP -Iinclude $(PKG_CFLAGS) $(WARN) $(OPT)

ifdef SANITIZE
BUILD   ?= build-san
BASE_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDSAN   := -fsanitize=$(SANITIZE)
else
BUILD   ?= build
endif

ALL_CFLAGS := $(BASE_CFLAGS) $(CFLAGS)
LDLIBS  := $(PKG_LIBS) -lm -lpthread

LIB_SRCS := $(filter-out src/main.c src/sim.c src/simdata.c src/simdata_syncro.c,$(wildcard src/*.c))
LIB_OBJS := $(LIB_SRCS:src/%.c=$(BUILD)/%.o) $(BUILD)/sql_embed.o
SIM_OBJS := $(BUILD)/sim.o $(BUILD)/simdata.o $(BUILD)/simdata_syncro.o $(BUILD)/buf.o $(BUILD)/util.o
TEST_SRCS := $(wildcard tests/*.c)
TEST_OBJS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%.o)
SQL_FILES := $(sort $(wildcard sql/*.sql))

.PHONY: all deps test check demo bench bench-views valgrind fuzz soak lint clean
all: $(BUILD)/invsync $(BUILD)/invsync-sim

$(BUILD)/invsync: $(BUILD)/main.o $(LIB_OBJS)
	$(CC) $(LDSAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/invsync-sim: $(SIM_OBJS)
	$(CC) $(LDSAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/run-tests: $(TEST_OBJS) $(LIB_OBJS) $(BUILD)/simdata.o $(BUILD)/simdata_syncro.o
	$(CC) $(LDSAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c | $(BUILD)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/%.c | $(BUILD)
	$(CC) $(ALL_CFLAGS) -Itests -c -o $@ $<

# The SQL migrations are compiled into the binary (schema.c applies them).
$(BUILD)/sql_embed.c: $(SQL_FILES) tools/embed-sql.sh | $(BUILD)
	sh tools/embed-sql.sh $(SQL_FILES) > $@

$(BUILD)/sql_embed.o: $(BUILD)/sql_embed.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD):
	mkdir -p $(BUILD)/tests

# The user-facing targets install missing packages first, then build in a
# sub-make (pkg-config must see the libraries when the Makefile is read).
deps:
	sh tools/deps.sh

# the HTML report's test renders the page in headless Chromium: a package
# for the tests only
test:
	sh tools/deps.sh chromium fonts-dejavu-core
	$(MAKE) check

check: all $(BUILD)/tests/run-tests
	BUILD=$(BUILD) sh tests/run.sh

demo: deps
	$(MAKE) all
	BUILD=$(BUILD) sh tools/demo.sh

bench: deps
	$(MAKE) all
	BUILD=$(BUILD) sh bench/bench.sh

bench-views: deps
	$(MAKE) all
	BUILD=$(BUILD) sh bench/views.sh

valgrind: deps
	$(MAKE) all
	BUILD=$(BUILD) sh tests/valgrind.sh

FUZZ_SECONDS ?= 30

fuzz:
	sh tools/deps.sh clang libclang-rt-14-dev
	$(MAKE) -f tests/fuzz/Makefile.fuzz all
	$(MAKE) -f tests/fuzz/Makefile.fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS)

soak: deps
	$(MAKE) all
	BUILD=$(BUILD) sh tests/soak.sh

lint:
	cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 \
	  --suppress=missingIncludeSystem -Iinclude src tests

clean:
	rm -rf build build-san build-fuzz

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)
