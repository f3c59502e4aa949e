#!/usr/bin/env node
/**
 * Builds the srf-native engine (build/Release/srf_native.node) in the package's own folder with
 * cmake-js over CMakeLists.txt, the one build truth. Run by `npm install` (the package's install
 * script), `npm run build:native` and `npx srf-native build`.
 *
 *   node scripts/build-native.mjs [--gpu auto|cuda|cpu] [--jobs N] [--sanitize address] [--from-source] [--cuda-arch 80,90]
 *
 * By default the addon is linked against node-llama-cpp's prebuilt llama.cpp of the same release
 * (its optional dependency for this platform; the CUDA package where it exists, which also runs on
 * the CPU), and only mtmd and the addon are compiled. --from-source (SRF_BUILD_FROM_SOURCE=1), a
 * sanitizer build, or no matching prebuilt package compile all of llama.cpp from the bundle.
 *
 * Environment: SRF_GPU (as --gpu), SRF_BUILD_JOBS (as --jobs; default: every core),
 * CMAKE_CUDA_ARCHITECTURES (as --cuda-arch, e.g. 90; a source build for CUDA defaults to the GPUs
 * nvidia-smi sees, else ggml's list of every architecture; the prebuilt library's are fixed),
 * SRF_SANITIZE (as --sanitize), SRF_KEEP_BUILD=1 (keep deps/ and the object files of an installed
 * package), CCACHE_BASEDIR (default /: objects compiled for one install folder serve every other).
 * Says what it builds before it starts, checks the tools first, and exits non-zero with one
 * `srf-native: BUILD_FAILED: ...` line that says what to do when the build cannot be done.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { delimiter, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findLlamaSource, findPrebuilt, srfPackageRoot } from './llama-source.mjs';

const GPU_CHOICES = ['auto', 'cuda', 'cpu'];
const CMAKE_MIN = '3.19';

/** Parses argv and the environment into the build's options; throws on a bad value. */
export function buildOptions(argv = [], env = process.env) {
  const flag = (name) => {
    const i = argv.indexOf(`--${name}`);
    if (i >= 0) return argv[i + 1];
    const eq = argv.find((a) => a.startsWith(`--${name}=`));
    return eq?.slice(name.length + 3);
  };
  const gpu = flag('gpu') ?? (env.SRF_GPU || 'auto');
  if (!GPU_CHOICES.includes(gpu)) throw new Error(`--gpu (or SRF_GPU) must be one of ${GPU_CHOICES.join(', ')}, not '${gpu}'`);
  const jobsText = flag('jobs') ?? env.SRF_BUILD_JOBS;
  const jobs = jobsText === undefined || jobsText === '' ? availableParallelism() : Number(jobsText);
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs (or SRF_BUILD_JOBS) must be a whole number >= 1, not '${jobsText}'`);
  const sanitize = flag('sanitize') ?? (env.SRF_SANITIZE || '');
  const fromSource = argv.includes('--from-source') || env.SRF_BUILD_FROM_SOURCE === '1' || sanitize !== '';
  const archFlag = flag('cuda-arch');
  if (archFlag !== undefined && !/^\d{2,3}[af]?(,\d{2,3}[af]?)*$/.test(archFlag)) {
    throw new Error(`--cuda-arch takes compute capabilities as CMake writes them, comma-separated (80,90 for A100 and H100), not '${archFlag}'`);
  }
  let cudaArchitectures = archFlag?.split(',').join(';') ?? (env.CMAKE_CUDA_ARCHITECTURES || '');
  let cudaArchSource = archFlag ? '--cuda-arch' : cudaArchitectures ? 'CMAKE_CUDA_ARCHITECTURES' : '';
  if (!cudaArchitectures && fromSource && gpu !== 'cpu') {
    const seen = detectCudaArchitectures(env);
    if (seen.length > 0) [cudaArchitectures, cudaArchSource] = [seen.join(';'), 'the GPUs nvidia-smi sees'];
  }
  // --out DIR: another build folder (the benchmark's source-built tree beside a prebuilt build/).
  const out = flag('out');
  return { gpu, jobs, sanitize, cudaArchitectures, cudaArchSource, fromSource, ...(out ? { out } : {}) };
}

/** This machine's GPUs as CMake CUDA architectures (9.0 -> '90'), from nvidia-smi; [] when it cannot say. */
export function detectCudaArchitectures(env = process.env) {
  const smi = which('nvidia-smi', env);
  if (!smi) return [];
  const result = spawnSync(smi, ['--query-gpu=compute_cap', '--format=csv,noheader'], { encoding: 'utf8', env, timeout: 20_000 });
  if (result.status !== 0) return [];
  const caps = result.stdout.split('\n').map((line) => line.trim()).filter((line) => /^\d+\.\d+$/.test(line));
  return [...new Set(caps.map((cap) => cap.replace('.', '')))];
}

/** A tool on PATH (or the full path given), like `command -v`. */
function which(tool, env = process.env) {
  if (tool.includes('/')) return existsSync(tool) ? tool : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, tool))) return join(dir, tool);
  }
  return undefined;
}

function versionAtLeast(version, min) {
  const a = version.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < b.length; i++) {
    if ((a[i] ?? 0) !== b[i]) return (a[i] ?? 0) > b[i];
  }
  return true;
}

/** What the build needs that this machine lacks, as sentences; empty when all is there. */
export function missingTools(env = process.env) {
  const problems = [];
  const cmake = which('cmake', env);
  if (!cmake) {
    problems.push(`cmake >= ${CMAKE_MIN} (e.g. \`apt-get install cmake\`, or \`pip install cmake\`)`);
  } else {
    const out = spawnSync(cmake, ['--version'], { encoding: 'utf8' }).stdout ?? '';
    const version = /cmake version (\d+\.\d+(\.\d+)?)/.exec(out)?.[1];
    if (version && !versionAtLeast(version, CMAKE_MIN)) problems.push(`cmake >= ${CMAKE_MIN} (found ${version} at ${cmake})`);
  }
  const cxx = env.CXX ? which(env.CXX, env) : (which('c++', env) ?? which('g++', env) ?? which('clang++', env));
  if (!cxx) problems.push('a C++17 compiler (e.g. `apt-get install g++`)');
  if (!which('git', env)) problems.push('git, which unpacks llama.cpp from its bundle (e.g. `apt-get install git`)');
  return problems;
}

