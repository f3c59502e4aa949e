#include "sampling.h"

#include <algorithm>
#include <cmath>

#include "errors.h"
#include "logging.h"

namespace srf {

GrammarCache::~GrammarCache() {
  for (auto& entry : prototypes_) llama_sampler_free(entry.second);
}

llama_sampler* GrammarCache::Make(const std::string& gbnf) {
  auto found = prototypes_.find(gbnf);
  if (found == prototypes_.end()) {
    TakeRecentErrors();
    llama_sampler* prototype = llama_sampler_init_grammar(vocab_, gbnf.c_str(), "root");
    if (!prototype) {
      std::string why = TakeRecentErrors();
      throw Error(code::kGrammarInvalid, "the GBNF grammar could not be parsed" + (why.empty() ? "" : ": " + why));
    }
    if (prototypes_.size() >= 16) {  // bounded: a handful of grammars is the normal case
      llama_sampler_free(prototypes_.begin()->second);
      prototypes_.erase(prototypes_.begin());
    }
    found = prototypes_.emplace(gbnf, prototype).first;
  }
  return llama_sampler_clone(found->second);
}

RequestSampler::RequestSampler(const llama_vocab* vocab, const SamplingParams& params, GrammarCache& grammars)
    : vocab_(vocab), params_(params) {
  if (!params.grammar.empty()) grammar_ = grammars.Make(params.grammar);
  chain_ = llama_sampler_chain_init(llama_sampler_chain_default_params());
  if (params.temperature <= 0.0f) {
    llama_sampler_chain_add(chain_, llama_sampler_init_greedy());
  } else {
    if (params.topK > 0) llama_sampler_chain_add(chain_, llama_sampler_init_top_k(params.topK));
    if (params.topP < 1.0f) llama_sampler_chain_add(chain_, llama_sampler_init_top_p(params.topP, 1));
    llama_sampler_chain_add(chain_, llama_sampler_init_temp(params.temperature));
    llama_sampler_chain_add(chain_, llama_sampler_init_dist(params.seed));
  }
  if (params.ignoreEos && !grammar_) {
    const int32_t n = llama_vocab_n_tokens(vocab);
    for (llama_token t = 0; t < n; ++t) {
      if (llama_vocab_is_eog(vocab, t)) eog_.push_back(t);
    }
  }
}

RequestSampler::~RequestSampler() {
  if (chain_) llama_sampler_free(chain_);
  if (grammar_) llama_sampler_free(grammar_);
}

void RequestSampler::Fill(const float* logits) {
  const int32_t n = llama_vocab_n_tokens(vocab_);
  candidates_.resize(n);
  for (llama_token t = 0; t < n; ++t) candidates_[t] = llama_token_data{t, logits[t], 0.0f};
  for (llama_token t : eog_) candidates_[t].logit = -INFINITY;
}

llama_token RequestSampler::Sample(llama_context* ctx, int32_t index) {
  const float* logits = llama_get_logits_ith(ctx, index);
  if (params_.temperature <= 0.0f && !grammar_) {
    // Greedy without a grammar is an argmax over the logits: no vocabulary-sized candidate array
    // per row (with dozens of rows that copy is a visible share of a GPU decode step). The first
    // maximum wins, as in llama.cpp's greedy sampler, which keeps no state to accept.
    const int32_t n = llama_vocab_n_tokens(vocab_);
    llama_token best = 0;
    for (llama_token t = 1; t < n; ++t) {
      if (logits[t] > logits[best]) best = t;
    }
    // An end token under ignoreEos: the full path below masks every end token and picks again.
    if (std::find(eog_.begin(), eog_.end(), best) == eog_.end()) return best;
  }
  Fill(logits);
  llama_token_data_array all{candidates_.data(), candidates_.size(), -1, false};
  llama_sampler_apply(chain_, &all);
  llama_token token = all.data[all.selected].id;

  if (grammar_) {
    llama_token_data single{token, 1.0f, 0.0f};
    llama_token_data_array one{&single, 1, -1, false};
    llama_sampler_apply(grammar_, &one);
    if (std::isinf(single.logit) && single.logit < 0) {
      // Rejected: constrain the whole vocabulary, then sample again.
      Fill(logits);
      llama_token_data_array constrained{candidates_.data(), candidates_.size(), -1, false};
      llama_sampler_apply(grammar_, &constrained);
      bool any = false;
      for (size_t i = 0; i < constrained.size && !any; ++i) any = !std::isinf(constrained.data[i].logit);
      if (!any) return LLAMA_TOKEN_NULL;
      llama_sampler_apply(chain_, &constrained);
      token = constrained.data[constrained.selected].id;
    }
    llama_sampler_accept(grammar_, token);
  }
  llama_sampler_accept(chain_, token);
  return token;
}

}  // namespace srf
