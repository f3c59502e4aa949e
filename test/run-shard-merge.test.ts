import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { validateLlavaDataset } from '../lib/emit/llava.js';
import { identifyImage } from '../lib/jobs/inputs.js';
import type { TripletLine } from '../lib/outputs/journal.js';
import { refine } from '../lib/jobs/refine.js';
import { runCli } from './helpers/cli.js';
import { SHORT_DECODING, SHORT_GRAMMAR, readJournal as lines, tinyRun } from './helpers/tiny-run.js';

async function world() {
  const names = [...Array.from({ length: 10 }, (_, i) => `photos/p${i}.png`), 'photos/broken.png'];
  const { dir, base } = await tinyRun(names, { out: '', parallel: 4, grammar: SHORT_GRAMMAR, decoding: SHORT_DECODING, report: true });
  return { dir, names, base };
}

t.test('shards I/N partition the images; merge joins them and selects over the union', async (t) => {
  const { dir, names, base } = await world();
  const shardLines: TripletLine[][] = [];
  for (const index of [0, 1]) {
    const run = refine({ ...base, out: join(dir, `shard-${index}`), shard: `${index}/2`, round: 2 });
    const streamed: TripletLine[] = [];
    for await (const line of run) streamed.push(line);
    const summary = await run.result;
    t.equal(summary.status, 'complete');
    t.equal(summary.out, join(dir, `shard-${index}`, `shard-${index}-of-2`), 'a shard writes to OUT/shard-I-of-N');
    const written = await lines(summary.out);
    t.same(written.map((l) => l.id).sort(), streamed.map((l) => l.id).sort(), 'the iterator yields every journaled line');
    shardLines.push(written);
  }
  const [a, b] = shardLines as [TripletLine[], TripletLine[]];
  t.ok(a.length > 0 && b.length > 0, `both shards have work (${a.length} + ${b.length})`);
  const union = [...a, ...b].map((l) => l.id);
  t.equal(new Set(union).size, union.length, 'disjoint');
  t.same([...union].sort(), names.map((n) => identifyImage(n).id).sort(), 'complete');

  const merged = join(dir, 'merged');
  const result = await runCli(['merge', '--in', join(dir, 'shard-0', 'shard-0-of-2'), '--in', join(dir, 'shard-1', 'shard-1-of-2'), '--in', join(dir, 'shard-0', 'shard-0-of-2'), '--out', merged, '--keep-top', '0.5', '--format', 'sharegpt']);
  t.equal(result.code, 0, result.code === 0 ? 'exit 0' : result.stderr);
  t.match(result.stdout, new RegExp(`${names.length} images \\(${a.length} duplicates dropped\\)`), 'a folder named twice is deduplicated by id');
  const all = await lines(merged);
  t.same(all.map((l) => l.id).sort(), [...union].sort());
  t.ok(all.every((l) => l.round === 2), 'round recorded in every line');
  const manifest = JSON.parse(await readFile(join(merged, 'run.json'), 'utf8'));
  t.equal(manifest.counts.images, names.length);
  t.equal(manifest.round, 2);
  t.same(manifest.inputs.shards, ['0/2', '1/2', '0/2']);
  const llava = JSON.parse(await readFile(join(merged, 'train.llava.json'), 'utf8')) as { srf: { round: number } }[];
  t.equal(validateLlavaDataset(llava).ok, true);
  t.equal(llava.length, manifest.counts.kept);
  t.ok(llava.every((r) => r.srf.round === 2), 'round in every kept record');
  const script = await readFile(join(merged, 'train-lora.sh'), 'utf8');
  t.match(script, /--lora_r 128 --lora_alpha 256 --mm_projector_lr 2e-5/);
  t.match(script, /--learning_rate 2e-4/);
  t.match(script, /--version v1/);
  t.match(script, /--image_aspect_ratio pad/);
  t.match(script, /convert_lora_to_gguf\.py/);
  t.match(script, /--round 3/, 'the next round is announced');
});

t.test('abort: in-flight images are abandoned, outputs are still written, and a rerun finishes the job', async (t) => {
  const { dir, names, base } = await world();
  const out = join(dir, 'out');
  const controller = new AbortController();
  const run = refine({ ...base, out, inFlight: 2, signal: controller.signal });
  run.on('result', () => controller.abort());
  const summary = await run.result;
  t.equal(summary.status, 'interrupted');
  const partial = await lines(out);
  t.ok(partial.length >= 1 && partial.length < names.length, `stopped early (${partial.length} lines)`);
  t.ok(partial.every((l) => l.error?.code !== 'ABORTED'), 'abandoned images are not journaled as errors');
  const manifest = JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));
  t.equal(manifest.status, 'interrupted');
  t.equal(JSON.parse(await readFile(join(out, 'train.llava.json'), 'utf8')).length, manifest.counts.kept, 'outputs for what is done');

  const rest = await refine({ ...base, out }).complete();
  t.equal(rest.status, 'complete');
  t.equal(rest.resumed, partial.length);
  t.equal(rest.processed, names.length - partial.length);
  const all = await lines(out);
  t.equal(new Set(all.map((l) => l.id)).size, names.length);
});

t.test('a resumed run with other generation settings is refused, naming what differs', async (t) => {
  const { dir, base } = await world();
  const out = join(dir, 'out');
  await refine({ ...base, out, limit: 2 }).complete();
  await t.rejects(refine({ ...base, out, seed: 7 }).complete(), { code: 'OUTPUT_CONFLICT', message: /seed differs: was 0, now 7 \(--seed\)/ });
  // Nested settings are named by their path, with both values and the option that sets them.
  await t.rejects(refine({ ...base, out, decoding: { ...base.decoding, iToQa: { ...base.decoding?.iToQa, topK: 5 } } }).complete(), {
    code: 'OUTPUT_CONFLICT',
    message: /settings: decoding\.iToQa\.topK differs: was 40, now 5 \(--top-k\)\. Resume it with the settings it was made with/,
  });
  const more = await refine({ ...base, out, limit: 4, keepTop: 0.9, formats: ['openai'] }).complete();
  t.equal(more.resumed, 2, 'selection settings and the limit may change');
  t.equal(more.counts.images, 4);
});

t.test('an engine that fails on every image stops the run with its error and journals nothing for those images', async (t) => {
  const { dir, base } = await world();
  const out = join(dir, 'out');
  await t.rejects(refine({ ...base, out, grammar: 'root ::= [' }).complete(), { code: 'GRAMMAR_INVALID', message: /failed on all \d+ images/ });
  const journaled = await lines(out);
  t.ok(journaled.every((l) => l.error?.code === 'IMAGE_UNREADABLE'), 'only bad image files are journaled; engine failures run again once the cause is fixed');
  const manifest = JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));
  t.equal(manifest.status, 'failed');
  t.equal(manifest.error.code, 'GRAMMAR_INVALID');
});
