/**
 * What a right draft saves (issue 10, item 3): the triplet workload's two greedy follow-ups (IA->Q
 * 32 tokens, IQ->A 64 tokens, EOS ignored) on N images, once plain and once with each reply's own
 * tokens as its draft: the case of a consistent triplet, whose re-predictions reproduce Q and A.
 * Image prefixes are evaluated before either pass, so both passes time decoding only. The replies
 * must be byte-identical; the script fails otherwise.
 *
 *   node dist/bench/drafts.js [--images N] [--parallel N] [--threads N] [--kv-layout ...]
 *
 * Uses the models and images `npm run bench` wrote into bench/work (run it once first).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { VisionModel } from '../lib/index.js';
import type { GenerateRequest, GenerateResult } from '../lib/index.js';
import { writeTestImages } from './images.js';
import { benchRoot } from './tools.js';
import { TASKS } from './workload.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback;
}

async function main(): Promise<void> {
  const work = join(benchRoot(), 'bench', 'work');
  const shape = flag('shape', 'bench-cpu');
  const model = join(work, 'models', `llava-${shape}-seed1-model-f16.gguf`);
  const mmproj = join(work, 'models', `llava-${shape}-seed1-mmproj-f16.gguf`);
  if (!existsSync(model)) throw new Error(`${model} is missing: run \`npm run bench\` once first`);
  const count = Number(flag('images', '8'));
  const parallel = Number(flag('parallel', '8'));
  const images = await writeTestImages(join(work, 'images'), count);
  await using vm = await VisionModel.open({
    model,
    mmproj,
    parallel,
    prefixCache: count,
    threads: Number(flag('threads', '1')),
    flashAttention: false,
    kvLayout: flag('kv-layout', 'auto') as 'auto',
  });
  // Prefixes first (a 1-token request per image), so that both passes time decoding only.
  await Promise.all(images.map((image) => vm.generate({ image, prompt: 'x', sampling: { maxTokens: 1 } })));
  const requests: GenerateRequest[] = images.flatMap((image) =>
    [TASKS.iaToQ, TASKS.iqToA].map((task) => ({ image, prompt: task.prompt, sampling: { maxTokens: task.maxTokens, ignoreEos: true } })),
  );
  const pass = async (drafts?: number[][]) => {
    const before = vm.stats();
    const t0 = process.hrtime.bigint();
    const results: GenerateResult[] = await Promise.all(requests.map((r, i) => vm.generate(drafts ? { ...r, draft: drafts[i]! } : r)));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const after = vm.stats();
    return {
      results,
      seconds,
      steps: after.steps - before.steps,
      decodeMs: after.decodeMs - before.decodeMs,
      drafted: after.draftTokens - before.draftTokens,
      accepted: after.draftAccepted - before.draftAccepted,
    };
  };
  const plain = await pass();
  const drafted = await pass(plain.results.map((r) => r.tokens));
  const same = drafted.results.every((r, i) => r.text === plain.results[i]!.text && r.generatedTokens === plain.results[i]!.generatedTokens);
  const line = (name: string, p: typeof plain) =>
    `${name}: ${p.seconds.toFixed(2)} s, ${p.steps} steps, decode ${(p.decodeMs / 1000).toFixed(2)} s` +
    (p.drafted ? `, ${p.accepted} of ${p.drafted} draft tokens confirmed` : '');
  console.log(`${count} images x (IA->Q ${TASKS.iaToQ.maxTokens} + IQ->A ${TASKS.iqToA.maxTokens} tokens), parallel ${parallel}, ${vm.info.kvLayout} KV`);
  console.log(line('plain', plain));
  console.log(line('own reply as draft', drafted));
  console.log(`replies identical: ${same}; follow-ups ${(plain.seconds / drafted.seconds).toFixed(2)}x faster with right drafts`);
  if (!same) {
    // llama.cpp's CPU kernels round differently for different batch shapes, so a greedy reply can
    // depend on what else is in its steps; a draft changes a request's batch shape as much as a
    // neighbour does. Decoding each request alone tells the two apart.
    const alone: GenerateResult[] = [];
    for (const r of requests) alone.push(await vm.generate(r));
    const firstDiff = (a: GenerateResult, b: GenerateResult) => a.tokens.findIndex((t, k) => t !== b.tokens[k]);
    const batching = alone.filter((r, i) => firstDiff(r, plain.results[i]!) >= 0).length;
    let unexplained = 0;
    drafted.results.forEach((r, i) => {
      const at = firstDiff(r, plain.results[i]!);
      if (at < 0) return;
      const asAlone = firstDiff(r, alone[i]!) < 0;
      if (!asAlone) unexplained++;
      console.log(`request ${i}: differs from the plain pass at token ${at}; ${asAlone ? 'identical to the request decoded alone' : 'differs from the request decoded alone too'}`);
    });
    console.log(`(batch shape alone: ${batching} of ${requests.length} replies differ between decoding each request alone and all together)`);
    if (unexplained > 0) process.exit(1);
  }
}

main().catch((err) => {
  console.error(err?.stack ?? String(err));
  process.exit(1);
});
