# The two entry points of the README. Each does its own set-up: installs
# missing Debian packages, configures and builds, then runs.
BUILD_DIR ?= build
SAN_BUILD_DIR ?= build-asan-clang
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS ?= 2
# Release is what a user or a distribution builds first, so the suite runs on it.
BUILD_TYPE ?= Release
# Warnings are errors in every build made here, and so in CI; a plain cmake
# build leaves them warnings (WEIR_WERROR).
WARNINGS_AS_ERRORS := -DWEIR_WERROR=ON
CMAKE_LAUNCHER := $(shell command -v ccache >/dev/null 2>&1 && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

.PHONY: setup build build-sanitizers demo test test-sanitizers fuzz bench flaky clean

setup:
	@scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(WARNINGS_AS_ERRORS) $(CMAKE_LAUNCHER)
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	$(BUILD_DIR)/cli/weir run examples/topologies/wordcount.toml

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# With clang, so that CI builds weir with both compilers (warnings as errors in
# each) at no extra cost: clang compiled this build in three quarters of GCC's
# CPU time, and its sanitized suite ran in about half GCC's time.
build-sanitizers: setup
	CC=clang CXX=clang++ cmake -S . -B $(SAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DWEIR_SANITIZE=ON $(WARNINGS_AS_ERRORS) $(CMAKE_LAUNCHER)
	cmake --build $(SAN_BUILD_DIR) -j $(JOBS)

test-sanitizers: build-sanitizers
	cd $(SAN_BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# Runs both suites FLAKY_ROUNDS times, two at once, and lists every test that
# failed or came within half of its time limit (scripts/find_flaky.sh).
FLAKY_ROUNDS ?= 3
flaky:
	scripts/find_flaky.sh $(FLAKY_ROUNDS)

# libFuzzer on the wire-frame decoder for FUZZ_SECONDS, starting from valid
# frames; the corpus it grows is kept in $(FUZZ_BUILD_DIR)/corpus for next time.
fuzz: setup
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DWEIR_FUZZ=ON -DWEIR_BUILD_TESTS=OFF $(WARNINGS_AS_ERRORS) $(CMAKE_LAUNCHER)
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target frame_fuzz frame_fuzz_seeds
	mkdir -p $(FUZZ_BUILD_DIR)/corpus/frame $(FUZZ_BUILD_DIR)/seeds/frame
	$(FUZZ_BUILD_DIR)/tests/fuzz/frame_fuzz_seeds $(FUZZ_BUILD_DIR)/seeds/frame
	$(FUZZ_BUILD_DIR)/tests/fuzz/frame_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ_BUILD_DIR)/ $(FUZZ_BUILD_DIR)/corpus/frame $(FUZZ_BUILD_DIR)/seeds/frame

bench: build
	$(BUILD_DIR)/bench/log_bench

clean:
	rm -rf $(BUILD_DIR) $(SAN_BUILD_DIR) $(FUZZ_BUILD_DIR)
