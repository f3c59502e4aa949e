#include "embedder.h"

#include <cmath>
#include <thread>

#include "addon_data.h"
#include "backend_loader.h"
#include "errors.h"
#include "logging.h"
#include "promise_worker.h"

namespace srf {
namespace {

void Normalize(float* v, int32_t n) {
  double sum = 0;
  for (int32_t i = 0; i < n; ++i) sum += static_cast<double>(v[i]) * v[i];
  const float scale = sum > 0 ? static_cast<float>(1.0 / std::sqrt(sum)) : 0.0f;
  for (int32_t i = 0; i < n; ++i) v[i] *= scale;
}

class EmbedderLoadWorker : public PromiseWorker {
 public:
  EmbedderLoadWorker(Embedder* e, const Napi::Object& receiver, std::string path, int32_t gpuLayers, int32_t threads,
                     int32_t maxTokens)
      : PromiseWorker(receiver, "srf:Embedder.load"), e_(e), path_(std::move(path)), gpuLayers_(gpuLayers),
        threads_(threads), maxTokens_(maxTokens) {}

 protected:
  void Run() override {
    std::lock_guard<std::mutex> lock(e_->Mutex());
    e_->LoadNow(path_, gpuLayers_, threads_, maxTokens_);
  }
  Napi::Value Result(Napi::Env env) override {
    e_->OnLoaded();
    Napi::Object info = Napi::Object::New(env);
    info.Set("dim", e_->Dim());
    return info;
  }
  void Cleanup() override { e_->OnLoadFailed(); }

 private:
  Embedder* e_;
  std::string path_;
  int32_t gpuLayers_, threads_, maxTokens_;
};

class EmbedWorker : public PromiseWorker {
 public:
  EmbedWorker(Embedder* e, const Napi::Object& receiver, std::vector<std::string> texts)
      : PromiseWorker(receiver, "srf:Embedder.embed"), e_(e), texts_(std::move(texts)) {}

 protected:
  void Run() override {
    std::lock_guard<std::mutex> lock(e_->Mutex());
    if (e_->closed) throw Error(code::kClosed, "the embedder is closed");
    out_ = e_->EmbedNow(texts_);
  }
  Napi::Value Result(Napi::Env env) override {
    const int32_t dim = e_->Dim();
    Napi::Object result = Napi::Object::New(env);
    auto pooled = Napi::Float32Array::New(env, out_.pooled.size());
    std::copy(out_.pooled.begin(), out_.pooled.end(), pooled.Data());
    Napi::Array tokens = Napi::Array::New(env, out_.tokens.size());
    for (size_t i = 0; i < out_.tokens.size(); ++i) {
      auto t = Napi::Float32Array::New(env, out_.tokens[i].size());
      std::copy(out_.tokens[i].begin(), out_.tokens[i].end(), t.Data());
      tokens.Set(static_cast<uint32_t>(i), t);
    }
    result.Set("dim", dim);
    result.Set("pooled", pooled);
    result.Set("tokens", tokens);
    return result;
  }

 private:
  Embedder* e_;
  std::vector<std::string> texts_;
  Embedder::Output out_;
};

class EmbedderCloseWorker : public PromiseWorker {
 public:
  EmbedderCloseWorker(Embedder* e, const Napi::Object& receiver) : PromiseWorker(receiver, "srf:Embedder.close"), e_(e) {}

 protected:
  void Run() override {
    std::lock_guard<std::mutex> lock(e_->Mutex());  // waits for a running embed() to finish
    e_->FreeNow();
  }

 private:
  Embedder* e_;
};

}  // namespace

Napi::Function Embedder::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Embedder",
                                    {
                                        InstanceMethod<&Embedder::Load>("load"),
                                        InstanceMethod<&Embedder::Embed>("embed"),
                                        InstanceMethod<&Embedder::Close>("close"),
                                    });
  AddonData::Get(env).embedderClass = Napi::Persistent(ctor);
  return ctor;
}

Embedder::Embedder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Embedder>(info) {}

Embedder::~Embedder() {
  std::lock_guard<std::mutex> lock(mutex_);
  FreeNow();
}

void Embedder::LoadNow(const std::string& path, int32_t gpuLayers, int32_t threads, int32_t maxTokens) {
  TakeRecentErrors();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = gpuLayers;
  EnsureBackendsLoaded();
  model_ = llama_model_load_from_file(path.c_str(), mp);
  if (!model_) {
    const std::string why = TakeRecentErrors();
    throw Error(code::kModelLoadFailed, path + ": llama.cpp could not load the embedding model" + (why.empty() ? "" : " (" + why + ")"));
  }
  const int32_t trained = llama_model_n_ctx_train(model_);
  maxTokens_ = std::max(8, std::min(maxTokens > 0 ? maxTokens : 512, trained > 0 ? trained : 512));
  batchTokens_ = std::max(maxTokens_, 2048);
  char arch[64] = {0}, value[32] = {0};
  llama_model_meta_val_str(model_, "general.architecture", arch, sizeof(arch));
  if (llama_model_meta_val_str(model_, (std::string(arch) + ".pooling_type").c_str(), value, sizeof(value)) > 0) {
    pooling_ = std::atoi(value);
  }
  if (pooling_ < 1 || pooling_ > 3) pooling_ = 1;

  llama_context_params cp = llama_context_default_params();
  cp.embeddings = true;
  cp.pooling_type = LLAMA_POOLING_TYPE_NONE;  // per-token vectors; pooled here from the same pass
  cp.n_ctx = static_cast<uint32_t>(batchTokens_);
  cp.n_batch = static_cast<uint32_t>(batchTokens_);
  cp.n_ubatch = static_cast<uint32_t>(batchTokens_);  // non-causal: a sequence must fit one ubatch
  cp.n_seq_max = static_cast<uint32_t>(maxSeqs_);
  const int32_t n = threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  cp.n_threads = n;
  cp.n_threads_batch = n;
  cp.no_perf = true;
  ctx_ = llama_init_from_model(model_, cp);
  if (!ctx_) {
    llama_model_free(model_);
    model_ = nullptr;
    throw Error(code::kModelLoadFailed, path + ": could not create an embedding context (" + TakeRecentErrors() + ")");
  }
  dim_ = llama_model_n_embd(model_);
}

