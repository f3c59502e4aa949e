/**
 * The paper's loop where data is what limits the model (issue 19's design), end to end through the
 * project's own commands, resumable step by step (each step's output is its checkpoint):
 *
 *  0. a pre-stage-2 checkpoint: the shipped world model's frozen vision tower, the language model and
 *     projector trained from random weights on captions of STAGE1 images (LLaVA's stage 1; train_full.py);
 *  1. a labelled set L (the world's instruction data of LABELLED images) and a labelled validation
 *     split (VALIDATION images) for early stopping;
 *  2. round 0's generator: that checkpoint trained on step 1 of the method on L (`srf-native tasks`);
 *  3. step 2 on an unlabelled pool U (POOL held-out images) through `srf-native run --merge-with L`;
 *     its triplets graded by the oracle (all, kept, the expected value of a random draw of the kept
 *     count per type);
 *  4. the arms, each retrained from the same checkpoint on the plain IQ->A task (`srf-native tasks
 *     --ratios 0,0,1`), chosen by ARMS: L only (round 0's base), L + kept (round 1, the run's default
 *     filter), L + kept by the paper's filter (a second run on U, `--filter paper`), L + random
 *     matched to kept per type and question family (a fresh draw per seed), L + all synthetic (the
 *     Recap-style arm: the generator's output on all of U, unfiltered), the size-matched ceiling
 *     (L + as many of U's records with the oracle's answers as kept has), and the older designs' arms
 *     (one random draw per type; the ceiling as large as all synthetic); SEEDS training seeds each,
 *     the same passes over the data, early stopping on the validation split;
 *  5. every model on the held-out VQA test (one question of every family on VQA images from
 *     VQA_FIRST_SEED: a fresh block confirms a design chosen on another), greedy,
 *     through the engine, graded by the oracle; accuracies and gains with intervals over training
 *     seeds and questions (hierarchical bootstrap);
 *  6. with ROUNDS 2, the loop again: round 2's generator is the checkpoint trained on step 1 of the
 *     method on round 1's data (L + kept), with as many passes as round 0's had; it runs on U2 (as
 *     many other held-out images). ROUND2 'union' (issue 36's design): it also judges U's triplets
 *     again (`run --rescore`), `merge` selects over the union of U's and U2's triplets, and round 2's
 *     model is retrained on L + that selection; 'stacked' (the older designs): U2's run is merged
 *     with round 1's data and the model is retrained on L + kept + kept2. SEEDS seeds, as the other
 *     arms and with them: round 2's data is made before step 4's training, so a cut run has every
 *     arm at the seeds it finished.
 */
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { packageRoot } from '../../lib/engine/native.js';
import { MANIFEST_FILE } from '../../lib/outputs/manifest.js';
import type { FilterName } from '../../lib/srf/filters.js';
import type { LlavaRecord } from '../../lib/srf/llava-data.js';
import { IMAGE_TOKEN } from '../../lib/engine/llava-prompt.js';
import { createRandom, shuffled } from '../../lib/srf/random.js';
import { buildWorldData, worldImageFile, writeWorldData, type WorldDataOptions, type WrittenWorldData } from '../../lib/world/dataset.js';
import { FAMILIES } from '../../lib/world/families.js';
import { worldModelPaths } from '../../lib/world/model-files.js';
import { exportWorldLlava } from '../../training/world/export.js';
import { runCli } from './filter-bench.js';
import { accuracyOf, byTypeAndFamily, expectedRandomAccuracy, familyAccuracies, gradeRun, selectRandomLike, unanswerableCounts, type GradedTriplet, type UnanswerableCounts } from './filter.js';
import { dumpGgufWeights, readGgufVocab } from './gguf-weights.js';
import { QUALITY_SEEDS, writeHeldOutImages } from './images.js';
import { python, rescoreRun, seededScores } from './round1.js';
import { writeTrainingData } from './training-data.js';
import { answerVqa, buildVqaSet, type ModelFiles, type VqaItem } from './vqa.js';

