/**
 * Step 3 of a refine run: the engine (one replica per device), sized for the run's requests and for
 * its cached prefixes (every image in flight keeps one), and the sizes it chose said in the log.
 * The parallel and inFlight defaults it settles are written back into the resolved options.
 */
import type { VisionModelFileInfo } from '../gguf/check.js';
import { defaultDevices, resolveDevices } from '../engine/devices.js';
import { gpuStartNotes } from '../engine/gpu-notes.js';
import { describeFamily } from '../engine/families.js';
import { buildInfo } from '../engine/native.js';
import { defaultParallel, kvSizing } from '../engine/sizing.js';
import type { OpenVisionModelOptions } from '../engine/types.js';
import { VisionModel } from '../vision-model.js';
import type { RefineLog, RefineOptions, ResolvedOptions } from './refine-options.js';

export async function openRefineEngine(
  o: RefineOptions,
  r: ResolvedOptions,
  files: VisionModelFileInfo,
  log: (level: RefineLog['level'], message: string) => void,
): Promise<{ model: VisionModel; replicas: number }> {
  // The longest call's reply plus its prompt (a follow-up quotes a reply of up to ~200 chars).
  const requestTokens = Math.max(...Object.values(r.sampling).map((s) => s.maxTokens ?? 128)) + 192;
  const devices = o.devices ?? defaultDevices(o.gpuLayers);
  const targets = devices === undefined ? undefined : resolveDevices(devices);
  const replicas = Math.max(1, targets?.length ?? 1);
  if (o.parallel === undefined && o.contextSize === undefined) {
    // On a GPU the default is sized by memory (engine/sizing.ts), as the engine sizes its
    // own, counting this pipeline's cached prefixes (inFlight images, 2 per sequence), per replica.
    const sizing = await kvSizing(files, o, o.gpuLayers ?? -1, requestTokens, targets?.[0]);
    r.parallel = defaultParallel(sizing.device, (n) => sizing.perSequenceBytes(n, o.prefixCache ?? (o.inFlight === undefined ? 2 * n : Math.ceil(o.inFlight / replicas))));
  }
  if (o.inFlight === undefined) r.inFlight = 2 * r.parallel * replicas;
  const open: OpenVisionModelOptions = { model: o.model, mmproj: o.mmproj, parallel: r.parallel };
  if (devices !== undefined) open.devices = devices;
  if (o.requireGpu !== undefined) open.requireGpu = o.requireGpu;
  open.onReplicaFailure = (f) =>
    log('warn', `engine replica ${f.replica} on ${f.device} failed (${f.error.code}: ${f.error.message}); it handed back its ${f.handedBack + 1} requests in flight, and the run goes on with ${f.remaining} replica${f.remaining === 1 ? '' : 's'}`);
  if (o.loras) open.loras = o.loras;
  if (o.contextSize !== undefined) open.contextSize = o.contextSize;
  if (o.kvLayout !== undefined) open.kvLayout = o.kvLayout;
  open.requestTokens = requestTokens;
  if (o.gpuLayers !== undefined) open.gpuLayers = o.gpuLayers;
  if (o.gpuVision !== undefined) open.gpuVision = o.gpuVision;
  // Every image in flight keeps its prefix cached until IA->Q and IQ->A have reused it; with fewer
  // slots, other images' I->QA requests queued in between evict it and it is encoded again.
  open.prefixCache = o.prefixCache ?? Math.ceil(r.inFlight / replicas);
  if (o.threads !== undefined) open.threads = o.threads;
  Object.assign(open, o.engine);
  const model = await VisionModel.open(open);
  // The layout is chosen by memory (engine/sizing.ts) and halves or doubles throughput: say it.
  const where = replicas > 1 ? `${replicas} replicas (${model.info.devices.join(', ')}), each with ` : '';
  const info = buildInfo();
  log('info', `engine: ${info.backend}, ${where}${r.parallel} sequences, ${model.info.kvLayout} KV cache of ${model.info.contextSize} cells, ${model.info.prefixCache} cached image prefixes`);
  // Families are named, not guessed: what was resolved from the pair, said before the first image.
  log('info', `model family: ${describeFamily(model.info.family)}`);
  // A GPU box whose CUDA library did not load runs on the CPU, or JIT-compiles its kernels first: say so.
  for (const note of gpuStartNotes(info)) log(note.level, note.message);
  return { model, replicas };
}
