#include "engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>

#include "clock.h"
#include "errors.h"
#include "fatal_abort.h"
#include "ggml.h"
#include "logging.h"
#include "mtmd-helper.h"

namespace srf {
namespace {

// parse_special=false by default: text after the image may quote model output, which must stay text.
std::vector<llama_token> Tokenize(const llama_vocab* vocab, const std::string& text, bool parseSpecial = false) {
  std::vector<llama_token> tokens(text.size() + 8);
  int32_t n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                             static_cast<int32_t>(tokens.size()), false, parseSpecial);
  if (n < 0) {
    tokens.resize(-n);
    n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                       static_cast<int32_t>(tokens.size()), false, parseSpecial);
  }
  tokens.resize(std::max(n, 0));
  return tokens;
}

// A chat template's text after the image. llama-server tokenizes the whole rendered prompt with
// special tokens parsed; so does this, unless the user's text itself holds special-token text
// (then that text alone is tokenized as text, so a quoted "<|im_end|>" cannot end the turn).
std::vector<llama_token> TokenizeParts(const llama_vocab* vocab, const std::vector<GenerateRequest::TextPart>& parts) {
  std::string whole;
  bool userTextIsPlain = true;
  for (const auto& part : parts) {
    whole += part.text;
    if (!part.special && Tokenize(vocab, part.text, true) != Tokenize(vocab, part.text, false)) userTextIsPlain = false;
  }
  if (userTextIsPlain) return Tokenize(vocab, whole, true);
  std::vector<llama_token> tokens;
  for (const auto& part : parts) {
    const std::vector<llama_token> piece = Tokenize(vocab, part.text, part.special);
    tokens.insert(tokens.end(), piece.begin(), piece.end());
  }
  return tokens;
}

// What ends a reply in a text draft: the end-of-turn token where the vocabulary has one (chatml's
// <|im_end|>, Gemma's <end_of_turn>), else end-of-sequence.
llama_token ReplyEndToken(const llama_vocab* vocab) {
  const llama_token eot = llama_vocab_eot(vocab);
  return eot != LLAMA_TOKEN_NULL ? eot : llama_vocab_eos(vocab);
}

// `text` tokenized as it continues `context`, whose own tokens are `head` (the tokens after those),
// or empty when the two do not split there (a token spans the boundary).
std::vector<llama_token> ContinuationTokens(const llama_vocab* vocab, const std::vector<llama_token>& head, const std::string& context,
                                            const std::string& text) {
  std::vector<llama_token> whole = Tokenize(vocab, context + text);
  if (whole.size() <= head.size() || !std::equal(head.begin(), head.end(), whole.begin())) return {};
  return std::vector<llama_token>(whole.begin() + static_cast<std::ptrdiff_t>(head.size()), whole.end());
}

// Appends a token's text. Pieces longer than the stack buffer are fetched again with the size
// llama.cpp asks for (a negative return), not dropped.
void AppendPiece(const llama_vocab* vocab, llama_token token, std::string& out) {
  char piece[256];
  int32_t n = llama_token_to_piece(vocab, token, piece, sizeof(piece), 0, false);
  if (n >= 0) {
    out.append(piece, static_cast<size_t>(n));
    return;
  }
  std::string big(static_cast<size_t>(-n), '\0');
  n = llama_token_to_piece(vocab, token, big.data(), static_cast<int32_t>(big.size()), 0, false);
  if (n > 0) out.append(big.data(), static_cast<size_t>(n));
}

// Draft rows per sequence and step: the first try, and the most once the model keeps confirming.
constexpr size_t kFirstDraftChunk = 4;
constexpr size_t kMaxDraftChunk = 32;

// An srf::Error's code; anything else thrown (bad_alloc, llama.cpp's runtime_error) is DECODE_FAILED.
std::string CodeOf(const std::exception& e) {
  const auto* coded = dynamic_cast<const Error*>(&e);
  return coded ? coded->code() : code::kDecodeFailed;
}

bool AbortRequested(void* engineAbort) { return static_cast<std::atomic<bool>*>(engineAbort)->load(); }

// Every live engine, for StopAllAtExit().
std::mutex g_enginesMutex;
std::set<Engine*> g_engines;
std::atomic<bool> g_exiting{false};

}  // namespace

struct Engine::Slot {
  // Free -> Prompt (admitted: its prompt tokens go into steps) -> Generating (a sampled token to
  // decode next step, until the reply ends) -> Free.
  enum class Phase { kFree, kPrompt, kGenerating };

  Phase phase = Phase::kFree;
  llama_seq_id seq = 0;
  std::unique_ptr<GenerateRequest> request;  // set unless free
  std::unique_ptr<RequestSampler> sampler;
  std::shared_ptr<PrefixEntry> prefix;
  std::vector<llama_token> pending;  // prompt tokens not yet decoded
  size_t pendingDone = 0;
  llama_pos pos = 0;
  llama_token next = LLAMA_TOKEN_NULL;  // Generating: sampled, to be decoded in the next step
  int32_t outputIndex = -1;             // this step's logits row, or -1
  size_t stepPrompt = 0;                // prompt tokens put into this step's batch
  int64_t reserved = 0;                 // KV cells reserved for prompt + generation (KvBudget)
  uint64_t admittedAt = 0;              // Engine::admissions_ when admitted: larger = newer
  GenerateOutput output;
  // Sampling: this step's logits rows (the next token's, then its draft rows') and what they gave.
  std::vector<const float*> rows;
  std::vector<llama_token> sampled;
  // Drafting (GenerateRequest::draft): on while every token so far matched the draft.
  bool drafting = false;
  size_t draftChunk = 0;   // draft rows to try next step: grows while the model confirms them
  size_t stepDraft = 0;    // draft rows put into this step's batch

