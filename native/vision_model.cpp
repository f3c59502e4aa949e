#include "vision_model.h"

#include <cmath>
#include <cstdint>

#include "addon_data.h"
#include "errors.h"
#include "logging.h"
#include "model_loader.h"
#include "promise_worker.h"

namespace srf {

namespace {

// A token's text with special tokens rendered (what a chat template's bos_token is), "" for none.
std::string SpecialPiece(const llama_vocab* vocab, llama_token token) {
  if (token == LLAMA_TOKEN_NULL) return "";
  char piece[256];
  const int32_t n = llama_token_to_piece(vocab, token, piece, sizeof(piece), 0, true);
  return n > 0 ? std::string(piece, static_cast<size_t>(n)) : std::string();
}

// The vocabulary's facts a prompt format needs: whether BOS is added, and the BOS, EOS and EOT
// tokens (id, -1 for none, and text).
Napi::Object VocabFacts(Napi::Env env, const llama_vocab* vocab) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("addBos", llama_vocab_get_add_bos(vocab));
  const std::pair<const char*, llama_token> tokens[] = {
      {"bos", llama_vocab_bos(vocab)}, {"eos", llama_vocab_eos(vocab)}, {"eot", llama_vocab_eot(vocab)}};
  for (const auto& [name, token] : tokens) {
    Napi::Object t = Napi::Object::New(env);
    t.Set("id", token);
    t.Set("text", SpecialPiece(vocab, token));
    out.Set(name, t);
  }
  return out;
}

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(VisionModel* model, const Napi::Object& receiver, ModelLoadOptions options)
      : PromiseWorker(receiver, "srf:VisionModel.load"), model_(model), options_(std::move(options)) {}

 protected:
  void Run() override {
    std::lock_guard<std::mutex> lifecycle(model_->LifecycleMutex());
    LoadVisionModel(options_, model_->Loaded());
    // The image-token range: a tiny image and the largest the JS side hands over (image.ts MAX_NATIVE_SIDE).
    mtmd_context* mctx = model_->Loaded().mctx;
    imageTokensMin_ = ImageTokenCount(mctx, 32, 32);
    imageTokensMax_ = ImageTokenCount(mctx, 4096, 4096);
  }

  Napi::Value Result(Napi::Env env) override {
    LoadedVisionModel& m = model_->Loaded();
    model_->OnLoaded(EngineConfigFor(options_, m));

    Napi::Object info = Napi::Object::New(env);
    char desc[256];
    llama_model_desc(m.model, desc, sizeof(desc));
    info.Set("description", desc);
    info.Set("contextSize", llama_n_ctx(m.ctx));
    info.Set("kvLayout", options_.unifiedKv ? "unified" : "per-sequence");
    info.Set("sequenceCells", llama_n_ctx_seq(m.ctx));
    info.Set("parallel", options_.parallel);
    info.Set("prefixCache", options_.prefixCache);
    info.Set("batchSize", options_.batchSize);
    info.Set("embeddingLength", llama_model_n_embd(m.model));
    info.Set("vocabSize", llama_vocab_n_tokens(llama_model_get_vocab(m.model)));
    info.Set("layers", llama_model_n_layer(m.model));
    info.Set("parameters", static_cast<double>(llama_model_n_params(m.model)));
    info.Set("sizeBytes", static_cast<double>(llama_model_size(m.model)));
    info.Set("loras", static_cast<uint32_t>(m.loras.size()));
    info.Set("vocab", VocabFacts(env, llama_model_get_vocab(m.model)));
    info.Set("mrope", mtmd_decode_use_mrope(m.mctx));
    Napi::Array range = Napi::Array::New(env, 2);
    range.Set(0u, imageTokensMin_);
    range.Set(1u, imageTokensMax_);
    info.Set("imageTokenRange", range);
    return info;
  }

  void Cleanup() override { model_->Loaded().Free(); model_->OnClosed(); }

 private:
  VisionModel* model_;
  ModelLoadOptions options_;
  int32_t imageTokensMin_ = -1, imageTokensMax_ = -1;
};

class CloseWorker : public PromiseWorker {
 public:
  CloseWorker(VisionModel* model, const Napi::Object& receiver)
      : PromiseWorker(receiver, "srf:VisionModel.close"), model_(model) {}

