/**
 * One round of self-refinement on the world, end to end, through the project's own commands:
 *
 *  1. original data: the world's instruction data of the first ORIGINAL images round 0 trained on;
 *  2. `srf-native run` (round-0 model + embedder) on SYNTHETIC held-out images, `--merge-with` the
 *     original data, `--round 1`: train.merged.llava.json = original + kept (top 20 % per type);
 *  3. controls by `srf-native select` on copies of that run whose journal scores were replaced by
 *     seeded random numbers in (0, 1] (so the project's own selector and emitters pick and write
 *     them): all triplets (`--keep-top 1`; with the real scores S = 0 is never kept) and a random
 *     20 % per type (`--keep-top 0.2`); and the original data alone;
 *  4. each set to IQ->A training records by `srf-native tasks --ratios 0,0,1` (the method's step 3),
 *     tokenized as the engine tokenizes (training-data.ts);
 *  5. finetune_lora.py on each (same steps, batch and seed: the same number of examples seen);
 *  6. export-round.ts: a LoRA adapter GGUF + the mmproj with the trained projector;
 *  7. every model (round 0, round 1, the three controls) on the held-out VQA set (vqa.ts), loaded
 *     by the engine with `loras`, graded by the oracle;
 *  8. `srf-native run --lora` with the round-1 adapter on a few images, so the next round's generator is
 *     known to load and run through the CLI.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { packageRoot } from '../../lib/engine/native.js';
import { JOURNAL_FILE, readJournal, type TripletLine } from '../../lib/outputs/journal.js';
import { MANIFEST_FILE } from '../../lib/outputs/manifest.js';
import { createRandom } from '../../lib/srf/random.js';
import { writeWorldData } from '../../lib/world/dataset.js';
import { FAMILIES } from '../../lib/world/families.js';
import { worldModelPaths } from '../../lib/world/model-files.js';
import { WORLD_MODEL } from '../../training/world/config.js';
import { exportRound } from './export-round.js';
import { runCli } from './filter-bench.js';
import { checkParity, type ParityResult } from './parity.js';
import { dumpGgufWeights } from './gguf-weights.js';
import { QUALITY_SEEDS, writeHeldOutImages } from './images.js';
import { table, writeSection } from './markdown.js';
import { accuracyWithInterval, formatAccuracy, pairedModelDifference, percent, type Accuracy } from './stats.js';
import { writeTrainingData } from './training-data.js';
import { answerVqa, buildVqaSet, familiesOf, type ModelFiles } from './vqa.js';

export interface Round1Options {
  work: string;
  originalImages: number;
  syntheticImages: number;
  vqaImages: number;
  steps: number;
  batch: number;
  /** Round-0 model files; default models/world. */
  models?: { model: string; mmproj: string; embedder: string };
  log: (message: string) => void;
}

export const ROUND1_DEFAULTS = { originalImages: 1000, syntheticImages: 2500, vqaImages: 150, steps: 300, batch: 16 } as const;

const VARIANTS = ['kept', 'all', 'random', 'none'] as const;
type Variant = (typeof VARIANTS)[number];
const VARIANT_SHORT: Record<Variant, string> = { kept: 'round 1 (kept)', all: 'all synthetic', random: 'random 20 %', none: 'no synthetic' };
const VARIANT_LABELS: Record<Variant, string> = {
  kept: 'round 1: original + kept synthetic (top 20 % per type)',
  all: 'control: original + all synthetic (unfiltered)',
  random: 'control: original + random 20 % per type',
  none: 'control: original only (no synthetic)',
};

/** /usr/bin/python3 (Debian's torch) with the script's output logged line by line; rejects with its tail. */
export function python(args: string[], log: (m: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const take = (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-4000);
      for (const line of chunk.toString().split('\n')) if (line.trim()) log(`  ${line}`);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`python ${args[0]} exited ${code}:\n${tail}`))));
  });
}

/** A copy of a run folder whose journal scores are seeded uniform numbers in (0, 1]: `select` then keeps a random subset per type. */
export async function randomizeScores(from: string, to: string, seed: number): Promise<void> {
  await rescoreRun(from, to, seededScores(seed));
}

