// The JS object for one loaded vision model: text model + mmproj (+ LoRA adapters), one
// llama_context with a unified KV cache, and the Engine that batches requests on it.
//
//   const m = new VisionModel(onComplete);   // onComplete(id, error | null, result)
//   await m.load(options);                   // off the JS thread
//   const id = m.submit(request);            // queued; completes through onComplete
//   m.cancel(id); m.setLoraScales(scales) -> id; m.stats(); await m.close();
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "engine.h"
#include "model_loader.h"
#include "llama.h"
#include "mtmd.h"

namespace srf {

// What the completion callback needs, shared with in-flight calls so that it outlives the object.
struct CompletionBridge {
  Napi::ThreadSafeFunction tsfn;
  int64_t pending = 0;  // JS thread only: completions still owed; the loop is kept alive while > 0
  bool released = false;  // JS thread only: Release() was called
  // Node finalized the TSFN (its finalizer ran) or refused a call with napi_closing: calling it
  // again would touch freed memory. Set on either thread, read by the loop.
  std::atomic<bool> closed{false};
};

class VisionModel : public Napi::ObjectWrap<VisionModel> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit VisionModel(const Napi::CallbackInfo& info);
  ~VisionModel() override;

  // Used by the workers.
  LoadedVisionModel& Loaded() { return loaded_; }
  void OnLoaded(EngineConfig config);
  void OnClosed();
  // Stops the engine (pending requests complete with CLOSED), keeps its final counters for
  // stats() and frees the model. Idempotent; safe from close()'s worker, the env cleanup hook
  // and the destructor.
  void ShutDown();
  // Held by the load worker while it fills Loaded(): a teardown meanwhile waits, then frees.
  std::mutex& LifecycleMutex() { return lifecycleMutex_; }

 private:
  enum class State { kNew, kLoading, kReady, kClosing, kClosed };

  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value SetLoraScales(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  void RequireReady(Napi::Env env, const char* what);
  void Expect(Napi::Env env);
  Engine::Sink MakeSink();
  void ReleaseBridge();
  static void OnEnvCleanup(void* self);

  State state_ = State::kNew;
  LoadedVisionModel loaded_;
  std::unique_ptr<Engine> engine_;  // replaced only under both mutexes; read under either
  std::mutex engineMutex_;          // stats() vs ShutDown(): never held while waiting for the loop
  std::mutex lifecycleMutex_;       // held by a load's worker and by ShutDown(): one at a time
  EngineStats finalStats_;          // what stats() answers once the engine is gone
  std::shared_ptr<CompletionBridge> bridge_;
  napi_env env_ = nullptr;
  bool cleanupHook_ = false;  // registered with napi_add_env_cleanup_hook and not yet run
  uint64_t nextId_ = 1;
};

}  // namespace srf