function cudaCompiler(env = process.env) {
  return which('nvcc', env) ?? (env.CUDACXX && which(env.CUDACXX, env)) ?? which('/usr/local/cuda/bin/nvcc', env);
}

/**
 * Rough minutes for a cold build (no ccache hits), from measured builds: CPU 2 cores ~6 min; CUDA for
 * sm_90 alone ~4 min on 16 cores and ~15 min with 2 jobs. ggml's default CUDA list has ~6 entries.
 */
export function estimateMinutes(backend, jobs, cudaArchitectures) {
  if (backend !== 'cuda') return Math.round(1 + 10 / Math.min(jobs, 16));
  const archs = cudaArchitectures ? cudaArchitectures.split(/[;,\s]/).filter(Boolean).length : 6;
  return Math.round(2 + (28 * archs) / Math.min(jobs, 32));
}

/**
 * Where llama.cpp comes from for these options: `{ from: 'prebuilt', prebuilt }` or
 * `{ from: 'source', why }`.
 */
export function llamaOrigin(options, source = findLlamaSource()) {
  if (options.fromSource) return { from: 'source', why: options.sanitize ? `a ${options.sanitize} sanitizer build` : 'asked for (--from-source / SRF_BUILD_FROM_SOURCE=1)' };
  const prebuilt = findPrebuilt(source, options.gpu);
  if (prebuilt.problem) return { from: 'source', why: `no usable prebuilt llama.cpp: ${prebuilt.problem}` };
  return { from: 'prebuilt', prebuilt };
}

