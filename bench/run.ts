/**
 * `npm run bench`: srf-native against llama.cpp's own tools driven by hand, on the "triplet"
 * workload (bench/workload.ts), one peer after another on the same images and model:
 *   1. srf-native (the library's engine, in a child process), then srf-native run's pipeline
 *      (refine() with the CLI's defaults, bench/peers/pipeline.ts) on the same images and model;
 *   2. good: llama-server with N slots, requests over HTTP;
 *   3. naive: llama-mtmd-cli, three runs per image
 * (the server before the cli: where device time is short, the anchor that matters comes first).
 * Prints one table with the ratios srf-native / each peer and appends it to bench/RESULTS.md.
 *
 * Flags: --images N (default 24 on CPU, 128 on CUDA), --cli-images N (mtmd-cli runs on the first N
 * images: it is slow; default 6 on CPU, 4 on CUDA), --parallel N (srf-native sequences and the
 * server's slots; default 8 on CPU, 32 on CUDA), --server-parallel N, --threads N (default cores - 1),
 * --batch N (default 512), --flash-attn on|off|auto (default off on CPU, on on CUDA; for every peer),
 * --shape bench-cpu|llava-1.5-7b|tiny (default by backend), --quant none|Q4_K_M (default Q4_K_M on
 * CUDA), --context N / --prefix-cache N / --kv-layout auto|unified|per-sequence (srf-native's
 * contextSize / prefixCache / kvLayout), --sampling-threads N (srf-native's sampling pool; default its
 * cores), --no-drafts (the pipeline's IA->Q / IQ->A without their drafts), --skip-srf, --skip-pipeline,
 * --skip-cli, --skip-server, --json, --no-record (do not append to RESULTS.md), --label TEXT.
 *
 * --workload srf: instead, the whole method (bench/method.ts): srf-native run with the CLI's defaults
 * against the same three calls driven against llama-server, with the same-work check (--replay N of
 * srf-native's triplets replayed on the server, default 200); --images defaults to 1000 for
 * --shape world, 48 for the random-weight shapes.
 * --workload eval: `srf-native eval` against llama-server with the same slots on the world's
 * held-out question file (bench/eval-bench.ts); --images world scenes (default 200, ~5 questions each);
 * --cli-images N questions also through llama-mtmd-cli, one process each (default 40 here).
 * --family NAME (with --workload eval or srf): that family's tiny random-weight pair
 * (bench/family-pairs.ts) instead of --shape's model, the server given the family's own prompt and
 * image options; eval holds both sides to printable ASCII and runs no mtmd-cli (bench/family-parity.ts
 * compares the families with it); srf keeps the method's grammar and the server's byte-token ban.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { basename, join } from 'node:path';

import { buildInfo } from '../lib/index.js';
import { isGpu } from '../lib/engine/devices.js';
import { writeBertEmbedder, writeFixtures, LLAVA_SHAPES, llavaImageTokens, type LlavaPresetName } from '../fixtures/gguf/fixtures.js';
import { renderScenePng } from '../lib/world/render.js';
import { generateScene } from '../lib/world/scene.js';
import { WORLD_HELD_OUT_SEED, worldModelPaths } from '../lib/world/model-files.js';
import { metaArray, readGgufInfo } from '../lib/gguf/reader.js';
import { writeTestImages } from './images.js';
import { mib } from './memory.js';
import { runCliPeer } from './peers/cli.js';
import { runServerPeer } from './peers/server.js';
import type { PipelinePeerConfig } from './peers/pipeline.js';
import type { SrfPeerConfig } from './peers/srf.js';
import { benchRoot, ensureTools, sourceTree, type Tools } from './tools.js';
import { GENERATED_PER_TRIPLET, TASKS } from './workload.js';
import { runMethodBench } from './method.js';
import { fmt, markdownTable } from './table.js';
import { runEvalBench } from './eval-bench.js';
import { BENCH_FAMILIES, isBenchFamily, writeBenchFamilyPair, type BenchFamily } from './family-pairs.js';
import { DEFAULT_IMAGE_MAX_TOKENS } from '../lib/engine/families.js';

// ---------------------------------------------------------------------------------------------
// Flags

interface Flags {
  images: number;
  cliImages: number;
  parallel: number;
  serverParallel: number;
  /** A generated random-weight shape, or `world`: the trained world model (models/world). */
  shape: LlavaPresetName | 'world';
  quant: 'none' | 'Q4_K_M';
  batch: number;
  flashAttn: 'on' | 'off' | 'auto';
  threads: number;
  /** srf-native's contextSize (0 = the library's default sizing). */
  context: number;
  /** srf-native's prefixCache (default: parallel). */
  prefixCache: number;
  /** srf-native's kvLayout (default auto: per-sequence where it fits in memory, else unified). */
  kvLayout: 'auto' | 'unified' | 'per-sequence';
  samplingThreads: number;
  drafts: boolean;
  skipSrf: boolean;
  skipPipeline: boolean;
  skipCli: boolean;
  skipServer: boolean;
  json: boolean;
  record: boolean;
  byteBan: boolean;
  label: string;
  workload: 'triplet' | 'srf' | 'eval';
  replay: number;
  /** --family NAME (eval or srf workload): that family's tiny random-weight pair instead of --shape's model. */
  family: BenchFamily | undefined;
}

