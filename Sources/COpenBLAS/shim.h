// OpenBLAS (its CBLAS interface, and LAPACK's Fortran symbols, which it exports), from
// Debian's libopenblas-dev; Linux only (Apple platforms link Accelerate instead).
#pragma once
#include <cblas.h>