 protected:
  void Run() override { model_->ShutDown(); }  // rejects what is pending with CLOSED
  Napi::Value Result(Napi::Env env) override {
    model_->OnClosed();
    return env.Undefined();
  }

 private:
  VisionModel* model_;
};

}  // namespace

Napi::Function VisionModel::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "VisionModel",
                                    {
                                        InstanceMethod<&VisionModel::Load>("load"),
                                        InstanceMethod<&VisionModel::Submit>("submit"),
                                        InstanceMethod<&VisionModel::Cancel>("cancel"),
                                        InstanceMethod<&VisionModel::SetLoraScales>("setLoraScales"),
                                        InstanceMethod<&VisionModel::Stats>("stats"),
                                        InstanceMethod<&VisionModel::Close>("close"),
                                    });
  AddonData::Get(env).visionModelClass = Napi::Persistent(ctor);
  return ctor;
}

VisionModel::VisionModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VisionModel>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    ThrowError(env, code::kInvalidArgument, "VisionModel needs a completion callback");
  }
  bridge_ = std::make_shared<CompletionBridge>();
  std::shared_ptr<CompletionBridge> bridge = bridge_;
  bridge_->tsfn = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "srf:VisionModel.complete", 0, 1,
                                                [bridge](Napi::Env) { bridge->closed = true; });
  bridge_->tsfn.Unref(env);  // only pending completions keep the process alive
  // At env teardown (process exit, worker.terminate()) Node finalizes the TSFN in a cleanup hook
  // registered before this one; hooks run last-in first-out, so this one stops the loop and
  // releases the TSFN while it is still alive.
  env_ = env;
  if (napi_add_env_cleanup_hook(env, OnEnvCleanup, this) == napi_ok) cleanupHook_ = true;
}

VisionModel::~VisionModel() {
  // Garbage-collected without close(): stop the loop and free everything now.
  if (cleanupHook_) {
    napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
    cleanupHook_ = false;
  }
  ShutDown();
  ReleaseBridge();
}

void VisionModel::OnEnvCleanup(void* self) {
  auto* model = static_cast<VisionModel*>(self);
  model->cleanupHook_ = false;
  model->state_ = State::kClosed;
  model->ShutDown();
  model->ReleaseBridge();
}

void VisionModel::ShutDown() {
  std::lock_guard<std::mutex> one(lifecycleMutex_);
  Engine* engine = nullptr;
  {
    std::lock_guard<std::mutex> lock(engineMutex_);
    engine = engine_.get();
  }
  if (engine) {
    engine->Stop();  // waits for the loop; stats() meanwhile still reads the live engine
    std::unique_ptr<Engine> gone;
    {
      std::lock_guard<std::mutex> lock(engineMutex_);
      finalStats_ = engine_->Stats();
      gone = std::move(engine_);
    }
  }
  loaded_.Free();
}

void VisionModel::ReleaseBridge() {
  if (!bridge_ || bridge_->released) return;
  bridge_->released = true;
  if (!bridge_->closed) bridge_->tsfn.Release();
}