/** Seeded uniform scores in (0, 1], one per call: a random order for `select`. */
export function seededScores(seed: number): () => number {
  const random = createRandom(seed);
  return () => 1 - random();
}

/** A copy of a run folder whose scored journal lines get `scoreOf`'s score and no kept flag, for `select` to choose again. */
export async function rescoreRun(from: string, to: string, scoreOf: (line: TripletLine) => number): Promise<void> {
  await mkdir(to, { recursive: true });
  await copyFile(path.join(from, MANIFEST_FILE), path.join(to, MANIFEST_FILE));
  const lines: string[] = [];
  for await (const line of readJournal(path.join(from, JOURNAL_FILE))) {
    if (line.status === 'scored') line.score = scoreOf(line);
    delete line.kept;
    lines.push(JSON.stringify(line));
  }
  await writeFile(path.join(to, JOURNAL_FILE), lines.join('\n') + '\n');
}

interface ModelResult {
  name: string;
  short: string;
  files: ModelFiles;
  trainingRecords: number | null;
  synthetic: number | null;
  /** Engine with the exported files vs PyTorch, greedy, on the first training questions. */
  parity: { cases: number; equal: number } | null;
  overall: Accuracy;
  byFamily: Record<string, Accuracy>;
  /** Against round 0, paired over the same questions. */
  gain: { difference: number; low: number; high: number } | null;
}

export interface Round1Results {
  options: Omit<Round1Options, 'log' | 'work' | 'models'>;
  kept: number;
  scored: number;
  models: ModelResult[];
  familyNames: string[];
  questions: number;
  nextRound: { images: number; scored: number; kept: number };
  seconds: number;
}

