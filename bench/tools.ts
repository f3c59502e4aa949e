/**
 * llama.cpp's own tools for the benchmark's "by hand" anchors: `llama-mtmd-cli`, `llama-server`
 * and `llama-quantize`, built in the addon's own CMake tree (build/, configured by cmake-js from
 * CMakeLists.txt) with SRF_LLAMA_TOOLS=ON. The anchors therefore link the very ggml, llama and mtmd
 * objects the addon links, with the same options and backend, and a CUDA ggml (minutes of nvcc) is
 * compiled once. The build system decides what is out of date: a second call builds nothing.
 *
 * Usable on its own: `node dist/bench/tools.js` builds (or finds) the tools and prints their paths.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TOOL_TARGETS = ['llama-mtmd-cli', 'llama-server', 'llama-quantize'] as const;
export type ToolName = (typeof TOOL_TARGETS)[number];

export interface ToolsOptions {
  /** The srf-native package root (holds CMakeLists.txt and the addon's build/ folder). */
  root: string;
  /** Parallel compile jobs (default: all cores). */
  jobs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface Tools {
  buildDir: string;
  mtmdCli: string;
  server: string;
  quantize: string;
  /** The build's backend and llama.cpp options, read from its CMakeCache.txt. */
  options: string[];
  /** Seconds spent in the build step now (about 0 when everything was up to date). */
  buildSeconds: number;
}

/** The cache entries that say how the anchors were built (same as the addon: same tree). */
const REPORTED_OPTIONS = ['CMAKE_BUILD_TYPE', 'BUILD_SHARED_LIBS', 'GGML_NATIVE', 'GGML_CUDA', 'CMAKE_CUDA_ARCHITECTURES', 'SRF_GPU'];

/** `NAME:TYPE=value` lines of a CMakeCache.txt, as NAME -> value. */
export function readCmakeCache(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_-]*):[A-Z]+=(.*)$/.exec(line);
    if (m) entries.set(m[1], m[2]);
  }
  return entries;
}

function run(cmd: string, args: string[], logFile: string, cwd: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const out = createWriteStream(logFile, { flags: 'a' });
    out.write(`\n$ ${cmd} ${args.join(' ')}\n`);
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    child.on('error', (err) => {
      out.end();
      reject(new Error(`could not start ${cmd}: ${err.message}`));
    });
    child.on('close', (code) => {
      out.end();
      if (code === 0) resolvePromise();
      else {
        const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n') : '';
        reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}); see ${logFile}\n${tail}`));
      }
    });
  });
}

/**
 * The build tree the tools come from: build/ when the addon there was compiled from source (the
 * anchors then link its very objects), else build-source/, a from-source build of the addon made
 * here once, so that the anchors and the srf-native they are compared with (that tree's addon, which
 * the benchmark loads) run the same kernels, not the prebuilt libraries' other CPU variants.
 */
export async function sourceTree(root: string, log: (line: string) => void, jobs = availableParallelism()): Promise<{ buildDir: string; addon: string; prebuiltAddon: boolean }> {
  const main = join(root, 'build');
  const mainCache = join(main, 'CMakeCache.txt');
  if (existsSync(mainCache) && readCmakeCache(readFileSync(mainCache, 'utf8')).get('SRF_LLAMA_FROM') !== 'prebuilt') {
    return { buildDir: main, addon: join(main, 'Release', 'srf_native.node'), prebuiltAddon: false };
  }
  const buildDir = join(root, 'build-source');
  const addon = join(buildDir, 'Release', 'srf_native.node');
  if (!existsSync(addon)) {
    log(`llama.cpp tools: the addon in build/ links the prebuilt llama.cpp; building a from-source tree in ${buildDir} for the anchors (once)`);
    await run(process.execPath, [join(root, 'scripts', 'build-native.mjs'), '--from-source', '--out', 'build-source', '--jobs', String(jobs)], join(root, 'bench', 'build-source.log'), root);
  }
  return { buildDir, addon, prebuiltAddon: true };
}

/** Builds the three tools in the source-built tree (turning SRF_LLAMA_TOOLS on once). */
export async function ensureTools(options: ToolsOptions): Promise<Tools> {
  const log = options.log ?? (() => {});
  const { buildDir } = await sourceTree(options.root, log, options.jobs);
  const cacheFile = join(buildDir, 'CMakeCache.txt');
  if (!existsSync(cacheFile)) {
    throw new Error(`${cacheFile} is missing: build the addon first (npm install, or npm run build:native)`);
  }
  const logFile = join(buildDir, 'llama-tools.log');
  const jobs = options.jobs ?? availableParallelism();
  const started = Date.now();
  let cache = readCmakeCache(readFileSync(cacheFile, 'utf8'));
  if (cache.get('SRF_LLAMA_TOOLS') !== 'ON') {
    log(`llama.cpp tools: turning SRF_LLAMA_TOOLS on in ${buildDir} (ggml and llama are reused as they are)`);
    // Only this option changes; every other cache entry (cmake-js's include paths, SRF_GPU, CUDA
    // architectures) stays as the addon was configured.
    await run('cmake', ['-S', options.root, '-B', buildDir, '-DSRF_LLAMA_TOOLS=ON'], logFile, options.root);
    cache = readCmakeCache(readFileSync(cacheFile, 'utf8'));
  }
  log(`llama.cpp tools: building ${TOOL_TARGETS.join(', ')} (${jobs} jobs) in ${buildDir}; log: ${logFile}`);
  await run('cmake', ['--build', buildDir, '--target', ...TOOL_TARGETS, '--parallel', String(jobs)], logFile, options.root);
  const binDir = join(buildDir, 'bin'); // llama.cpp's CMAKE_RUNTIME_OUTPUT_DIRECTORY
  const bin = (name: ToolName) => join(binDir, name);
  const missing = TOOL_TARGETS.filter((t) => !existsSync(bin(t)));
  if (missing.length) throw new Error(`the build finished but ${missing.join(', ')} is missing in ${binDir}; see ${logFile}`);
  const seconds = (Date.now() - started) / 1000;
  if (seconds > 5) log(`llama.cpp tools: built in ${seconds.toFixed(0)} s`);
  return {
    buildDir,
    mtmdCli: bin('llama-mtmd-cli'),
    server: bin('llama-server'),
    quantize: bin('llama-quantize'),
    options: REPORTED_OPTIONS.filter((k) => cache.has(k)).map((k) => `${k}=${cache.get(k)}`),
    buildSeconds: seconds,
  };
}

/** The package root from dist/bench/ or bench/. */
export function benchRoot(): string {
  let dir = resolve(fileURLToPath(new URL('.', import.meta.url)));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'CMakeLists.txt'))) return dir;
    const parent = resolve(dir, '..');
    if (parent === dir) throw new Error('cannot find the srf-native package root');
    dir = parent;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  ensureTools({ root: benchRoot(), log: (l) => console.log(l) })
    .then((t) => console.log(JSON.stringify(t, null, 2)))
    .catch((err) => {
      console.error(err.message);
      process.exit(1);
    });
}