/** The lines said before a build against the prebuilt llama.cpp. */
export function describePrebuiltBuild(options, prebuilt, env = process.env) {
  const ccache = which('ccache', env);
  return [
    `srf-native: building the engine (mtmd + addon, on the prebuilt llama.cpp) in ${srfPackageRoot()}`,
    `  backend: ${prebuilt.flavor === 'cuda' ? 'CUDA where its library loads (driver + CUDA 13 runtime, no toolkit needed), else the CPU' : 'CPU'}; the CPU variant for this machine is picked at run time`,
    `  CUDA architectures: ${prebuilt.flavor === 'cuda' ? 'those of the prebuilt library (`srf-native info` lists them and says whether your GPU runs them natively)' : 'none'}`,
    ...(options.cudaArchitectures
      ? [`  ${options.cudaArchSource} (${options.cudaArchitectures}) does nothing here: the prebuilt library's kernels are fixed; \`npx srf-native build --from-source --gpu cuda\` builds for your GPUs`]
      : []),
    `  jobs: ${options.jobs} (SRF_BUILD_JOBS to change)`,
    `  ccache: ${ccache ?? 'not found (install ccache to make rebuilds take seconds)'}`,
    `  llama.cpp: prebuilt ${prebuilt.release} from ${prebuilt.packageName} (${prebuilt.dir})`,
    `  expect about ${Math.max(1, Math.round(3 / Math.min(options.jobs, 16)))} min (SRF_BUILD_FROM_SOURCE=1 compiles all of llama.cpp instead)`,
  ];
}

/** The lines said before the build starts. */
export function describeBuild(options, env = process.env) {
  const nvcc = options.gpu === 'cpu' ? undefined : cudaCompiler(env);
  const backendText = {
    cpu: 'CPU',
    cuda: `CUDA (nvcc: ${nvcc ?? 'not found: the build will stop and say what to install'})`,
    auto: nvcc
      ? `auto: CUDA if cuBLAS is found next to ${nvcc}, else the CPU (CMake's "backend=" line below says which)`
      : 'auto: CPU (no nvcc found; install the CUDA toolkit and build with --gpu cuda for a GPU)',
  }[options.gpu];
  const archs =
    options.gpu === 'cpu' || !nvcc
      ? 'none'
      : options.cudaArchitectures
        ? `${options.cudaArchitectures} (${options.cudaArchSource})`
        : "ggml's default list (every architecture; --cuda-arch 90 for H100/H200 builds several times faster)";
  const ccache = which('ccache', env);
  const cpuMinutes = estimateMinutes('cpu', options.jobs, '');
  const cudaMinutes = estimateMinutes('cuda', options.jobs, options.cudaArchitectures);
  const estimate =
    options.gpu === 'cpu' || !nvcc
      ? `about ${cpuMinutes} min`
      : options.gpu === 'cuda'
        ? `about ${cudaMinutes} min`
        : `about ${cudaMinutes} min with CUDA, ${cpuMinutes} min for the CPU`;
  return [
    `srf-native: building the engine (llama.cpp + addon) in ${srfPackageRoot()}`,
    `  backend: ${backendText}`,
    `  CUDA architectures: ${archs}`,
    `  jobs: ${options.jobs} (SRF_BUILD_JOBS to change)`,
    `  ccache: ${ccache ?? 'not found (install ccache to make rebuilds take seconds)'}`,
    ...(options.sanitize ? [`  sanitizer: ${options.sanitize} (into ${buildFolder(options)}/)`] : []),
    `  expect ${estimate} for a first build${ccache ? ', much less with a warm ccache' : ''}`,
  ];
}

/**
 * cmake-js's two calls for these options: `configure` with every option (run each time: `cmake-js
 * compile` only builds a folder that is already configured, keeping its old --gpu or origin), then
 * `build`.
 */
export function cmakeJsArgs(options, outDir, origin = { from: 'source' }) {
  const configure = ['configure', '--out', outDir, `--CDSRF_GPU=${options.gpu}`, `--CDSRF_LLAMA_FROM=${origin.from}`];
  if (origin.from === 'prebuilt') {
    configure.push(`--CDSRF_LLAMA_PREBUILT_DIR=${origin.prebuilt.dir}`, `--CDSRF_LLAMA_PREBUILT_FALLBACK=${origin.prebuilt.fallbackDir}`);
  }
  // The prebuilt library's kernels are fixed: passing architectures there would only mislabel the build.
  if (options.cudaArchitectures && origin.from !== 'prebuilt') configure.push(`--CDCMAKE_CUDA_ARCHITECTURES=${options.cudaArchitectures}`);
  if (options.sanitize) configure.push(`--CDSRF_SANITIZE=${options.sanitize}`);
  return { configure, build: ['build', '--out', outDir, '--parallel', String(options.jobs)] };
}