export interface LoopOptions {
  work: string;
  stage1Images: number;
  stage1Steps: number;
  labelledImages: number;
  validationImages: number;
  poolImages: number;
  vqaImages: number;
  /** Steps of every arm's training, the least when `epochs` asks for more. */
  steps: number;
  /** Steps of round 0's generator on L. */
  generatorSteps: number;
  /** Passes over an arm's data at the least (0: `steps` for every arm): more data then gets more steps. */
  epochs: number;
  seeds: number;
  /** 2: round 2 after round 1 (step 6). */
  rounds: number;
  /** Round 2's data: the union of both pools judged by round 2's generator ('union', the default), or L + kept + kept2 ('stacked', the older designs). */
  round2?: Round2Design;
  /** First scene seed of the VQA test's images. */
  vqaFirstSeed: number;
  /**
   * The filter of the `kept` arm's run on U (and of round 2's runs): 'refined' by default, what design
   * l4000-refined ran with; 'paper' for the designs made before there was a choice.
   */
  keptFilter?: FilterName;
  /** The round-1 arms trained, in this order within each seed (DEFAULT_ARMS when absent). */
  arms?: readonly RoundOneArm[];
  /** The design's name: its results file and QUALITY.md section (l<labelledImages> when absent). */
  design?: string;
  log: (message: string) => void;
  /** Called with the results so far after every seed (a run cut off later still has them). */
  onSeed?: (results: LoopResults) => Promise<void>;
}

export const LOOP_DEFAULTS = { stage1Images: 5000, stage1Steps: 800, labelledImages: 1000, validationImages: 200, poolImages: 10000, vqaImages: 500, steps: 400, generatorSteps: 400, epochs: 0, seeds: 3, rounds: 1, vqaFirstSeed: QUALITY_SEEDS.vqa } as const;
export const LOOP_QUICK = { ...LOOP_DEFAULTS, stage1Images: 500, stage1Steps: 60, labelledImages: 100, validationImages: 40, poolImages: 200, vqaImages: 20, steps: 40, generatorSteps: 40, seeds: 1 } as const;

/** train_full.py's batch. */
const BATCH = 32;

/** Scene seeds of the loop's labelled data: after the world model's own 20,000 training scenes, before the held-out blocks. */
const LOOP_SEEDS = { stage1: 0, labelled: 40_000, validation: 45_000 } as const;

export const ARMS = ['lOnly', 'kept', 'paper', 'agreement', 'random', 'randomMatched', 'all', 'ceilingMatched', 'ceiling'] as const;
export type RoundOneArm = (typeof ARMS)[number];
export type Round2Design = 'stacked' | 'union';
/** Round 1's arms, and round 2's model (step 6): stacked or from the re-judged union. */
export type Arm = RoundOneArm | 'round2' | 'round2Union' | 'round2Random';
export const ROUND2_ARMS = ['round2', 'round2Union', 'round2Random'] as const;
/** The arm of round 2's model in a design. */
export const round2Arm = (design: Round2Design | undefined): Arm => (design === 'stacked' ? 'round2' : 'round2Union');
/** Issue 36's design: the paper's filter beside ours, a control matched per family drawn afresh per seed, the Recap-style arm, a ceiling of kept's size. */
export const DEFAULT_ARMS: readonly RoundOneArm[] = ['lOnly', 'kept', 'paper', 'randomMatched', 'ceilingMatched', 'all'];
export const ARM_LABELS: Record<Arm, string> = {
  lOnly: 'L only (round 0\'s base)',
  kept: 'L + kept (round 1)',
  paper: 'L + kept by the paper\'s filter',
  agreement: 'L + kept by refined-agreement (sampled re-answers)',
  random: 'L + random, as many per type as kept',
  randomMatched: 'L + random, as many per type and question family as kept (a fresh draw per seed)',
  all: 'L + all synthetic (Recap-style: all of U as the generator wrote it, unfiltered)',
  ceilingMatched: 'ceiling of kept\'s size: L + U\'s records with the oracle\'s answers',
  ceiling: 'ceiling: L + U with the oracle\'s answers',
  round2: 'round 2: L + kept + kept2 (U2, round 2\'s generator)',
  round2Union: 'round 2: L + the kept of U\'s and U2\'s triplets together, all judged by round 2\'s generator',
  round2Random: 'round 2\'s control: L + random from the same union, as many per type and question family as round 2 kept (a fresh draw per seed)',
};

/** The arms a results file has models of, in table order. */
export function armsOf(r: Pick<LoopResults, 'models'>): Arm[] {
  return [...ARMS, ...ROUND2_ARMS].filter((arm) => r.models.some((m) => m.arm === arm));
}