  bool Free() const { return phase == Phase::kFree; }
  bool Generating() const { return phase == Phase::kGenerating; }
  // Whether this step's batch holds any of its tokens (a row to sample, or prompt tokens).
  bool InStep() const { return !Free() && (outputIndex >= 0 || stepPrompt > 0); }

  // Starts `req` on its prefix (whose cells the slot's sequence now shares): its prompt after the
  // image is what the steps decode first.
  void Start(std::unique_ptr<GenerateRequest> req, std::shared_ptr<PrefixEntry> entry, std::unique_ptr<RequestSampler> requestSampler,
             bool reused, int64_t cells, uint64_t order) {
    phase = Phase::kPrompt;
    request = std::move(req);
    sampler = std::move(requestSampler);
    prefix = std::move(entry);
    pending = std::move(request->suffix);
    request->prefixChunks.reset();
    pendingDone = 0;
    pos = prefix->nPast;
    next = LLAMA_TOKEN_NULL;
    // Drafting is on for greedy requests without a grammar.
    drafting = !request->draft.empty() && sampler->PlainGreedy();
    draftChunk = kFirstDraftChunk;
    reserved = cells;
    admittedAt = order;
    output = GenerateOutput{};
    output.prefixReused = reused;
    output.prefixTokens = prefix->nTokens;
    output.promptTokens = static_cast<int32_t>(pending.size());
  }

  // Free again (the engine has dropped its sequence's cells and released its prefix and budget).
  void Reset() {
    phase = Phase::kFree;
    prefix.reset();
    request.reset();
    sampler.reset();
    pending.clear();
    reserved = 0;
    next = LLAMA_TOKEN_NULL;
    outputIndex = -1;
    stepPrompt = 0;
  }
};

Engine::Engine(llama_context* ctx, mtmd_context* mctx, const llama_model* model, EngineConfig config, Sink sink)
    : ctx_(ctx),
      mctx_(mctx),
      vocab_(llama_model_get_vocab(model)),
      config_(std::move(config)),
      sink_(std::move(sink)),
      grammars_(vocab_),
      prefixes_(ctx, config_.parallel, config_.prefixCache),
      kv_(static_cast<int64_t>(llama_n_ctx(ctx)), config_.streamCells, prefixes_),
      failpoints_(config_.replica),
      samplers_(std::make_unique<WorkerPool>(config_.samplingThreads > 0 ? config_.samplingThreads
                                                                          : WorkerPool::DefaultThreads())) {
  for (int32_t i = 0; i < config_.parallel; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->seq = i;
  }
  // Stop() ends a decode between ubatches (and between graph nodes on the CPU) instead of waiting
  // for a whole image prefix: close() returns promptly.
  llama_set_abort_callback(ctx_, AbortRequested, &abort_);
  if (const char* path = std::getenv("SRF_TRACE"); path && *path) {
    trace_ = std::fopen(path, "a");
    if (!trace_) std::fprintf(stderr, "srf-native: SRF_TRACE: cannot open %s for appending; no trace\n", path);
  }
  thread_ = std::thread([this] { Run(); });
  // Registered once a model is loaded: after the function-local statics llama.cpp and ggml build
  // on first use (the CPU backend's buffer types, ...), so it runs before they are destroyed.
  static std::once_flag atExit;
  std::call_once(atExit, [] { std::atexit(StopAllAtExit); });
  std::lock_guard<std::mutex> lock(g_enginesMutex);
  g_engines.insert(this);
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(g_enginesMutex);
    g_engines.erase(this);
  }
  Stop();
  if (trace_) std::fclose(trace_);
}

void Engine::Submit(std::unique_ptr<GenerateRequest> request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(request));
      wake_.notify_one();
      return;
    }
  }
  // After Stop() (VisionModel refuses that earlier; this keeps the promise anyway). Only the sink:
  // the loop's own state is the loop thread's.
  counters_.failed++;
  sink_(Completion{request->id, false, code::kClosed, "the model is closed", {}});
}

void Engine::StopAllAtExit() {
  g_exiting = true;
  std::lock_guard<std::mutex> lock(g_enginesMutex);
  for (Engine* engine : g_engines) engine->Stop();
}

bool Engine::ProcessExiting() { return g_exiting; }

void Engine::Cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancels_.insert(id);
  }
  wake_.notify_one();
}

void Engine::SetLoraScales(uint64_t id, std::vector<float> scales) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) {
      loraQueue_.push_back({id, std::move(scales)});
      wake_.notify_one();
      return;
    }
  }
  sink_(Completion{id, false, code::kClosed, "the model is closed", {}});
}

void Engine::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  abort_ = true;
  wake_.notify_one();
  std::lock_guard<std::mutex> join(joinMutex_);
  if (thread_.joinable()) thread_.join();
}

EngineStats EngineCounters::Snapshot() const {
  EngineStats s;
  s.steps = steps;
  s.generatedTokens = generatedTokens;
  s.promptTokens = promptTokens;
  s.prefixTokens = prefixTokens;
  s.prefixSharedTokens = prefixSharedTokens;
  s.prefixHits = prefixHits;
  s.prefixMisses = prefixMisses;
  s.completed = completed;
  s.failed = failed;
  s.prefixEvalMs = prefixEvalUs / 1000.0;
  s.imageEncodeMs = imageEncodeUs / 1000.0;
  s.decodeMs = decodeUs / 1000.0;
  s.sampleMs = sampleUs / 1000.0;
  s.draftTokens = draftTokens;
  s.draftAccepted = draftAccepted;
  s.active = active;
  s.queued = waiting;
  return s;
}

