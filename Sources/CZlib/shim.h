// zlib, from Debian's zlib1g-dev: gzip reading (IDX datasets) and deflate (PNG).
#pragma once
#include <zlib.h>
