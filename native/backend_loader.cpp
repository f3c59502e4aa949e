#include "backend_loader.h"

#include <dirent.h>
#include <dlfcn.h>

#include <mutex>

#include "ggml-backend.h"

namespace srf {
namespace {

// ggml_backend_load_best's choice for "cpu", which ggml does not export: of the libggml-cpu-*.so
// in `dir`, the one whose ggml_backend_score() is highest on this machine (0: cannot run here).
std::string BestCpuVariant(const std::string& dir) {
  std::string best;
  int bestScore = 0;
  DIR* folder = opendir(dir.c_str());
  if (!folder) return best;
  const std::string prefix = "libggml-cpu-", suffix = ".so";
  while (dirent* entry = readdir(folder)) {
    const std::string file = entry->d_name;
    if (file.rfind(prefix, 0) != 0 || file.size() < prefix.size() + suffix.size() ||
        file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string path = dir + "/" + file;
    void* lib = dlopen(path.c_str(), RTLD_LAZY | RTLD_LOCAL);
    if (!lib) continue;
    using Score = int (*)();
    auto score = reinterpret_cast<Score>(dlsym(lib, "ggml_backend_score"));
    const int s = score ? score() : 0;
    dlclose(lib);
    if (s > bestScore) {
      bestScore = s;
      best = path;
    }
  }
  closedir(folder);
  if (best.empty()) best = dir + "/libggml-cpu.so";  // a build without variants
  return best;
}

CudaLoadAttempt TryCuda(const std::string& path) {
  CudaLoadAttempt attempt;
  attempt.path = path;
  // Opened once by hand to learn why it fails (a missing libcudart/libcublas): ggml's loader does not say.
  void* probe = dlopen(path.c_str(), RTLD_LAZY | RTLD_LOCAL);
  if (!probe) {
    const char* why = dlerror();
    attempt.error = why ? why : "dlopen failed";
    return attempt;
  }
  dlclose(probe);
  ggml_backend_reg_t reg = ggml_backend_load(path.c_str());
  if (!reg) {
    attempt.error = "ggml could not register it as a backend";
    return attempt;
  }
  attempt.gpus = static_cast<int>(ggml_backend_reg_dev_count(reg));
  if (attempt.gpus == 0) {
    // Its CUDA runtime refused the driver or saw no GPU: let the next library try.
    ggml_backend_unload(reg);
    attempt.error = "it loaded but its CUDA runtime found no GPU (a driver too old for its runtime, or no GPU visible)";
    return attempt;
  }
  attempt.loaded = true;
  return attempt;
}

}  // namespace

const BackendLoadResult& LoadBackends(const std::string& cpuDir, const std::vector<std::string>& cudaLibraries) {
  static std::once_flag once;
  static BackendLoadResult result;
  std::call_once(once, [&] {
    if (cpuDir.empty()) return;
    result.cpuLibrary = BestCpuVariant(cpuDir);
    ggml_backend_load(result.cpuLibrary.c_str());
    for (const std::string& path : cudaLibraries) {
      result.cuda.push_back(TryCuda(path));
      if (result.cuda.back().loaded) break;
    }
  });
  return result;
}

void EnsureBackendsLoaded() { LoadBackends(SRF_PREBUILT_DIR, {}); }

}  // namespace srf