namespace {

// Calls the completion callback with (id, error, result) on the JS thread.
void Deliver(Napi::Env env, Napi::Function callback, const Completion& c) {
  Napi::Value id = Napi::Number::New(env, static_cast<double>(c.id));
  if (!c.ok) {
    callback.Call({id, MakeError(env, c.code, c.message), env.Undefined()});
    return;
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("text", Napi::String::New(env, c.output.text));
  result.Set("finishReason", c.output.finishReason);
  result.Set("promptTokens", c.output.promptTokens);
  result.Set("prefixTokens", c.output.prefixTokens);
  result.Set("generatedTokens", c.output.generatedTokens);
  result.Set("prefixReused", c.output.prefixReused);
  Napi::Array tokens = Napi::Array::New(env, c.output.tokens.size());
  for (uint32_t i = 0; i < c.output.tokens.size(); ++i) tokens.Set(i, c.output.tokens[i]);
  result.Set("tokens", tokens);
  if (!c.output.draftLogProbs.empty()) {
    Napi::Array logProbs = Napi::Array::New(env, c.output.draftLogProbs.size());
    for (uint32_t i = 0; i < c.output.draftLogProbs.size(); ++i) logProbs.Set(i, static_cast<double>(c.output.draftLogProbs[i]));
    result.Set("draftLogProbs", logProbs);
  }
  callback.Call({id, env.Null(), result});
}

}  // namespace

Engine::Sink VisionModel::MakeSink() {
  std::shared_ptr<CompletionBridge> bridge = bridge_;
  return [bridge](Completion&& done) {
    // Node is tearing the environment down, or the process is exiting: nobody is listening.
    if (bridge->closed || Engine::ProcessExiting()) return;
    auto* heap = new Completion(std::move(done));
    napi_status status = bridge->tsfn.BlockingCall(heap, [bridge](Napi::Env env, Napi::Function callback, Completion* c) {
      std::unique_ptr<Completion> owned(c);
      // No C++ exception may leave a TSFN callback (std::terminate): while a worker is being
      // terminated every call into JS throws; otherwise the callback's own exception goes back
      // to JS as an uncaught exception, where it belongs.
      try {
        if (--bridge->pending == 0 && env && !bridge->released) bridge->tsfn.Unref(env);
        if (env && callback) Deliver(env, callback, *c);
      } catch (const Napi::Error& e) {
        try {
          napi_throw(env, e.Value());
        } catch (...) {
        }
      }
    });
    if (status != napi_ok) {
      delete heap;
      if (status == napi_closing) bridge->closed = true;
    }
  };
}

void VisionModel::OnLoaded(EngineConfig config) {
  auto engine = std::make_unique<Engine>(loaded_.ctx, loaded_.mctx, loaded_.model, std::move(config), MakeSink());
  std::lock_guard<std::mutex> lock(engineMutex_);
  engine_ = std::move(engine);
  state_ = State::kReady;
}

void VisionModel::OnClosed() {
  state_ = State::kClosed;
  ReleaseBridge();
}

void VisionModel::RequireReady(Napi::Env env, const char* what) {
  if (state_ == State::kReady) return;
  if (state_ == State::kClosing || state_ == State::kClosed) {
    ThrowError(env, code::kClosed, std::string("cannot ") + what + ": the model is closed");
  }
  ThrowError(env, code::kInvalidArgument, std::string("cannot ") + what + ": the model is not loaded");
}

void VisionModel::Expect(Napi::Env env) {
  if (bridge_->pending++ == 0) bridge_->tsfn.Ref(env);
}

Napi::Value VisionModel::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kNew) ThrowError(env, code::kInvalidArgument, "load() can be called once");
  if (info.Length() < 1 || !info[0].IsObject()) ThrowError(env, code::kInvalidArgument, "load(options) needs an object");
  Napi::Object o = info[0].As<Napi::Object>();
  ModelLoadOptions options;
  options.modelPath = GetString(o, "model");
  options.mmprojPath = GetString(o, "mmproj");
  Napi::Value loras = o.Get("loras");
  if (loras.IsArray()) {
    Napi::Array list = loras.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); ++i) {
      Napi::Object lora = list.Get(i).As<Napi::Object>();
      options.loraPaths.push_back(GetString(lora, "path"));
      options.loraScales.push_back(static_cast<float>(GetNumber(lora, "scale", 1.0)));
    }
  }
  // lib/engine/vision-engine.ts checks these with messages for users; this keeps a direct caller from undefined
  // behaviour in the casts.
  options.gpuLayers = static_cast<int32_t>(GetInteger(o, "gpuLayers", -1, -1, INT32_MAX));
  options.contextSize = static_cast<uint32_t>(GetInteger(o, "contextSize", 4096, 1, UINT32_MAX));
  options.parallel = static_cast<int32_t>(GetInteger(o, "parallel", 8, 1, 255));
  options.prefixCache = static_cast<int32_t>(GetInteger(o, "prefixCache", options.parallel, 1, 255));
  options.batchSize = static_cast<int32_t>(GetInteger(o, "batchSize", 512, 1, INT32_MAX));
  options.threads = static_cast<int32_t>(GetInteger(o, "threads", 0, 0, 4096));
  options.samplingThreads = static_cast<int32_t>(GetInteger(o, "samplingThreads", 0, 0, 256));
  for (float scale : options.loraScales) {
    if (!std::isfinite(scale)) ThrowError(env, code::kInvalidArgument, "load(): every LoRA scale must be a finite number");
  }
  Napi::Value fa = o.Get("flashAttention");
  options.flashAttention = fa.IsBoolean() ? (fa.As<Napi::Boolean>().Value() ? 1 : 0) : -1;
  options.gpuVision = GetBool(o, "gpuVision", true);
  options.unifiedKv = GetBool(o, "unifiedKv", true);
  options.device = GetString(o, "device");
  options.label = GetString(o, "label");
  options.replica = static_cast<int>(GetInteger(o, "replica", -1, -1, 255));
  options.imageMinTokens = static_cast<int32_t>(GetInteger(o, "imageMinTokens", 0, 0, 1 << 20));
  options.imageMaxTokens = static_cast<int32_t>(GetInteger(o, "imageMaxTokens", 0, 0, 1 << 20));
  if (options.modelPath.empty() || options.mmprojPath.empty()) {
    ThrowError(env, code::kInvalidArgument, "load() needs model and mmproj paths");
  }
  if (options.parallel < 1 || options.prefixCache < 1 || options.parallel + options.prefixCache > 256) {
    ThrowError(env, code::kInvalidArgument, "parallel + prefixCache must be between 2 and 256");
  }
  if (options.parallel > options.batchSize) {
    // Every running sequence puts a token into each step's batch.
    ThrowError(env, code::kInvalidArgument, "parallel (" + std::to_string(options.parallel) + ") must not exceed batchSize (" +
                                                std::to_string(options.batchSize) + ")");
  }
  state_ = State::kLoading;
  auto* worker = new LoadWorker(this, Value(), std::move(options));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value VisionModel::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireReady(env, "generate");
  if (info.Length() < 1 || !info[0].IsObject()) ThrowError(env, code::kInvalidArgument, "submit(request) needs an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto request = std::make_unique<GenerateRequest>();
  request->beforeImage = GetString(o, "beforeImage");
  request->afterImage = GetString(o, "afterImage");
  request->prefixKey = GetString(o, "prefixKey");
  if (Napi::Value parts = o.Get("afterImageParts"); parts.IsArray()) {
    Napi::Array list = parts.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); ++i) {
      if (!list.Get(i).IsObject()) ThrowError(env, code::kInvalidArgument, "submit(): afterImageParts must be { text, special } objects");
      Napi::Object part = list.Get(i).As<Napi::Object>();
      request->afterImageParts.push_back({GetString(part, "text"), GetBool(part, "special", false)});
    }
  }
  // A square image of `size`, or any nx x ny (the families whose mtmd preprocessing takes the real size).
  const uint32_t size = static_cast<uint32_t>(GetInteger(o, "size", 0, 0, 1 << 15));
  const uint32_t nx = static_cast<uint32_t>(GetInteger(o, "nx", size, 0, 1 << 15));
  const uint32_t ny = static_cast<uint32_t>(GetInteger(o, "ny", size, 0, 1 << 15));
  Napi::Value rgb = o.Get("rgb");
  if (!rgb.IsTypedArray() || rgb.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowError(env, code::kInvalidArgument, "submit(): rgb must be a Uint8Array");
  }
  Napi::Uint8Array pixels = rgb.As<Napi::Uint8Array>();
  if (nx == 0 || ny == 0 || pixels.ElementLength() != static_cast<size_t>(nx) * ny * 3) {
    ThrowError(env, code::kInvalidArgument, "submit(): rgb must hold nx*ny*3 bytes (size*size*3 for a square image)");
  }
  request->rgb.assign(pixels.Data(), pixels.Data() + pixels.ElementLength());
  request->nx = nx;
  request->ny = ny;
  SamplingParams& s = request->sampling;
  s.temperature = static_cast<float>(GetNumber(o, "temperature", 0));
  s.topP = static_cast<float>(GetNumber(o, "topP", 1));
  if (!std::isfinite(s.temperature) || s.temperature < 0 || !std::isfinite(s.topP) || s.topP < 0 || s.topP > 1) {
    ThrowError(env, code::kInvalidArgument, "submit(): temperature must be a finite number >= 0 and topP one in [0, 1]");
  }
  s.topK = static_cast<int32_t>(GetInteger(o, "topK", -1, -1, INT32_MAX));
  s.seed = static_cast<uint32_t>(GetInteger(o, "seed", 0, 0, UINT32_MAX));
  s.maxTokens = static_cast<int32_t>(GetInteger(o, "maxTokens", 128, 1, INT32_MAX));
  s.ignoreEos = GetBool(o, "ignoreEos", false);
  s.grammar = GetString(o, "grammar");
  request->draftText = GetString(o, "draftText");
  {
    const int32_t nVocab = llama_vocab_n_tokens(llama_model_get_vocab(loaded_.model));
    request->draftEnd = static_cast<llama_token>(GetInteger(o, "draftEnd", -1, -1, nVocab - 1));
  }
  request->forceDraft = GetBool(o, "forceDraft", false);
  if (Napi::Value draft = o.Get("draftTokens"); draft.IsArray()) {
    Napi::Array list = draft.As<Napi::Array>();
    const int32_t nVocab = llama_vocab_n_tokens(llama_model_get_vocab(loaded_.model));
    for (uint32_t i = 0; i < list.Length(); ++i) {
      Napi::Value token = list.Get(i);
      const double id = token.IsNumber() ? token.As<Napi::Number>().DoubleValue() : -1.0;
      // An id outside the vocabulary would fail the whole step's llama_decode, other requests included.
      if (!(id >= 0 && id < nVocab) || id != static_cast<double>(static_cast<int32_t>(id))) {
        ThrowError(env, code::kInvalidArgument, "submit(): draftTokens must be token ids in [0, " + std::to_string(nVocab) + ")");
      }
      request->draft.push_back(static_cast<llama_token>(id));
    }
  }
  const uint64_t id = nextId_++;
  request->id = id;
  Expect(env);
  engine_->Submit(std::move(request));
  return Napi::Number::New(env, static_cast<double>(id));
}

