// Per-request token sampling: greedy, or temperature / top-k / top-p with a seed, optionally held
// to a GBNF grammar. Sampling runs on the engine's worker pool, one row per task, so everything a
// request's sampler touches is its own (its RNG, its grammar state, its scratch arrays): the tokens
// drawn for a given seed do not depend on how many threads sample or in what order.
//
// The sampled path never sorts the vocabulary. A bounded top-k (default 40, llama.cpp's default chain
// puts top_k 40 first too) is selected in one pass over the logits; top-p, temperature and the draw
// then run on those k candidates. A grammar is applied to the k candidates first and to the whole
// vocabulary only when none of them is allowed (then top-k again over the allowed tokens).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "llama.h"

namespace srf {

// Candidates kept before top-p when the request does not say (topK < 0 in SamplingParams).
constexpr int32_t kDefaultTopK = 40;

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy
  float topP = 1.0f;
  int32_t topK = -1;  // < 0: kDefaultTopK; 0: off (the whole vocabulary goes to top-p: slow)
  uint32_t seed = 0;
  int32_t maxTokens = 128;
  bool ignoreEos = false;
  std::string grammar;  // GBNF, root rule "root"; empty = none
};

// The vocabulary grouped by the first character of each token's text, for grammar passes over
// the whole vocabulary: a grammar accepts a token only if it accepts its first character, so one
// probe token per character (a token that is exactly that character) tells which groups can hold
// an allowed token at all. At a literal the grammar forces ("Question: ") that leaves a few
// hundred tokens to check instead of the whole vocabulary; the allowed set is the same.
struct FirstCharIndex {
  struct Group {
    llama_token probe = LLAMA_TOKEN_NULL;  // a token whose text is exactly the character; none: always checked
    std::vector<llama_token> tokens;
  };
  std::vector<Group> groups;
  std::vector<llama_token> unsorted;  // end tokens, empty or partial-UTF-8 texts: always checked
  std::vector<llama_token_data> probes;  // scratch template: one entry per group with a probe
  std::vector<size_t> probeGroup;        // probes[i] belongs to groups[probeGroup[i]]

  explicit FirstCharIndex(const llama_vocab* vocab);
};

// Parsed grammars by text, so that a thousand requests with the same grammar parse it once.
// Loop thread only (requests are admitted there).
class GrammarCache {
 public:
  explicit GrammarCache(const llama_vocab* vocab) : vocab_(vocab) {}
  ~GrammarCache();
  // A fresh grammar sampler (caller owns it); throws srf::Error(GRAMMAR_INVALID).
  llama_sampler* Make(const std::string& gbnf);
  // Built on first use (SRF_GRAMMAR_PREFILTER=0: none, every pass checks the whole vocabulary);
  // read-only afterwards, so samplers on any thread share it.
  const FirstCharIndex* Index();

 private:
  const llama_vocab* vocab_;
  std::map<std::string, llama_sampler*> prototypes_;
  std::unique_ptr<FirstCharIndex> index_;
  bool indexTried_ = false;
};

class RequestSampler {
 public:
  RequestSampler(const llama_vocab* vocab, const SamplingParams& params, GrammarCache& grammars);
  ~RequestSampler();
  RequestSampler(const RequestSampler&) = delete;
  RequestSampler& operator=(const RequestSampler&) = delete;

  // Samples from one row of logits (n_vocab floats) and advances the sampler's state; returns
  // LLAMA_TOKEN_NULL when the grammar allows no token at all. Safe to call concurrently on
  // different samplers.
  llama_token Sample(const float* logits);

  // Whether Sample is a plain argmax (greedy, no grammar, so no state to advance): only such
  // requests draft, and their draft rows are verified with Argmax.
  bool PlainGreedy() const { return params_.temperature <= 0.0f && !grammar_; }

  // Times the grammar went over the whole vocabulary since the last call (for the trace).
  uint64_t TakeFullVocabularyPasses() { return std::exchange(fullPasses_, 0); }

 private:
  llama_token Greedy(const float* logits);
  llama_token Sampled(const float* logits);
  llama_token Argmax(const float* logits) const;
  void SelectTopK(const float* logits, int32_t k);
  void Fill(const float* logits);
  // Fills candidates_ with the tokens the grammar allows now (the whole vocabulary's worth).
  bool FillAllowed(const float* logits);
  // Applies the grammar to candidates_ and drops what it rejects; false when nothing is left.
  bool KeepAllowed();
  // Whether the grammar accepts `token` next.
  bool GrammarAllows(llama_token token);
  void Accept(llama_token token);

  int32_t nVocab_;
  SamplingParams params_;
  int32_t topK_ = 0;  // resolved: 0 = off
  llama_sampler* chain_ = nullptr;  // top-p, temperature, draw (sampled) or nothing (greedy)
  llama_sampler* grammar_ = nullptr;
  const FirstCharIndex* index_ = nullptr;
  std::vector<llama_token_data> candidates_;
  std::vector<char> isEog_;  // masked tokens (end tokens under ignoreEos without a grammar)
  bool maskEog_ = false;
  uint64_t fullPasses_ = 0;
};

}  // namespace srf