EngineStats Engine::Stats() const {
  EngineStats s = counters_.Snapshot();
  {
    // Not yet taken by the loop, plus taken but not yet admitted.
    std::lock_guard<std::mutex> lock(mutex_);
    s.queued = static_cast<uint32_t>(queue_.size()) + counters_.waiting;
  }
  return s;
}

int32_t Engine::ActiveCount() const {
  int32_t n = 0;
  for (auto& slot : slots_) n += slot->Free() ? 0 : 1;
  return n;
}

// Counters are published before each completion, so JS never sees a settled request as active.
void Engine::PublishCounts() {
  size_t waiting = 0;
  for (auto& r : waiting_) waiting += r ? 1 : 0;
  counters_.waiting = static_cast<uint32_t>(waiting);
  counters_.active = static_cast<uint32_t>(ActiveCount());
}

std::string Engine::DeviceLostMessage(const std::string& why) {
  return "the device stopped working (" + std::to_string(kDeviceLostAfter) + " decodes or image encodes in a row failed; the last: " + why +
         "): this engine takes no more requests";
}

void Engine::Reject(const GenerateRequest& request, const std::string& code, const std::string& message) {
  counters_.failed++;
  PublishCounts();
  sink_(Completion{request.id, false, code, message, {}});
}

void Engine::TakeMessages(std::deque<std::unique_ptr<GenerateRequest>>& waiting, std::set<uint64_t>& cancels,
                          std::deque<LoraChange>& loraChanges) {
  while (!queue_.empty()) {
    waiting.push_back(std::move(queue_.front()));
    queue_.pop_front();
    counters_.waiting++;  // under the lock Stats() takes, so a request is never counted nowhere
  }
  cancels.insert(cancels_.begin(), cancels_.end());
  cancels_.clear();
  while (!loraQueue_.empty()) {
    loraChanges.push_back(std::move(loraQueue_.front()));
    loraQueue_.pop_front();
  }
}

void Engine::Run() {
  SetThreadEngineLabel(config_.label);
  llama_batch batch = llama_batch_init(config_.batchSize, 0, 1);
  std::deque<std::unique_ptr<GenerateRequest>>& waiting = waiting_;
  std::deque<LoraChange> loraChanges;
  for (;;) {
    std::set<uint64_t> cancels;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      auto hasFreeSlot = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](auto& s) { return s->Free(); });
      };
      wake_.wait(lock, [&] {
        return stopping_ || !cancels_.empty() || !loraQueue_.empty() || !loraChanges.empty() ||
               ActiveCount() > 0 || ((!queue_.empty() || !waiting.empty()) && hasFreeSlot());
      });
      if (stopping_) break;
      TakeMessages(waiting, cancels, loraChanges);
    }

    // Cancellation, whether queued or running.
    if (!cancels.empty()) {
      for (auto it = waiting.begin(); it != waiting.end();) {
        if (cancels.count((*it)->id)) {
          std::unique_ptr<GenerateRequest> cancelled = std::move(*it);
          it = waiting.erase(it);
          Reject(*cancelled, code::kAborted, "the request was cancelled");
        } else {
          ++it;
        }
      }
      for (auto& slot : slots_) {
        if (!slot->Free() && cancels.count(slot->request->id)) Fail(*slot, code::kAborted, "the request was cancelled");
      }
    }

    // A LoRA change is a barrier: admit nothing until running requests finish, then apply it.
    if (!loraChanges.empty()) {
      if (ActiveCount() == 0) {
        LoraChange change = std::move(loraChanges.front());
        loraChanges.pop_front();
        try {
          ApplyLoras(change.scales);
          sink_(Completion{change.id, true, "", "", {}});
        } catch (const Error& e) {
          sink_(Completion{change.id, false, e.code(), e.what(), {}});
        }
        continue;
      }
    } else {
      AdmitWaiting(waiting);
    }
    PublishCounts();
    if (counters_.active == 0) continue;
    // Nothing may escape this thread (that would be std::terminate): what llama.cpp throws fails
    // the requests of this step, and the loop goes on serving the others.
    try {
      Step(batch);
    } catch (const std::exception& e) {
      const std::string message = std::string("decoding failed: ") + e.what();
      NoteComputeResult(false, message, "");
      FailStep(deviceLostWhy_.empty() ? code::kDecodeFailed : code::kDeviceFailed, message);
    }
    if (!deviceLostWhy_.empty()) FailAllDeviceLost(waiting);
  }

  for (auto& slot : slots_) {
    if (!slot->Free()) Fail(*slot, code::kClosed, "the model was closed while the request was running");
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::set<uint64_t> ignored;
    TakeMessages(waiting, ignored, loraChanges);
  }
  std::deque<std::unique_ptr<GenerateRequest>> closing = std::move(waiting);
  waiting.clear();
  for (auto& request : closing) Reject(*request, code::kClosed, "the model was closed before the request ran");
  for (auto& change : loraChanges) sink_(Completion{change.id, false, code::kClosed, "the model is closed", {}});
  counters_.active = 0;
  counters_.waiting = 0;
  llama_batch_free(batch);
}

// Admits waiting requests, in order, into free slots while the KV cache has room for them.
void Engine::AdmitWaiting(std::deque<std::unique_ptr<GenerateRequest>>& waiting) {
  if (!deviceLostWhy_.empty()) return FailAllDeviceLost(waiting);
  for (auto& slot : slots_) {
    if (waiting.empty()) break;
    if (!slot->Free()) continue;
    bool done = true;
    try {
      done = AdmitOne(waiting.front(), *slot);
    } catch (const std::exception& e) {
      // AdmitOne cleans up after its own failures; this is what it did not expect (bad_alloc).
      if (waiting.front()) {
        std::unique_ptr<GenerateRequest> failed = std::move(waiting.front());
        Reject(*failed, code::kDecodeFailed, std::string("admitting the request failed: ") + e.what());
      }
    }
    if (!done) break;  // no room yet: wait for running requests
    waiting.pop_front();
  }
}