function kvLayoutFlag(value: string | undefined): Flags['kvLayout'] {
  if (value === undefined) return 'auto';
  if (value === 'auto' || value === 'unified' || value === 'per-sequence') return value;
  throw new Error('--kv-layout must be auto, unified or per-sequence');
}

function parseFlags(argv: string[], cuda: boolean): Flags {
  const values = new Map<string, string>();
  const bools = new Set<string>();
  const booleanFlags = ['skip-srf', 'skip-pipeline', 'no-drafts', 'skip-cli', 'skip-server', 'json', 'no-record', 'no-byte-ban', 'help'];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [name, inline] = a.slice(2).split('=', 2);
    if (booleanFlags.includes(name)) bools.add(name);
    else if (inline !== undefined) values.set(name, inline);
    else if (i + 1 < argv.length) values.set(name, argv[++i]);
    else throw new Error(`--${name} needs a value`);
  }
  if (bools.has('help')) {
    console.log(
      'npm run bench -- [--images N] [--cli-images N] [--parallel N] [--server-parallel N] [--shape bench-cpu|llava-1.5-7b|tiny|world]\n' +
        '                 [--quant none|Q4_K_M] [--batch N] [--flash-attn on|off|auto] [--threads N]\n' +
        '                 [--context N] [--prefix-cache N] [--kv-layout auto|unified|per-sequence] [--sampling-threads N] [--no-drafts] [--skip-srf] [--skip-pipeline] [--skip-cli] [--skip-server] [--no-byte-ban]\n' +
        '                 [--json] [--no-record] [--label TEXT] [--workload triplet|srf|eval] [--replay N] [--family ' + BENCH_FAMILIES.join('|') + ']',
    );
    process.exit(0);
  }
  const int = (name: string, fallback: number) => {
    const v = values.get(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} expects a positive integer, got ${v}`);
    return n;
  };
  const shape = (values.get('shape') ?? (cuda ? 'llava-1.5-7b' : 'bench-cpu')) as LlavaPresetName | 'world';
  if (shape !== 'world' && !(shape in LLAVA_SHAPES)) throw new Error(`--shape must be one of ${[...Object.keys(LLAVA_SHAPES), 'world'].join(', ')}`);
  if (shape === 'world' && values.has('quant') && values.get('quant') !== 'none') throw new Error('--shape world is F16 only (--quant none)');
  const quant = (values.get('quant') ?? (cuda ? 'Q4_K_M' : 'none')) as Flags['quant'];
  if (quant !== 'none' && quant !== 'Q4_K_M') throw new Error('--quant must be none or Q4_K_M');
  // Every peer gets the same setting: off on CPU, where plain attention is faster for the server
  // (NOTES.md experiments 1 and 11: its best "by hand" setting), on for CUDA.
  const flashAttn = (values.get('flash-attn') ?? (cuda ? 'on' : 'off')) as Flags['flashAttn'];
  if (!['on', 'off', 'auto'].includes(flashAttn)) throw new Error('--flash-attn must be on, off or auto');
  const workload = values.get('workload') ?? 'triplet';
  if (workload !== 'triplet' && workload !== 'srf' && workload !== 'eval') throw new Error('--workload must be triplet, srf or eval');
  const family = values.get('family');
  if (family !== undefined) {
    if (!isBenchFamily(family)) throw new Error(`--family must be one of ${BENCH_FAMILIES.join(', ')}`);
    if (workload === 'triplet') throw new Error('--family is for --workload eval or srf');
    if (values.has('shape') || quant !== 'none') throw new Error('--family brings its own tiny F16 pair: no --shape, --quant none');
  }
  const images = int('images', workload === 'srf' ? (shape === 'world' ? 1000 : 48) : workload === 'eval' ? 200 : cuda ? 128 : 24);
  const parallel = int('parallel', cuda ? 32 : 8);
  return {
    images,
    cliImages: workload === 'eval' ? int('cli-images', 40) : Math.min(images, int('cli-images', cuda ? 4 : 6)),
    parallel,
    serverParallel: int('server-parallel', parallel),
    shape,
    quant,
    batch: int('batch', 512),
    flashAttn,
    // One core is left to the driver, HTTP, image decoding and the OS: ggml's threads wait for each
    // other at every op, so one busy core slows a thread-per-core run down many times (NOTES.md).
    threads: int('threads', Math.max(1, availableParallelism() - 1)),
    context: values.has('context') ? int('context', 0) : 0,
    prefixCache: int('prefix-cache', parallel),
    kvLayout: kvLayoutFlag(values.get('kv-layout')),
    samplingThreads: values.has('sampling-threads') ? int('sampling-threads', 1) : 0,
    drafts: !bools.has('no-drafts'),
    skipSrf: bools.has('skip-srf'),
    skipPipeline: bools.has('skip-pipeline'),
    skipCli: bools.has('skip-cli'),
    skipServer: bools.has('skip-server'),
    json: bools.has('json'),
    record: !bools.has('no-record'),
    byteBan: !bools.has('no-byte-ban'),
    label: values.get('label') ?? '',
    workload,
    replay: int('replay', 200),
    family,
  };
}

// ---------------------------------------------------------------------------------------------
// Peers

interface PeerResult {
  peer: string;
  images: number;
  seconds: number;
  tripletsPerSecond: number;
  prefillPerSecond: number;
  generatedPerSecond: number;
  promptEvaluatedPerImage: number;
  peakRssMiB: number;
  /** CPU seconds (user + system, all threads of the peer's processes) per image. */
  cpuSecondsPerTriplet: number;
  loadSeconds?: number;
  note: string;
  /** srf-native's peers: (image prefixes + decode steps) / wall, and host ms per decode step (the rest). */
  deviceBusy?: number;
  hostMsPerStep?: number;
  command?: string;
  extra?: Record<string, unknown>;
}

/** Device-busy fraction and host ms per step from the engine's counters (device time is synchronized). */
function engineShare(result: PeerResult, stats: { prefixEvalMs: number; decodeMs: number; steps: number }): void {
  const deviceMs = stats.prefixEvalMs + stats.decodeMs;
  result.deviceBusy = deviceMs / (1000 * result.seconds);
  result.hostMsPerStep = stats.steps > 0 ? (1000 * result.seconds - deviceMs) / stats.steps : NaN;
}

function rates(
  peer: string,
  run: { seconds: number; triplets: number; promptEvaluated: number; generated: number },
  peakRssBytes: number,
  cpuSeconds: number,
  note: string,
): PeerResult {
  return {
    peer,
    images: run.triplets,
    seconds: run.seconds,
    tripletsPerSecond: run.triplets / run.seconds,
    prefillPerSecond: run.promptEvaluated / run.seconds,
    generatedPerSecond: run.generated / run.seconds,
    promptEvaluatedPerImage: run.promptEvaluated / run.triplets,
    peakRssMiB: mib(peakRssBytes),
    cpuSecondsPerTriplet: cpuSeconds / run.triplets,
    note,
  };
}

function runSrfPeer(root: string, configPath: string, peer = 'srf'): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const script = join(root, 'dist', 'bench', 'peers', `${peer}.js`);
    const child = spawn(process.execPath, [script, configPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`the srf-native ${peer} peer exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!));
      } catch (err) {
        reject(new Error(`the srf-native peer printed no result: ${out.slice(-500)}`));
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Table

const PIPELINE = 'srf-native run (pipeline)';

function table(results: PeerResult[]): string {
  const srf = results.find((r) => r.peer === 'srf-native');
  const head = ['peer', 'images', 'wall s', 'triplets/s', 'prefill tok/s', 'gen tok/s', 'prompt tok evaluated/image', 'CPU s/image', 'peak RSS MiB', 'device busy', 'host ms/step', 'srf-native / peer'];
  const rows = results.map((r) => [
    r.peer,
    String(r.images),
    fmt(r.seconds, 1),
    fmt(r.tripletsPerSecond, 3),
    fmt(r.prefillPerSecond, 0),
    fmt(r.generatedPerSecond, 1),
    fmt(r.promptEvaluatedPerImage, 0),
    fmt(r.cpuSecondsPerTriplet, 2),
    fmt(r.peakRssMiB, 0),
    r.deviceBusy === undefined ? '' : `${(100 * r.deviceBusy).toFixed(0)} %`,
    r.hostMsPerStep === undefined ? '' : fmt(r.hostMsPerStep, 1),
    srf && r !== srf && r.peer !== PIPELINE ? `${(srf.tripletsPerSecond / r.tripletsPerSecond).toFixed(2)}x` : '',
  ]);
  return markdownTable(head, rows);
}

/** `pipeline/engine: R`: srf-native run's triplets/s over the engine's, when both ran. */
function pipelineRatio(results: PeerResult[]): string | undefined {
  const engine = results.find((r) => r.peer === 'srf-native');
  const pipeline = results.find((r) => r.peer === PIPELINE);
  if (!engine || !pipeline) return undefined;
  const ratio = `pipeline/engine: ${(pipeline.tripletsPerSecond / engine.tripletsPerSecond).toFixed(2)}`;
  // An image the pipeline rejects skips its re-predictions: a third of the engine's work per image.
  const scored = Number(pipeline.extra?.scored ?? pipeline.images);
  return scored < 0.9 * pipeline.images ? `${ratio} (NOT comparable: only ${scored} of ${pipeline.images} images reached the re-predictions)` : ratio;
}

// ---------------------------------------------------------------------------------------------

/** The world model's image tokens: 64 px images in 16 px patches (training/world/README.md). */
const WORLD_IMAGE_TOKENS = 16;

/** Held-out world scenes (never used in training), as PNG files. */
async function writeWorldImages(dir: string, count: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const file = join(dir, `world-${WORLD_HELD_OUT_SEED + 500_000 + i}.png`);
    if (!existsSync(file)) await writeFile(file, await renderScenePng(generateScene(WORLD_HELD_OUT_SEED + 500_000 + i)));
    files.push(file);
  }
  return files;
}

