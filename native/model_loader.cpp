#include "model_loader.h"

#include <algorithm>
#include <thread>

#include "backend_loader.h"
#include "errors.h"
#include "logging.h"

namespace srf {

void LoadedVisionModel::Free() {
  if (mctx) mtmd_free(mctx);
  if (ctx) llama_free(ctx);
  for (auto* lora : loras) llama_adapter_lora_free(lora);
  if (model) llama_model_free(model);
  mctx = nullptr;
  ctx = nullptr;
  model = nullptr;
  loras.clear();
}

namespace {

[[noreturn]] void Fail(const char* code, const std::string& file, const std::string& message) {
  const std::string why = TakeRecentErrors();
  throw Error(code, file + ": " + message + (why.empty() ? "" : " (" + why + ")"));
}

}  // namespace

void LoadVisionModel(ModelLoadOptions& options, LoadedVisionModel& m) {
  EnsureBackendsLoaded();
  const int threads = options.threads > 0 ? options.threads
                                           : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  TakeRecentErrors();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = options.gpuLayers;
  ggml_backend_dev_t pinned[2] = {nullptr, nullptr};
  if (!options.device.empty()) {
    pinned[0] = ggml_backend_dev_by_name(options.device.c_str());
    if (!pinned[0]) Fail(code::kInvalidArgument, options.modelPath, "no device named " + options.device + " (see srf-native info)");
    mp.devices = pinned;  // null-terminated: this device only
    mp.split_mode = LLAMA_SPLIT_MODE_NONE;
    mp.main_gpu = 0;  // an index into mp.devices
  }
  m.model = llama_model_load_from_file(options.modelPath.c_str(), mp);
  if (!m.model) Fail(code::kModelLoadFailed, options.modelPath, "llama.cpp could not load the text model");

  for (size_t i = 0; i < options.loraPaths.size(); ++i) {
    llama_adapter_lora* lora = llama_adapter_lora_init(m.model, options.loraPaths[i].c_str());
    if (!lora) Fail(code::kLoraInvalid, options.loraPaths[i], "llama.cpp could not load the LoRA adapter");
    m.loras.push_back(lora);
  }

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = options.contextSize;
  cp.n_batch = options.batchSize;
  cp.n_ubatch = options.batchSize;
  cp.n_seq_max = static_cast<uint32_t>(options.parallel + options.prefixCache);
  cp.kv_unified = options.unifiedKv;
  // llama.cpp reserves an output row per sequence and asserts (aborting the process) when that
  // exceeds n_outputs_max, which defaults to the batch size: say how many there can be.
  cp.n_outputs_max = std::max<uint32_t>(static_cast<uint32_t>(options.batchSize), cp.n_seq_max);
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.flash_attn_type = static_cast<llama_flash_attn_type>(options.flashAttention);
  cp.no_perf = true;
  m.ctx = llama_init_from_model(m.model, cp);
  if (!m.ctx) {
    Fail(code::kModelLoadFailed, options.modelPath,
         "could not create a context of " + std::to_string(options.contextSize) + " tokens for " +
             std::to_string(cp.n_seq_max) + " sequences (out of memory? lower contextSize or parallel)");
  }

  // llama.cpp clamps the batch to the context; every llama_batch we build must respect that.
  options.batchSize = static_cast<int32_t>(std::min<uint32_t>(llama_n_batch(m.ctx), llama_n_ubatch(m.ctx)));
  if (options.batchSize < options.parallel) {
    Fail(code::kContextTooSmall, options.modelPath,
         "a context of " + std::to_string(llama_n_ctx(m.ctx)) + " tokens limits a batch to " + std::to_string(options.batchSize) +
             " tokens, fewer than parallel (" + std::to_string(options.parallel) + "): raise contextSize or lower parallel");
  }

  mtmd_context_params vp = mtmd_context_params_default();
  vp.use_gpu = options.gpuVision;
  if (pinned[0]) vp.device = pinned[0];  // else clip takes the first GPU
  vp.n_threads = threads;
  vp.print_timings = false;
  vp.warmup = false;
  vp.flash_attn_type = cp.flash_attn_type;
  vp.image_min_tokens = options.imageMinTokens;
  vp.image_max_tokens = options.imageMaxTokens;
  m.mctx = mtmd_init_from_file(options.mmprojPath.c_str(), m.model, vp);
  if (!m.mctx) Fail(code::kMmprojInvalid, options.mmprojPath, "mtmd could not load the mmproj for this text model");
  if (!mtmd_support_vision(m.mctx)) Fail(code::kMmprojInvalid, options.mmprojPath, "the mmproj has no vision encoder");

  std::vector<llama_adapter_lora*> active;
  std::vector<float> scales;
  for (size_t i = 0; i < m.loras.size(); ++i) {
    if (options.loraScales[i] == 0.0f) continue;
    active.push_back(m.loras[i]);
    scales.push_back(options.loraScales[i]);
  }
  if (!active.empty() && llama_set_adapters_lora(m.ctx, active.data(), active.size(), scales.data()) != 0) {
    Fail(code::kLoraInvalid, options.loraPaths.front(), "llama.cpp refused the LoRA adapters");
  }
}

int32_t ImageTokenCount(mtmd_context* mctx, uint32_t nx, uint32_t ny) {
  mtmd_bitmap* bitmap = mtmd_bitmap_init(nx, ny, nullptr);
  if (!bitmap) return -1;
  mtmd_input_chunks* chunks = mtmd_input_chunks_init();
  const std::string text = mtmd_default_marker();
  mtmd_input_text input{text.c_str(), text.size(), false, true};
  const mtmd_bitmap* bitmaps[] = {bitmap};
  int32_t count = -1;
  try {
    if (mtmd_tokenize(mctx, chunks, &input, bitmaps, 1) == 0) {
      count = 0;
      for (size_t i = 0; i < mtmd_input_chunks_size(chunks); ++i) {
        const mtmd_input_chunk* chunk = mtmd_input_chunks_get(chunks, i);
        if (mtmd_input_chunk_get_type(chunk) == MTMD_INPUT_CHUNK_TYPE_IMAGE) count += static_cast<int32_t>(mtmd_input_chunk_get_n_tokens(chunk));
      }
    }
  } catch (const std::exception&) {
    count = -1;
  }
  mtmd_input_chunks_free(chunks);
  mtmd_bitmap_free(bitmap);
  return count;
}

EngineConfig EngineConfigFor(const ModelLoadOptions& options, const LoadedVisionModel& m) {
  EngineConfig config;
  config.parallel = options.parallel;
  config.prefixCache = options.prefixCache;
  config.batchSize = options.batchSize;
  config.samplingThreads = options.samplingThreads;
  config.streamCells = options.unifiedKv ? 0 : static_cast<int32_t>(llama_n_ctx_seq(m.ctx));
  config.loras = m.loras;
  config.label = options.label;
  config.replica = options.replica;
  return config;
}

}  // namespace srf
