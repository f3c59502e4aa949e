// Per-request token sampling: greedy, or temperature / top-k / top-p with a seed, optionally held
// to a GBNF grammar. The grammar is checked against the sampled token first and applied to the
// whole vocabulary only when that token is rejected, so a grammar costs next to nothing on the
// hot loop while the reply follows it (the same idea as llama.cpp's common sampler).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "llama.h"

namespace srf {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy
  float topP = 1.0f;
  int32_t topK = 0;
  uint32_t seed = 0;
  int32_t maxTokens = 128;
  bool ignoreEos = false;
  std::string grammar;  // GBNF, root rule "root"; empty = none
};

// Parsed grammars by text, so that a thousand requests with the same grammar parse it once.
class GrammarCache {
 public:
  explicit GrammarCache(const llama_vocab* vocab) : vocab_(vocab) {}
  ~GrammarCache();
  // A fresh grammar sampler (caller owns it); throws srf::Error(GRAMMAR_INVALID).
  llama_sampler* Make(const std::string& gbnf);

 private:
  const llama_vocab* vocab_;
  std::map<std::string, llama_sampler*> prototypes_;
};

class RequestSampler {
 public:
  RequestSampler(const llama_vocab* vocab, const SamplingParams& params, GrammarCache& grammars);
  ~RequestSampler();
  RequestSampler(const RequestSampler&) = delete;
  RequestSampler& operator=(const RequestSampler&) = delete;

  // Samples from the logits of batch output `index`; returns LLAMA_TOKEN_NULL when the grammar
  // allows no token at all.
  llama_token Sample(llama_context* ctx, int32_t index);

 private:
  void Fill(const float* logits);

  const llama_vocab* vocab_;
  SamplingParams params_;
  llama_sampler* chain_ = nullptr;
  llama_sampler* grammar_ = nullptr;
  std::vector<llama_token_data> candidates_;
  std::vector<llama_token> eog_;
};

}  // namespace srf