// Starts `request` in `slot`. Returns false (request left in place) when the KV cache has no room
// for it yet; a request that can never fit, or that fails, is completed with its error and true.
bool Engine::AdmitOne(std::unique_ptr<GenerateRequest>& request, Slot& slot) {
  GenerateRequest& req = *request;
  std::shared_ptr<PrefixEntry> prefix;  // pinned (users + 1) while held here
  auto reject = [&](const std::string& code, const std::string& message) {
    if (prefix) prefixes_.Release(prefix);
    std::unique_ptr<GenerateRequest> owned = std::move(request);  // no longer counted as waiting
    Reject(*owned, code, message);
    return true;
  };
  if (failpoints_.Hit("admit-throw")) throw std::runtime_error("failpoint admit-throw");
  prefix = prefixes_.Find(req.prefixKey);
  if (prefix) prefix->users++;
  try {
    TokenizeRequest(req, !prefix);
  } catch (const std::exception& e) {
    return reject(CodeOf(e), e.what());
  }
  if (req.suffix.empty()) return reject(code::kInvalidArgument, "the prompt after the image is empty");

  // The cells this request adds: its prompt and reply, plus its prefix when that is new (its
  // real size: the request is tokenized by now).
  const int64_t own = static_cast<int64_t>(req.suffix.size()) + req.sampling.maxTokens;
  const int64_t prefixTokens = prefix ? prefix->nTokens : static_cast<int64_t>(mtmd_helper_get_n_tokens(req.prefixChunks.get()));
  const KvBudget::Decision room = kv_.Admit(own, prefixTokens, static_cast<bool>(prefix), ActiveCount() > 0);
  if (room.verdict == KvBudget::Verdict::kNever) return reject(code::kContextTooSmall, room.message);
  if (room.verdict == KvBudget::Verdict::kWait) {
    if (prefix) prefixes_.Release(prefix);
    return false;
  }

  const bool reused = static_cast<bool>(prefix);
  if (!prefix) {
    try {
      prefix = EvaluatePrefix(req);
    } catch (const Error& e) {
      return reject(e.code(), e.what());
    }
    prefix->users++;
  }
  std::unique_ptr<RequestSampler> sampler;
  try {
    sampler = std::make_unique<RequestSampler>(vocab_, req.sampling, grammars_);
  } catch (const std::exception& e) {
    return reject(CodeOf(e), e.what());
  }
  (reused ? counters_.prefixHits : counters_.prefixMisses)++;
  llama_memory_seq_rm(llama_get_memory(ctx_), slot.seq, -1, -1);
  llama_memory_seq_cp(llama_get_memory(ctx_), prefix->seq, slot.seq, -1, -1);
  kv_.Reserve(own);
  slot.Start(std::move(request), prefix, std::move(sampler), reused, own, ++admissions_);
  return true;
}

// Tokenizes the text after the image and, when its prefix must be evaluated, `beforeImage +
// <image>` (mtmd also preprocesses the pixels here). Once per request, however long it waits.
void Engine::TokenizeRequest(GenerateRequest& req, bool needPrefix) {
  if (!req.tokenized) {
    req.suffix = req.afterImageParts.empty() ? Tokenize(vocab_, req.afterImage) : TokenizeParts(vocab_, req.afterImageParts);
    // A text draft is tokenized as the start of a reply, its end token last, two ways: with the
    // vocabulary's space prefix (llama_tokenize's), as LLaVA's replies start ("▁What"), and as
    // continuing the prompt's text, as the replies of a model trained without it start ("What").
    if (!req.draftText.empty()) {
      req.draft = Tokenize(vocab_, req.draftText);
      if (req.afterImageParts.empty()) req.draftContinued = ContinuationTokens(vocab_, req.suffix, req.afterImage, req.draftText);
      if (req.draftContinued == req.draft) req.draftContinued.clear();
      const llama_token end = req.draftEnd != LLAMA_TOKEN_NULL ? req.draftEnd : ReplyEndToken(vocab_);
      if (end != LLAMA_TOKEN_NULL) {
        req.draft.push_back(end);
        if (!req.draftContinued.empty()) req.draftContinued.push_back(end);
      }
    }
    req.tokenized = true;
  }
  if (!needPrefix || req.prefixChunks) return;
  std::shared_ptr<mtmd_input_chunks> chunks(mtmd_input_chunks_init(), mtmd_input_chunks_free);
  mtmd_bitmap* bitmap = mtmd_bitmap_init(req.nx, req.ny, req.rgb.data());
  if (!bitmap) throw Error(code::kImageEncodeFailed, "could not create the image bitmap");
  mtmd_bitmap_set_id(bitmap, req.prefixKey.c_str());
  std::string text = req.beforeImage + mtmd_default_marker();
  mtmd_input_text input{text.c_str(), text.size(), true, true};
  const mtmd_bitmap* bitmaps[] = {bitmap};
  const int32_t rc = mtmd_tokenize(mctx_, chunks.get(), &input, bitmaps, 1);
  mtmd_bitmap_free(bitmap);
  if (rc != 0) throw Error(code::kImageEncodeFailed, "mtmd could not preprocess the image (code " + std::to_string(rc) + ")");
  // Gemma 3 decodes an image's tokens with non-causal attention, which holds only within one
  // ubatch: mtmd would split a larger image and answer wrongly without a word.
  for (size_t i = 0; i < mtmd_input_chunks_size(chunks.get()); ++i) {
    const mtmd_input_chunk* chunk = mtmd_input_chunks_get(chunks.get(), i);
    if (mtmd_input_chunk_get_type(chunk) != MTMD_INPUT_CHUNK_TYPE_IMAGE || !mtmd_decode_use_non_causal(mctx_, chunk)) continue;
    const size_t n = mtmd_input_chunk_get_n_tokens(chunk);
    if (n > static_cast<size_t>(config_.batchSize)) {
      throw Error(code::kContextTooSmall, "this model decodes an image's " + std::to_string(n) +
                                              " tokens in one batch (non-causal attention), but batchSize is " +
                                              std::to_string(config_.batchSize) + ": raise batchSize to at least " + std::to_string(n));
    }
  }
  req.prefixChunks = std::move(chunks);
}