export async function runRound1(options: Round1Options): Promise<Round1Results> {
  const started = Date.now();
  const { work, log } = options;
  const base = options.models ?? worldModelPaths();
  const w = (...parts: string[]) => path.join(work, ...parts);
  await mkdir(work, { recursive: true });

  log(`1. original data: world instruction data of training images 0..${options.originalImages - 1}`);
  const original = await writeWorldData(w('original'), { count: options.originalImages, firstSeed: 0, questionSeed: 1, size: WORLD_MODEL.imageSize });

  log(`2. srf-native run on ${options.syntheticImages} held-out images, --merge-with the original data, --round 1`);
  const synImages = w('synthetic-images');
  await writeHeldOutImages(synImages, QUALITY_SEEDS.synthetic, options.syntheticImages);
  const run = w('run-kept');
  await runCli(['run', '--model', base.model, '--mmproj', base.mmproj, '--embedder', base.embedder, '--images', synImages, '--out', run,
    '--merge-with', original.data, '--merge-image-folder', original.imageFolder, '--round', '1'], log);

  log('3. controls by srf-native select: all triplets, a random 20 % per type');
  // Random scores in (0, 1] for both: the selector never keeps S = 0, and "all" means every scored triplet.
  await randomizeScores(run, w('run-all'), 4);
  await runCli(['select', '--in', w('run-all'), '--keep-top', '1', '--no-report'], log);
  await randomizeScores(run, w('run-random'), 5);
  await runCli(['select', '--in', w('run-random'), '--keep-top', '0.2', '--no-report'], log);

  const manifest = JSON.parse(await readFile(path.join(run, MANIFEST_FILE), 'utf8')) as { outputs: { mergedImageRoot?: string }; counts: { scored: number; kept: number } };
  const mergedRoot = manifest.outputs.mergedImageRoot ?? work;
  const sets: Record<Variant, { data: string; root: string }> = {
    kept: { data: path.join(run, 'train.merged.llava.json'), root: mergedRoot },
    all: { data: w('run-all', 'train.merged.llava.json'), root: mergedRoot },
    random: { data: w('run-random', 'train.merged.llava.json'), root: mergedRoot },
    none: { data: original.data, root: original.imageFolder },
  };

  log('   round-0 weights for PyTorch, from the shipped GGUFs');
  const baseWeights = w('base-weights');
  await mkdir(baseWeights, { recursive: true });
  await dumpGgufWeights(base.model, path.join(baseWeights, 'weights-text'));
  await dumpGgufWeights(base.mmproj, path.join(baseWeights, 'weights-mmproj'));

  const trained: Partial<Record<Variant, { files: ModelFiles; records: number; synthetic: number; parity: ParityResult }>> = {};
  for (const variant of VARIANTS) {
    log(`4-6. ${VARIANT_LABELS[variant]}`);
    const tasks = w(`tasks-${variant}`);
    await runCli(['tasks', '--data', sets[variant].data, '--out', tasks, '--ratios', '0,0,1', '--seed', '0', '--image-folder', sets[variant].root], log);
    const data = w(`data-${variant}`);
    const summary = await writeTrainingData(path.join(tasks, 'tasks.llava.json'), sets[variant].root, base.model, data);
    const records = JSON.parse(await readFile(sets[variant].data, 'utf8')) as unknown[];
    const originalRecords = (JSON.parse(await readFile(original.data, 'utf8')) as unknown[]).length;
    const train = w(`train-${variant}`);
    await python([path.join(packageRoot(), 'bench', 'quality', 'finetune_lora.py'), data, baseWeights, train, '--steps', String(options.steps), '--batch', String(options.batch)], log);
    const files = await exportRound(train, base.model, w('models'), `world-${variant}`);
    const parity = await checkParity(train, path.join(tasks, 'tasks.llava.json'), sets[variant].root, { model: base.model, ...files });
    log(`   engine with the exported adapter = PyTorch's greedy reply on ${parity.equal} of ${parity.cases} training questions`);
    for (const m of parity.mismatches) log(`     differs: ${JSON.stringify(m)}`);
    trained[variant] = { files: { model: base.model, ...files }, records: summary.records, synthetic: records.length - originalRecords, parity };
  }

  log(`7. every model on the VQA test (${options.vqaImages} held-out images)`);
  const items = await buildVqaSet(w('vqa-images'), options.vqaImages);
  const families = familiesOf(items);
  const evaluate = async (name: string, short: string, files: ModelFiles, records: number | null, synthetic: number | null, baseline: boolean[] | null, parity: ParityResult | null = null) => {
    const right = await answerVqa(files, items);
    const byFamily: Record<string, Accuracy> = {};
    for (const family of families) byFamily[family] = accuracyWithInterval(right.filter((_, i) => items[i]!.qa.family === family));
    log(`   ${name}: ${percent(right.filter(Boolean).length / right.length)} %`);
    return { right, result: { name, short, files, trainingRecords: records, synthetic, parity: parity ? { cases: parity.cases, equal: parity.equal } : null, overall: accuracyWithInterval(right), byFamily, gain: baseline ? pairedModelDifference(right, baseline) : null } };
  };
  const round0 = await evaluate('round 0 (the shipped world model)', 'round 0', { model: base.model, mmproj: base.mmproj }, null, null, null);
  const models: ModelResult[] = [round0.result];
  for (const variant of VARIANTS) {
    const t = trained[variant]!;
    models.push((await evaluate(VARIANT_LABELS[variant], VARIANT_SHORT[variant], t.files, t.records, t.synthetic, round0.right, t.parity)).result);
  }

  log('8. srf-native run --lora with the round-1 adapter (the next round\'s generator) on 20 images');
  const kept = trained.kept!.files;
  const next = w('run-round2');
  await rm(next, { recursive: true, force: true });
  const nextImages = w('round2-images');
  await writeHeldOutImages(nextImages, QUALITY_SEEDS.synthetic + options.syntheticImages, 20);
  await runCli(['run', '--model', base.model, '--mmproj', kept.mmproj, '--lora', kept.lora!, '--embedder', base.embedder, '--images', nextImages, '--out', next, '--round', '2'], log);
  const nextManifest = JSON.parse(await readFile(path.join(next, MANIFEST_FILE), 'utf8')) as { counts: { images: number; scored: number; kept: number } };

  return {
    options: { originalImages: options.originalImages, syntheticImages: options.syntheticImages, vqaImages: options.vqaImages, steps: options.steps, batch: options.batch },
    kept: manifest.counts.kept,
    scored: manifest.counts.scored,
    models,
    familyNames: families,
    questions: items.length,
    nextRound: nextManifest.counts,
    seconds: (Date.now() - started) / 1000,
  };
}