interface MethodInputs {
  root: string;
  work: string;
  tools: Tools;
  model: string;
  mmproj: string;
  embedder: string;
  images: string[];
  imageTokens: number;
  gpuLayers: number;
  info: ReturnType<typeof buildInfo>;
  load: number;
  log: (line: string) => void;
  byteBan: [number, false][];
}

/** --workload srf (the whole method) or eval, against the llama-server script, recorded in RESULTS.md. */
async function otherWorkload(flags: Flags, m: MethodInputs): Promise<void> {
  const runChild = (configPath: string, peer: string) => runSrfPeer(m.root, configPath, peer);
  const common = { work: m.work, serverBinary: m.tools.server, model: m.model, mmproj: m.mmproj, imageTokens: m.imageTokens, parallel: flags.parallel, threads: flags.threads, batch: flags.batch, flashAttn: flags.flashAttn, gpuLayers: m.gpuLayers };
  const bench =
    flags.workload === 'eval'
      ? await runEvalBench({ ...common, images: flags.images, cliBinary: m.tools.mtmdCli, cliQuestions: flags.cliImages, ...(flags.family ? { family: flags.family } : {}) }, runChild, m.log)
      : await runMethodBench({ ...common, root: m.root, embedder: m.embedder, images: m.images, kvLayout: flags.kvLayout, samplingThreads: flags.samplingThreads, replay: flags.replay, logitBias: m.byteBan, ...(flags.family ? { family: flags.family } : {}) }, runChild, m.log);
  m.log('');
  for (const line of bench.lines) m.log(line);
  if (flags.json) process.stdout.write(JSON.stringify(bench, null, 2) + '\n');
  if (!flags.record) return;
  const machine = `${cpus()[0]?.model ?? 'unknown cpu'}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; load average ${m.load.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end`;
  const gpus = m.info.devices.filter(isGpu);
  const card = gpus.length ? gpus.map((g) => `${g.description || g.name} (${(g.memoryTotal / 2 ** 30).toFixed(0)} GiB)`).join(', ') : 'none';
  const date = new Date().toISOString();
  const what = flags.workload === 'eval' ? 'srf-native eval' : 'whole method';
  const record = [
    '',
    `## ${date.slice(0, 16).replace('T', ' ')} UTC — ${m.info.backend.toUpperCase()}, ${flags.family ? `${flags.family} tiny pair` : flags.shape}, ${what}${flags.label ? ` — ${flags.label}` : ''}`,
    '',
    `- machine: ${machine}; card: ${card}`,
    `- build: backend ${m.info.backend}, llama.cpp ${m.info.llamaCppVersion}`,
    `- command: \`npm run bench -- ${process.argv.slice(2).join(' ')}\``,
    `- settings: images=${flags.images}, parallel=${flags.parallel} (server slots the same), threads=${flags.threads}, batch=${flags.batch}, flashAttn=${flags.flashAttn}${flags.workload === 'srf' ? `, kvLayout=${flags.kvLayout}` : ''}`,
    '',
    ...bench.lines,
    '',
  ];
  await appendFile(join(m.root, 'bench', 'RESULTS.md'), record.join('\n'));
}