// Evaluates the request's tokenized prefix into a cache sequence of its own (AdmitOne made room).
std::shared_ptr<PrefixEntry> Engine::EvaluatePrefix(GenerateRequest& req) {
  const auto start = Clock::now();
  const mtmd_input_chunks* chunks = req.prefixChunks.get();
  const int64_t nTokens = static_cast<int64_t>(mtmd_helper_get_n_tokens(chunks));
  llama_seq_id seq = prefixes_.ReserveSeq();
  auto entry = std::make_shared<PrefixEntry>();
  entry->key = req.prefixKey;
  entry->seq = seq;
  entry->nTokens = static_cast<int32_t>(nTokens);
  llama_memory_seq_rm(llama_get_memory(ctx_), seq, -1, -1);
  TakeRecentErrors();
  // mtmd_helper_eval_chunks, unrolled so that the vision encoder's share is measured on its own.
  llama_pos nPast = 0;
  uint64_t encodeUs = 0;
  int64_t sharedTokens = 0;
  int32_t rc = 0;
  std::string thrown;
  if (deviceLost_) rc = -3;
  try {
    for (size_t i = 0; rc == 0 && i < mtmd_input_chunks_size(chunks); ++i) {
      const mtmd_input_chunk* chunk = mtmd_input_chunks_get(chunks, i);
      if (i == 0 && mtmd_input_chunk_get_type(chunk) == MTMD_INPUT_CHUNK_TYPE_TEXT) {
        rc = EvaluateTextBeforeImage(chunk, seq, &nPast, &sharedTokens);
        continue;
      }
      if (mtmd_input_chunk_get_type(chunk) != MTMD_INPUT_CHUNK_TYPE_IMAGE) {
        rc = mtmd_helper_eval_chunk_single(mctx_, ctx_, chunk, nPast, seq, config_.batchSize, false, &nPast);
        continue;
      }
      const auto encodeStart = Clock::now();
      rc = mtmd_encode_chunk(mctx_, chunk);
      encodeUs += MicrosSince(encodeStart);
      if (rc == 0) {
        rc = mtmd_helper_decode_image_chunk(mctx_, ctx_, chunk, mtmd_get_output_embd(mctx_), nPast, seq,
                                            config_.batchSize, &nPast, nullptr, nullptr);
      }
    }
    llama_synchronize(ctx_);  // the image's last ubatch may still be running on a GPU
  } catch (const std::exception& e) {
    thrown = e.what();
    rc = -1;
  }
  req.prefixChunks.reset();
  counters_.imageEncodeUs += encodeUs;
  if (trace_) {
    std::fprintf(trace_, "{\"ev\":\"prefix\",\"tokens\":%lld,\"sharedTokens\":%lld,\"encodeUs\":%llu,\"totalUs\":%llu,\"active\":%d}\n",
                 static_cast<long long>(nTokens), static_cast<long long>(sharedTokens), static_cast<unsigned long long>(encodeUs),
                 static_cast<unsigned long long>(MicrosSince(start)), ActiveCount());
  }
  if (rc != 0) {
    prefixes_.ReturnSeq(seq);
    if (abort_) throw Error(code::kClosed, "the model was closed while the request's image was evaluated");
    std::string why = thrown.empty() ? TakeRecentErrors() : thrown;
    const std::string message = "evaluating the image prefix failed (code " + std::to_string(rc) + ")" + (why.empty() ? "" : ": " + why);
    NoteComputeResult(false, message, req.prefixKey);
    if (!deviceLostWhy_.empty()) throw Error(code::kDeviceFailed, DeviceLostMessage(deviceLostWhy_));
    throw Error(code::kImageEncodeFailed, message);
  }
  NoteComputeResult(true, "", "");
  entry->nPast = nPast;
  prefixes_.Insert(entry);
  counters_.prefixTokens += static_cast<uint64_t>(nTokens - sharedTokens);
  counters_.prefixSharedTokens += static_cast<uint64_t>(sharedTokens);
  counters_.prefixEvalUs += MicrosSince(start);
  return entry;
}

// The prefix's text before the image: restored from the last image's (SharedText), or evaluated
// and saved for the next. Returns mtmd's code; *sharedTokens = the tokens restored.
int32_t Engine::EvaluateTextBeforeImage(const mtmd_input_chunk* chunk, llama_seq_id seq, llama_pos* nPast, int64_t* sharedTokens) {
  size_t n = 0;
  const llama_token* data = mtmd_input_chunk_get_tokens_text(chunk, &n);
  const std::vector<llama_token> tokens(data, data + n);
  const llama_pos restored = sharedText_.Restore(ctx_, tokens, seq);
  if (restored >= 0) {
    *nPast = restored;
    *sharedTokens = static_cast<int64_t>(n);
    return 0;
  }
  const auto start = Clock::now();
  const int32_t rc = mtmd_helper_eval_chunk_single(mctx_, ctx_, chunk, *nPast, seq, config_.batchSize, false, nPast);
  if (rc == 0) {
    llama_synchronize(ctx_);
    sharedText_.Save(ctx_, tokens, seq, MicrosSince(start));
  }
  return rc;
}

