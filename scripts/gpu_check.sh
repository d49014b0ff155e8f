#!/usr/bin/env bash
# The real-GPU check of issue 7: builds joulebench, runs
# `joulebench measure --json` around a GPU workload of known duration, reads
# NVML independently (a few lines of C compiled here that dlopen
# libnvidia-ml, none of joulebench's code) inside the same window, and requires the two GPU
# energies to agree within 2 %.
#
#   scripts/gpu_check.sh                 GPU 0, 30 s of load
#   GPU_CHECK_INDEX=1 GPU_CHECK_SECONDS=60 scripts/gpu_check.sh
#
# Environment:
#   GPU_CHECK_INDEX        NVML index of the GPU to check (default 0)
#   GPU_CHECK_SECONDS      length of the workload (default 30)
#   GPU_CHECK_TOLERANCE    allowed difference in percent (default 2)
#   GPU_CHECK_NVML_LIB     library for the independent reader
#                          (default $JOULEBENCH_NVML_LIB, else libnvidia-ml.so.1)
#   GPU_CHECK_WORKLOAD     "spin" (default: a PTX kernel launched through the
#                          driver's libcuda, no CUDA toolkit needed) or "idle"
#   GPU_CHECK_BUILD_DIR    build folder (default build-gpucheck)
#   GPU_CHECK_SKIP_BUILD   1: use the joulebench already in the build folder
#
# Prints both figures and the difference; exit 0 when they agree, 1 when
# they do not, 2 when the check cannot run here (no GPU, no energy counter).
set -euo pipefail
cd "$(dirname "$0")/.."

gpu=${GPU_CHECK_INDEX:-0}
secs=${GPU_CHECK_SECONDS:-30}
tol=${GPU_CHECK_TOLERANCE:-2}
nvml_lib=${GPU_CHECK_NVML_LIB:-${JOULEBENCH_NVML_LIB:-libnvidia-ml.so.1}}
workload=${GPU_CHECK_WORKLOAD:-spin}
bdir=${GPU_CHECK_BUILD_DIR:-build-gpucheck}

command -v python3 >/dev/null || { echo "gpu_check: python3 is needed" >&2; exit 2; }

if [ "${GPU_CHECK_SKIP_BUILD:-0}" != 1 ]; then
  jobs=$( (command -v nproc >/dev/null && nproc) || echo 2)
  cmake -S . -B "$bdir" -DJB_WERROR=ON -DJB_BUILD_TESTS=OFF -DJB_BUILD_BENCH=OFF >/dev/null
  cmake --build "$bdir" -j "$jobs" >/dev/null
fi
jb="$bdir/joulebench"
[ -x "$jb" ] || { echo "gpu_check: no joulebench binary under $bdir" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The independent reader: one NVML energy reading (mJ) and its monotonic
# timestamp, straight from libnvidia-ml through dlopen. It is C, not
# python, so that it starts in about a millisecond: the readings sit right
# inside the edges of joulebench's window.
cat >"$tmp/nvml_read.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) {
        fprintf(stderr, "nvml_read: %s\n", dlerror());
        return 1;
    }
    int (*init)(void) = (int (*)(void))dlsym(h, "nvmlInit_v2");
    int (*get)(unsigned, void **) = (int (*)(unsigned, void **))dlsym(h,
        "nvmlDeviceGetHandleByIndex_v2");
    int (*energy)(void *, unsigned long long *) = (int (*)(void *, unsigned long long *))dlsym(h,
        "nvmlDeviceGetTotalEnergyConsumption");
    void *dev = NULL;
    unsigned long long mj = 0;
    int rc;
    if (!init || !get || !energy || init() != 0 || get((unsigned)atoi(argv[2]), &dev) != 0) {
        fprintf(stderr, "nvml_read: NVML cannot open GPU %s\n", argv[2]);
        return 1;
    }
    if ((rc = energy(dev, &mj)) != 0) {
        fprintf(stderr, "nvml_read: no energy counter on GPU %s (NVML error %d)\n", argv[2], rc);
        return 1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    printf("%llu %.6f\n", mj, ts.tv_sec + ts.tv_nsec * 1e-9);
    return 0;
}
C
${CC:-cc} -O2 -o "$tmp/nvml_read" "$tmp/nvml_read.c" -ldl

