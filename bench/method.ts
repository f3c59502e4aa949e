/**
 * `npm run bench -- --workload srf`: the whole method, the job a user runs, against what the user
 * would otherwise write. Two peers on the same images and model, one after the other:
 *   1. srf-native run: refine() with the CLI's defaults (bench/peers/pipeline.ts, method mode):
 *      outputs written, the embedder scoring, drafts on;
 *   2. the same calls driven against llama-server (bench/peers/server-method.ts): the same
 *      prompts, reply grammar and sampling on I->QA, the same caps, greedy re-predictions, EOS on,
 *      the default filter's open re-ask (and sampled re-answers, where it has them), as many
 *      requests in flight as it has slots;
 * then the same-work check: srf-native's triplets replayed on the server, their Q' and A' compared.
 * Prints `srf-native / llama-server (whole method): R` (images through the method per second).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PipelinePeerConfig } from './peers/pipeline.js';
import { runServerMethod, type MethodServerRun, type ReplayTriplet } from './peers/server-method.js';
import { readJournal, isScoredLine } from '../lib/outputs/journal.js';
import { fmt, markdownTable } from './table.js';
import { familyImageArgs, familyServerPrompt, type BenchFamily } from './family-pairs.js';

export interface MethodBenchSettings {
  root: string;
  work: string;
  serverBinary: string;
  model: string;
  mmproj: string;
  embedder: string;
  images: string[];
  imageTokens: number;
  parallel: number;
  threads: number;
  batch: number;
  flashAttn: 'on' | 'off' | 'auto';
  kvLayout: 'auto' | 'unified' | 'per-sequence';
  samplingThreads: number;
  gpuLayers: number;
  /** Triplets replayed in the same-work check (the first of srf-native's journal). */
  replay: number;
  /** The server's byte-token ban for a random-weight model (run.ts); srf-native has none. */
  logitBias: [number, false][];
  /** A model family's tiny pair (`model`, `mmproj` are it): the server gets its prompt rendering and image options. */
  family?: BenchFamily;
}

export interface MethodPeer {
  peer: string;
  images: number;
  scored: number;
  seconds: number;
  imagesPerSecond: number;
  generatedPerImage: number;
  promptEvaluatedPerImage: number;
  cpuSecondsPerImage: number;
  peakRssMiB: number;
  /** srf-native: draft tokens proposed and confirmed; device-busy share of the wall. */
  drafts?: { proposed: number; accepted: number };
  deviceBusy?: number;
  note: string;
}

export interface MethodBench {
  peers: MethodPeer[];
  ratio: number;
  sameWork: MethodServerRun['sameWork'];
  lines: string[];
}

type RunChild = (configPath: string, peer: string) => Promise<Record<string, any>>;

async function journalTriplets(journal: string, imageRoot: string, limit: number): Promise<ReplayTriplet[]> {
  const triplets: ReplayTriplet[] = [];
  for await (const line of readJournal(journal)) {
    if (!isScoredLine(line)) continue;
    triplets.push({ image: join(imageRoot, line.image), question: line.question, answer: line.answer, questionPrime: line.questionPrime, answerPrime: line.answerPrime });
    if (triplets.length >= limit) break;
  }
  return triplets;
}