// Puts the step's tokens into `batch`: running sequences' next tokens, then (withPrompts) prompt
// tokens of new ones. Returns the token count.
int32_t Engine::FillBatch(llama_batch& batch, bool withPrompts) {
  batch.n_tokens = 0;
  auto add = [&](llama_token token, llama_pos pos, llama_seq_id seq, bool logits) {
    const int32_t i = batch.n_tokens++;
    batch.token[i] = token;
    batch.pos[i] = pos;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = seq;
    batch.logits[i] = logits;
    return i;
  };
  // Tokens go in sequence order (what llama.cpp's split by stream needs to keep a step in one
  // ubatch); running sequences' tokens are counted first so prompt chunks only take what is left.
  // Nothing is added past batchSize, whatever the counts (load keeps parallel <= batchSize, so
  // every running sequence gets its token).
  const int32_t capacity = config_.batchSize;
  int32_t running = 0;
  for (auto& slot : slots_) {
    slot->outputIndex = -1;
    slot->stepPrompt = 0;
    slot->stepDraft = 0;
    if (slot->Generating()) running++;
  }
  int32_t room = withPrompts ? std::max(0, capacity - running) : 0;
  // Draft rows ride behind their sequence's next token and take at most half of the room left, so
  // that new prompts still start; none when the step is cut down to its running tokens.
  size_t draftRoom = static_cast<size_t>(room) / 2;
  for (auto& slot : slots_) {
    if (slot->Free()) continue;
    slot->stepDraft = DraftRows(*slot, draftRoom);
    draftRoom -= slot->stepDraft;
    room -= static_cast<int32_t>(slot->stepDraft);
  }
  for (auto& slot : slots_) {
    if (slot->Free()) continue;
    if (slot->Generating()) {
      if (batch.n_tokens < capacity) {
        slot->outputIndex = add(slot->next, slot->pos, slot->seq, true);
        const size_t generated = static_cast<size_t>(slot->output.generatedTokens);
        for (size_t k = 0; k < slot->stepDraft; ++k) {
          add(slot->request->draft[generated + k], slot->pos + 1 + static_cast<llama_pos>(k), slot->seq, true);
        }
      } else {
        slot->stepDraft = 0;
      }
      continue;
    }
    if (slot->pendingDone >= slot->pending.size() || room <= 0) continue;
    const size_t n = std::min(static_cast<size_t>(room), slot->pending.size() - slot->pendingDone);
    for (size_t k = 0; k < n; ++k) {
      const size_t at = slot->pendingDone + k;
      const bool last = at + 1 == slot->pending.size();
      const int32_t i = add(slot->pending[at], slot->pos + static_cast<llama_pos>(k), slot->seq, last);
      if (last) slot->outputIndex = i;
    }
    slot->stepPrompt = n;
    room -= static_cast<int32_t>(n);
  }
  return batch.n_tokens;
}

int32_t Engine::Decode(llama_batch& batch) {
  if (failpoints_.Hit("step-throw")) throw std::runtime_error("failpoint step-throw");
  if (failpoints_.Hit("decode-full")) return 1;  // what llama_decode says when no KV slot is left
  if (failpoints_.Hit("ggml-abort")) GGML_ABORT("failpoint ggml-abort");  // what a CUDA error does
  // A lost device: from this step on every decode fails, as llama_decode does when the GPU is gone.
  if (deviceLost_ || failpoints_.Hit("device-lost")) {
    deviceLost_ = true;
    return -3;
  }
  return llama_decode(ctx_, batch);
}

// The request admitted last among those in this step's batch.
Engine::Slot* Engine::NewestInStep() {
  Slot* newest = nullptr;
  for (auto& slot : slots_) {
    if (!slot->InStep()) continue;
    if (!newest || slot->admittedAt > newest->admittedAt) newest = slot.get();
  }
  return newest;
}

// Counts decodes and image encodes that failed in a row; at kDeviceLostAfter the device is lost.
// `key` names what failed ('' for a decode step, the image's prefix key for an encode).
void Engine::NoteComputeResult(bool ok, const std::string& failure, const std::string& key) {
  if (ok) {
    computeFailuresInRow_ = 0;
    lastFailureKey_.clear();
    return;
  }
  if (!key.empty() && key == lastFailureKey_) return;
  lastFailureKey_ = key;
  if (++computeFailuresInRow_ >= kDeviceLostAfter && deviceLostWhy_.empty()) deviceLostWhy_ = failure;
}

// A lost device: what runs and what waits fails with DEVICE_FAILED (an engine replica goes down on
// it and its requests go to the others), and so does everything submitted later.
void Engine::FailAllDeviceLost(std::deque<std::unique_ptr<GenerateRequest>>& waiting) {
  const std::string message = DeviceLostMessage(deviceLostWhy_);
  for (auto& slot : slots_) {
    if (!slot->Free()) Fail(*slot, code::kDeviceFailed, message);
  }
  std::deque<std::unique_ptr<GenerateRequest>> failed = std::move(waiting);
  waiting.clear();
  for (auto& request : failed) {
    Reject(*request, code::kDeviceFailed, message);
  }
}

// Fails the requests whose tokens are in this step's batch.
void Engine::FailStep(const std::string& code, const std::string& message) {
  for (auto& slot : slots_) {
    if (!slot->InStep()) continue;
    Fail(*slot, code, message);
  }
}

