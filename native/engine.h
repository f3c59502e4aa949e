// The batching loop of one loaded vision model: a dedicated thread takes requests from a queue,
// evaluates (or reuses) their image prefixes, puts every running sequence's next token (and the
// prompt tokens of newly started ones) into one llama_batch per step, samples, and hands each
// finished request to a sink. JS never drives it token by token: more requests in flight simply
// mean a fuller batch. Cancellation, LoRA changes and stopping are messages to this loop.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "llama.h"
#include "mtmd.h"
#include "failpoints.h"
#include "kv_budget.h"
#include "prefix_cache.h"
#include "shared_text.h"
#include "sampling.h"
#include "worker_pool.h"

namespace srf {

struct GenerateRequest {
  uint64_t id = 0;
  std::string beforeImage;  // prompt text before the image; BOS is added
  std::string afterImage;   // prompt text after the image, tokenized as text (no special tokens)
  // Or, for a chat template, the text after the image in parts: template text (special tokens
  // parsed) and the user's text (parse_special false). Used instead of afterImage when not empty.
  struct TextPart {
    std::string text;
    bool special = false;
  };
  std::vector<TextPart> afterImageParts;
  std::vector<uint8_t> rgb;  // nx * ny * 3
  uint32_t nx = 0, ny = 0;
  std::string prefixKey;  // identifies beforeImage + pixels: requests with the same key share a prefix
  SamplingParams sampling;
  // Greedy requests without a grammar: the expected reply's tokens (EOS last when it should end).
  // Verified several at a time in one step; the output is the greedy output whatever the draft.
  std::vector<llama_token> draft;
  std::string draftText;  // or as text: tokenized by the engine, draftEnd appended
  llama_token draftEnd = LLAMA_TOKEN_NULL;  // the token a reply ends with; NULL: EOT where the vocabulary has one, else EOS
  // A text draft tokenized as it continues the prompt (no space prefix): the reply of a model trained
  // without one starts this way; the first sampled token picks this or `draft`.
  std::vector<llama_token> draftContinued;
  // Score the draft instead of generating: every draft token is taken whatever the model would
  // choose, and its log-probability under the model is returned (GenerateOutput::draftLogProbs),
  // all of them, not only up to the first the model disagrees with. Greedy requests only.
  bool forceDraft = false;

  // Filled by the loop the first time it tries to admit the request, kept while it waits for room
  // so that a retry neither tokenizes nor preprocesses the image again.
  bool tokenized = false;
  std::vector<llama_token> suffix;  // afterImage's tokens
  std::shared_ptr<mtmd_input_chunks> prefixChunks;  // beforeImage + image, when its prefix is not cached
};

struct GenerateOutput {
  std::string text;
  std::string finishReason;  // eos | length | grammar
  int32_t promptTokens = 0;
  int32_t prefixTokens = 0;
  int32_t generatedTokens = 0;
  bool prefixReused = false;
  std::vector<llama_token> tokens;  // the reply's token ids (what a later request can take as its draft)
  std::vector<float> draftLogProbs;  // forceDraft: log P(token | everything before it), per draft token taken
};

struct Completion {
  uint64_t id = 0;
  bool ok = true;
  std::string code, message;  // when !ok
  GenerateOutput output;
};

struct EngineConfig {
  int32_t parallel = 8;     // sequences decoded together: seq ids [0, parallel)
  int32_t prefixCache = 8;  // cached image prefixes: seq ids [parallel, parallel + prefixCache)
  int32_t batchSize = 512;  // tokens per llama_batch
  // 0: one unified KV cache; a request shares its image prefix's cells (tagged with both seq ids)
  //    and the cache's cells are a pool budgeted across requests.
  // > 0: one KV stream of this many cells per seq id (kv_unified = false); a request gets a copy
  //    of its prefix's stream, so attention reads only its own cells (faster on CPU: NOTES.md).
  int32_t streamCells = 0;
  int32_t samplingThreads = 0;  // threads sampling a step's rows (0: the machine's cores, at most 16)
  std::vector<llama_adapter_lora*> loras;
  // Which engine this is, for what a fatal llama.cpp error prints ("replica 1 (gpu 1 (CUDA1))"),
  // and its replica index (-1: not a replica) for the failpoints scoped to one replica.
  std::string label;
  int replica = -1;
};

struct EngineStats {
  uint64_t steps = 0, generatedTokens = 0, promptTokens = 0, prefixTokens = 0;
  uint64_t prefixSharedTokens = 0;  // prefix tokens restored from the previous image's text, not evaluated
  uint64_t prefixHits = 0, prefixMisses = 0, completed = 0, failed = 0;
  // prefixEvalMs = imageEncodeMs (vision encoder) + the prefix's text and embedding decode.
  double prefixEvalMs = 0, imageEncodeMs = 0, decodeMs = 0;
  double sampleMs = 0;  // host time sampling steps' rows (and verifying drafts)
  uint64_t draftTokens = 0, draftAccepted = 0;  // draft tokens put into steps / confirmed by the model
  uint32_t active = 0, queued = 0;
};

// The engine's running totals, in one place: written by the loop thread (and Submit() after
// Stop()), read by Stats() from any thread.
struct EngineCounters {
  std::atomic<uint64_t> steps{0}, generatedTokens{0}, promptTokens{0}, prefixTokens{0}, prefixSharedTokens{0};
  std::atomic<uint64_t> prefixHits{0}, prefixMisses{0}, completed{0}, failed{0};
  std::atomic<uint64_t> prefixEvalUs{0}, imageEncodeUs{0}, decodeUs{0}, sampleUs{0};
  std::atomic<uint64_t> draftTokens{0}, draftAccepted{0};
  std::atomic<uint32_t> active{0};
  std::atomic<uint32_t> waiting{0};  // taken from the queue by the loop, not yet admitted

