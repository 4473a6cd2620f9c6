// The fp16 conversions moved to core/half.hpp (shared by morph, engines, sds and raster).
#pragma once
#include "core/half.hpp"