void Engine::Step(llama_batch& batch) {
  if (FillBatch(batch, true) == 0) return;

  const auto start = Clock::now();
  int32_t rc = Decode(batch);
  // No KV slot for the batch (llama.cpp left the cache as it was): free idle prefixes; then defer
  // this step's prompt tokens, so running requests can finish and free cells; then drop the newest
  // request, as llama-server does, and try again with the others.
  bool withPrompts = true;
  while (rc == 1) {
    auto any = [&](auto test) { return std::any_of(slots_.begin(), slots_.end(), [&](auto& s) { return !s->Free() && test(*s); }); };
    if (prefixes_.EvictIdle()) {
    } else if (withPrompts && any([](Slot& s) { return s.stepPrompt > 0; }) && any([](Slot& s) { return s.Generating(); })) {
      withPrompts = false;
    } else if (Slot* newest = NewestInStep()) {
      Fail(*newest, code::kContextTooSmall,
           "the KV cache is full: this request, the newest, was stopped so that the others could go on; raise contextSize or lower parallel");
    }
    if (FillBatch(batch, withPrompts) == 0) return;
    rc = Decode(batch);
  }
  // On a GPU llama_decode returns once the work is queued; waiting here (sampling would wait
  // anyway) makes the step's time the device's time, not hide it in the next step or prefix.
  llama_synchronize(ctx_);
  const uint64_t stepUs = MicrosSince(start);
  counters_.decodeUs += stepUs;
  counters_.steps++;
  if (rc != 0) {
    if (abort_) return;  // Stop(): the loop fails what runs with CLOSED
    const std::string why = TakeRecentErrors();
    const std::string message = "llama_decode failed (code " + std::to_string(rc) + ")" + (why.empty() ? "" : ": " + why);
    NoteComputeResult(false, message, "");
    FailStep(deviceLostWhy_.empty() ? code::kDecodeFailed : code::kDeviceFailed, message);
    return;
  }
  NoteComputeResult(true, "", "");

  for (auto& slot : slots_) {
    if (slot->Free()) continue;
    if (slot->stepPrompt) {
      slot->pos += static_cast<llama_pos>(slot->stepPrompt);
      slot->pendingDone += slot->stepPrompt;
      counters_.promptTokens += slot->stepPrompt;
    }
  }
  const auto sampleStart = Clock::now();
  SampleRows();
  const uint64_t sampleUs = MicrosSince(sampleStart);
  counters_.sampleUs += sampleUs;
  if (trace_) {
    int32_t promptRows = 0, draftRows = 0;
    uint64_t grammarFull = 0;  // rows whose grammar went over the whole vocabulary this step
    for (auto& slot : slots_) {
      promptRows += static_cast<int32_t>(slot->stepPrompt);
      draftRows += static_cast<int32_t>(slot->stepDraft);
      if (slot->sampler) grammarFull += slot->sampler->TakeFullVocabularyPasses();
    }
    std::fprintf(trace_, "{\"ev\":\"step\",\"t\":%llu,\"rows\":%d,\"promptRows\":%d,\"draftRows\":%d,\"us\":%llu,\"sampleUs\":%llu,\"grammarFull\":%llu}\n",
                 static_cast<unsigned long long>(std::chrono::duration_cast<std::chrono::microseconds>(start - born_).count()),
                 batch.n_tokens, promptRows, draftRows, static_cast<unsigned long long>(stepUs),
                 static_cast<unsigned long long>(sampleUs), static_cast<unsigned long long>(grammarFull));
  }
  for (auto& slot : slots_) {
    if (!slot->Free() && slot->outputIndex >= 0) TakeSampled(*slot);
  }
}

// Draft rows for a running greedy sequence this step: the draft's next tokens after the one being
// decoded, as many as its chunk, the draft, maxTokens and `room` allow. The chunk starts small and
// doubles while the model confirms every row, so a draft the model disagrees with costs a few rows.
size_t Engine::DraftRows(Slot& slot, size_t room) const {
  const GenerateRequest& req = *slot.request;
  if (!slot.drafting || !slot.Generating()) return 0;
  const size_t generated = static_cast<size_t>(slot.output.generatedTokens);
  const size_t maxTokens = static_cast<size_t>(req.sampling.maxTokens);
  if (generated >= req.draft.size() || generated + 1 >= maxTokens) return 0;
  return std::min({slot.draftChunk, req.draft.size() - generated, maxTokens - generated - 1, room});
}

// Samples every row that has logits this step, on the worker pool (one slot per task: each
// sampler's state is its own, so the result does not depend on the threads). A drafting slot's
// rows are verified in order and stop at the first token that differs from the draft.
void Engine::SampleRows() {
  std::vector<Slot*> work;
  for (auto& slot : slots_) {
    if (slot->Free() || slot->outputIndex < 0) continue;
    slot->rows.clear();
    slot->sampled.clear();
    // llama_get_logits_ith may reorder the outputs on first use: called here, on one thread.
    for (size_t k = 0; k <= slot->stepDraft; ++k) slot->rows.push_back(llama_get_logits_ith(ctx_, slot->outputIndex + static_cast<int32_t>(k)));
    work.push_back(slot.get());
  }
  samplers_->ForEach(work.size(), [&](size_t i) {
    Slot& slot = *work[i];
    const size_t generated = static_cast<size_t>(slot.output.generatedTokens);
    if (slot.request->forceDraft && slot.drafting) {
      ForceDraftRows(slot, generated);
      return;
    }
    for (size_t k = 0; k < slot.rows.size(); ++k) {
      const llama_token token = slot.sampler->Sample(slot.rows[k]);
      slot.sampled.push_back(token);
      // Row k + 1 holds draft[generated + k]: valid only if the model chose that very token.
      if (k == slot.stepDraft || token != slot.request->draft[generated + k] || llama_vocab_is_eog(vocab_, token)) break;
    }
  });
}