/** The random control a results file has: matched per family (issue 36's design) or per type only (the older designs). */
export function randomArmOf(r: Pick<LoopResults, 'models'>): Arm {
  return r.models.some((m) => m.arm === 'randomMatched') ? 'randomMatched' : 'random';
}

const exists = (file: string) => access(file).then(() => true, () => false);

/** Records in a training data folder's train.jsonl. */
async function lineCount(file: string): Promise<number> {
  return (await readFile(file, 'utf8')).split('\n').filter((line) => line.trim() !== '').length;
}

/** Captions for stage 1, as training/world/make-data.ts writes them: a one-line or a detailed description of every image. */
function captionRecords(world: WrittenWorldData): LlavaRecord[] {
  return world.images.map((image, i) => {
    const question = i % 2 === 0 ? 'What is in the image?' : 'Describe the image in detail.';
    const family = i % 2 === 0 ? FAMILIES.brief : FAMILIES.detail;
    return { id: `caption-${image.scene.seed}`, image: image.file, conversations: [{ from: 'human', value: `${IMAGE_TOKEN}\n${question}` }, { from: 'gpt', value: family.answer(image.scene, question) as string }] };
  });
}

/** Records with absolute image paths, so sets from different folders can be joined into one file. */
function absolute(records: readonly LlavaRecord[], root: string): LlavaRecord[] {
  return records.map((r) => (r.image === undefined ? r : { ...r, image: path.resolve(root, r.image) }));
}

const turnsOf = (r: LlavaRecord) => r.conversations.length / 2;

export interface ArmModel {
  arm: Arm;
  seed: number;
  records: number;
  bestStep: number;
  right: boolean[];
}

export interface PoolFigures {
  scored: number;
  kept: number;
  all: { accuracy: number; low: number; high: number };
  keptAccuracy: { accuracy: number; low: number; high: number };
  expectedRandom: number;
  /** Absent from runs before it was counted. */
  unanswerable?: UnanswerableCounts;
  /** Per question family: triplets all and kept, right among them (absent from the older designs). */
  families?: Array<{ family: string; all: number; allRight: number; kept: number; keptRight: number }>;
  /** Kept triplets per image folder below the run's image root (round 2's union: U's and U2's); absent from runs before it was counted. */
  keptByFolder?: Record<string, number>;
}

export interface LoopResults {
  options: Omit<LoopOptions, 'log' | 'work'>;
  generator: { right: boolean[] };
  /**
   * Step 6: round 2's generator on the VQA test and its triplets on U2; for the union design also U's
   * triplets as it judged them and the union's selection (absent: stacked, the older designs).
   */
  round2?: { generator: { right: boolean[] }; pool: PoolFigures; design?: Round2Design; rejudged?: PoolFigures; union?: PoolFigures };
  pool: PoolFigures;
  /** The same pool selected by the paper's filter (a second run on U), where the paper arm ran. */
  poolPaper?: PoolFigures;
  /** The same U through `--filter refined-agreement` (the `agreement` arm). */
  poolAgreement?: PoolFigures;
  /** Each run's filter, from its run.json. */
  filters?: { kept: string; paper?: string; agreement?: string };
  synthetic: Partial<Record<Arm, number>>;
  questions: number;
  families: string[];
  itemFamilies: string[];
  models: ArmModel[];
  seconds: number;
}

/**
 * The world data of `options` in `dir`, rendered once: world.llava.json is written after the last
 * image, so where it exists the images are complete and only the records (cheap) are built again.
 */
async function worldData(dir: string, options: WorldDataOptions): Promise<WrittenWorldData> {
  const data = path.join(dir, 'world.llava.json');
  if (!(await exists(data))) return writeWorldData(dir, options);
  return { ...buildWorldData(options), data, imageFolder: path.join(dir, 'images'), scenes: path.join(dir, 'scenes.jsonl') };
}

