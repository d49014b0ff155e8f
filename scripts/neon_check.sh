#!/usr/bin/env bash
# The built-in engine's NEON kernels (what every Apple Silicon Mac and ARM
# Linux box runs) checked on an x86-64 Linux machine: test_kernels (each
# NEON kernel against the scalar reference, per type, edge values included)
# and test_model (the forward pass against the float reference, cache and
# thread checks) are built for AArch64 with Debian's cross compiler and run
# under qemu-aarch64 (user-mode emulation).
#
#   scripts/neon_check.sh [NATIVE_BUILD_DIR]    (default: build)
#
# Needs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user
# (scripts/setup.sh --test installs them). The arm64 builds of cmocka,
# jansson and PCRE2 that the tests link are fetched with apt-get into
# build-neon/ and unpacked there: nothing is installed for arm64 and the
# system's dpkg architectures are left as they are. NATIVE_BUILD_DIR gives
# the generated, architecture-independent sources (the synth corpus).
set -euo pipefail
cd "$(dirname "$0")/.."

native=${1:-build}
out=build-neon
corpus=$native/src/infer/synth_corpus.c
[ -f "$corpus" ] || { echo "neon_check.sh: $corpus missing; build first (scripts/setup.sh)" >&2; exit 2; }
for t in aarch64-linux-gnu-gcc qemu-aarch64; do
  command -v $t >/dev/null || { echo "neon_check.sh: $t missing; apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" >&2; exit 2; }
done

sysroot=$out/sysroot
if [ ! -f "$sysroot/.done" ]; then
  apt_dir=$PWD/$out/apt
  rm -rf "$apt_dir" "$sysroot"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs" "$sysroot"
  apt_opts=(-qq -o APT::Architecture=arm64 -o APT::Architectures::=arm64
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
            -o Dir::State::status=/dev/null -o APT::Sandbox::User=root)
  echo "neon_check.sh: fetching arm64 cmocka, jansson and PCRE2 into $out/" >&2
  apt-get "${apt_opts[@]}" update
  (cd "$apt_dir/debs" &&
   apt-get "${apt_opts[@]}" download libcmocka0 libcmocka-dev libjansson4 libjansson-dev \
     libpcre2-8-0 libpcre2-dev)
  for d in "$apt_dir"/debs/*.deb; do dpkg -x "$d" "$sysroot"; done
  touch "$sysroot/.done"
fi

lib=$sysroot/usr/lib/aarch64-linux-gnu
cflags=(-std=c11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation
        -D_DEFAULT_SOURCE -DJB_VERSION='"neon-check"' -DJB_TEST_DATA="\"$PWD/tests/data\""
        -DJB_TOOL='"none"' -DJB_BUILD_DIR="\"$PWD/$out\""
        -Iinclude -Isrc -Itests/support -I"$sysroot/usr/include")
common=(src/common/*.c tests/support/testutil.c)

export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu LD_LIBRARY_PATH=$PWD/$lib

# Twice: for plain ARMv8-A (widening multiplies), and with the dot-product
# extension every Apple M-series chip has (vdotq_s32; qemu's "max" CPU
# runs it).
for variant in armv8-a armv8.2-a+dotprod; do
  vout=$out/$variant
  mkdir -p "$vout"
  vflags=("${cflags[@]}" -march=$variant)
  aarch64-linux-gnu-gcc "${vflags[@]}" -o $vout/test_kernels tests/infer/test_kernels.c \
    src/infer/kernels.c src/infer/kernels_neon.c src/infer/kernels_avx2.c src/infer/quant.c \
    "${common[@]}" -L"$lib" -lcmocka -lm -lpthread
  aarch64-linux-gnu-gcc "${vflags[@]}" -o $vout/test_model tests/infer/test_model.c \
    tests/support/tinymodel.c src/infer/*.c "$corpus" "${common[@]}" \
    -L"$lib" -lcmocka -ljansson -lpcre2-8 -lm -lpthread
  for t in test_kernels test_model; do
    log=$vout/$t.log
    if ! QEMU_CPU=max qemu-aarch64 $vout/$t >"$log" 2>&1; then
      cat "$log" >&2
      echo "neon_check.sh: $t ($variant) failed under qemu-aarch64 (log: $log)" >&2
      exit 1
    fi
    # The point is the NEON path: a run that fell back to scalar proves nothing.
    if [ $t = test_kernels ] && ! grep -q '^\[       OK \] test_neon' "$log"; then
      cat "$log" >&2
      echo "neon_check.sh: test_neon ($variant) did not run and pass (log: $log)" >&2
      exit 1
    fi
    if [ $t = test_model ] && ! grep -q '(neon kernels)' "$log"; then
      cat "$log" >&2
      echo "neon_check.sh: test_model ($variant) did not use the NEON kernels (log: $log)" >&2
      exit 1
    fi
    echo "neon_check.sh: $t passed on AArch64 (qemu, $variant), NEON kernels"
  done
done