export async function runMethodBench(s: MethodBenchSettings, runChild: RunChild, log: (line: string) => void): Promise<MethodBench> {
  // 1. srf-native run
  log(`srf-native run, whole method: ${s.images.length} images, parallel ${s.parallel}, drafts on`);
  const config: PipelinePeerConfig = {
    model: s.model,
    mmproj: s.mmproj,
    embedder: s.embedder,
    images: s.images,
    work: s.work,
    parallel: s.parallel,
    threads: s.threads,
    gpuLayers: s.gpuLayers,
    kvLayout: s.kvLayout,
    drafts: true,
    method: true,
    engine: {
      batchSize: s.batch,
      ...(s.flashAttn === 'auto' ? {} : { flashAttention: s.flashAttn === 'on' }),
      ...(s.samplingThreads ? { samplingThreads: s.samplingThreads } : {}),
    },
  };
  const configPath = join(s.work, 'method-peer.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const r = await runChild(configPath, 'pipeline');
  const st = r.stats as Record<string, number>;
  const srfSeconds = r.seconds.generation as number;
  const srf: MethodPeer = {
    peer: 'srf-native run',
    images: r.processed,
    scored: r.counts.scored,
    seconds: srfSeconds,
    imagesPerSecond: r.processed / srfSeconds,
    generatedPerImage: st.generatedTokens! / r.processed,
    promptEvaluatedPerImage: (st.promptTokens! + st.prefixTokens!) / r.processed,
    cpuSecondsPerImage: r.cpuSeconds / r.processed,
    peakRssMiB: r.peakRssBytes / 2 ** 20,
    drafts: { proposed: st.draftTokens!, accepted: st.draftAccepted! },
    deviceBusy: (st.prefixEvalMs! + st.decodeMs!) / (1000 * srfSeconds),
    note: `refine() with the CLI's defaults, embedder scoring and outputs; ${r.counts.rejected} rejected, ${r.counts.errors} errors; ${st.steps} decode steps; outputs written after the generation phase in ${fmt(r.seconds.finalize, 1)} s`,
  };
  log(`  ${fmt(srf.imagesPerSecond, 3)} images/s; ${fmt(srf.generatedPerImage, 0)} generated tok/image; drafts ${srf.drafts!.accepted} of ${srf.drafts!.proposed} confirmed`);

  // 2. llama-server, the same three calls, then the replay of srf-native's triplets
  const replay = await journalTriplets(r.journal, r.imageRoot, s.replay);
  log(`llama-server, whole method: ${s.images.length} images, ${s.parallel} slots`);
  const perSlot = s.imageTokens + 64 + 512;
  const server = await runServerMethod(
    {
      binary: s.serverBinary,
      model: s.model,
      mmproj: s.mmproj,
      parallel: s.parallel,
      contextSize: s.parallel * perSlot,
      kvUnified: false,
      threads: s.threads,
      batchSize: s.batch,
      flashAttention: s.flashAttn,
      gpuLayers: s.gpuLayers,
      logitBias: s.logitBias,
      logFile: join(s.work, 'llama-server-method.log'),
      ...(s.family ? { extraArgs: familyImageArgs(s.family) } : {}),
    },
    s.images,
    r.imageRoot,
    replay,
    log,
    ...(s.family ? [await familyServerPrompt({ model: s.model, mmproj: s.mmproj })] : []),
  );
  const peer: MethodPeer = {
    peer: 'llama-server (script)',
    images: server.images,
    scored: server.scored,
    seconds: server.seconds,
    imagesPerSecond: server.images / server.seconds,
    generatedPerImage: server.generated / server.images,
    promptEvaluatedPerImage: server.promptEvaluated / server.images,
    cpuSecondsPerImage: server.cpuSeconds / server.images,
    peakRssMiB: server.peakRssBytes / 2 ** 20,
    note: `${s.parallel} slots, cache_prompt on${s.logitBias.length ? `; ${s.logitBias.length} byte tokens banned (logit_bias: the server refuses the invalid UTF-8 a random model makes of them)` : ''}; ${server.rejected} I->QA replies rejected by the same parser; ${fmt(server.promptCached / server.images, 0)} prompt tok/image from its slot cache; load ${fmt(server.loadSeconds, 1)} s; command: \`${server.command}\``,
  };
  log(`  ${fmt(peer.imagesPerSecond, 3)} images/s; ${fmt(peer.generatedPerImage, 0)} generated tok/image`);
  const ratio = srf.imagesPerSecond / peer.imagesPerSecond;
  const w = server.sameWork;
  const lines = [
    methodTable([srf, peer]),
    '',
    `srf-native / llama-server (whole method): ${ratio.toFixed(2)}`,
    '',
    `- same work: srf-native's first ${w.checked} scored triplets replayed on llama-server greedy: IA->Q the same text ${w.questionsSame}/${w.checked}, IQ->A ${w.answersSame}/${w.checked}` +
      (w.examples.length ? `; differing, e.g. ${w.examples.slice(0, 3).map((e) => `${e.task} srf ${JSON.stringify(e.srf.slice(0, 80))} vs server ${JSON.stringify(e.server.slice(0, 80))}`).join('; ')}` : ''),
    ...[srf, peer].map((p) => `- ${p.peer}: ${p.note}`),
  ];
  return { peers: [srf, peer], ratio, sameWork: w, lines };
}

function methodTable(peers: MethodPeer[]): string {
  const head = ['peer', 'images', 'scored', 'wall s', 'images/s', 'generated tok/image', 'prompt tok evaluated/image', 'drafts proposed / accepted', 'device busy', 'CPU s/image', 'peak RSS MiB'];
  const rows = peers.map((p) => [
    p.peer,
    String(p.images),
    String(p.scored),
    fmt(p.seconds, 1),
    fmt(p.imagesPerSecond, 3),
    fmt(p.generatedPerImage, 1),
    fmt(p.promptEvaluatedPerImage, 0),
    p.drafts ? `${p.drafts.proposed} / ${p.drafts.accepted}` : '',
    p.deviceBusy === undefined ? '' : `${(100 * p.deviceBusy).toFixed(0)} %`,
    fmt(p.cpuSecondsPerImage, 2),
    fmt(p.peakRssMiB, 0),
  ]);
  return markdownTable(head, rows);
}
