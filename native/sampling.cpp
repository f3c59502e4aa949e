#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "errors.h"
#include "logging.h"

namespace srf {
namespace {

// Descending logit, ties to the lower id: one fixed order, so selection never depends on the
// order candidates were visited in.
bool Better(const llama_token_data& a, const llama_token_data& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

bool Rejected(const llama_token_data& c) { return std::isinf(c.logit) && c.logit < 0; }

}  // namespace

namespace {

// Bytes of the UTF-8 character that starts `text`, or 0 when it is not a whole character.
size_t FirstCharBytes(const std::string& text) {
  if (text.empty()) return 0;
  const unsigned char lead = static_cast<unsigned char>(text[0]);
  const size_t n = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || text.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) return 0;
  }
  return n;
}

}  // namespace

FirstCharIndex::FirstCharIndex(const llama_vocab* vocab) {
  const int32_t n = llama_vocab_n_tokens(vocab);
  std::map<std::string, size_t> byChar;
  std::vector<char> buf(256);
  for (llama_token t = 0; t < n; ++t) {
    // The text the grammar sees (llama.cpp's token_to_piece cache is built with special = true).
    int32_t len = llama_token_to_piece(vocab, t, buf.data(), static_cast<int32_t>(buf.size()), 0, true);
    if (len < 0) {
      buf.resize(static_cast<size_t>(-len));
      len = llama_token_to_piece(vocab, t, buf.data(), static_cast<int32_t>(buf.size()), 0, true);
    }
    const std::string piece(buf.data(), static_cast<size_t>(std::max(len, 0)));
    const size_t first = FirstCharBytes(piece);
    if (llama_vocab_is_eog(vocab, t) || first == 0 || piece[0] == 0) {
      unsorted.push_back(t);
      continue;
    }
    auto [it, added] = byChar.emplace(piece.substr(0, first), groups.size());
    if (added) groups.emplace_back();
    Group& group = groups[it->second];
    group.tokens.push_back(t);
    if (piece.size() == first && group.probe == LLAMA_TOKEN_NULL) group.probe = t;
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    if (groups[g].probe == LLAMA_TOKEN_NULL) continue;
    probes.push_back(llama_token_data{groups[g].probe, 0.0f, 0.0f});
    probeGroup.push_back(g);
  }
}

const FirstCharIndex* GrammarCache::Index() {
  if (!indexTried_) {
    indexTried_ = true;
    const char* env = std::getenv("SRF_GRAMMAR_PREFILTER");
    if (!env || std::string(env) != "0") index_ = std::make_unique<FirstCharIndex>(vocab_);
  }
  return index_.get();
}

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
    : nVocab_(llama_vocab_n_tokens(vocab)), params_(params) {
  if (!params.grammar.empty()) {
    grammar_ = grammars.Make(params.grammar);
    index_ = grammars.Index();
  }
  topK_ = params.topK < 0 ? kDefaultTopK : params.topK;
  if (topK_ >= nVocab_) topK_ = 0;
  chain_ = llama_sampler_chain_init(llama_sampler_chain_default_params());
  if (params.temperature > 0.0f) {
    if (params.topP < 1.0f) llama_sampler_chain_add(chain_, llama_sampler_init_top_p(params.topP, 1));
    llama_sampler_chain_add(chain_, llama_sampler_init_temp(params.temperature));
    llama_sampler_chain_add(chain_, llama_sampler_init_dist(params.seed));
  }
  if (params.ignoreEos && !grammar_) {
    isEog_.assign(static_cast<size_t>(nVocab_), 0);
    for (llama_token t = 0; t < nVocab_; ++t) {
      if (llama_vocab_is_eog(vocab, t)) {
        isEog_[t] = 1;
        maskEog_ = true;
      }
    }
  }
}

RequestSampler::~RequestSampler() {
  if (chain_) llama_sampler_free(chain_);
  if (grammar_) llama_sampler_free(grammar_);
}

llama_token RequestSampler::Sample(const float* logits) {
  const llama_token token = params_.temperature <= 0.0f ? Greedy(logits) : Sampled(logits);
  if (token != LLAMA_TOKEN_NULL) Accept(token);
  return token;
}

void RequestSampler::Accept(llama_token token) {
  if (grammar_) llama_sampler_accept(grammar_, token);
  llama_sampler_accept(chain_, token);
}

// The first maximum wins, as in llama.cpp's greedy sampler; masked end tokens never do.
llama_token RequestSampler::Argmax(const float* logits) const {
  llama_token best = -1;
  for (llama_token t = 0; t < nVocab_; ++t) {
    if (maskEog_ && isEog_[t]) continue;
    if (best < 0 || logits[t] > logits[best]) best = t;
  }
  return best;
}

// The grammar on one token alone: far cheaper than on a candidate array.
bool RequestSampler::GrammarAllows(llama_token token) {
  llama_token_data single{token, 1.0f, 0.0f};
  llama_token_data_array one{&single, 1, -1, false};
  llama_sampler_apply(grammar_, &one);
  return !Rejected(single);
}