export async function runLoop(options: LoopOptions): Promise<LoopResults> {
  const started = Date.now();
  const { work, log } = options;
  const w = (...parts: string[]) => path.join(work, ...parts);
  const base = worldModelPaths();
  const script = path.join(packageRoot(), 'bench', 'quality', 'train_full.py');
  await mkdir(work, { recursive: true });

  log('0. the shipped world model\'s weights (its vision tower is kept) and vocabulary');
  const baseWeights = w('base-weights');
  if (!(await exists(path.join(baseWeights, 'weights-mmproj.json')))) {
    await mkdir(baseWeights, { recursive: true });
    await dumpGgufWeights(base.mmproj, path.join(baseWeights, 'weights-mmproj'));
  }
  const vocabDir = w('vocab');
  await mkdir(vocabDir, { recursive: true });
  const vocab = await readGgufVocab(base.model);
  await writeFile(path.join(vocabDir, 'vocab.json'), JSON.stringify({ tokens: vocab.tokens, scores: [...vocab.scores], tokenTypes: [...vocab.tokenTypes!] }));

  /** LLaVA JSON -> the method's task records -> PyTorch's data folder (once; the folder is the checkpoint). */
  const prepare = async (name: string, data: string, root: string, ratios: string | null): Promise<string> => {
    const out = w(`data-${name}`);
    if (await exists(path.join(out, 'train.jsonl'))) return out;
    const tasks = w(`tasks-${name}`);
    await runCli(['tasks', '--data', data, '--out', tasks, '--seed', '0', '--image-folder', root, ...(ratios ? ['--ratios', ratios] : [])], log);
    await writeTrainingData(path.join(tasks, 'tasks.llava.json'), root, base.model, out);
    return out;
  };
  const train = async (name: string, data: string, args: string[]): Promise<{ dir: string; bestStep: number; records: number }> => {
    const dir = w(`train-${name}`);
    if (!(await exists(path.join(dir, 'train.json')))) {
      log(`   training ${name}`);
      await python([script, data, dir, '--base', baseWeights, ...args], log);
    }
    const t = JSON.parse(await readFile(path.join(dir, 'train.json'), 'utf8')) as { bestStep: number; records: number };
    return { dir, bestStep: t.bestStep, records: t.records };
  };
  const exported = async (name: string, trainDir: string): Promise<ModelFiles> => {
    const dir = w('models', name);
    const files = worldModelPaths(dir);
    if (!(await exists(files.mmproj))) await exportWorldLlava(vocabDir, trainDir, dir);
    return { model: files.model, mmproj: files.mmproj };
  };

  log(`1. stage 1 on captions of ${options.stage1Images} images; L = ${options.labelledImages} labelled images, ${options.validationImages} for validation`);
  const stage1World = await worldData(w('stage1-world'), { count: options.stage1Images, firstSeed: LOOP_SEEDS.stage1, questionSeed: 1 });
  const captions = w('stage1-captions.llava.json');
  await writeFile(captions, JSON.stringify(captionRecords(stage1World)) + '\n');
  const stage1Data = w('data-stage1');
  if (!(await exists(path.join(stage1Data, 'train.jsonl')))) await writeTrainingData(captions, stage1World.imageFolder, base.model, stage1Data);
  const stage1 = await train('stage1', stage1Data, ['--steps', String(options.stage1Steps), '--lr', '2e-3', '--seed', '0']);
  const checkpoint = path.join(stage1.dir, 'model.pt');

  const labelled = await worldData(w('labelled'), { count: options.labelledImages, firstSeed: LOOP_SEEDS.labelled, questionSeed: 3 });
  const validation = await worldData(w('validation'), { count: options.validationImages, firstSeed: LOOP_SEEDS.validation, questionSeed: 4 });
  const valIqa = await prepare('validation-iqa', validation.data, validation.imageFolder, '0,0,1');
  const valTasks = await prepare('validation-tasks', validation.data, validation.imageFolder, null);

  log('2. round 0\'s generator: the checkpoint trained on step 1 of the method on L');
  const genData = await prepare('generator', labelled.data, labelled.imageFolder, null);
  const generatorTrain = await train('generator', genData, ['--init', checkpoint, '--val', valTasks, '--steps', String(options.generatorSteps), '--seed', '0']);
  const generator = await exported('generator', generatorTrain.dir);

  const arms = options.arms ?? DEFAULT_ARMS;
  log(`3. srf-native run with the generator on U = ${options.poolImages} held-out images, --merge-with L`);
  const poolImages = await heldOutImagesOnce(w('pool-images'), QUALITY_SEEDS.synthetic, options.poolImages);
  /** The run on U with a filter, its triplets graded. */
  const runOnPool = async (out: string, filter: FilterName): Promise<{ run: string; pool: PoolFigures; filter: string }> => {
    await runCli(['run', '--model', generator.model, '--mmproj', generator.mmproj, '--embedder', base.embedder, '--images', poolImages, '--out', out,
      '--merge-with', labelled.data, '--merge-image-folder', labelled.imageFolder, '--round', '1', '--filter', filter], log);
    const pool = await poolFigures(out);
    const manifest = JSON.parse(await readFile(path.join(out, MANIFEST_FILE), 'utf8')) as { filter?: { name: string } };
    log(`   U, ${manifest.filter?.name ?? 'paper'} filter: ${poolLine(pool)}`);
    return { run: out, pool, filter: manifest.filter?.name ?? 'paper' };
  };
  const keptFilter = options.keptFilter ?? 'refined';
  const keptRun = await runOnPool(w('run-kept'), keptFilter);
  const run = keptRun.run;
  const paperRun = arms.includes('paper') ? await runOnPool(w('run-paper'), 'paper') : null;
  const agreementRun = arms.includes('agreement') ? await runOnPool(w('run-agreement'), 'refined-agreement') : null;
  const { pool } = keptRun;

  log('4. the arms\' data');
  const mergedRoot = await mergedImageRoot(run, work);
  const labelledTurns = labelled.records.reduce((s, r) => s + turnsOf(r), 0);
  const syntheticTurns = async (data: string) => (JSON.parse(await readFile(data, 'utf8')) as LlavaRecord[]).reduce((s, r) => s + turnsOf(r), 0) - labelledTurns;
  /** A copy of a run (the kept run unless `from` is given) reselected by `select` (the project's own writer) with the given scores; `keepTop` 1 and a floor pick exactly the scored-high ones. */
  const reselected = async (dir: string, scoreOf: Parameters<typeof rescoreRun>[2], keepTop: string, minScore: string, from = run) => {
    if (!(await exists(path.join(dir, 'train.merged.llava.json')))) {
      await rescoreRun(from, dir, scoreOf);
      await runCli(['select', '--in', dir, '--keep-top', keepTop, '--min-score', minScore, '--no-report'], log);
    }
    return { data: path.join(dir, 'train.merged.llava.json'), root: from === run ? mergedRoot : await mergedImageRoot(from, work) };
  };
  /** A fresh random draw per seed from a run's scored triplets, as many per type and question family as the run kept. */
  const matchedRandom = (graded: readonly GradedTriplet[], seed: number, dir: string, from = run) => {
    const chosen = selectRandomLike(graded, new Set(graded.filter((t) => t.kept).map((t) => t.id)), seed, byTypeAndFamily);
    return reselected(dir, (line) => (chosen.has(line.id) ? 1 : 0), '1', '0.5', from);
  };
  const graded = arms.includes('randomMatched') ? (await gradeRun(run)).triplets : [];
  /** L + as many of U's records with the oracle's answers as `turns` synthetic turns (the same images' instruction data). */
  const ceilingOf = async (file: string, turns: number) => {
    if (!(await exists(file))) {
      const oracle = await worldData(w('pool-oracle'), { count: options.poolImages, firstSeed: QUALITY_SEEDS.synthetic, questionSeed: 5, textOnlyShare: 0 });
      const picked: LlavaRecord[] = [];
      let taken = 0;
      for (const r of shuffled(oracle.records, createRandom(6))) {
        if (taken >= turns) break;
        picked.push(r);
        taken += turnsOf(r);
      }
      await writeFile(file, JSON.stringify([...absolute(labelled.records, labelled.imageFolder), ...absolute(picked, oracle.imageFolder)]) + '\n');
    }
    return { data: file, root: '/' };
  };
  const keptSet = { data: path.join(run, 'train.merged.llava.json'), root: mergedRoot };
  const allSet = () => reselected(w('run-all'), seededScores(4), '1', '0');
  /** An arm's training set for a seed: the data file, its image root, and the name its tokenized folder is kept under. */
  const setOf = async (arm: RoundOneArm, seed: number): Promise<{ data: string; root: string; name: string }> => {
    switch (arm) {
      case 'lOnly':
        return { data: labelled.data, root: labelled.imageFolder, name: arm };
      case 'kept':
        return { ...keptSet, name: arm };
      case 'paper':
        return { data: path.join(paperRun!.run, 'train.merged.llava.json'), root: await mergedImageRoot(paperRun!.run, work), name: arm };
      case 'agreement':
        return { data: path.join(agreementRun!.run, 'train.merged.llava.json'), root: await mergedImageRoot(agreementRun!.run, work), name: arm };
      case 'random':
        return { ...(await reselected(w('run-random'), seededScores(5), '0.2', '0')), name: arm };
      case 'randomMatched':
        return { ...(await matchedRandom(graded, 1000 + seed, w(`run-random-matched-${seed}`))), name: `${arm}-${seed}` };
      case 'all':
        return { ...(await allSet()), name: arm };
      case 'ceilingMatched':
        return { ...(await ceilingOf(w('ceiling-matched.llava.json'), await syntheticTurns(keptSet.data))), name: arm };
      case 'ceiling':
        return { ...(await ceilingOf(w('ceiling.llava.json'), await syntheticTurns((await allSet()).data))), name: arm };
    }
  };
  const synthetic: Partial<Record<Arm, number>> = {};
  for (const arm of arms) synthetic[arm] = await syntheticTurns((await setOf(arm, 0)).data);

  log(`5. the held-out VQA test on ${options.vqaImages} images from scene ${options.vqaFirstSeed}`);
  const items = await buildVqaSet(w('vqa-images'), options.vqaImages, options.vqaFirstSeed);
  const answered = async (name: string, files: ModelFiles): Promise<boolean[]> => {
    const file = w('vqa', `${name}.json`);
    if (await exists(file)) return JSON.parse(await readFile(file, 'utf8')) as boolean[];
    const right = await answerVqa(files, items);
    await mkdir(w('vqa'), { recursive: true });
    await writeFile(file, JSON.stringify(right));
    log(`   ${name}: ${(100 * right.filter(Boolean).length / right.length).toFixed(1)} % of ${right.length}`);
    return right;
  };
  const generatorRight = await answered('generator', generator);

  const models: ArmModel[] = [];
  /** One arm's model of one seed: retrained from the checkpoint on IQ->A, every arm the same way. */
  const armModel = async (arm: Arm, set: { data: string; root: string; name: string }, seed: number): Promise<ArmModel> => {
    log(`   ${ARM_LABELS[arm]}, seed ${seed}`);
    const data = await prepare(set.name, set.data, set.root, '0,0,1');
    const steps = Math.max(options.steps, Math.ceil((options.epochs * (await lineCount(path.join(data, 'train.jsonl')))) / BATCH));
    const t = await train(`${arm}-${seed}`, data, ['--init', checkpoint, '--val', valIqa, '--steps', String(steps), '--seed', String(seed)]);
    const files = await exported(`${arm}-${seed}`, t.dir);
    return { arm, seed, records: t.records, bestStep: t.bestStep, right: await answered(`${arm}-${seed}`, files) };
  };
  /** A model trained and answered in an earlier session (its train.json and its answers exist), else null. */
  const finishedModel = async (arm: Arm, seed: number): Promise<ArmModel | null> => {
    const trainFile = w(`train-${arm}-${seed}`, 'train.json');
    const answers = w('vqa', `${arm}-${seed}.json`);
    if (!(await exists(trainFile)) || !(await exists(answers))) return null;
    const t = JSON.parse(await readFile(trainFile, 'utf8')) as { bestStep: number; records: number };
    return { arm, seed, records: t.records, bestStep: t.bestStep, right: JSON.parse(await readFile(answers, 'utf8')) as boolean[] };
  };
  const { log: _log, work: _work, onSeed: _onSeed, ...rest } = options;
  const resultsSoFar = (round2?: LoopResults['round2']): LoopResults => ({
    options: rest,
    generator: { right: generatorRight },
    ...(round2 ? { round2 } : {}),
    pool,
    ...(paperRun ? { poolPaper: paperRun.pool } : {}),
    ...(agreementRun ? { poolAgreement: agreementRun.pool } : {}),
    filters: { kept: keptRun.filter, ...(paperRun ? { paper: paperRun.filter } : {}), ...(agreementRun ? { agreement: agreementRun.filter } : {}) },
    synthetic,
    questions: items.length,
    families: [...new Set(items.map((it) => it.qa.family))],
    itemFamilies: items.map((it: VqaItem) => it.qa.family),
    models: [...models],
    seconds: (Date.now() - started) / 1000,
  });
  let round2: LoopResults['round2'];
  /** Round 2's arms and each one's training set for a seed. */
  const round2Sets: { arm: Arm; setOf: (seed: number) => Promise<{ data: string; root: string; name: string }> }[] = [];
  if (options.rounds >= 2) {
    const design = options.round2 ?? 'union';
    log(`6. round 2 (${design}): the generator retrained on step 1 of the method on round 1's data, srf-native run on U2 = ${options.poolImages} other held-out images`);
    const gen2Data = await prepare('generator-r2', keptSet.data, keptSet.root, null);
    // As many passes over its data as round 0's generator had over L.
    const gen2Steps = Math.ceil((options.generatorSteps * (await lineCount(path.join(gen2Data, 'train.jsonl')))) / (await lineCount(path.join(genData, 'train.jsonl'))));
    const generator2 = await exported('generator-r2', (await train('generator-r2', gen2Data, ['--init', checkpoint, '--val', valTasks, '--steps', String(gen2Steps), '--seed', '0'])).dir);
    const pool2Images = await heldOutImagesOnce(w('pool2-images'), QUALITY_SEEDS.synthetic + options.poolImages, options.poolImages);
    const generator2Right = await answered('generator-r2', generator2);
    const run2With = (args: string[]) => runCli(['run', '--model', generator2.model, '--mmproj', generator2.mmproj, '--embedder', base.embedder, '--round', '2', '--filter', keptFilter, ...args], log);
    let set2: { data: string; root: string; name: string };
    if (design === 'stacked') {
      const run2 = w('run-kept-r2');
      await run2With(['--images', pool2Images, '--out', run2, '--merge-with', keptSet.data, '--merge-image-folder', keptSet.root]);
      const pool2 = await poolFigures(run2);
      log(`   U2: ${poolLine(pool2)}`);
      round2 = { generator: { right: generator2Right }, pool: pool2 };
      set2 = { data: path.join(run2, 'train.merged.llava.json'), root: await mergedImageRoot(run2, work), name: 'round2' };
    } else {
      // Every run on one image root (the work folder), so that merge can select over their union.
      const run2 = w('run-r2-u2');
      await run2With(['--images', pool2Images, '--image-root', work, '--out', run2]);
      const rejudged = w('run-r2-rejudged');
      await run2With(['--rescore', run, '--image-root', work, '--out', rejudged]);
      const union = w('run-r2-union');
      if (!(await exists(path.join(union, 'train.merged.llava.json')))) {
        await runCli(['merge', '--in', rejudged, '--in', run2, '--out', union, '--merge-with', labelled.data, '--merge-image-folder', labelled.imageFolder, '--no-report'], log);
      }
      const figures = { pool: await poolFigures(run2), rejudged: await poolFigures(rejudged), union: await poolFigures(union) };
      log(`   U2: ${poolLine(figures.pool)}\n   U judged again: ${poolLine(figures.rejudged)}\n   the union: ${poolLine(figures.union)}`);
      round2 = { generator: { right: generator2Right }, design, ...figures };
      set2 = { data: path.join(union, 'train.merged.llava.json'), root: await mergedImageRoot(union, work), name: 'round2Union' };
      // Round 2's control, as round 1's: does its selection beat chance of the same size and mix?
      const gradedUnion = (await gradeRun(union)).triplets;
      const unionRandom = async (seed: number) => ({ ...(await matchedRandom(gradedUnion, 2000 + seed, w(`run-r2-random-matched-${seed}`), union)), name: `round2Random-${seed}` });
      round2Sets.push({ arm: 'round2Random', setOf: unionRandom });
      synthetic.round2Random = await syntheticTurns((await unionRandom(0)).data);
    }
    round2Sets.unshift({ arm: round2Arm(design), setOf: async () => set2 });
    synthetic[round2Arm(design)] = await syntheticTurns(set2.data);
  }
  // Every model an earlier session finished is in the results from the start, so that a run cut off
  // reports them all; then seed-major order, round 2's model with the others: after one seed every
  // arm has a model.
  const seedArms: Arm[] = [...arms, ...round2Sets.map((r2) => r2.arm)];
  for (let seed = 0; seed < options.seeds; seed++) {
    for (const arm of seedArms) {
      const finished = await finishedModel(arm, seed);
      if (finished) models.push(finished);
    }
  }
  const trained = (arm: Arm, seed: number) => models.some((m) => m.arm === arm && m.seed === seed);
  for (let seed = 0; seed < options.seeds; seed++) {
    for (const arm of arms) if (!trained(arm, seed)) models.push(await armModel(arm, await setOf(arm, seed), seed));
    for (const r2 of round2Sets) if (!trained(r2.arm, seed)) models.push(await armModel(r2.arm, await r2.setOf(seed), seed));
    await options.onSeed?.(resultsSoFar(round2));
  }

  return resultsSoFar(round2);
}

