#!/usr/bin/env python3
"""Does this machine's NVIDIA driver run the prebuilt CUDA library's kernels, and how long does its
first start take? Loads fatbin modules taken from node-llama-cpp's libggml-cuda.so
(bench/gpu/extract-fatbins.mjs) with the CUDA driver API (ctypes; no toolkit, no torch) and times
each cuModuleLoadData: with no native cubin for the GPU, the driver JIT-compiles the module's PTX
there, into the CUDA cache (CUDA_CACHE_PATH). Run twice with the same empty cache folder: cold, then
warm. A driver older than the PTX's toolkit answers CUDA_ERROR_UNSUPPORTED_PTX_VERSION (222).

    python3 bench/gpu/ptx-probe.py FATBIN_DIR [LABEL]

Prints one JSON line: driver, GPU, modules loaded, errors by name, seconds, and the figure scaled to
the whole library by bytes. Without a driver it says so and exits 0 (bench/gpu/run.sh --dry-run).
"""
import ctypes
import glob
import json
import os
import sys
import time


def main():
    folder = sys.argv[1]
    label = sys.argv[2] if len(sys.argv) > 2 else ''
    out = {'label': label, 'cachePath': os.environ.get('CUDA_CACHE_PATH', '~/.nv/ComputeCache')}
    try:
        cuda = ctypes.CDLL('libcuda.so.1')
    except OSError as error:
        out['driver'] = f'none ({error})'
        print(json.dumps(out))
        return
    def name(rc):
        text = ctypes.c_char_p()
        cuda.cuGetErrorName(rc, ctypes.byref(text))
        return (text.value or b'?').decode() + f' ({rc})'
    version = ctypes.c_int()
    cuda.cuDriverGetVersion(ctypes.byref(version))
    out['driverCuda'] = f'{version.value // 1000}.{version.value % 1000 // 10}'
    rc = cuda.cuInit(0)
    if rc != 0:
        out['error'] = 'cuInit: ' + name(rc)
        print(json.dumps(out))
        return
    device = ctypes.c_int()
    cuda.cuDeviceGet(ctypes.byref(device), 0)
    major, minor = ctypes.c_int(), ctypes.c_int()
    cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device)
    cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device)
    text = ctypes.create_string_buffer(256)
    cuda.cuDeviceGetName(text, 255, device)
    out['gpu'] = f'{text.value.decode()} (compute {major.value}.{minor.value})'
    context = ctypes.c_void_p()
    rc = cuda.cuDevicePrimaryCtxRetain(ctypes.byref(context), device)
    if rc == 0:
        rc = cuda.cuCtxSetCurrent(context)
    if rc != 0:
        out['error'] = 'context: ' + name(rc)
        print(json.dumps(out))
        return
    files = sorted(glob.glob(os.path.join(folder, '*.fatbin')))
    errors = {}
    loaded = 0
    started = time.monotonic()
    for path in files:
        with open(path, 'rb') as f:
            image = f.read()
        module = ctypes.c_void_p()
        rc = cuda.cuModuleLoadData(ctypes.byref(module), ctypes.c_char_p(image))
        if rc == 0:
            loaded += 1
            cuda.cuModuleUnload(module)
        else:
            errors[name(rc)] = errors.get(name(rc), 0) + 1
    seconds = time.monotonic() - started
    out.update({'modules': len(files), 'loaded': loaded, 'errors': errors, 'seconds': round(seconds, 2)})
    manifest = os.path.join(folder, 'MANIFEST')
    if os.path.exists(manifest):
        lines = open(manifest).read().split('\n')
        taken, total = (int(x) for x in lines[1].split(' bytes')[0].split(' of '))
        out['wholeLibrarySecondsEstimate'] = round(seconds * total / taken, 1)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
