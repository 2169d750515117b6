# The two entry points of the README. Each does its own set-up: installs
# missing Debian packages, configures and builds, then runs.
BUILD_DIR ?= build
SAN_BUILD_DIR ?= build-asan
JOBS ?= 2
CMAKE_LAUNCHER := $(shell command -v ccache >/dev/null 2>&1 && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

.PHONY: setup build demo test test-sanitizers bench clean

setup:
	@scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_LAUNCHER)
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	$(BUILD_DIR)/examples/checkpoint_demo/checkpoint_demo $(BUILD_DIR)/demo-data

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

test-sanitizers: setup
	cmake -S . -B $(SAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DWEIR_SANITIZE=ON $(CMAKE_LAUNCHER)
	cmake --build $(SAN_BUILD_DIR) -j $(JOBS)
	cd $(SAN_BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

bench: build
	$(BUILD_DIR)/bench/log_bench

clean:
	rm -rf $(BUILD_DIR) $(SAN_BUILD_DIR)
