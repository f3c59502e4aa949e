// Loading node-llama-cpp's prebuilt ggml backends (separate libraries) into this process: the CPU
// variant ggml scores best for the machine, then the CUDA libraries srf-native chose, in order,
// until one registers at least one GPU. Which CUDA libraries to try is decided in TS from the
// driver's facts and the libraries' kernels (lib/engine/gpu-facts.ts); this only loads and says
// what happened to each. A source build has its backends compiled in and loads nothing.
#pragma once
#include <string>
#include <vector>

namespace srf {

struct CudaLoadAttempt {
  std::string path;
  bool loaded = false;  // registered with ggml and kept
  int gpus = 0;         // GPUs the library's CUDA runtime found
  std::string error;    // why it was not kept ('' when it was)
};

struct BackendLoadResult {
  std::string cpuLibrary;  // the CPU variant loaded ('' on a source build)
  std::vector<CudaLoadAttempt> cuda;
};

// Once per process: later calls return the first call's result whatever they ask.
const BackendLoadResult& LoadBackends(const std::string& cpuDir, const std::vector<std::string>& cudaLibraries);

// Before a model loads: when nothing chose the backends yet (the addon used without
// lib/engine/native.ts, as some tests do), the prebuilt CPU variant alone.
void EnsureBackendsLoaded();

}  // namespace srf
