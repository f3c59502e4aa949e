// A BERT-family sentence-embedding model (sentence-transformers style GGUF): batched texts in,
// one pooled vector per text and one vector per token out (what the consistency scorer needs
// for cosine similarity and BERTScore). Each call runs off the JS thread; calls on one embedder
// run one at a time.
#pragma once
#include <napi.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "llama.h"

namespace srf {

class Embedder : public Napi::ObjectWrap<Embedder> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Embedder(const Napi::CallbackInfo& info);
  ~Embedder() override;

  struct Output {
    std::vector<float> pooled;                 // texts * dim
    std::vector<std::vector<float>> tokens;    // per text: ntok * dim
  };

  // Used by the workers (on the worker thread, under mutex_).
  void LoadNow(const std::string& path, int32_t gpuLayers, int32_t threads, int32_t maxTokens);
  Output EmbedNow(const std::vector<std::string>& texts);
  void FreeNow();
  int32_t Dim() const { return dim_; }
  std::mutex& Mutex() { return mutex_; }
  void OnLoaded() { loaded_ = true; }
  void OnLoadFailed() { loading_ = false; }
  // Written on the JS thread by close(), read on the pool thread by a queued embed().
  std::atomic<bool> closed{false};

 private:
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Embed(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::mutex mutex_;
  llama_model* model_ = nullptr;
  llama_context* ctx_ = nullptr;
  int32_t dim_ = 0;
  int32_t maxTokens_ = 512;
  int32_t batchTokens_ = 2048;
  int32_t maxSeqs_ = 64;
  int pooling_ = 1;  // 1 mean, 2 cls, 3 last
  bool loading_ = false;  // JS thread only: load() was called (a second call is refused)
  bool loaded_ = false;   // JS thread only: load() succeeded
};

}  // namespace srf