  // The totals as EngineStats (times in milliseconds); `queued` counts only the waiting.
  EngineStats Snapshot() const;
};

class Engine {
 public:
  using Sink = std::function<void(Completion&&)>;

  Engine(llama_context* ctx, mtmd_context* mctx, const llama_model* model, EngineConfig config, Sink sink);
  ~Engine();

  void Submit(std::unique_ptr<GenerateRequest> request);
  void Cancel(uint64_t id);
  // Replaces the active LoRA scales (one per loaded adapter, 0 = off) once running requests finish;
  // completes `id` when applied. Cached prefixes are dropped: they were computed with other weights.
  void SetLoraScales(uint64_t id, std::vector<float> scales);
  // Rejects everything pending with CLOSED and joins the loop thread. Idempotent.
  void Stop();
  EngineStats Stats() const;

  // At process exit (an atexit handler, registered when the first engine starts). process.exit() on the
  // main thread runs no env cleanup hooks: without this a loop thread would still be decoding
  // while static destructors free llama.cpp's and ggml's globals. Stops every engine's loop;
  // from then on completions are dropped (ProcessExiting()).
  static void StopAllAtExit();
  static bool ProcessExiting();

 private:
  struct Slot;
  struct LoraChange {
    uint64_t id;
    std::vector<float> scales;
  };

  void Run();
  void TakeMessages(std::deque<std::unique_ptr<GenerateRequest>>& waiting, std::set<uint64_t>& cancels,
                    std::deque<LoraChange>& loraChanges);
  void AdmitWaiting(std::deque<std::unique_ptr<GenerateRequest>>& waiting);
  bool AdmitOne(std::unique_ptr<GenerateRequest>& request, Slot& slot);
  void TokenizeRequest(GenerateRequest& request, bool needPrefix);
  std::shared_ptr<PrefixEntry> EvaluatePrefix(GenerateRequest& request);
  int32_t EvaluateTextBeforeImage(const mtmd_input_chunk* chunk, llama_seq_id seq, llama_pos* nPast, int64_t* sharedTokens);
  void Step(llama_batch& batch);
  int32_t FillBatch(llama_batch& batch, bool withPrompts);
  int32_t Decode(llama_batch& batch);
  Slot* NewestInStep();
  void FailStep(const std::string& code, const std::string& message);
  void NoteComputeResult(bool ok, const std::string& failure, const std::string& key);
  void FailAllDeviceLost(std::deque<std::unique_ptr<GenerateRequest>>& waiting);
  static std::string DeviceLostMessage(const std::string& why);
  size_t DraftRows(Slot& slot, size_t room) const;
  void SampleRows();
  void ForceDraftRows(Slot& slot, size_t generated);
  void TakeSampled(Slot& slot);
  void Finish(Slot& slot, const char* reason);
  void Fail(Slot& slot, const std::string& code, const std::string& message);
  void FreeSlot(Slot& slot);
  void Reject(const GenerateRequest& request, const std::string& code, const std::string& message);
  void PublishCounts();
  int32_t ActiveCount() const;
  void ApplyLoras(const std::vector<float>& scales);

  llama_context* ctx_;
  mtmd_context* mctx_;
  const llama_vocab* vocab_;
  EngineConfig config_;
  Sink sink_;
  uint64_t admissions_ = 0;  // admission order, to find the newest request in a step
  GrammarCache grammars_;
  PrefixCache prefixes_;
  KvBudget kv_;  // after prefixes_: it budgets their cells too
  SharedText sharedText_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::deque<std::unique_ptr<GenerateRequest>> waiting_;  // loop thread only: taken from queue_, not yet admitted

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<GenerateRequest>> queue_;
  std::set<uint64_t> cancels_;
  std::deque<LoraChange> loraQueue_;
  bool stopping_ = false;
  std::atomic<bool> abort_{false};  // set by Stop(): llama.cpp's abort callback ends a running decode
  std::mutex joinMutex_;             // Stop() may be called from two threads (close, env teardown)
  std::thread thread_;
  Failpoints failpoints_;
  bool deviceLost_ = false;  // failpoint device-lost fired: every decode fails from then on (loop thread only)
  // The device's health, from the loop thread's decodes and image encodes: after kDeviceLostAfter
  // failures in a row with no success between, the device is taken as lost (every request then
  // fails with DEVICE_FAILED, which takes an engine replica down); one failed step stays that
  // step's requests' error. The same image failing to encode again counts once: a poison image
  // must not pass for a lost device.
  static constexpr int kDeviceLostAfter = 2;
  int computeFailuresInRow_ = 0;
  std::string lastFailureKey_;
  std::string deviceLostWhy_;  // '' while the device works

  EngineCounters counters_;
  std::unique_ptr<WorkerPool> samplers_;  // the loop thread plus samplingThreads - 1
  std::chrono::steady_clock::time_point born_ = std::chrono::steady_clock::now();  // trace timestamps
  FILE* trace_ = nullptr;  // SRF_TRACE: one JSON line per prefix and per decode step, for profiling
};

}  // namespace srf