// log P(token) under a row of logits: the row's log-softmax at `token`.
static float TokenLogProb(const float* row, int32_t nVocab, llama_token token) {
  float max = row[0];
  for (int32_t v = 1; v < nVocab; ++v) max = std::max(max, row[v]);
  double sum = 0;
  for (int32_t v = 0; v < nVocab; ++v) sum += std::exp(static_cast<double>(row[v] - max));
  return static_cast<float>(row[token] - max - std::log(sum));
}

// forceDraft: every row takes the draft's token (so every draft row is "confirmed") and records its
// log-probability. At the first token, of a text draft's two tokenizations the one the model finds
// more likely is followed.
void Engine::ForceDraftRows(Slot& slot, size_t generated) {
  GenerateRequest& req = *slot.request;
  const int32_t nVocab = llama_vocab_n_tokens(vocab_);
  for (size_t k = 0; k < slot.rows.size(); ++k) {
    const size_t at = generated + k;
    if (at == 0 && !req.draftContinued.empty() &&
        TokenLogProb(slot.rows[0], nVocab, req.draftContinued[0]) > TokenLogProb(slot.rows[0], nVocab, req.draft[0])) {
      req.draft.swap(req.draftContinued);
    }
    if (at >= req.draft.size()) {
      // A token-id draft without an end token: past it the reply goes on greedily, unscored.
      slot.sampled.push_back(slot.sampler->Sample(slot.rows[k]));
      break;
    }
    const llama_token token = req.draft[at];
    slot.output.draftLogProbs.push_back(TokenLogProb(slot.rows[k], nVocab, token));
    slot.sampled.push_back(token);
    if (llama_vocab_is_eog(vocab_, token)) break;
  }
}

// Hands a slot's sampled tokens to its reply, in order, until it finishes; drops the KV cells of
// draft rows the model did not confirm.
void Engine::TakeSampled(Slot& slot) {
  if (slot.Generating()) {
    const size_t confirmed = slot.sampled.size() - 1;  // draft rows whose input token the model chose
    counters_.draftTokens += slot.stepDraft;
    counters_.draftAccepted += confirmed;
    slot.pos += 1 + static_cast<llama_pos>(confirmed);
    if (confirmed < slot.stepDraft) llama_memory_seq_rm(llama_get_memory(ctx_), slot.seq, slot.pos, -1);
    if (slot.stepDraft > 0 && confirmed == slot.stepDraft) slot.draftChunk = std::min(2 * slot.draftChunk, kMaxDraftChunk);
    slot.next = LLAMA_TOKEN_NULL;
  }
  const SamplingParams& sp = slot.request->sampling;
  for (const llama_token token : slot.sampled) {
    if (token == LLAMA_TOKEN_NULL) {
      Finish(slot, "grammar");
      return;
    }
    const size_t at = static_cast<size_t>(slot.output.generatedTokens);
    // The reply's first token tells which tokenization of a text draft the model follows.
    GenerateRequest& req = *slot.request;
    if (slot.drafting && at == 0 && !req.draftContinued.empty() && req.draft[0] != token && req.draftContinued[0] == token) {
      req.draft.swap(req.draftContinued);
    }
    if (slot.drafting && (at >= req.draft.size() || req.draft[at] != token)) slot.drafting = false;
    if (llama_vocab_is_eog(vocab_, token)) {
      // A grammar lets an end token through only once it is complete: then the reply is done,
      // whether or not ignoreEos asks to go on (feeding the end token back would never end).
      if (!sp.ignoreEos) {
        Finish(slot, "eos");
        return;
      }
      if (!sp.grammar.empty()) {
        Finish(slot, "grammar");
        return;
      }
    }
    AppendPiece(vocab_, token, slot.output.text);
    slot.output.tokens.push_back(token);
    slot.output.generatedTokens++;
    counters_.generatedTokens++;
    if (slot.output.generatedTokens >= sp.maxTokens) {
      Finish(slot, "length");
      return;
    }
    slot.next = token;
    slot.phase = Slot::Phase::kGenerating;
  }
}

void Engine::Finish(Slot& slot, const char* reason) {
  slot.output.finishReason = reason;
  counters_.completed++;
  Completion done{slot.request->id, true, "", "", std::move(slot.output)};
  FreeSlot(slot);
  sink_(std::move(done));
}

void Engine::Fail(Slot& slot, const std::string& code, const std::string& message) {
  const uint64_t id = slot.request->id;
  counters_.failed++;
  FreeSlot(slot);
  sink_(Completion{id, false, code, message, {}});
}

// Drops the slot's sequence from the KV cache and makes the slot free again.
void Engine::FreeSlot(Slot& slot) {
  llama_memory_seq_rm(llama_get_memory(ctx_), slot.seq, -1, -1);
  prefixes_.Release(slot.prefix);
  kv_.Release(slot.reserved);
  slot.Reset();
  PublishCounts();
}

void Engine::ApplyLoras(const std::vector<float>& scales) {
  if (scales.size() != config_.loras.size()) {
    throw Error(code::kInvalidArgument, "expected " + std::to_string(config_.loras.size()) +
                                            " LoRA scales (one per loaded adapter), got " + std::to_string(scales.size()));
  }
  std::vector<llama_adapter_lora*> active;
  std::vector<float> activeScales;
  for (size_t i = 0; i < scales.size(); ++i) {
    if (scales[i] != 0.0f) {
      active.push_back(config_.loras[i]);
      activeScales.push_back(scales[i]);
    }
  }
  if (llama_set_adapters_lora(ctx_, active.empty() ? nullptr : active.data(), active.size(),
                              active.empty() ? nullptr : activeScales.data()) != 0) {
    throw Error(code::kLoraInvalid, "llama.cpp refused the LoRA adapters: " + TakeRecentErrors());
  }
  prefixes_.Clear();
  sharedText_.Clear();
}

}  // namespace srf