llama_token RequestSampler::Greedy(const float* logits) {
  // Without a grammar a greedy row is an argmax over the logits: no vocabulary-sized candidate
  // array per row (with dozens of rows that copy is a visible share of a GPU decode step).
  const llama_token best = Argmax(logits);
  if (!grammar_ || GrammarAllows(best)) return best;
  // Rejected: the best token the grammar allows, over the whole vocabulary.
  if (!FillAllowed(logits)) return LLAMA_TOKEN_NULL;
  return std::min_element(candidates_.begin(), candidates_.end(), Better)->id;
}

llama_token RequestSampler::Sampled(const float* logits) {
  if (topK_ > 0) {
    SelectTopK(logits, topK_);
    if (grammar_ && !KeepAllowed()) {
      // None of the k best is allowed: the grammar over the whole vocabulary, then the k best of
      // what it allows.
      if (!FillAllowed(logits)) return LLAMA_TOKEN_NULL;
      if (candidates_.size() > static_cast<size_t>(topK_)) {
        std::partial_sort(candidates_.begin(), candidates_.begin() + topK_, candidates_.end(), Better);
        candidates_.resize(static_cast<size_t>(topK_));
      } else {
        std::sort(candidates_.begin(), candidates_.end(), Better);
      }
    }
  } else {
    // Top-k off: the chain over the whole vocabulary, and the grammar on the drawn token first
    // (applied to the whole vocabulary only when it rejects that token).
    Fill(logits);
    llama_token_data_array all{candidates_.data(), candidates_.size(), -1, false};
    llama_sampler_apply(chain_, &all);
    const llama_token drawn = all.data[all.selected].id;
    if (!grammar_ || GrammarAllows(drawn)) return drawn;
    if (!FillAllowed(logits)) return LLAMA_TOKEN_NULL;
    std::sort(candidates_.begin(), candidates_.end(), Better);
  }
  // Sorted by Better: top-p takes its sorted path (no sort of its own).
  llama_token_data_array cur{candidates_.data(), candidates_.size(), -1, true};
  llama_sampler_apply(chain_, &cur);
  return cur.data[cur.selected].id;
}

// The k best tokens (masked end tokens excluded) into candidates_, sorted by Better: one pass
// with a small heap, O(n log k) in the worst case and about O(n) for any real distribution.
void RequestSampler::SelectTopK(const float* logits, int32_t k) {
  auto& heap = candidates_;  // min-heap on Better: the worst kept candidate at the front
  heap.clear();
  heap.reserve(static_cast<size_t>(k) + 1);
  for (llama_token t = 0; t < nVocab_; ++t) {
    if (maskEog_ && isEog_[t]) continue;
    const llama_token_data c{t, logits[t], 0.0f};
    if (static_cast<int32_t>(heap.size()) < k) {
      heap.push_back(c);
      std::push_heap(heap.begin(), heap.end(), Better);
    } else if (Better(c, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), Better);
      heap.back() = c;
      std::push_heap(heap.begin(), heap.end(), Better);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), Better);
}

void RequestSampler::Fill(const float* logits) {
  candidates_.clear();
  candidates_.reserve(static_cast<size_t>(nVocab_));
  for (llama_token t = 0; t < nVocab_; ++t) {
    if (maskEog_ && isEog_[t]) continue;
    candidates_.push_back(llama_token_data{t, logits[t], 0.0f});
  }
}

bool RequestSampler::FillAllowed(const float* logits) {
  fullPasses_++;
  if (!index_) {
    Fill(logits);
    return KeepAllowed();
  }
  // Which first characters the grammar accepts now, one probe token each; then the grammar on the
  // tokens that start with one of them (and on those the index could not sort by character).
  std::vector<llama_token_data> probes = index_->probes;
  llama_token_data_array cur{probes.data(), probes.size(), -1, false};
  llama_sampler_apply(grammar_, &cur);
  candidates_.clear();
  std::vector<char> open(index_->groups.size(), 1);
  for (size_t i = 0; i < probes.size(); ++i) open[index_->probeGroup[i]] = !Rejected(probes[i]);
  for (size_t g = 0; g < open.size(); ++g) {
    if (!open[g]) continue;
    for (llama_token t : index_->groups[g].tokens) candidates_.push_back(llama_token_data{t, logits[t], 0.0f});
  }
  for (llama_token t : index_->unsorted) candidates_.push_back(llama_token_data{t, logits[t], 0.0f});
  return KeepAllowed();
}

bool RequestSampler::KeepAllowed() {
  llama_token_data_array cur{candidates_.data(), candidates_.size(), -1, false};
  llama_sampler_apply(grammar_, &cur);
  candidates_.erase(std::remove_if(candidates_.begin(), candidates_.end(), Rejected), candidates_.end());
  return !candidates_.empty();
}

}  // namespace srf
