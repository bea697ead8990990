# Thin wrapper around CMake. The two commands of the quick start:
#   make demo   install what is missing, build, publish events to a local
#               sidecar and show what arrived
#   make test   install what is missing, build, run the whole test suite
BUILD ?= build
SAN_BUILD ?= build-asan
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
FUZZ_TARGETS = http_response event_parse publish_line sidecar

.PHONY: fuzz-build fuzz-smoke all deps test-deps configure build test test-asan test-tsan test-valgrind demo bench install clean format

all: build

deps:
	@scripts/install-deps

test-deps:
	@scripts/install-deps --test

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: test-deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: test-deps
	cmake -S . -B $(SAN_BUILD) -DES_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && ctest --output-on-failure -j $(JOBS)

# ThreadSanitizer on the tests that publish from several threads.
test-tsan: test-deps
	cmake -S . -B $(TSAN_BUILD) -DES_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug -DES_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS="halt_on_error=1" ctest --output-on-failure -R "test_client|test_background|example_threads|example_no_libuv|test_http$$"

# valgrind memcheck of every test program: any error or leak fails it.
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect,possible \
	--show-leak-kinds=definite,indirect,possible
test-valgrind: test-deps build
	@set -e; for t in $(BUILD)/tests/test_*; do \
	  [ -x "$$t" ] || continue; echo "== valgrind $$t"; \
	  $(VALGRIND) "$$t" || { rc=$$?; [ $$rc -eq 77 ] || exit $$rc; }; \
	done

# libFuzzer targets (clang, ASan+UBSan); fuzz-smoke runs each for
# FUZZ_SECONDS on a scratch copy of its committed corpus.
fuzz-build:
	@scripts/install-deps --fuzz
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DES_BUILD_FUZZ=ON -DES_SANITIZE=address,undefined \
	  -DES_BUILD_TESTS=OFF -DES_BUILD_EXAMPLES=OFF -DES_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

fuzz-smoke: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  work=$$(mktemp -d /tmp/es-fuzz.XXXXXX); \
	  echo "== fuzz_$$t ($(FUZZ_SECONDS) s)"; \
	  if ! $(FUZZ_BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	      -print_final_stats=1 -artifact_prefix="$$work/" "$$work" \
	      fuzz/corpus/$$t > "$$work/log" 2>&1; then \
	    tail -n 60 "$$work/log"; ls "$$work"; exit 1; \
	  fi; \
	  grep -E "stat::number_of_executed_units|stat::new_units_added" "$$work/log"; \
	  rm -rf "$$work"; \
	done

demo: build
	@scripts/demo $(BUILD)

# The benchmark's peers first (nginx, wrk, libcurl's headers for curl_bench),
# then configure again so that a build directory made before they were
# installed finds libcurl (pkg-config's answer is cached otherwise).
bench: deps
	@scripts/install-deps --bench
	cmake -S . -B $(BUILD) -U __pkg_config_checked_CURL $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	@scripts/bench $(BUILD)

install: build
	cmake --install $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
