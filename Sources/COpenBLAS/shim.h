// OpenBLAS (CBLAS interface) and LAPACKE, from Debian's libopenblas-dev and liblapacke-dev.
#pragma once
#include <cblas.h>
#include <lapacke.h>
