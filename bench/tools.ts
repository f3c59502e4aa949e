/**
 * llama.cpp's own tools for the benchmark's "by hand" anchors: `llama-mtmd-cli`, `llama-server`
 * and `llama-quantize`, built from the same llama.cpp source the addon is built from
 * (deps/llama.cpp, cloned by CMakeLists.txt from node-llama-cpp's bundle) with the same CPU
 * options (GGML_NATIVE=OFF, static libraries) and the same backend (CUDA when the addon was built
 * with CUDA), into the ignored bench/work/ folder. A build whose stamp matches is reused.
 *
 * Usable on its own: `node dist/bench/tools.js` builds (or finds) the tools and prints their paths.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TOOL_TARGETS = ['llama-mtmd-cli', 'llama-server', 'llama-quantize'] as const;
export type ToolName = (typeof TOOL_TARGETS)[number];

export interface ToolsOptions {
  /** The srf-native package root (holds deps/llama.cpp and bench/work). */
  root: string;
  /** 'cuda' to build with GGML_CUDA, as the addon was (buildInfo().backend). */
  backend: 'cpu' | 'cuda';
  /** CUDA architectures (default: env CMAKE_CUDA_ARCHITECTURES, else ggml's default list). */
  cudaArchitectures?: string;
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
  /** The cmake -D options the tools were configured with. */
  options: string[];
  /** Seconds spent building now (0 when an existing build was reused). */
  buildSeconds: number;
}

/** The cmake options: tools + server without web UI or OpenSSL, CPU flags as in the addon. */
export function toolCmakeOptions(backend: 'cpu' | 'cuda', cudaArchitectures?: string): string[] {
  const opts = [
    'CMAKE_BUILD_TYPE=Release',
    'BUILD_SHARED_LIBS=OFF',
    'GGML_NATIVE=OFF', // the addon is portable (CMakeLists.txt); the anchors must use the same kernels
    'LLAMA_BUILD_COMMON=ON',
    'LLAMA_BUILD_TOOLS=ON',
    'LLAMA_BUILD_SERVER=ON',
    'LLAMA_BUILD_UI=OFF',
    'LLAMA_USE_PREBUILT_UI=OFF',
    'LLAMA_OPENSSL=OFF',
    'LLAMA_BUILD_TESTS=OFF',
    'LLAMA_BUILD_EXAMPLES=OFF',
    'LLAMA_BUILD_APP=OFF',
  ];
  if (backend === 'cuda') {
    opts.push('GGML_CUDA=ON');
    if (cudaArchitectures) opts.push(`CMAKE_CUDA_ARCHITECTURES=${cudaArchitectures}`);
  } else {
    opts.push('GGML_CUDA=OFF');
  }
  return opts;
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
        reject(new Error(`${cmd} ${args[0]} failed (exit ${code}); see ${logFile}\n${tail}`));
      }
    });
  });
}

function commandExists(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(join(dir, cmd)));
}

/** Builds the three tools, or reuses a build made with the same source and options. */
export async function ensureTools(options: ToolsOptions): Promise<Tools> {
  const log = options.log ?? (() => {});
  const source = join(options.root, 'deps', 'llama.cpp');
  if (!existsSync(join(source, 'CMakeLists.txt'))) {
    throw new Error(`${source} is missing: build the addon first (npm install / npm run build:native clones it)`);
  }
  const cudaArchitectures = options.cudaArchitectures ?? process.env.CMAKE_CUDA_ARCHITECTURES ?? undefined;
  const cmakeOptions = toolCmakeOptions(options.backend, cudaArchitectures);
  const buildDir = join(options.root, 'bench', 'work', `llama-tools-${options.backend}`);
  const bin = (name: ToolName) => join(buildDir, 'bin', name);
  const sourceStamp = existsSync(join(source, '.srf-bundle-sha256'))
    ? readFileSync(join(source, '.srf-bundle-sha256'), 'utf8').trim()
    : 'unknown';
  const stamp = JSON.stringify({ sourceStamp, cmakeOptions });
  const stampFile = join(buildDir, '.srf-tools-stamp');
  const tools = (buildSeconds: number): Tools => ({
    buildDir,
    mtmdCli: bin('llama-mtmd-cli'),
    server: bin('llama-server'),
    quantize: bin('llama-quantize'),
    options: cmakeOptions,
    buildSeconds,
  });

  const previous = existsSync(stampFile) ? await readFile(stampFile, 'utf8') : '';
  if (previous === stamp && TOOL_TARGETS.every((t) => existsSync(bin(t)))) {
    log(`llama.cpp tools: reusing ${buildDir}`);
    return tools(0);
  }

  await mkdir(buildDir, { recursive: true });
  const logFile = join(buildDir, 'build.log');
  const jobs = options.jobs ?? availableParallelism();
  const started = Date.now();
  log(`llama.cpp tools: building ${TOOL_TARGETS.join(', ')} (${options.backend}, ${jobs} jobs) in ${buildDir}; log: ${logFile}`);
  const generator = commandExists('ninja') && !existsSync(join(buildDir, 'Makefile')) ? ['-G', 'Ninja'] : [];
  // A changed source or option set reconfigures the same folder: cmake rebuilds only what changed.
  await run('cmake', ['-S', source, '-B', buildDir, ...generator, ...cmakeOptions.map((o) => `-D${o}`)], logFile, options.root);
  await run('cmake', ['--build', buildDir, '--target', ...TOOL_TARGETS, '--parallel', String(jobs)], logFile, options.root);
  const missing = TOOL_TARGETS.filter((t) => !existsSync(bin(t)));
  if (missing.length) throw new Error(`the build finished but ${missing.join(', ')} is missing in ${join(buildDir, 'bin')}`);
  await writeFile(stampFile, stamp);
  const seconds = (Date.now() - started) / 1000;
  log(`llama.cpp tools: built in ${seconds.toFixed(0)} s`);
  return tools(seconds);
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
  const backend = (process.env.SRF_BENCH_BACKEND as 'cpu' | 'cuda' | undefined) ?? 'cpu';
  ensureTools({ root: benchRoot(), backend, log: (l) => console.log(l) })
    .then((t) => console.log(JSON.stringify(t, null, 2)))
    .catch((err) => {
      console.error(err.message);
      process.exit(1);
    });
}
