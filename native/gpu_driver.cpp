#include "gpu_driver.h"

#include <dlfcn.h>

#include <mutex>

namespace srf {
namespace {

// The few driver API entry points used, with the driver's own signatures (cuda.h is not needed).
using CuInit = int (*)(unsigned int);
using CuDriverGetVersion = int (*)(int*);
using CuDeviceGetCount = int (*)(int*);
using CuDeviceGet = int (*)(int*, int);
using CuDeviceGetAttribute = int (*)(int*, int, int);
using CuDeviceGetName = int (*)(char*, int, int);
using CuDeviceTotalMem = int (*)(size_t*, int);
using CuGetErrorString = int (*)(int, const char**);

constexpr int kComputeCapabilityMajor = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kComputeCapabilityMinor = 76;
constexpr int kNoDevice = 100;               // CUDA_ERROR_NO_DEVICE

template <typename F>
F Symbol(void* lib, const char* name) {
  return reinterpret_cast<F>(dlsym(lib, name));
}

DriverFacts Read() {
  DriverFacts facts;
  // Never unloaded: the CUDA runtime that ggml's backend brings uses the same library.
  void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    facts.error = std::string("no NVIDIA driver (") + (why ? why : "libcuda.so.1 not found") + ")";
    return facts;
  }
  facts.installed = true;
  auto init = Symbol<CuInit>(lib, "cuInit");
  auto version = Symbol<CuDriverGetVersion>(lib, "cuDriverGetVersion");
  auto count = Symbol<CuDeviceGetCount>(lib, "cuDeviceGetCount");
  auto get = Symbol<CuDeviceGet>(lib, "cuDeviceGet");
  auto attribute = Symbol<CuDeviceGetAttribute>(lib, "cuDeviceGetAttribute");
  auto name = Symbol<CuDeviceGetName>(lib, "cuDeviceGetName");
  auto memory = Symbol<CuDeviceTotalMem>(lib, "cuDeviceTotalMem_v2");
  auto errorString = Symbol<CuGetErrorString>(lib, "cuGetErrorString");
  if (!init || !version || !count || !get || !attribute || !name) {
    facts.error = "libcuda.so.1 lacks the driver API functions srf-native asks (cuInit, cuDeviceGetAttribute, ...)";
    return facts;
  }
  auto describe = [&](int rc) {
    const char* text = nullptr;
    if (errorString && errorString(rc, &text) == 0 && text) return std::string(text) + " (" + std::to_string(rc) + ")";
    return "CUDA driver error " + std::to_string(rc);
  };
  version(&facts.cudaVersion);  // answers even when cuInit fails
  const int rc = init(0);
  if (rc != 0) {
    facts.error = rc == kNoDevice ? "the NVIDIA driver sees no GPU" : "the NVIDIA driver failed to start: " + describe(rc);
    return facts;
  }
  facts.present = true;
  int n = 0;
  if (count(&n) != 0) n = 0;
  for (int i = 0; i < n; ++i) {
    int device = 0;
    if (get(&device, i) != 0) continue;
    GpuFact gpu;
    char text[256] = {0};
    if (name(text, sizeof(text) - 1, device) == 0) gpu.name = text;
    attribute(&gpu.major, kComputeCapabilityMajor, device);
    attribute(&gpu.minor, kComputeCapabilityMinor, device);
    size_t bytes = 0;
    if (memory && memory(&bytes, device) == 0) gpu.memoryTotal = bytes;
    facts.gpus.push_back(gpu);
  }
  return facts;
}

}  // namespace

const DriverFacts& ReadDriverFacts() {
  static std::once_flag once;
  static DriverFacts facts;
  std::call_once(once, [] { facts = Read(); });
  return facts;
}

}  // namespace srf
