/**
 * The pipeline peer: `refine()`, the code path of `srf-native run`, with its defaults (I->QA
 * sampled at temperature 0.7 / top-p 0.9 under the reply grammar, greedy IA->Q and IQ->A with the
 * triplet as their drafts, embedder scoring, the journal, the outputs), on the engine peer's images
 * and model and with the triplet workload's reply lengths (96 / 32 / 64 tokens), so that the two
 * are comparable. Run as a child process: `node dist/bench/peers/pipeline.js <config.json>`; prints
 * one JSON line with the timings, the engine's counters and the peak RSS.
 *
 * The random-weight model is the worst case for host work and is kept on purpose: its flat
 * distributions keep top-p from cutting anything, it almost never ends a reply by itself, and the
 * grammar rejects most of what it samples. Its replies are kept as the cap stops them
 * (truncatedAnswers 'keep'), so that every image goes through all three tasks as in the engine peer.
 *
 * With `method: true` (the whole-method workload, bench/method.ts) refine() runs with the CLI's
 * defaults untouched: the method's reply lengths (256 / 128 / 128), EOS on, answers a bound cut
 * trimmed; the result also names the journal, whose triplets the same-work check replays.
 */
import { rm, writeFile } from 'node:fs/promises';
import { refine } from '../../lib/index.js';
import type { OpenVisionModelOptions } from '../../lib/index.js';
import { TASKS } from '../workload.js';

export interface PipelinePeerConfig {
  model: string;
  mmproj: string;
  embedder: string;
  images: string[];
  /** Scratch folder: the image list and the run's output (removed first: a run there would resume). */
  work: string;
  parallel: number;
  threads: number;
  engine: Pick<OpenVisionModelOptions, 'batchSize' | 'flashAttention' | 'samplingThreads'>;
  gpuLayers: number;
  kvLayout: 'auto' | 'unified' | 'per-sequence';
  drafts: boolean;
  /** The CLI's decoding defaults instead of the triplet workload's fixed lengths. */
  method?: boolean;
}

/** The triplet workload's fixed reply lengths, its replies kept as the cap stops them. */
const TRIPLET_WORKLOAD = {
  // The random-weight model never ends a reply: its I->QA replies all stop at the 96-token cap, and
  // cut back to a full sentence they would be rejected, skipping the re-predictions (the default).
  truncatedAnswers: 'keep',
  decoding: {
    iToQa: { maxTokens: TASKS.iToQa.maxTokens },
    iaToQ: { maxTokens: TASKS.iaToQ.maxTokens },
    iqToA: { maxTokens: TASKS.iqToA.maxTokens },
  },
} as const;

async function main(): Promise<void> {
  const config = JSON.parse((await import('node:fs')).readFileSync(process.argv[2]!, 'utf8')) as PipelinePeerConfig;
  const out = `${config.work}/pipeline-out`;
  const list = `${config.work}/pipeline-images.txt`;
  await rm(out, { recursive: true, force: true });
  await writeFile(list, config.images.join('\n') + '\n');
  const cpu0 = process.cpuUsage();
  const summary = await refine({
    model: config.model,
    mmproj: config.mmproj,
    embedder: config.embedder,
    images: list,
    out,
    parallel: config.parallel,
    threads: config.threads,
    gpuLayers: config.gpuLayers,
    kvLayout: config.kvLayout,
    engine: config.engine,
    drafts: config.drafts,
    countTotal: false,
    ...(config.method ? {} : TRIPLET_WORKLOAD),
  }).complete();
  const cpu = process.cpuUsage(cpu0);
  const stats = summary.manifest.engineStats as Record<string, number>;
  const usage = process.resourceUsage();
  process.stdout.write(
    JSON.stringify({
      seconds: summary.seconds,
      processed: summary.processed,
      counts: { scored: summary.counts.scored, rejected: summary.counts.rejected, errors: summary.counts.errors },
      stats,
      info: summary.manifest.generation,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      peakRssBytes: usage.maxRSS * 1024,
      journal: `${out}/triplets.jsonl`,
      imageRoot: config.work,
    }) + '\n',
  );
}

main().catch((err) => {
  console.error(err?.stack ?? String(err));
  process.exit(1);
});
