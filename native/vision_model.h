// The JS object for one loaded vision model: text model + mmproj (+ LoRA adapters), one
// llama_context with a unified KV cache, and the Engine that batches requests on it.
//
//   const m = new VisionModel(onComplete);   // onComplete(id, error | null, result)
//   await m.load(options);                   // off the JS thread
//   const id = m.submit(request);            // queued; completes through onComplete
//   m.cancel(id); m.setLoraScales(scales) -> id; m.stats(); await m.close();
#pragma once
#include <napi.h>

#include <memory>
#include <vector>

#include "engine.h"
#include "llama.h"
#include "mtmd.h"

namespace srf {

// What the completion callback needs, shared with in-flight calls so that it outlives the object.
struct CompletionBridge {
  Napi::ThreadSafeFunction tsfn;
  int64_t pending = 0;  // JS thread only: completions still owed; the loop is kept alive while > 0
  bool released = false;
};

// What a load creates; freed together, in order, by Free().
struct LoadedVisionModel {
  llama_model* model = nullptr;
  llama_context* ctx = nullptr;
  mtmd_context* mctx = nullptr;
  std::vector<llama_adapter_lora*> loras;
  void Free();
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
  std::unique_ptr<Engine>& EngineRef() { return engine_; }

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

  State state_ = State::kNew;
  LoadedVisionModel loaded_;
  std::unique_ptr<Engine> engine_;
  std::shared_ptr<CompletionBridge> bridge_;
  uint64_t nextId_ = 1;
};

}  // namespace srf