/** A run's triplets graded: all, kept, and a random draw of the kept count per type as its expected value. */
async function poolFigures(run: string): Promise<PoolFigures> {
  const { triplets, census } = await gradeRun(run);
  const keptIds = new Set(triplets.filter((t) => t.kept).map((t) => t.id));
  return {
    scored: census.scored,
    kept: keptIds.size,
    all: accuracyOf('all', triplets, null).overall,
    keptAccuracy: accuracyOf('kept', triplets, keptIds).overall,
    expectedRandom: expectedRandomAccuracy(triplets, keptIds),
    unanswerable: { all: unanswerableCounts(triplets, null), kept: unanswerableCounts(triplets, keptIds) },
    families: familyAccuracies(triplets, keptIds).map((f) => ({ family: f.family ?? 'garbled', all: f.all.n, allRight: f.all.right, kept: f.kept.n, keptRight: f.kept.right })),
    ...keptFolders(triplets.filter((t) => t.kept)),
  };
}

function keptFolders(kept: readonly { image: string }[]): { keptByFolder?: Record<string, number> } {
  const counts: Record<string, number> = {};
  for (const t of kept) {
    const slash = t.image.indexOf('/');
    if (slash > 0) counts[t.image.slice(0, slash)] = (counts[t.image.slice(0, slash)] ?? 0) + 1;
  }
  return { keptByFolder: counts };
}