async function main(): Promise<void> {
  const root = benchRoot();
  // The anchors are built from source; srf-native is measured on the same tree's addon, so both run the
  // same kernels (the prebuilt libraries pick another CPU variant: bench/prebuilt.ts compares those).
  const argv = process.argv.slice(2);
  const anchors = !(argv.includes('--skip-cli') && argv.includes('--skip-server'));
  let addonNote = 'the addon in build/';
  if (anchors && !process.env.SRF_NATIVE_ADDON) {
    const tree = await sourceTree(root, (line) => process.stderr.write(`${line}\n`));
    if (tree.prebuiltAddon) {
      process.env.SRF_NATIVE_ADDON = tree.addon;
      addonNote = `${tree.addon} (from source, the anchors' tree; build/ links the prebuilt llama.cpp)`;
    }
  }
  const info = buildInfo();
  const cuda = info.backend === 'cuda';
  const flags = parseFlags(process.argv.slice(2), cuda);
  const log = (line: string) => (flags.json ? process.stderr : process.stdout).write(line + '\n');
  const work = join(root, 'bench', 'work');
  await mkdir(work, { recursive: true });
  const gpuLayers = cuda ? 999 : 0;
  const gpus = info.devices.filter(isGpu);
  const load = loadavg()[0];
  log(`srf-native bench: backend ${info.backend}, llama.cpp ${info.llamaCppVersion}, ${cpus()[0]?.model ?? 'cpu'} x${availableParallelism()}` +
      (gpus.length ? `, ${gpus.map((g) => g.description || g.name).join(', ')}` : '') + `; load average ${load.toFixed(2)}`);
  log(`  srf-native: ${addonNote}, llama.cpp ${info.llamaCppFrom}`);
  if (load > availableParallelism() / 2) log(`  note: the machine is busy (load average ${load.toFixed(2)}); timings will be noisy`);

  // Tools (the anchors, and llama-quantize for the GPU model).
  let tools: Tools | undefined;
  if (!flags.skipCli || !flags.skipServer || flags.quant !== 'none') {
    tools = await ensureTools({ root, log });
  }

  // Models, from the project's own writer.
  const t0 = Date.now();
  let lastShown = 0;
  // --shape world: the trained world model, a realistic workload beside the random-weight worst
  // case (peaked distributions, replies that end, tokens the grammar accepts).
  const fixtures = flags.family
    ? { ...(await writeBenchFamilyPair(join(work, 'models'), flags.family)), llava: undefined, embedder: flags.workload === 'srf' ? await writeBertEmbedder(join(work, 'models'), 'minilm', { seed: 1 }) : undefined }
    : flags.shape === 'world' ? { ...worldModelPaths(), llava: undefined } : await writeFixtures(join(work, 'models'), {
    llava: flags.shape,
    ...(flags.skipPipeline ? {} : { bert: 'minilm' as const }),
    seed: 1,
    onProgress: (file, written, total) => {
      if (Date.now() - lastShown > 10_000) {
        lastShown = Date.now();
        log(`  writing ${basename(file)}: ${((100 * written) / total).toFixed(0)} %`);
      }
    },
  });
  let model = fixtures.model;
  if (flags.quant !== 'none') {
    const quantized = model.replace(/-f16\.gguf$/, `-${flags.quant.toLowerCase()}.gguf`);
    if (!existsSync(quantized)) {
      log(`  quantizing to ${flags.quant} with llama-quantize`);
      await new Promise<void>((resolve, reject) => {
        const tmp = `${quantized}.partial`;
        const child = spawn(tools!.quantize, [model, tmp, flags.quant, String(availableParallelism())], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
        child.on('error', reject);
        child.on('close', async (code) => {
          if (code !== 0) return reject(new Error(`llama-quantize failed (${code}): ${err}`));
          const { rename } = await import('node:fs/promises');
          await rename(tmp, quantized);
          resolve();
        });
      });
    }
    model = quantized;
  }
  const mmproj = fixtures.mmproj;
  log(`models ready in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${basename(model)} + ${basename(mmproj)} (mmproj F16)`);

  // llama-server's reply parser rejects the invalid UTF-8 a random model makes of byte tokens
  // ("does not match the expected Content-only format"): the server's requests ban <0x80>..<0xFF>
  // with logit_bias (LLAMA-CPP-NOTES.md). srf-native has no logit-bias option to mirror it; the
  // ban only costs the server (measured in NOTES.md), so it cannot flatter srf-native.
  let byteBan: [number, false][] = [];
  if (flags.byteBan && !flags.skipServer) {
    const tokens = metaArray(await readGgufInfo(fixtures.model), 'tokenizer.ggml.tokens') ?? [];
    for (let id = 0; id < tokens.length; id++) {
      if (/^<0x[89A-F][0-9A-F]>$/.test(String(tokens[id]))) byteBan.push([id, false]);
    }
  }

  const images = flags.shape === 'world' ? await writeWorldImages(join(work, 'world-images'), flags.images) : await writeTestImages(join(work, 'images'), flags.images);
  // A family's image tokens depend on the image: the server's context is sized for the engine's cap.
  const imageTokens = flags.family ? DEFAULT_IMAGE_MAX_TOKENS : fixtures.llava ? llavaImageTokens(fixtures.llava) : WORLD_IMAGE_TOKENS;

  if (flags.workload !== 'triplet') {
    await otherWorkload(flags, { root, work, tools: tools!, model, mmproj, embedder: fixtures.embedder!, images, imageTokens, gpuLayers, info, load, log, byteBan });
    return;
  }

  const results: PeerResult[] = [];
  const settings = {
    shape: flags.shape,
    quant: flags.quant,
    images: flags.images,
    cliImages: flags.cliImages,
    parallel: flags.parallel,
    serverParallel: flags.serverParallel,
    batch: flags.batch,
    flashAttn: flags.flashAttn,
    threads: flags.threads,
    serverByteBan: byteBan.length ? `${byteBan.length} tokens (logit_bias)` : 'none',
    srfContext: flags.context || 'default',
    srfPrefixCache: flags.prefixCache,
    srfKvLayout: flags.kvLayout,
    samplingThreads: flags.samplingThreads || 'cores',
    pipelineDrafts: flags.skipPipeline ? 'n/a' : flags.drafts ? 'on' : 'off',
    gpuLayers,
    workload: `per image: I->QA ${TASKS.iToQa.maxTokens} tok, then IA->Q ${TASKS.iaToQ.maxTokens} + IQ->A ${TASKS.iqToA.maxTokens} tok together; greedy, EOS ignored`,
  };

  // 1. srf-native
  if (!flags.skipSrf) {
    log(`srf-native: ${images.length} images, parallel ${flags.parallel}`);
    const config: SrfPeerConfig = {
      open: {
        model,
        mmproj,
        parallel: flags.parallel,
        prefixCache: flags.prefixCache,
        // Sized as `srf-native run` sizes it: the longest reply plus 192 tokens of prompt room.
        requestTokens: Math.max(TASKS.iToQa.maxTokens, TASKS.iaToQ.maxTokens, TASKS.iqToA.maxTokens) + 192,
        ...(flags.context ? { contextSize: flags.context } : {}),
        kvLayout: flags.kvLayout,
        batchSize: flags.batch,
        threads: flags.threads,
        flashAttention: flags.flashAttn === 'auto' ? undefined : flags.flashAttn === 'on',
        gpuLayers: cuda ? -1 : 0,
        ...(flags.samplingThreads ? { samplingThreads: flags.samplingThreads } : {}),
      },
      images,
      maxInFlight: flags.parallel,
    };
    const configPath = join(work, 'srf-peer.json');
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const r = await runSrfPeer(root, configPath);
    const result = rates('srf-native', r.run, r.peakRssBytes, r.cpuSeconds, `in-process library; ${r.stats.steps} decode steps`);
    result.loadSeconds = r.loadSeconds;
    result.extra = { stats: r.stats, contextSize: r.info.contextSize, kvLayout: r.info.kvLayout };
    engineShare(result, r.stats);
    const { model: _m, mmproj: _p, ...open } = config.open;
    result.command = `VisionModel.open(${JSON.stringify({ ...open, contextSize: r.info.contextSize, kvLayout: r.info.kvLayout })}); ${flags.parallel} requests in flight (node dist/bench/peers/srf.js ${configPath})`;
    results.push(result);
    log(`  ${fmt(result.tripletsPerSecond, 3)} triplets/s; engine (${r.info.kvLayout} KV): prefixEvalMs ${fmt(r.stats.prefixEvalMs, 0)} (image encoder ${fmt(r.stats.imageEncodeMs, 0)}), decodeMs ${fmt(r.stats.decodeMs, 0)}, steps ${r.stats.steps}`);
  }

  // 1b. srf-native run's pipeline on the same images and model
  if (!flags.skipPipeline) {
    log(`srf-native run (pipeline): ${images.length} images, parallel ${flags.parallel}, drafts ${flags.drafts ? 'on' : 'off'}`);
    const config: PipelinePeerConfig = {
      model,
      mmproj,
      embedder: fixtures.embedder!,
      images,
      work,
      parallel: flags.parallel,
      threads: flags.threads,
      gpuLayers: cuda ? -1 : 0,
      kvLayout: flags.kvLayout,
      drafts: flags.drafts,
      engine: {
        batchSize: flags.batch,
        ...(flags.flashAttn === 'auto' ? {} : { flashAttention: flags.flashAttn === 'on' }),
        ...(flags.samplingThreads ? { samplingThreads: flags.samplingThreads } : {}),
      },
    };
    const configPath = join(work, 'pipeline-peer.json');
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const r = await runSrfPeer(root, configPath, 'pipeline');
    const s = r.stats;
    const run = { seconds: r.seconds.generation, triplets: r.processed, promptEvaluated: s.promptTokens + s.prefixTokens, generated: s.generatedTokens };
    const result = rates(
      PIPELINE,
      run,
      r.peakRssBytes,
      r.cpuSeconds,
      `refine() as \`srf-native run\` runs it, replies capped at ${TASKS.iToQa.maxTokens}/${TASKS.iaToQ.maxTokens}/${TASKS.iqToA.maxTokens} tokens; ` +
        `${r.counts.scored} scored, ${r.counts.rejected} rejected, ${r.counts.errors} errors; ${s.steps} decode steps; ` +
        `${fmt(s.generatedTokens / Math.max(1, r.processed), 0)} generated tok/image; sampling ${fmt(s.sampleMs, 0)} ms; ` +
        `drafts ${flags.drafts ? `on: ${s.draftAccepted} of ${s.draftTokens} draft tokens confirmed` : 'off'}; wall = generation phase (outputs written after: ${fmt(r.seconds.finalize, 1)} s)`,
    );
    engineShare(result, s);
    result.extra = { stats: s, scored: r.counts.scored };
    result.command = `refine(${JSON.stringify({ parallel: flags.parallel, threads: flags.threads, kvLayout: flags.kvLayout, engine: config.engine, drafts: flags.drafts, truncatedAnswers: 'keep' })}) (node dist/bench/peers/pipeline.js ${configPath})`;
    results.push(result);
    log(`  ${fmt(result.tripletsPerSecond, 3)} triplets/s; device busy ${(100 * result.deviceBusy!).toFixed(0)} %, host ${fmt(result.hostMsPerStep!, 1)} ms/step, sampling ${fmt(s.sampleMs, 0)} ms`);
  }

  // An anchor that fails is reported, not fatal: what was measured before it still makes the table.
  const failures: string[] = [];
  const anchor = async (peer: string, measure: () => Promise<void>) => {
    try {
      await measure();
    } catch (err) {
      const why = String((err as Error)?.message ?? err).split('\n')[0];
      failures.push(`${peer} failed: ${why}`);
      log(`  ${peer} failed: ${why}`);
    }
  };

  // 2. llama-server, N slots
  if (!flags.skipServer) await anchor('llama-server', async () => {
    const perSlot = imageTokens + 128 + 2 * TASKS.iToQa.maxTokens;
    log(`llama-server: ${images.length} images, ${flags.serverParallel} slots`);
    const r = await runServerPeer(
      {
        binary: tools!.server,
        model,
        mmproj,
        parallel: flags.serverParallel,
        contextSize: flags.serverParallel * perSlot,
        kvUnified: false,
        threads: flags.threads,
        batchSize: flags.batch,
        flashAttention: flags.flashAttn,
        gpuLayers,
        logitBias: byteBan,
        logFile: join(work, 'llama-server.log'),
      },
      images,
      log,
    );
    const result = rates('llama-server', r, r.peakRssBytes, r.cpuSeconds, `${flags.serverParallel} slots; ${Math.round(r.promptCached / r.triplets)} prompt tok/image reused from its slot cache (over the 3 requests)`);
    result.loadSeconds = r.loadSeconds;
    result.command = r.command;
    results.push(result);
    log(`  ${fmt(result.tripletsPerSecond, 3)} triplets/s`);
  });

  // 3. llama-mtmd-cli x3 per image
  if (!flags.skipCli) await anchor('llama-mtmd-cli x3', async () => {
    const subset = images.slice(0, flags.cliImages);
    log(`llama-mtmd-cli x3: ${subset.length} images`);
    const r = await runCliPeer(
      { binary: tools!.mtmdCli, model, mmproj, threads: flags.threads, batchSize: flags.batch, flashAttention: flags.flashAttn, gpuLayers },
      subset,
      log,
    );
    const note =
      (subset.length < images.length ? `first ${subset.length} of ${images.length} images; process per request` : 'process per request') +
      (r.countersLost ? `; ${r.countersLost} runs lost their perf counters (prompt count taken from the same task's other runs)` : '');
    const result = rates('llama-mtmd-cli x3', r, r.peakRssBytes, r.cpuSeconds, note);
    result.command = r.command;
    results.push(result);
    log(`  ${fmt(result.tripletsPerSecond, 3)} triplets/s`);
  });

  // Report.
  const date = new Date().toISOString();
  const machine = `${cpus()[0]?.model ?? 'unknown cpu'}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; load average ${load.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end`;
  const card = gpus.length ? gpus.map((g) => `${g.description || g.name} (${(g.memoryTotal / 2 ** 30).toFixed(0)} GiB)`).join(', ') : 'none';
  const build = `backend ${info.backend}${info.cudaArchitectures ? ` (sm ${info.cudaArchitectures})` : ''}, llama.cpp ${info.llamaCppVersion}`;
  const args = process.argv.slice(2);
  const command = args.length ? `npm run bench -- ${args.join(' ')}` : 'npm run bench';
  const tableText = table(results);
  const ratio = pipelineRatio(results);
  if (flags.json) {
    process.stdout.write(JSON.stringify({ date, machine, card, build, settings, command, results }, null, 2) + '\n');
  } else {
    log('');
    log(tableText);
    if (ratio) log(ratio);
    for (const failure of failures) log(failure);
    log(`(${GENERATED_PER_TRIPLET} generated tokens per image; wall time excludes model load / server start)`);
  }
  if (flags.record) {
    const lines = [
      '',
      `## ${date.slice(0, 16).replace('T', ' ')} UTC — ${info.backend.toUpperCase()}, ${flags.shape}${flags.quant !== 'none' ? ` ${flags.quant}` : ' F16'}${flags.label ? ` — ${flags.label}` : ''}`,
      '',
      `- machine: ${machine}; card: ${card}`,
      `- build: ${build}`,
      `- command: \`${command}\``,
      `- settings: ${Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(', ')}`,
      '',
      tableText,
      '',
      ...(ratio ? [ratio, ''] : []),
      ...results.map((r) => `- ${r.peer}: ${r.note}${r.loadSeconds !== undefined ? `; load ${fmt(r.loadSeconds, 1)} s` : ''}`),
      ...failures.map((f) => `- ${f}`),
      ...results.filter((r) => r.command).map((r) => `- ${r.peer} command: \`${r.command}\``),
      '',
    ];
    await appendFile(join(root, 'bench', 'RESULTS.md'), lines.join('\n'));
  }
}

main().catch((err) => {
  console.error(err?.stack ?? String(err));
  process.exit(1);
});
