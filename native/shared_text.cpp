#include "shared_text.h"

#include <cstdlib>
#include <cstring>

#include "clock.h"

namespace srf {

SharedText::SharedText() {
  const char* env = std::getenv("SRF_SHARED_TEXT");
  disabled_ = env != nullptr && std::strcmp(env, "0") == 0;
}

llama_pos SharedText::Restore(llama_context* ctx, const std::vector<llama_token>& tokens, llama_seq_id seq) {
  if (disabled_ || state_.empty() || tokens != tokens_) return -1;
  const auto start = Clock::now();
  if (llama_state_seq_set_data(ctx, state_.data(), state_.size(), seq) == 0) {
    llama_memory_seq_rm(llama_get_memory(ctx), seq, -1, -1);
    disabled_ = true;
    return -1;
  }
  llama_synchronize(ctx);
  // Measured once against the evaluation it replaces (later ones would only add noise); a restore
  // that costs more is not repeated.
  if (!measured_) {
    measured_ = true;
    if (MicrosSince(start) > evalUs_) disabled_ = true;
  }
  return static_cast<llama_pos>(tokens.size());
}

void SharedText::Save(llama_context* ctx, const std::vector<llama_token>& tokens, llama_seq_id seq, uint64_t evalUs) {
  if (disabled_ || tokens.empty()) return;
  const size_t size = llama_state_seq_get_size(ctx, seq);
  std::vector<uint8_t> state(size);
  if (size == 0 || llama_state_seq_get_data(ctx, state.data(), size, seq) != size) return;
  tokens_ = tokens;
  state_ = std::move(state);
  evalUs_ = evalUs;
}

void SharedText::Clear() {
  tokens_.clear();
  state_.clear();
  state_.shrink_to_fit();
}

}  // namespace srf