function gainText(g: ModelResult['gain']): string {
  if (!g) return '';
  return `${g.difference >= 0 ? '+' : ''}${percent(g.difference)} [${percent(g.low)}, ${percent(g.high)}]`;
}

export function round1Markdown(r: Round1Results, command: string): string {
  const o = r.options;
  const lines: string[] = [];
  lines.push('## 2. One round of self-refinement: does the model improve?');
  lines.push('');
  lines.push(
    `Round 0 (the shipped world model) generated triplets on ${o.syntheticImages} held-out images with \`srf-native run --merge-with ... --round 1\`: ` +
      `${r.scored} scored, ${r.kept} kept (top 20 % per type). Each model below is the round-0 model fine-tuned with LoRA on the language model ` +
      `(r 8, alpha 16, all seven attention and FFN matrices, lr 1e-3) and a trained projector (lr 1e-4), vision tower frozen, ` +
      `as LLaVA's finetune_task_lora.sh does at 7B (r 128, lr 2e-4, projector lr 2e-5), scaled down; ${o.steps} steps of batch ${o.batch} ` +
      `(${o.steps * o.batch} examples seen by every model, same seed), on the plain IQ->A task (\`srf-native tasks --ratios 0,0,1\`) of ` +
      `the original data (the world instruction data of ${o.originalImages} of round 0's training images) plus the synthetic set named. ` +
      `Exported as a GGUF LoRA adapter + the mmproj with the trained projector, loaded by the engine (\`loras\`, \`--lora\`). ` +
      `Evaluated on ${r.questions} questions (one of every image family on each of ${o.vqaImages} held-out images, never used above), ` +
      `greedy, graded by the oracle; gain = paired bootstrap of the difference to round 0 over the same questions.`,
  );
  lines.push('');
  lines.push(
    table(
      ['model', 'IQ->A records (synthetic)', 'VQA accuracy', 'gain over round 0', 'engine = PyTorch'],
      r.models.map((m) => [
        m.name,
        m.trainingRecords === null ? '–' : `${m.trainingRecords} (${m.synthetic})`,
        formatAccuracy(m.overall),
        gainText(m.gain),
        m.parity ? `${m.parity.equal}/${m.parity.cases}` : '',
      ]),
    ),
  );
  lines.push('');
  lines.push('Per question family (accuracy and 95 % interval; n per family in the header):');
  lines.push('');
  const n = (family: string) => r.models[0]!.byFamily[family]!.n;
  lines.push(
    table(
      ['model', ...r.familyNames.map((f) => `${f} (${FAMILIES[f as keyof typeof FAMILIES].dataType}, n ${n(f)})`)],
      r.models.map((m) => [m.short, ...r.familyNames.map((f) => {
        const a = m.byFamily[f]!;
        return `${percent(a.accuracy, 0)} [${percent(a.low, 0)}, ${percent(a.high, 0)}]`;
      })]),
    ),
  );
  lines.push('');
  lines.push(
    `The round-1 adapter then drives the next round's generator through the CLI (\`srf-native run --lora world-kept-lora.gguf --mmproj world-kept-mmproj-f16.gguf --round 2\`): ` +
      `${r.nextRound.images} images, ${r.nextRound.scored} scored, ${r.nextRound.kept} kept.`,
  );
  lines.push('');
  lines.push(`Made by \`${command}\` in ${(r.seconds / 60).toFixed(0)} minutes on 2 shared cores.`);
  return lines.join('\n');
}

export async function writeRound1Results(r: Round1Results, jsonFile: string, qualityFile: string, command: string): Promise<void> {
  await writeFile(jsonFile, JSON.stringify(r, null, 1) + '\n');
  await writeSection(qualityFile, 'round1', round1Markdown(r, command));
}