const poolLine = (p: PoolFigures) =>
  `${p.scored} scored, all ${(100 * p.all.accuracy).toFixed(1)} %, kept ${(100 * p.keptAccuracy.accuracy).toFixed(1)} %, expected random ${(100 * p.expectedRandom).toFixed(1)} %`;

/** `count` held-out images from `firstSeed` in `dir`, written once: the last file is written last. */
async function heldOutImagesOnce(dir: string, firstSeed: number, count: number): Promise<string> {
  if (!(await exists(path.join(dir, worldImageFile(firstSeed + count - 1))))) await writeHeldOutImages(dir, firstSeed, count);
  return dir;
}

/** The folder a run's train.merged.llava.json paths are relative to. */
async function mergedImageRoot(run: string, fallback: string): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(run, MANIFEST_FILE), 'utf8')) as { outputs: { mergedImageRoot?: string } };
  return manifest.outputs.mergedImageRoot ?? fallback;
}

/**
 * Mean accuracy of an arm over its seeds, and a difference of two arms, with 95 % intervals from a
 * hierarchical bootstrap: each resample draws the training seeds (with replacement) and the
 * questions (with replacement, the same draw for both arms), so the interval holds both the
 * variance between training seeds and that of the question sample.
 */
export function armStatistics(models: readonly ArmModel[], a: Arm, b: Arm | null, subset: readonly boolean[] | null = null, resamples = 2000): { value: number; low: number; high: number } {
  const of = (arm: Arm) => models.filter((m) => m.arm === arm).map((m) => m.right);
  const runsA = of(a);
  const runsB = b ? of(b) : [];
  const n = runsA[0]?.length ?? 0;
  const questions = [...Array(n).keys()].filter((i) => !subset || subset[i]);
  if (runsA.length === 0 || (b && runsB.length === 0) || questions.length === 0) return { value: NaN, low: NaN, high: NaN };
  const mean = (runs: readonly boolean[][], seedPick: readonly number[], qs: readonly number[]) => {
    let sum = 0;
    for (const s of seedPick) for (const q of qs) sum += runs[s]![q] ? 1 : 0;
    return sum / (seedPick.length * qs.length);
  };
  const all = (runs: readonly boolean[][]) => runs.map((_, i) => i);
  const value = mean(runsA, all(runsA), questions) - (b ? mean(runsB, all(runsB), questions) : 0);
  const random = createRandom(11);
  const draws = new Float64Array(resamples);
  const pick = (k: number) => Array.from({ length: k }, () => Math.floor(random() * k));
  for (let r = 0; r < resamples; r++) {
    const qs = pick(questions.length).map((i) => questions[i]!);
    const da = mean(runsA, pick(runsA.length), qs);
    draws[r] = b ? da - mean(runsB, pick(runsB.length), qs) : da;
  }
  draws.sort();
  return { value, low: draws[Math.floor(0.025 * resamples)]!, high: draws[Math.ceil(0.975 * resamples) - 1]! };
}
