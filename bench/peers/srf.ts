/**
 * The srf-native peer, run as a child process of the benchmark so that its peak memory is its
 * own: `node dist/bench/peers/srf.js <config.json>`. Loads the model, runs the triplet workload
 * through the public API (VisionModel.generate, one prepareImage per image) and prints one JSON
 * line with the timings, the engine's counters and the peak RSS.
 */
import { readFileSync } from 'node:fs';
import { VisionModel } from '../../lib/index.js';
import type { OpenVisionModelOptions, PreparedImage } from '../../lib/index.js';
import { runTriplets } from '../workload.js';

export interface SrfPeerConfig {
  open: OpenVisionModelOptions;
  images: string[];
  maxInFlight: number;
}

async function main(): Promise<void> {
  const config = JSON.parse(readFileSync(process.argv[2], 'utf8')) as SrfPeerConfig;
  const t0 = Date.now();
  const model = await VisionModel.open(config.open);
  const loadSeconds = (Date.now() - t0) / 1000;
  const prepared = new Map<string, Promise<PreparedImage>>();
  const prepare = (path: string) => {
    let p = prepared.get(path);
    if (!p) {
      p = model.prepareImage(path);
      prepared.set(path, p);
    }
    return p;
  };
  const cpu0 = process.cpuUsage();
  const run = await runTriplets(config.images, config.maxInFlight, async (path, task) => {
    const image = await prepare(path);
    const r = await model.generate({
      image,
      prompt: task.prompt,
      sampling: { temperature: 0, maxTokens: task.maxTokens, ignoreEos: true },
    });
    if (r.generatedTokens !== task.maxTokens) throw new Error(`${task.name}: ${r.generatedTokens} tokens instead of ${task.maxTokens}`);
    return { promptEvaluated: r.promptTokens + (r.prefixReused ? 0 : r.prefixTokens), generated: r.generatedTokens };
  });
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const stats = model.stats();
  // What was evaluated: a new prefix's text before the image is restored from the previous one's.
  run.promptEvaluated = stats.promptTokens + stats.prefixTokens;
  const info = { ...model.info, files: undefined };
  await model.close();
  const usage = process.resourceUsage();
  process.stdout.write(
    JSON.stringify({ loadSeconds, run, cpuSeconds, stats, info, peakRssBytes: usage.maxRSS * 1024, memory: process.memoryUsage() }) + '\n',
  );
}

main().catch((err) => {
  console.error(err?.stack ?? String(err));
  process.exit(1);
});
