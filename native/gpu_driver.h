// What the NVIDIA driver says about this machine's GPUs, read through the driver API of the
// libcuda.so.1 the driver installs (dlopen: nothing of CUDA is linked, and a machine without a
// driver simply has none). Asked before ggml's CUDA backend is loaded, so that srf-native can
// judge whether that backend's kernels can run here at all (lib/engine/gpu-facts.ts).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace srf {

struct GpuFact {
  std::string name;
  int major = 0, minor = 0;  // compute capability, e.g. 9.0 on an H100
  uint64_t memoryTotal = 0;
};

struct DriverFacts {
  bool installed = false; // libcuda.so.1 loaded
  bool present = false;   // and cuInit succeeded
  int cudaVersion = 0;    // the CUDA version the driver supports, as 1000 * major + 10 * minor (13000: 13.0)
  std::vector<GpuFact> gpus;
  std::string error;      // why not present, or what failed ('' when nothing did)
};

// Once per process (the driver is asked the first time; later calls return the same facts).
const DriverFacts& ReadDriverFacts();

}  // namespace srf
