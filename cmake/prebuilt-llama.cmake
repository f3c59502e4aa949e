# llama.cpp from node-llama-cpp's prebuilt shared libraries (same release as the bundle's source):
# imported `llama` and `ggml` targets with the bundle's headers, and mtmd compiled from the bundle
# through its own CMakeLists.txt (its source list stays llama.cpp's). Included by CMakeLists.txt.
# The CUDA package names its libraries lib{llama,ggml}.cuda.VERSION.so: a build against them runs
# CUDA where libggml-cuda.so loads and the CPU otherwise (the same folder holds the CPU variants).
if(EXISTS "${SRF_LLAMA_PREBUILT_DIR}/libllama.cuda.${SRF_LLAMA_VERSION}.so")
  set(SRF_PREBUILT_FLAVOR "cuda.")
  set(SRF_BACKEND cuda)
else()
  set(SRF_PREBUILT_FLAVOR "")
  set(SRF_BACKEND cpu)
endif()
foreach(lib llama ggml ggml-base)
  if(lib STREQUAL "ggml-base")
    set(file "${SRF_LLAMA_PREBUILT_DIR}/libggml-base.so")
  else()
    set(file "${SRF_LLAMA_PREBUILT_DIR}/lib${lib}.${SRF_PREBUILT_FLAVOR}${SRF_LLAMA_VERSION}.so")
  endif()
  if(NOT EXISTS "${file}")
    message(FATAL_ERROR "srf-native: the prebuilt ${file} is missing; build from source (SRF_BUILD_FROM_SOURCE=1)")
  endif()
  add_library(srf_prebuilt_${lib} SHARED IMPORTED)
  set_target_properties(srf_prebuilt_${lib} PROPERTIES IMPORTED_LOCATION "${file}")
endforeach()
add_library(ggml INTERFACE)
target_link_libraries(ggml INTERFACE srf_prebuilt_ggml srf_prebuilt_ggml-base)
target_include_directories(ggml INTERFACE "${SRF_LLAMA_DIR}/ggml/include")
add_library(llama INTERFACE)
target_link_libraries(llama INTERFACE srf_prebuilt_llama ggml)
target_include_directories(llama INTERFACE "${SRF_LLAMA_DIR}/include")

# What mtmd's CMakeLists.txt expects from llama.cpp's top level.
set(BUILD_SHARED_LIBS OFF)
set(LLAMA_BUILD_TOOLS OFF)
set(LLAMA_SUBPROCESS OFF)
set(LLAMA_BUILD_COMMON OFF)
string(REGEX REPLACE "^v?([0-9]+).*" "\\1" LLAMA_VERSION_MAJOR "${SRF_LLAMA_VERSION}")
string(REGEX REPLACE "^v" "" LLAMA_VERSION_BASE "${SRF_LLAMA_VERSION}")
# llama.cpp's warning-flag helper (cmake/common.cmake, which includes by relative path); flags only.
function(llama_add_compile_flags)
endfunction()
add_subdirectory("${SRF_LLAMA_DIR}/vendor" llama-vendor EXCLUDE_FROM_ALL)
add_subdirectory("${SRF_LLAMA_DIR}/tools/mtmd" llama-mtmd EXCLUDE_FROM_ALL)
