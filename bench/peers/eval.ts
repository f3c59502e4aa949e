/**
 * The eval peer: `evaluate()`, the code path of `srf-native eval`, answering a LLaVA question file
 * greedily, as a child process of the benchmark: `node dist/bench/peers/eval.js <config.json>`;
 * prints one JSON line with the questions answered, the seconds (the model's load included) and the
 * answers file.
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { evaluate } from '../../lib/index.js';

export interface EvalPeerConfig {
  model: string;
  mmproj: string;
  questions: string;
  imageFolder: string;
  answersFile: string;
  parallel: number;
  threads: number;
  gpuLayers: number;
  /** The grammar every answer is held to (the --family comparison's printable ASCII). */
  grammar?: string;
}

async function main(): Promise<void> {
  const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as EvalPeerConfig;
  // An answers file there would be resumed, not answered again.
  await rm(config.answersFile, { force: true });
  const cpu0 = process.cpuUsage();
  const result = await evaluate(config);
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(JSON.stringify({ ...result, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n');
}

main().catch((err) => {
  console.error(err?.stack ?? String(err));
  process.exit(1);
});