Embedder::Output Embedder::EmbedNow(const std::vector<std::string>& texts) {
  const llama_vocab* vocab = llama_model_get_vocab(model_);
  std::vector<std::vector<llama_token>> tokenized;
  for (const auto& text : texts) {
    std::vector<llama_token> t(text.size() + 8);
    int32_t n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), t.data(), static_cast<int32_t>(t.size()), true, false);
    if (n < 0) {
      t.resize(-n);
      n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), t.data(), static_cast<int32_t>(t.size()), true, false);
    }
    t.resize(std::max(n, 0));
    if (static_cast<int32_t>(t.size()) > maxTokens_) {
      // Keep the closing special token (SEP) when truncating.
      llama_token last = t.back();
      t.resize(maxTokens_);
      t.back() = last;
    }
    tokenized.push_back(std::move(t));
  }

  Output out;
  out.pooled.assign(texts.size() * dim_, 0.0f);
  out.tokens.resize(texts.size());
  llama_batch batch = llama_batch_init(batchTokens_, 0, 1);
  size_t next = 0;
  while (next < texts.size()) {
    batch.n_tokens = 0;
    size_t first = next;
    while (next < texts.size() && static_cast<int32_t>(next - first) < maxSeqs_ &&
           batch.n_tokens + static_cast<int32_t>(tokenized[next].size()) <= batchTokens_) {
      const auto& t = tokenized[next];
      for (size_t k = 0; k < t.size(); ++k) {
        const int32_t i = batch.n_tokens++;
        batch.token[i] = t[k];
        batch.pos[i] = static_cast<llama_pos>(k);
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = static_cast<llama_seq_id>(next - first);
        batch.logits[i] = true;
      }
      ++next;
    }
    if (llama_memory_t mem = llama_get_memory(ctx_)) llama_memory_clear(mem, true);
    if (batch.n_tokens > 0 && llama_decode(ctx_, batch) != 0) {
      llama_batch_free(batch);
      throw Error(code::kDecodeFailed, "the embedding model failed to evaluate the batch: " + TakeRecentErrors());
    }
    int32_t row = 0;
    for (size_t s = first; s < next; ++s) {
      const auto& t = tokenized[s];
      const int32_t n = static_cast<int32_t>(t.size());
      float* pooled = &out.pooled[s * dim_];
      for (int32_t k = 0; k < n; ++k) {
        const float* e = llama_get_embeddings_ith(ctx_, row + k);
        const bool use = pooling_ == 1 || (pooling_ == 2 && k == 0) || (pooling_ == 3 && k == n - 1);
        if (use && e) for (int32_t d = 0; d < dim_; ++d) pooled[d] += e[d];
        // Token vectors for BERTScore leave out the special tokens around the text.
        const bool special = llama_vocab_get_attr(vocab, t[k]) & (LLAMA_TOKEN_ATTR_CONTROL);
        if (!special && e) {
          out.tokens[s].insert(out.tokens[s].end(), e, e + dim_);
          Normalize(out.tokens[s].data() + out.tokens[s].size() - dim_, dim_);
        }
      }
      Normalize(pooled, dim_);
      row += n;
    }
  }
  llama_batch_free(batch);
  return out;
}

void Embedder::FreeNow() {
  if (ctx_) llama_free(ctx_);
  if (model_) llama_model_free(model_);
  ctx_ = nullptr;
  model_ = nullptr;
  closed = true;
}

Napi::Value Embedder::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Checked and set on the JS thread: two load() calls in a row cannot both pass.
  if (loading_ || loaded_ || closed) ThrowError(env, code::kInvalidArgument, "load() can be called once");
  if (info.Length() < 1 || !info[0].IsObject()) ThrowError(env, code::kInvalidArgument, "load(options) needs an object");
  Napi::Object o = info[0].As<Napi::Object>();
  const auto gpuLayers = static_cast<int32_t>(GetInteger(o, "gpuLayers", -1, -1, INT32_MAX));
  const auto threads = static_cast<int32_t>(GetInteger(o, "threads", 0, 0, 4096));
  const auto maxTokens = static_cast<int32_t>(GetInteger(o, "maxTokens", 0, 0, INT32_MAX));
  loading_ = true;
  auto* worker = new EmbedderLoadWorker(this, Value(), GetString(o, "model"), gpuLayers, threads, maxTokens);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Embedder::Embed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed) ThrowError(env, code::kClosed, "cannot embed: the embedder is closed");
  if (!loaded_) ThrowError(env, code::kInvalidArgument, "cannot embed: the embedder is not loaded");
  if (info.Length() < 1 || !info[0].IsArray()) ThrowError(env, code::kInvalidArgument, "embed(texts) needs an array of strings");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<std::string> texts;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value v = list.Get(i);
    if (!v.IsString()) ThrowError(env, code::kInvalidArgument, "embed(texts): every text must be a string");
    texts.push_back(v.As<Napi::String>().Utf8Value());
  }
  auto* worker = new EmbedWorker(this, Value(), std::move(texts));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Embedder::Close(const Napi::CallbackInfo& info) {
  closed = true;  // embed() calls queued before this one reject with CLOSED
  auto* worker = new EmbedderCloseWorker(this, Value());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace srf
