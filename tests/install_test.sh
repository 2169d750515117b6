#!/usr/bin/env bash
# Installs a built weir into a scratch prefix and checks that an outside
# project can use it: what was laid down (and what was not), then
# tests/install/consumer built through find_package(weir) and run, then the
# same main.cpp built with `pkg-config --cflags --libs weir` and run. Both ways
# also link every object of the libraries (--whole-archive), so that a
# dependency missing from the package fails here, not in some later user.
#   install_test.sh CMAKE BUILD_DIR C_COMPILER CXX_COMPILER
# The scratch dir is BUILD_DIR/install_test.XXXXXX, one per run (ctest runs of
# the same build may overlap); removed on success, kept for a look on failure.
set -euo pipefail

cmake_bin=$1
build_dir=$(cd "$2" && pwd)
cc=$3
cxx=$4
source_dir=$(cd "$(dirname "$0")/.." && pwd)
consumer_src="$source_dir/tests/install/consumer"

work=$(mktemp -d "$build_dir/install_test.XXXXXX")
prefix="$work/prefix"

fail() {
  echo "install_test: FAILED: $* (files kept in $work)" >&2
  exit 1
}

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(ccache)
  # Paths under the per-run dir reach ccache relative to it: hits across runs.
  export CCACHE_BASEDIR="$work"
fi

# Warnings are errors here exactly when they are in the weir build under test.
werror_flags=()
if grep -q '^WEIR_WERROR:BOOL=ON$' "$build_dir/CMakeCache.txt"; then werror_flags=(-Werror); fi

echo "== cmake --install $build_dir --prefix $prefix"
"$cmake_bin" --install "$build_dir" --prefix "$prefix" >"$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install"; }

echo "== checking the installed tree"
[[ -x "$prefix/bin/weir" ]] || fail "bin/weir missing"
extra_bins=$(find "$prefix/bin" -mindepth 1 ! -name weir)
[[ -z "$extra_bins" ]] || fail "unexpected programs installed: $extra_bins"
"$prefix/bin/weir" --help >/dev/null || fail "installed weir --help"
for header in runtime/checkpoint_log.hpp runtime/status.hpp transport/frame.hpp \
  transport/link.hpp queue/queue.hpp queue/protocol.hpp schema/wire.capnp.h \
  schema/envelope.capnp.h schema/log.capnp.h schema/wire.capnp; do
  [[ -f "$prefix/include/weir/$header" ]] || fail "include/weir/$header missing"
done
# Helpers weir's libraries share among themselves are not API.
for header in runtime/crc32c.hpp runtime/id_map.hpp runtime/latency_trace.hpp runtime/progress.hpp; do
  [[ ! -e "$prefix/include/weir/$header" ]] || fail "internal include/weir/$header was installed"
done
for lib in schema runtime transport queue node pipeline config; do
  [[ -n "$(find "$prefix" -name "libweir_$lib.*")" ]] || fail "libweir_$lib missing"
done
unwanted=$(find "$prefix" \( -name '*test*' -o -name '*bench*' -o -name 'checkpoint_demo' \
  -o -name 'wordcount' -o -name 'poison' -o -name 'hold_deliveries' \) -print)
[[ -z "$unwanted" ]] || fail "tests, benchmarks or examples installed: $unwanted"
config=$(find "$prefix" -name weirConfig.cmake)
[[ -n "$config" ]] || fail "weirConfig.cmake missing"
config_dir=$(dirname "$config")
for f in weirConfigVersion.cmake weirTargets.cmake FindCAF.cmake; do
  [[ -f "$config_dir/$f" ]] || fail "$f missing next to weirConfig.cmake"
done
pc=$(find "$prefix" -path '*/pkgconfig/weir.pc')
[[ -n "$pc" ]] || fail "pkgconfig/weir.pc missing"
# Nothing installed may point back into the source or build tree.
if grep -rlF -e "$source_dir/" -e "$build_dir" "$config_dir" "$pc"; then
  fail "installed package files name the source or build tree (above)"
fi

echo "== find_package(weir): configure, build and run tests/install/consumer"
cmake_args=(-S "$consumer_src" -B "$work/consumer-build" -DCMAKE_PREFIX_PATH="$prefix"
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx")
if ((${#werror_flags[@]})); then cmake_args+=(-DCONSUMER_WERROR=ON); fi
if ((${#launcher[@]})); then cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
"$cmake_bin" "${cmake_args[@]}" >"$work/consumer-configure.log" 2>&1 ||
  { cat "$work/consumer-configure.log"; fail "configuring the consumer"; }
"$cmake_bin" --build "$work/consumer-build" -j2 ||
  fail "building the consumer against the CMake package"
"$work/consumer-build/weir_consumer" || fail "the consumer built with find_package"

echo "== pkg-config: build and run the same main.cpp"
export PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
version=$(pkg-config --modversion weir) || fail "pkg-config does not find weir"
[[ "$version" == 0.1.0 ]] || fail "pkg-config says weir $version, expected 0.1.0"
cflags=$(pkg-config --cflags weir) || fail "pkg-config --cflags weir"
libs=$(pkg-config --libs weir) || fail "pkg-config --libs weir"
libdir=$(pkg-config --variable=libdir weir) || fail "pkg-config --variable=libdir weir"
echo "pkg-config --cflags --libs weir: $cflags $libs"
read -r -a cflags_array <<<"$cflags"
read -r -a libs_array <<<"$libs"
(cd "$work" && "${launcher[@]}" "$cxx" -Wall -Wextra "${werror_flags[@]}" "${cflags_array[@]}" \
  -c "$consumer_src/main.cpp" -o main.o) || fail "compiling with pkg-config --cflags"
"$cxx" "$work/main.o" -o "$work/weir_consumer_pc" "${libs_array[@]}" ||
  fail "linking with pkg-config --libs"
# Every object of the libraries must link with what --libs lists, not only main.cpp's.
"$cxx" -Wl,--whole-archive "$libdir"/libweir_{config,pipeline,node,queue,transport,runtime,schema}.a \
  -Wl,--no-whole-archive "$work/main.o" -o "$work/weir_consumer_pc_whole" "${libs_array[@]}" ||
  fail "linking all of the weir libraries with pkg-config --libs"
"$work/weir_consumer_pc" || fail "the consumer built with pkg-config"

rm -rf "$work"
echo "install_test: ok"
