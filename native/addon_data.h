// Per-environment state of the addon (worker threads each get their own).
#pragma once
#include <napi.h>

namespace srf {

struct AddonData {
  Napi::FunctionReference errorClass;
  Napi::FunctionReference visionModelClass;
  Napi::FunctionReference embedderClass;

  static AddonData& Get(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

}  // namespace srf