# The workload: a floating-point spin kernel in PTX, JIT-compiled by the
# driver and relaunched until the time is up. "idle" just sleeps.
cat >"$tmp/spin.py" <<'PY'
import ctypes, sys, time
secs, idx = float(sys.argv[1]), int(sys.argv[2])
ptx = b"""
.version 7.0
.target sm_70
.address_size 64
.visible .entry spin(.param .u64 out, .param .u32 iters)
{
  .reg .pred p;
  .reg .b32 r<4>;
  .reg .f32 f<3>;
  .reg .b64 rd<4>;
  ld.param.u64 rd1, [out];
  ld.param.u32 r1, [iters];
  mov.u32 r2, 0;
  mov.f32 f1, 0f3F800000;
  mov.f32 f2, 0f3F000000;
LOOP:
  fma.rn.f32 f1, f1, f2, f2;
  add.u32 r2, r2, 1;
  setp.lt.u32 p, r2, r1;
  @p bra LOOP;
  mov.u32 r3, %tid.x;
  cvta.to.global.u64 rd2, rd1;
  mul.wide.u32 rd3, r3, 4;
  add.u64 rd2, rd2, rd3;
  st.global.f32 [rd2], f1;
  ret;
}
\0"""
def ok(rc, what):
    if rc != 0:
        raise RuntimeError("%s failed (%d)" % (what, rc))
t_end = time.monotonic() + secs
try:
    cu = ctypes.CDLL("libcuda.so.1")
    ok(cu.cuInit(0), "cuInit")
    dev, ctx, mod, fn, buf = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_uint64()
    ok(cu.cuDeviceGet(ctypes.byref(dev), idx), "cuDeviceGet")
    ok(cu.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev), "cuCtxCreate")
    ok(cu.cuModuleLoadData(ctypes.byref(mod), ctypes.c_char_p(ptx)), "cuModuleLoadData")
    ok(cu.cuModuleGetFunction(ctypes.byref(fn), mod, b"spin"), "cuModuleGetFunction")
    ok(cu.cuMemAlloc_v2(ctypes.byref(buf), ctypes.c_size_t(4096)), "cuMemAlloc")
    sms = ctypes.c_int()
    cu.cuDeviceGetAttribute(ctypes.byref(sms), 16, dev)  # MULTIPROCESSOR_COUNT
    iters = ctypes.c_uint32(2000000)
    args = (ctypes.c_void_p * 2)(ctypes.cast(ctypes.byref(buf), ctypes.c_void_p),
                                 ctypes.cast(ctypes.byref(iters), ctypes.c_void_p))
    launches = 0
    while time.monotonic() < t_end:
        ok(cu.cuLaunchKernel(fn, max(sms.value, 1) * 8, 1, 1, 1024, 1, 1, 0, None, args, None),
           "cuLaunchKernel")
        ok(cu.cuCtxSynchronize(), "cuCtxSynchronize")
        launches += 1
    print("spin: %d kernel launches on GPU %d" % (launches, idx), file=sys.stderr)
except (OSError, RuntimeError) as e:
    print("spin: no GPU load (%s); the GPU idles instead" % e, file=sys.stderr)
    time.sleep(max(0.0, t_end - time.monotonic()))
PY

if [ "$workload" = idle ]; then
  load="sleep $secs"
else
  load="python3 '$tmp/spin.py' '$secs' '$gpu'"
fi

"$tmp/nvml_read" "$nvml_lib" "$gpu" >/dev/null || exit 2

echo "gpu_check: $jb measure --json around $secs s of '$workload' on GPU $gpu" >&2
"$jb" measure --json -- bash -c "
  '$tmp/nvml_read' '$nvml_lib' '$gpu' > '$tmp/e0' &&
  $load &&
  '$tmp/nvml_read' '$nvml_lib' '$gpu' > '$tmp/e1'" >"$tmp/measure.json"

python3 - "$tmp/measure.json" "$tmp/e0" "$tmp/e1" "$gpu" "$tol" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
e0, t0 = open(sys.argv[2]).read().split()
e1, t1 = open(sys.argv[3]).read().split()
gpu, tol = int(sys.argv[4]), float(sys.argv[5])
name = "nvml:gpu%d" % gpu
jb = [s for s in m.get("sensors", []) if s.get("name") == name]
if not jb:
    sys.exit("gpu_check: joulebench measured no sensor %s; sensors: %s"
             % (name, [s.get("name") for s in m.get("sensors", [])]))
jb_j = float(jb[0]["energy_j"])
ref_j = (int(e1) - int(e0)) / 1000.0
ref_s = float(t1) - float(t0)
diff = 100.0 * (jb_j - ref_j) / ref_j if ref_j else float("inf")
print("joulebench  %s: %.1f J over %.3f s (window)" % (name, jb_j, float(m["duration_s"])))
print("NVML direct %s: %.1f J over %.3f s (inside the window)" % (name, ref_j, ref_s))
print("difference: %+.2f %% (limit %.1f %%); joulebench gpu domain %.1f J, total %.1f J"
      % (diff, tol, float(m.get("domains", {}).get("gpu", float("nan"))), float(m["total_j"])))
sys.exit(0 if abs(diff) <= tol else 1)
PY
