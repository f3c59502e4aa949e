// Module entry: exports the engine classes, build information and logging control.
#include <napi.h>

#include <link.h>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "addon_data.h"
#include "backend_loader.h"
#include "embedder.h"
#include "errors.h"
#include "fatal_abort.h"
#include "ggml-backend.h"
#include "gpu_driver.h"
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

bool HaveGpuDevice() {
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    if (ggml_backend_dev_type(ggml_backend_dev_get(i)) == GGML_BACKEND_DEVICE_TYPE_GPU) return true;
  }
  return false;
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
  EnsureBackendsLoaded();
  Napi::Object out = Napi::Object::New(env);
  // A prebuilt build runs CUDA only where its CUDA library loaded: say what runs, not what could.
  const bool prebuilt = std::string(SRF_LLAMA_FROM) == "prebuilt";
  out.Set("backend", prebuilt ? (HaveGpuDevice() ? "cuda" : "cpu") : SRF_BACKEND);
  out.Set("gpuChoice", SRF_GPU_CHOICE);
  out.Set("cudaArchitectures", SRF_CUDA_ARCHS);
  out.Set("llamaCppVersion", SRF_LLAMA_VERSION);
  out.Set("llamaCppFrom", SRF_LLAMA_FROM);
  out.Set("prebuiltDir", SRF_PREBUILT_DIR);
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

// What this binary was compiled with: known before any backend is loaded.
Napi::Value BuildConfig(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("backend", SRF_BACKEND);
  out.Set("gpuChoice", SRF_GPU_CHOICE);
  out.Set("cudaArchitectures", SRF_CUDA_ARCHS);
  out.Set("llamaCppVersion", SRF_LLAMA_VERSION);
  out.Set("llamaCppFrom", SRF_LLAMA_FROM);
  out.Set("prebuiltDir", SRF_PREBUILT_DIR);
  out.Set("prebuiltFallbackDir", SRF_PREBUILT_FALLBACK_DIR);
  return out;
}

// A JS array of `toObject(item)` for each item.
template <typename T, typename F>
Napi::Array ArrayOf(Napi::Env env, const std::vector<T>& items, F toObject) {
  Napi::Array out = Napi::Array::New(env);
  for (size_t i = 0; i < items.size(); ++i) out.Set(static_cast<uint32_t>(i), toObject(items[i]));
  return out;
}

// The NVIDIA driver's version and each GPU's compute capability (none where there is no driver).
Napi::Value DriverFactsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const DriverFacts& facts = ReadDriverFacts();
  Napi::Object out = Napi::Object::New(env);
  out.Set("installed", facts.installed);
  out.Set("present", facts.present);
  out.Set("cudaVersion", facts.cudaVersion);
  out.Set("error", facts.error);
  out.Set("gpus", ArrayOf(env, facts.gpus, [&](const GpuFact& fact) {
    Napi::Object gpu = Napi::Object::New(env);
    gpu.Set("name", fact.name);
    gpu.Set("major", fact.major);
    gpu.Set("minor", fact.minor);
    gpu.Set("memoryTotal", static_cast<double>(fact.memoryTotal));
    return gpu;
  }));
  return out;
}

// loadBackends(cudaLibraries): the prebuilt CPU variant, then the CUDA libraries in the order
// given until one finds a GPU. Once per process (the first call's list wins); a source build loads
// nothing. Synchronous, as loading the addon is: it runs once, before any model.
Napi::Value LoadBackendsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> cuda;
  if (info.Length() > 0 && info[0].IsArray()) {
    Napi::Array list = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); ++i) {
      if (!list.Get(i).IsString()) ThrowError(env, code::kInvalidArgument, "loadBackends(paths): every path must be a string");
      cuda.push_back(list.Get(i).As<Napi::String>().Utf8Value());
    }
  }
  const BackendLoadResult& result = LoadBackends(SRF_PREBUILT_DIR, cuda);
  Napi::Object out = Napi::Object::New(env);
  out.Set("cpuLibrary", result.cpuLibrary);
  out.Set("cuda", ArrayOf(env, result.cuda, [&](const CudaLoadAttempt& tried) {
    Napi::Object attempt = Napi::Object::New(env);
    attempt.Set("path", tried.path);
    attempt.Set("loaded", tried.loaded);
    attempt.Set("gpus", tried.gpus);
    attempt.Set("error", tried.error);
    return attempt;
  }));
  return out;
}

// setFatalFlushHandler(fn): fn runs on the JS thread when llama.cpp is about to abort the process
// (fatal_abort.h), to write out what is buffered; the aborting thread waits for it, at most a few
// seconds, and not at all when it is this JS thread (which cannot run fn then).
struct FatalFlush {
  Napi::ThreadSafeFunction tsfn;
  std::thread::id jsThread;
};

Napi::Value SetFatalFlushHandlerJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) ThrowError(env, code::kInvalidArgument, "setFatalFlushHandler(fn)");
  auto flush = std::make_shared<FatalFlush>();
  flush->tsfn = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "srf-native fatal flush", 0, 1);
  flush->tsfn.Unref(env);  // never keeps the process alive
  flush->jsThread = std::this_thread::get_id();
  const int id = AddFatalFlushHook([flush] {
    if (std::this_thread::get_id() == flush->jsThread) return;
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> finished = done->get_future();
    const napi_status queued = flush->tsfn.NonBlockingCall([done](Napi::Env, Napi::Function fn) {
      try {
        fn.Call({});
      } catch (...) {
      }
      done->set_value();
    });
    if (queued == napi_ok) finished.wait_for(std::chrono::seconds(5));
  });
  // The environment going away (a worker ending) takes its hook along.
  env.AddCleanupHook([flush, id] {
    RemoveFatalFlushHook(id);
    flush->tsfn.Release();
  });
  return env.Undefined();
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
    InstallFatalAbortHandler();
    llama_backend_init();
  });
  env.SetInstanceData(new AddonData());
  exports.Set("VisionModel", VisionModel::Define(env));
  exports.Set("Embedder", Embedder::Define(env));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo));
  exports.Set("buildConfig", Napi::Function::New(env, BuildConfig));
  exports.Set("driverFacts", Napi::Function::New(env, DriverFactsJs));
  exports.Set("loadBackends", Napi::Function::New(env, LoadBackendsJs));
  exports.Set("setFatalFlushHandler", Napi::Function::New(env, SetFatalFlushHandlerJs));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClassJs));
  exports.Set("setLogLevel", Napi::Function::New(env, SetLogLevelJs));
  return exports;
}

}  // namespace srf

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return srf::Init(env, exports); }
NODE_API_MODULE(srf_native, InitModule)