/** Where a build goes: build/, or its own folder for a sanitizer build so it never replaces it. */
export function buildFolder(options) {
  if (options.out) return options.out;
  return options.sanitize ? `build-${options.sanitize === 'address' ? 'asan' : options.sanitize}` : 'build';
}

/** Bytes under a path (files only; links not followed). */
function sizeOf(path) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, name) => sum + sizeOf(join(path, name)), 0);
}

/**
 * An installed package (inside a node_modules folder) needs only the built addon: the llama.cpp
 * checkout (deps/) and the object files are ~250 MB it never reads again. A clone keeps them (the
 * benchmark and the GPU kit use them). `npx srf-native build` recreates them when it rebuilds.
 */
export function pruneInstalledBuild(root, outDir, env = process.env) {
  if (!root.includes(`${sep}node_modules${sep}`) || env.SRF_KEEP_BUILD === '1') return 0;
  let freed = 0;
  const remove = (path) => {
    freed += sizeOf(path);
    rmSync(path, { recursive: true, force: true });
  };
  remove(join(root, 'deps'));
  for (const name of readdirSync(join(root, outDir))) {
    if (name !== 'Release') remove(join(root, outDir, name));
  }
  for (const name of readdirSync(join(root, outDir, 'Release'))) {
    if (name !== 'srf_native.node') remove(join(root, outDir, 'Release', name));
  }
  return freed;
}

export async function buildNative(argv = process.argv.slice(2), { log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  const root = srfPackageRoot();
  const options = buildOptions(argv);
  const problems = missingTools();
  if (problems.length) throw new Error(`this machine needs ${problems.join('; ')} to build the engine`);
  const source = findLlamaSource(root); // fails early, with the folders it looked in, when node-llama-cpp is missing
  const origin = llamaOrigin(options, source);
  if (origin.from === 'prebuilt') for (const line of describePrebuiltBuild(options, origin.prebuilt)) log(line);
  else {
    for (const line of describeBuild(options)) log(line);
    log(`  llama.cpp: from source (${source.tag}): ${origin.why}`);
  }
  const outDir = buildFolder(options);
  const cmakeJs = createRequire(join(root, 'package.json')).resolve('cmake-js/bin/cmake-js');
  const started = Date.now();
  const cmakeJsRun = (args) =>
    new Promise((resolvePromise, reject) => {
      const child = spawn(process.execPath, [cmakeJs, ...args], {
        cwd: root,
        stdio: 'inherit',
        env: { ...process.env, CCACHE_BASEDIR: process.env.CCACHE_BASEDIR ?? '/' },
      });
      child.on('error', reject);
      child.on('close', (status, signal) => resolvePromise(signal ? 128 : (status ?? 1)));
    });
  const calls = cmakeJsArgs(options, outDir, origin);
  let code = await cmakeJsRun(calls.configure);
  if (code === 0) code = await cmakeJsRun(calls.build);
  if (code !== 0) throw new Error(`cmake-js exited with ${code}; the lines above say why`);
  const addon = join(root, outDir, 'Release', 'srf_native.node');
  if (!existsSync(addon)) throw new Error(`the build finished but ${addon} is missing`);
  log(`srf-native: built ${addon} in ${Math.round((Date.now() - started) / 1000)} s`);
  const freed = pruneInstalledBuild(root, outDir);
  if (freed) log(`srf-native: removed the build's ${Math.round(freed / 2 ** 20)} MB of sources and objects (SRF_KEEP_BUILD=1 keeps them)`);
  return { addon, outDir, options, origin };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildNative().catch((error) => {
    process.stderr.write(
      `srf-native: BUILD_FAILED: ${error.message}. After fixing it, run \`npx srf-native build\` ` +
        '(or `npm run build:native` in a clone).\n',
    );
    process.exitCode = 1;
  });
}
