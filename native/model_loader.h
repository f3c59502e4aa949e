// Loading one vision model: the text model, its LoRA adapters, a llama_context and the mmproj,
// with llama.cpp and mtmd alone. No N-API here: VisionModel's load worker calls it off the JS
// thread, and anything else could too.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine.h"
#include "llama.h"
#include "mtmd.h"

namespace srf {

struct ModelLoadOptions {
  std::string modelPath, mmprojPath;
  std::vector<std::string> loraPaths;
  std::vector<float> loraScales;
  int32_t gpuLayers = -1;
  uint32_t contextSize = 4096;
  int32_t parallel = 8, prefixCache = 8, batchSize = 512, threads = 0, samplingThreads = 0;
  int flashAttention = -1;  // -1 auto, 0 off, 1 on
  bool gpuVision = true;
  // A ggml backend device name (e.g. "CUDA1"): the text model and the vision encoder run on it
  // alone, one engine replica per GPU. Empty: llama.cpp's default (layers split over all GPUs).
  std::string device;
  bool unifiedKv = true;  // false: one KV stream per sequence (see EngineConfig::streamCells)
  std::string label;      // EngineConfig::label
  int replica = -1;       // EngineConfig::replica
  // Image-token limits for the families whose image size is dynamic (Qwen-VL); 0: the mmproj's own.
  int32_t imageMinTokens = 0, imageMaxTokens = 0;
};

// What a load creates; freed together, in order, by Free().
struct LoadedVisionModel {
  llama_model* model = nullptr;
  llama_context* ctx = nullptr;
  mtmd_context* mctx = nullptr;
  std::vector<llama_adapter_lora*> loras;
  void Free();
};

// Loads into `m` (what it created so far stays there for Free() when it throws srf::Error with
// the file at fault). Lowers options.batchSize to what llama.cpp allows for the context.
void LoadVisionModel(ModelLoadOptions& options, LoadedVisionModel& m);

// Image tokens mtmd makes of an nx x ny image (counted on a placeholder bitmap, no pixels), or -1.
int32_t ImageTokenCount(mtmd_context* mctx, uint32_t nx, uint32_t ny);

// The engine's configuration for a loaded model.
EngineConfig EngineConfigFor(const ModelLoadOptions& options, const LoadedVisionModel& m);

}  // namespace srf