Napi::Value VisionModel::Cancel(const Napi::CallbackInfo& info) {
  if (state_ == State::kReady && info.Length() > 0 && info[0].IsNumber()) {
    engine_->Cancel(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
  }
  return info.Env().Undefined();
}

Napi::Value VisionModel::SetLoraScales(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireReady(env, "set LoRA scales");
  if (info.Length() < 1 || !info[0].IsArray()) ThrowError(env, code::kInvalidArgument, "setLoraScales(scales) needs an array");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<float> scales;
  for (uint32_t i = 0; i < list.Length(); ++i) scales.push_back(static_cast<float>(list.Get(i).As<Napi::Number>().DoubleValue()));
  const uint64_t id = nextId_++;
  Expect(env);
  engine_->SetLoraScales(id, std::move(scales));
  return Napi::Number::New(env, static_cast<double>(id));
}

Napi::Value VisionModel::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  EngineStats s;
  {
    // close() may be freeing the engine on a worker thread right now: a closed model answers its
    // final counts.
    std::lock_guard<std::mutex> lock(engineMutex_);
    s = engine_ ? engine_->Stats() : finalStats_;
  }
  out.Set("steps", static_cast<double>(s.steps));
  out.Set("generatedTokens", static_cast<double>(s.generatedTokens));
  out.Set("promptTokens", static_cast<double>(s.promptTokens));
  out.Set("prefixTokens", static_cast<double>(s.prefixTokens));
  out.Set("prefixSharedTokens", static_cast<double>(s.prefixSharedTokens));
  out.Set("prefixHits", static_cast<double>(s.prefixHits));
  out.Set("prefixMisses", static_cast<double>(s.prefixMisses));
  out.Set("completed", static_cast<double>(s.completed));
  out.Set("failed", static_cast<double>(s.failed));
  out.Set("prefixEvalMs", s.prefixEvalMs);
  out.Set("imageEncodeMs", s.imageEncodeMs);
  out.Set("decodeMs", s.decodeMs);
  out.Set("sampleMs", s.sampleMs);
  out.Set("draftTokens", static_cast<double>(s.draftTokens));
  out.Set("draftAccepted", static_cast<double>(s.draftAccepted));
  out.Set("active", s.active);
  out.Set("queued", s.queued);
  return out;
}

Napi::Value VisionModel::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ == State::kClosing || state_ == State::kClosed || state_ == State::kNew) {
    if (state_ == State::kNew) OnClosed();
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Resolve(env.Undefined());
    return deferred.Promise();
  }
  if (state_ == State::kLoading) ThrowError(env, code::kInvalidArgument, "close(): wait for load() to settle first");
  state_ = State::kClosing;
  auto* worker = new CloseWorker(this, Value());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace srf
