// One init function per native domain; each lives in native/napi/<domain>.cpp and adds its bindings.
#pragma once
#include <napi.h>

namespace fgn {
void initCore(Napi::Env env, Napi::Object exports);
// Domain inits are weak so that a FACEG2E_DOMAINS build links without the domains it leaves out.
#define FGN_DOMAIN_INIT __attribute__((weak))
FGN_DOMAIN_INIT void initRaster(Napi::Env env, Napi::Object exports);
FGN_DOMAIN_INIT void initMorph(Napi::Env env, Napi::Object exports);
FGN_DOMAIN_INIT void initSds(Napi::Env env, Napi::Object exports);
FGN_DOMAIN_INIT void initEngines(Napi::Env env, Napi::Object exports);
FGN_DOMAIN_INIT void initPipeline(Napi::Env env, Napi::Object exports);
}  // namespace fgn
