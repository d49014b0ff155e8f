#!/usr/bin/env bash
# Installs what joulebench needs (apt-get on Debian/Ubuntu, Homebrew on
# macOS), then builds it into build/ (warnings are errors).
#
#   scripts/setup.sh          install what is missing, build
#   scripts/setup.sh --test   also build with ASan+UBSan, run every test in
#                             both builds, run the fuzz targets briefly, and
#                             on x86-64 Linux check the NEON kernels under
#                             qemu (scripts/neon_check.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for a in "$@"; do
  case "$a" in
    --test) want_test=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

jobs=$( (command -v nproc >/dev/null && nproc) || sysctl -n hw.ncpu 2>/dev/null || echo 2)

install_deps() {
  if [ "$(uname -s)" = Darwin ]; then
    command -v brew >/dev/null || { echo "setup.sh: Homebrew is needed: https://brew.sh" >&2; exit 1; }
    local pkgs=(cmake pkg-config curl jansson cairo pcre2 cmocka)
    local missing=()
    for p in "${pkgs[@]}"; do brew list --versions "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] || brew install "${missing[@]}"
    return
  fi
  # fonts-dejavu-core: the charts' text (cairo finds it through fontconfig;
  # without a font, labels come out as empty boxes).
  local pkgs=(build-essential cmake pkg-config libcurl4-openssl-dev libjansson-dev
              libcairo2-dev libpcre2-dev libcmocka-dev fonts-dejavu-core)
  [ $want_test -eq 1 ] && pkgs+=(clang clang-format libclang-rt-dev python3 libcap2-bin)
  # The AArch64 cross compiler and user-mode qemu: the NEON kernels' tests.
  [ $want_test -eq 1 ] && [ "$(uname -m)" = x86_64 ] &&
    pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "setup.sh: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

install_deps
cmake -S . -B build -DJB_WERROR=ON >/dev/null
cmake --build build -j "$jobs"

if [ $want_test -eq 1 ]; then
  # House style: every C file as .clang-format lays it out (Debian's
  # clang-format; Homebrew's may be another version and lay out otherwise).
  if [ "$(uname -s)" = Linux ] && [ -d .git ]; then
    if ! git ls-files -z '*.c' '*.h' | xargs -0 clang-format --dry-run -Werror 2>/tmp/jb-format.$$; then
      head -20 /tmp/jb-format.$$ >&2; rm -f /tmp/jb-format.$$
      echo "setup.sh: files not laid out as .clang-format says; fix with:" \
           "git ls-files '*.c' '*.h' | xargs clang-format -i" >&2
      exit 1
    fi
    rm -f /tmp/jb-format.$$
  else
    echo "setup.sh: layout check not run (needs Linux and a git checkout)" >&2
  fi
  ctest --test-dir build --output-on-failure -j "$jobs"
  cmake -S . -B build-asan -DJB_WERROR=ON -DJB_SANITIZE=ON -DJB_BUILD_BENCH=OFF \
        -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs"
  # Every fuzz target briefly (about a minute in all), so a parser change
  # that crashes on inputs the corpus already holds is caught here.
  if [ "$(uname -s)" = Darwin ]; then
    echo "setup.sh: fuzz targets not run: Apple's clang has no libFuzzer" \
         "(brew install llvm; FUZZ_CC=\$(brew --prefix llvm)/bin/clang scripts/fuzz.sh)" >&2
  else
    JOBS=$jobs scripts/fuzz.sh 5
  fi
  # The NEON kernels run on every Apple Silicon Mac; here they are built for
  # AArch64 and tested under qemu against the scalar reference.
  if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ]; then
    scripts/neon_check.sh build
  else
    echo "setup.sh: NEON check under qemu not run (needs x86-64 Linux; on an ARM machine" \
         "the tests above already ran the NEON kernels)" >&2
  fi
fi
