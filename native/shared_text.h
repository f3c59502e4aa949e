// The text before the image (LLaVA's system text and "USER: ") is the same for every image, so its
// KV cells are saved once and restored into each new image prefix instead of being evaluated again:
// llama-server gets the same saving from its slot cache. The cells are a copy of what evaluating
// the text wrote, so the prefix is bit-identical either way.
#pragma once
#include <cstdint>
#include <vector>

#include "llama.h"

namespace srf {

class SharedText {
 public:
  // SRF_SHARED_TEXT=0 switches sharing off (A/B measurements).
  SharedText();

  // Restores the saved cells into `seq` (empty) when `tokens` are the saved text. Returns the
  // position after the text, or -1 when the caller must evaluate it.
  llama_pos Restore(llama_context* ctx, const std::vector<llama_token>& tokens, llama_seq_id seq);
  // Saves `seq`'s cells, which hold just `tokens` evaluated from position 0 in `evalUs`.
  void Save(llama_context* ctx, const std::vector<llama_token>& tokens, llama_seq_id seq, uint64_t evalUs);
  // Forgets the saved cells (the weights changed: LoRA adapters).
  void Clear();

 private:
  std::vector<llama_token> tokens_;
  std::vector<uint8_t> state_;
  uint64_t evalUs_ = 0;
  // Restoring cost more than evaluating (a GPU with flash attention off copies V's transposed
  // rows one by one), or llama.cpp refused the state: evaluate every time.
  bool disabled_ = false;
  bool measured_ = false;  // the first restore was timed
};

}  // namespace srf
