#!/usr/bin/env bash
# The C kernels off x86-64 (issue 18), without arm hardware: builds CSources/ and the kernel
# driver (scripts/kernel-driver/driver.c, every kernel family against naive references at 1
# and 2 threads) natively and for aarch64 Linux, runs the native driver (SIMD paths on and off)
# and the aarch64 one under qemu-user, and requires the digest of the bit-exact kernels to be
# the same on both. Then checks that every kernel file compiles for macOS (arm64 and x86-64)
# against stand-in libc headers (no Apple SDK can be installed here): that catches x86 code
# and Linux-only calls outside their guards, not what the real SDK would say.
# Installs what is missing (Debian packages; arm64 added as a dpkg architecture). About a
# minute on 2 cores once the packages are there.
set -euo pipefail
cd "$(dirname "$0")/.."
CC=${CC:-clang}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- packages ----
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libopenblas-dev pkg-config; do installed "$p" || missing+=("$p"); done
command -v "$CC" >/dev/null || missing+=(clang)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
if ((${#missing[@]})); then
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! installed libopenblas-dev:arm64; then
    $sudo dpkg --add-architecture arm64
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq libopenblas-dev:arm64 >/dev/null
fi

# ---- builds ----
# build NAME: the kernels two at a time, then the driver; TARGET, CFLAGS, LDFLAGS set by the caller.
build() {
    local pids=() f
    mkdir -p "$work/$1"
    for f in CSources/*.c; do
        if ((${#pids[@]} == 2)); then wait "${pids[0]}"; pids=("${pids[1]}"); fi
        "$CC" "${TARGET[@]}" "${CFLAGS[@]}" -I include -O2 -Wall -Wextra -c "$f" -o "$work/$1/$(basename "$f" .c).o" &
        pids+=($!)
    done
    for f in "${pids[@]}"; do wait "$f"; done
    "$CC" "${TARGET[@]}" -I include -O2 -Wall -Wextra -c scripts/kernel-driver/driver.c -o "$work/$1/driver.o"
    "$CC" "${TARGET[@]}" "$work/$1"/*.o "${LDFLAGS[@]}" -o "$work/$1/driver"
}
TARGET=() CFLAGS=($(pkg-config --cflags openblas)) LDFLAGS=(-lopenblas -lpthread -lm)
build native
# aarch64: compiled against the cross sysroot, linked by the same clang without it (it finds
# Debian's cross GCC and libc layout itself; with --sysroot the libc.so script's paths would be
# prefixed twice).
TARGET=(--target=aarch64-linux-gnu) CFLAGS=(--sysroot=/usr/aarch64-linux-gnu -I/usr/include/aarch64-linux-gnu/openblas-pthread)
LDFLAGS=(-L/usr/lib/aarch64-linux-gnu -Wl,-rpath-link,/usr/lib/aarch64-linux-gnu -lopenblas -lpthread -lm)
build aarch64
echo "cross-check: built the kernels and the driver for x86-64 and aarch64"

# ---- runs ----
status=0
echo "== native"
"$work/native/driver" | tee "$work/native.txt" || status=1
echo "== aarch64 under qemu-user"
# The loader and libc must come from the same package: the cross libc (the loader under -L),
# ahead of the arm64 multiarch libc that OpenBLAS:arm64 brought (a mismatched pair hangs in
# pthread_create); OpenBLAS itself from the multiarch directory.
qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib:/usr/lib/aarch64-linux-gnu \
    "$work/aarch64/driver" | tee "$work/aarch64.txt" || status=1
digest() { grep '^digest of the bit-exact kernels' "$1" | awk '{print $NF}'; }
if [[ -z "$(digest "$work/native.txt")" || "$(digest "$work/native.txt")" != "$(digest "$work/aarch64.txt")" ]]; then
    echo "cross-check: the bit-exact kernels differ between x86-64 and aarch64"
    status=1
else
    echo "cross-check: aarch64 gives the x86-64 bits for the bit-exact kernels ($(digest "$work/native.txt"))"
fi

# ---- macOS: syntax only, against stand-in headers declaring what Apple's libc and Accelerate
# (BLAS, and LAPACK's Fortran interface, as with ACCELERATE_NEW_LAPACK) have ----
inc=$work/darwin-include
mkdir -p "$inc"
cat >"$inc/math.h" <<'EOF'
#define INFINITY __builtin_inff()
#define isinf(x) __builtin_isinf(x)
#define isnan(x) __builtin_isnan(x)
#define isfinite(x) __builtin_isfinite(x)
#define signbit(x) __builtin_signbit(x)
float expf(float), logf(float), log1pf(float), erff(float), tanhf(float), sinf(float), cosf(float), sqrtf(float);
float fabsf(float), fmaxf(float, float), fmaf(float, float, float), rintf(float);
double exp(double), log(double), log1p(double), erf(double), tanh(double), sqrt(double), fabs(double), fmax(double, double);
double pow(double, double);
EOF
cat >"$inc/stdlib.h" <<'EOF'
#include <stddef.h>
void *malloc(size_t), *calloc(size_t, size_t), free(void *);
int posix_memalign(void **, size_t, size_t), atoi(const char *), setenv(const char *, const char *, int);
int unsetenv(const char *);
char *getenv(const char *);
EOF
cat >"$inc/string.h" <<'EOF'
#include <stddef.h>
void *memset(void *, int, size_t), *memcpy(void *restrict, const void *restrict, size_t);
int memcmp(const void *, const void *, size_t), strcmp(const char *, const char *);
EOF
cat >"$inc/pthread.h" <<'EOF'
typedef struct { long sig; char opaque[56]; } pthread_mutex_t;
typedef struct { long sig; char opaque[40]; } pthread_cond_t;
typedef struct { long sig; char opaque[8]; } pthread_once_t;
typedef struct _opaque_pthread_t *pthread_t;
typedef struct _opaque_pthread_attr_t pthread_attr_t;
#define PTHREAD_MUTEX_INITIALIZER {0x32AAABA7, {0}}
#define PTHREAD_COND_INITIALIZER {0x3CB0B1BB, {0}}
#define PTHREAD_ONCE_INIT {0x30B1BCBA, {0}}
int pthread_mutex_lock(pthread_mutex_t *), pthread_mutex_unlock(pthread_mutex_t *), pthread_mutex_trylock(pthread_mutex_t *);
int pthread_cond_wait(pthread_cond_t *, pthread_mutex_t *), pthread_cond_broadcast(pthread_cond_t *);
int pthread_once(pthread_once_t *, void (*)(void));
int pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *), pthread_join(pthread_t, void **);
EOF
printf 'int sched_yield(void);\n' >"$inc/sched.h"
printf '#define _SC_NPROCESSORS_ONLN 58\nlong sysconf(int);\n' >"$inc/unistd.h"
mkdir -p "$inc/Accelerate"
cat >"$inc/Accelerate/Accelerate.h" <<'EOF'
typedef int __LAPACK_int;
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };
void cblas_sgemm(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE, const enum CBLAS_TRANSPOSE, const __LAPACK_int,
                 const __LAPACK_int, const __LAPACK_int, const float, const float *, const __LAPACK_int, const float *,
                 const __LAPACK_int, const float, float *, const __LAPACK_int);
void cblas_dgemm(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE, const enum CBLAS_TRANSPOSE, const __LAPACK_int,
                 const __LAPACK_int, const __LAPACK_int, const double, const double *, const __LAPACK_int, const double *,
                 const __LAPACK_int, const double, double *, const __LAPACK_int);
void dsyevd_(const char *, const char *, const __LAPACK_int *, double *, const __LAPACK_int *, double *, double *,
             const __LAPACK_int *, __LAPACK_int *, const __LAPACK_int *, __LAPACK_int *);
EOF
for target in arm64-apple-macos11 x86_64-apple-macos10.13; do
    if "$CC" --target=$target -nostdlibinc -isystem "$inc" -I include -fsyntax-only -Wall -Wextra CSources/*.c; then
        echo "cross-check: every kernel file compiles for $target (stand-in libc and Accelerate headers)"
    else
        echo "cross-check: kernel files do not compile for $target"
        status=1
    fi
done
exit $status
