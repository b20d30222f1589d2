// The BLAS the kernels call (internal): Accelerate on Apple platforms, OpenBLAS elsewhere (its
// CBLAS header; Package.swift links the one library or the other).
#pragma once
#if defined(__APPLE__)
#define ACCELERATE_NEW_LAPACK
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif
