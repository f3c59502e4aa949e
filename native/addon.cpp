// Module entry: exports the engine classes, build information and logging control.
#include <napi.h>

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "addon_data.h"
#include "embedder.h"
#include "errors.h"
#include "ggml-backend.h"
#include "llama.h"
#include "logging.h"
#include "vision_model.h"

namespace srf {
namespace {

const char* DeviceType(enum ggml_backend_dev_type type) {
  switch (type) {
    case GGML_BACKEND_DEVICE_TYPE_CPU: return "cpu";
    case GGML_BACKEND_DEVICE_TYPE_GPU: return "gpu";
    case GGML_BACKEND_DEVICE_TYPE_IGPU: return "igpu";
    default: return "accel";
  }
}

// With node-llama-cpp's prebuilt llama.cpp, ggml's backends are separate libraries loaded at run
// time from their folder: the CPU variant best for this machine, and CUDA where its library loads.
// A CUDA library that is there but does not load (no driver, no CUDA runtime) is said, with why.
bool HaveGpuDevice() {
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    if (ggml_backend_dev_type(ggml_backend_dev_get(i)) == GGML_BACKEND_DEVICE_TYPE_GPU) return true;
  }
  return false;
}

std::string& BackendWarning() {
  static std::string warning;
  return warning;
}

void LoadPrebuiltBackends() {
  const std::string dir = SRF_PREBUILT_DIR;
  if (dir.empty()) return;
  ggml_backend_load_all_from_path(dir.c_str());
  if (HaveGpuDevice()) return;
  const std::string cuda = dir + "/libggml-cuda.so";
  // No NVIDIA driver on this machine: the CPU is the backend, and that is no news.
  // (SRF_ASSUME_NVIDIA_DRIVER=1 lets a test on a machine without one see what a user with one is told.)
  const char* assume = getenv("SRF_ASSUME_NVIDIA_DRIVER");
  const bool driver = access("/proc/driver/nvidia/version", F_OK) == 0 || access("/dev/nvidiactl", F_OK) == 0;
  if (!driver && (assume == nullptr || std::string(assume) != "1")) return;
  // Asked again only to learn why it did not load (ggml's loader does not say); the CPU package has no
  // CUDA library at all, which is no news.
  void* handle = dlopen(cuda.c_str(), RTLD_LAZY | RTLD_LOCAL);
  if (handle != nullptr) {
    dlclose(handle);
    BackendWarning() = "the CUDA backend of the prebuilt llama.cpp loaded but found no GPU: running on the CPU";
    return;
  }
  const char* error = dlerror();
  const std::string why = error != nullptr ? error : "";
  if (why.find("No such file") != std::string::npos && why.find(cuda) != std::string::npos) return;
  // node-llama-cpp's second CUDA build (its -cuda-ext package), for drivers the first does not suit.
  const std::string fallback = SRF_PREBUILT_FALLBACK_DIR;
  if (!fallback.empty() && ggml_backend_load((fallback + "/libggml-cuda.so").c_str()) != nullptr && HaveGpuDevice()) return;
  BackendWarning() = "the CUDA backend of the prebuilt llama.cpp did not load, running on the CPU: " + why;
}

// Which of the prebuilt CPU libraries ggml chose for this machine ("zen4", "haswell", ...): the one
// mapped into this process, since ggml's registry names every variant "CPU". '' for a source build.
std::string LoadedCpuVariant() {
  std::string variant;
  dl_iterate_phdr(
      [](dl_phdr_info* object, size_t, void* out) {
        const std::string path = object->dlpi_name != nullptr ? object->dlpi_name : "";
        const std::string file = path.substr(path.find_last_of('/') + 1);  // npos + 1 is 0: no folder
        const std::string prefix = "libggml-cpu-";
        if (file.rfind(prefix, 0) != 0) return 0;
        const std::string variant = file.substr(prefix.size());
        *static_cast<std::string*>(out) = variant.substr(0, variant.find(".so"));
        return 1;
      },
      &variant);
  return variant;
}

// What this binary was built with, and the devices it sees now.
Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  // A prebuilt build runs CUDA only where its CUDA library loaded: say what runs, not what could.
  const bool prebuilt = std::string(SRF_LLAMA_FROM) == "prebuilt";
  out.Set("backend", prebuilt ? (HaveGpuDevice() ? "cuda" : "cpu") : SRF_BACKEND);
  out.Set("gpuChoice", SRF_GPU_CHOICE);
  out.Set("cudaArchitectures", SRF_CUDA_ARCHS);
  out.Set("llamaCppVersion", SRF_LLAMA_VERSION);
  out.Set("llamaCppFrom", SRF_LLAMA_FROM);
  out.Set("prebuiltDir", SRF_PREBUILT_DIR);
  out.Set("backendWarning", BackendWarning());
  Napi::Array loaded = Napi::Array::New(env);
  for (size_t i = 0; i < ggml_backend_reg_count(); ++i) loaded.Set(static_cast<uint32_t>(i), ggml_backend_reg_name(ggml_backend_reg_get(i)));
  out.Set("backends", loaded);
  out.Set("cpuVariant", LoadedCpuVariant());
  out.Set("systemInfo", llama_print_system_info());
  out.Set("supportsGpuOffload", llama_supports_gpu_offload());
  Napi::Array devices = Napi::Array::New(env);
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    size_t free = 0, total = 0;
    ggml_backend_dev_memory(dev, &free, &total);
    Napi::Object d = Napi::Object::New(env);
    d.Set("name", ggml_backend_dev_name(dev));
    d.Set("description", ggml_backend_dev_description(dev));
    d.Set("type", DeviceType(ggml_backend_dev_type(dev)));
    d.Set("memoryTotal", static_cast<double>(total));
    d.Set("memoryFree", static_cast<double>(free));
    devices.Set(static_cast<uint32_t>(i), d);
  }
  out.Set("devices", devices);
  return out;
}

Napi::Value SetErrorClassJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) ThrowError(info.Env(), code::kInvalidArgument, "setErrorClass(ctor)");
  SetErrorClass(info.Env(), info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value SetLogLevelJs(const Napi::CallbackInfo& info) {
  const std::string level = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "error";
  LogLevel l = LogLevel::kError;
  if (level == "none") l = LogLevel::kNone;
  else if (level == "warn") l = LogLevel::kWarn;
  else if (level == "info") l = LogLevel::kInfo;
  else if (level == "debug") l = LogLevel::kDebug;
  SetLogLevel(l);
  return info.Env().Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Once per process, whichever worker thread loads the addon first.
  static std::once_flag backendReady;
  std::call_once(backendReady, [] {
    InstallLogger();
    LoadPrebuiltBackends();
    llama_backend_init();
  });
  env.SetInstanceData(new AddonData());
  exports.Set("VisionModel", VisionModel::Define(env));
  exports.Set("Embedder", Embedder::Define(env));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClassJs));
  exports.Set("setLogLevel", Napi::Function::New(env, SetLogLevelJs));
  return exports;
}

}  // namespace srf

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return srf::Init(env, exports); }
NODE_API_MODULE(srf_native, InitModule)
