# The two entry points of the README. Each does its own set-up: installs
# missing Debian packages, configures and builds, then runs.
BUILD_DIR ?= build
SAN_BUILD_DIR ?= build-asan
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS ?= 2
CMAKE_LAUNCHER := $(shell command -v ccache >/dev/null 2>&1 && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

.PHONY: setup build demo test test-sanitizers fuzz bench clean

setup:
	@scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_LAUNCHER)
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	$(BUILD_DIR)/cli/weir run examples/topologies/wordcount.toml

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

test-sanitizers: setup
	cmake -S . -B $(SAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DWEIR_SANITIZE=ON $(CMAKE_LAUNCHER)
	cmake --build $(SAN_BUILD_DIR) -j $(JOBS)
	cd $(SAN_BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

# libFuzzer on the wire-frame decoder for FUZZ_SECONDS, starting from valid
# frames; the corpus it grows is kept in $(FUZZ_BUILD_DIR)/corpus for next time.
fuzz: setup
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DWEIR_FUZZ=ON -DWEIR_BUILD_TESTS=OFF $(CMAKE_LAUNCHER)
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target frame_fuzz frame_fuzz_seeds
	mkdir -p $(FUZZ_BUILD_DIR)/corpus/frame $(FUZZ_BUILD_DIR)/seeds/frame
	$(FUZZ_BUILD_DIR)/tests/fuzz/frame_fuzz_seeds $(FUZZ_BUILD_DIR)/seeds/frame
	$(FUZZ_BUILD_DIR)/tests/fuzz/frame_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ_BUILD_DIR)/ $(FUZZ_BUILD_DIR)/corpus/frame $(FUZZ_BUILD_DIR)/seeds/frame

bench: build
	$(BUILD_DIR)/bench/log_bench

clean:
	rm -rf $(BUILD_DIR) $(SAN_BUILD_DIR) $(FUZZ_BUILD_DIR)
