/**
 * The filter benchmark: `srf-native run` (the CLI with its defaults, as a user runs it) with the world
 * model and embedder on held-out world images, then every triplet graded by the oracle, the
 * selections and ablations of filter.ts, and bench/QUALITY.md's filter section.
 */
import { spawn } from 'node:child_process';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DATA_TYPES } from '../../lib/srf/data-types.js';
import { packageRoot } from '../../lib/engine/native.js';
import { JOURNAL_FILE } from '../../lib/outputs/journal.js';
import { worldModelPaths } from '../../lib/world/model-files.js';
import type { UnanswerableReason } from '../../lib/world/oracle.js';
import {
  UNANSWERABLE_REASONS,
  accuracyOf,
  familyAccuracies,
  gradeRun,
  expectedRandomAccuracy,
  byTypeAndFamily,
  keptOddsRatio,
  lexicalScores,
  reselectFraction,
  scoreWithReasks,
  modelConfidence,
  sampleAgreement,
  selectByScore,
  selectGlobal,
  selectRandomLike,
  unanswerableCounts,
  unanswerableTotal,
  type GradedTriplet,
  type RunCensus,
  type Selection,
  type SelectionAccuracy,
  type UnanswerableCounts,
} from './filter.js';
import { QUALITY_SEEDS, writeHeldOutImages } from './images.js';
import { failingObjectCheck } from './object-check.js';
import { table, writeSection } from './markdown.js';
import { formatAccuracy, pairedDifference, percent, type Accuracy } from './stats.js';
import { FILTERS, REFINED_MIN_SCORE, type FilterName } from '../../lib/srf/filters.js';
import { MANIFEST_FILE } from '../../lib/outputs/manifest.js';

export const KEEP_FRACTIONS = [0.05, 0.2, 0.5, 0.8, 1] as const;

export interface FilterBenchOptions {
  images: number;
  /** First scene seed of the block (default QUALITY_SEEDS.filter; other blocks for tuning and confirming). */
  firstSeed?: number;
  /** Working folder: images and the run's output folder (a run there resumes). */
  work: string;
  models?: { model: string; mmproj: string; embedder: string };
  log?: (message: string) => void;
}

export interface FilterResults {
  images: number;
  firstSeed: number;
  /** The default filter the main run used (absent in results written when it was always `refined`). */
  filter?: string;
  census: RunCensus;
  runSeconds: number;
  /** The run went on from an earlier run's journal in the work folder (runSeconds is then not its time). */
  resumed?: boolean;
  main: SelectionAccuracy[];
  /** The paper's filter and ours, each part alone and together, on the same images (issue 36). */
  variants: FilterVariant[];
  /** Kept accuracy and odds ratio at each score floor under the per-type top 20 %, on either run's scores. */
  floorSweep: Array<{ floor: number | null; paper: FloorPoint; refined: FloorPoint }>;
  /** The `--filter paper` run's census. */
  paperCensus: RunCensus;
  /** A random draw of the kept count per type, in expectation (the control; `main`'s random row is one draw). */
  expectedRandom: number;
  /** The same, the draw matched per data type and question family. */
  expectedRandomByFamily: number;
  oddsRatio: number;
  ablations: SelectionAccuracy[];
  sweep: Array<SelectionAccuracy & { keepTop: number; kept: number }>;
  verdicts: Record<string, number>;
  unanswerable: UnanswerableCounts;
  families: ReturnType<typeof familyAccuracies>;
  /** The object check (beyond the paper): questions it asked about, triplets failing it, what the kept set then holds. */
  objectCheck: { checked: number; failed: number; failedRight: number; unanswerableKept: Record<UnanswerableReason, number>; kept: number };
  examples: Array<Pick<GradedTriplet, 'type' | 'question' | 'answer' | 'questionPrime' | 'answerPrime' | 'score' | 'kept'> & { right: boolean; truth: string | null }>;
  command: string[];
}

export interface FilterVariant {
  name: string;
  /** Which run's triplets and scores it selects from (refined: the default's or refined-circular's). */
  run: 'paper' | 'refined';
  all: Accuracy;
  kept: Accuracy;
  gain: SelectionAccuracy['gain'];
  /** Kept accuracy minus the paper's filter's, paired bootstrap over the same triplets (by id). */
  vsPaper: SelectionAccuracy['gain'];
  /** Kept accuracy minus the default filter's, paired the same way (absent in results written before it was measured). */
  vsDefault?: SelectionAccuracy['gain'];
  oddsRatio: number;
  expectedRandom: number;
  /** The same, the draw matched per data type and question family. */
  expectedRandomByFamily: number;
  /** Letter-choice questions (the world's `choice` family): all and kept. */
  choiceAll: Accuracy;
  choiceKept: Accuracy;
  /** Kept triplets the oracle cannot answer, by reason (absent object, ambiguous reference, ...). */
  unanswerableKept?: UnanswerableCounts['kept'];
}

export interface FloorPoint {
  kept: number;
  accuracy: number;
  oddsRatio: number;
}

/** Floors compared under the per-type top 20 % (null: none, the paper's). */
export const FLOORS = [null, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99] as const;

/** What each variant is compared with, paired over the same triplets (by id). */
interface ReferenceSelections {
  paper: Selection;
  default: Selection;
}

function variantOf(name: string, run: FilterVariant['run'], triplets: readonly GradedTriplet[], kept: Selection, references: ReferenceSelections): FilterVariant {
  const sel = accuracyOf(name, triplets, kept);
  const minus = (other: Selection) => pairedDifference(triplets.map((t) => t.grade.right), triplets.map((t) => kept.has(t.id)), triplets.map((t) => other.has(t.id)));
  const choice = familyAccuracies(triplets, kept).find((f) => f.family === 'choice');
  const none = { n: 0, right: 0, accuracy: NaN, low: NaN, high: NaN };
  return {
    name,
    run,
    all: accuracyOf('all', triplets, null).overall,
    kept: sel.overall,
    gain: sel.gain,
    vsPaper: minus(references.paper),
    vsDefault: minus(references.default),
    oddsRatio: keptOddsRatio(triplets, kept),
    expectedRandom: expectedRandomAccuracy(triplets, kept),
    expectedRandomByFamily: expectedRandomAccuracy(triplets, kept, byTypeAndFamily),
    choiceAll: choice?.all ?? none,
    choiceKept: choice?.kept ?? none,
    unanswerableKept: unanswerableCounts(triplets, kept),
  };
}

/** S as `refined` computes it (option text, the open re-ask), from the all-measures journal. */
const openS = (t: GradedTriplet) => scoreWithReasks(t, { rotated: false, open: true });

/** Sampled re-answers per triplet in the bench's all-measures run (`--samples`). */
export const SAMPLES = 4;
/** The agreement floor tried beside the score floor: 3 of 4 samples name A. */
const AGREEMENT_FLOOR = 0.75;

/**
 * The sampled re-answers' agreement with A (--samples), alone and with S: does spread over several
 * answers catch what one greedy A' cannot (the ambiguous references)?
 */
function agreementVariants(circular: readonly GradedTriplet[], references: ReferenceSelections): FilterVariant[] {
  const of = (name: string, kept: Selection) => variantOf(name, 'refined', circular, kept, references);
  return [
    of(`the agreement of ${SAMPLES} sampled re-answers alone (--samples ${SAMPLES}), no floor`, selectByScore(circular, sampleAgreement)),
    of('S (option text, open re-ask) x the agreement, no floor', selectByScore(circular, (t) => openS(t) * sampleAgreement(t))),
    of('S x the agreement x the model\'s confidence, no floor', selectByScore(circular, (t) => openS(t) * sampleAgreement(t) * modelConfidence(t))),
    // refined-agreement's rule over this run: above the S floor, the top fraction by S x agreement
    of(`the floor S >= ${REFINED_MIN_SCORE}, ranked by S x the agreement (= --filter refined-agreement)`, selectByScore(circular.map((t) => ({ ...t, floorScore: openS(t) })), (t) => openS(t) * sampleAgreement(t), 0.2, REFINED_MIN_SCORE)),
    of(`the floor S >= ${REFINED_MIN_SCORE} and an agreement floor >= ${AGREEMENT_FLOOR}, ranked by S`, selectByScore(circular, (t) => (sampleAgreement(t) >= AGREEMENT_FLOOR ? openS(t) : 0), 0.2, REFINED_MIN_SCORE)),
  ];
}

function floorPoint(triplets: readonly GradedTriplet[], scoreOf: (t: GradedTriplet) => number, floor: number | null): FloorPoint {
  const kept = selectByScore(triplets, scoreOf, 0.2, floor ?? undefined);
  const right = triplets.filter((t) => kept.has(t.id) && t.grade.right).length;
  return { kept: kept.size, accuracy: kept.size === 0 ? NaN : right / kept.size, oddsRatio: keptOddsRatio(triplets, kept) };
}

/** Runs the CLI exactly as a user would; resolves when it exits 0. */
export function runCli(args: readonly string[], log: (m: string) => void = () => {}): Promise<void> {
  const bin = path.join(packageRoot(), 'bin', 'srf-native.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', (chunk: Buffer) => {
      keep(chunk);
      for (const line of chunk.toString().split('\n')) if (line.trim()) log(line);
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`srf-native ${args[0]} exited ${code}:\n${tail}`))));
  });
}

export async function runFilterBench(options: FilterBenchOptions): Promise<FilterResults> {
  const log = options.log ?? (() => {});
  const models = options.models ?? worldModelPaths();
  const firstSeed = options.firstSeed ?? QUALITY_SEEDS.filter;
  const imageDir = path.join(options.work, 'filter-images');
  const out = path.join(options.work, 'filter-run');
  const paperOut = path.join(options.work, 'filter-run-paper');
  await mkdir(options.work, { recursive: true });
  log(`writing ${options.images} held-out world images (seeds ${firstSeed}..) to ${imageDir}`);
  await writeHeldOutImages(imageDir, firstSeed, options.images);
  const args = ['run', '--model', models.model, '--mmproj', models.mmproj, '--embedder', models.embedder, '--images', imageDir, '--out', out];
  // A run that resumes a finished journal takes no time worth quoting.
  const resumed = await access(path.join(out, JOURNAL_FILE)).then(() => true, () => false);
  const started = Date.now();
  await runCli(args, log);
  const runSeconds = (Date.now() - started) / 1000;
  // The same images through the paper's exact filter and through refined-circular: the same I->QA
  // seeds, so the same triplets; the latter's journal has every re-ask, for the rows of each alone.
  await runCli([...args.slice(0, -1), paperOut, '--filter', 'paper'], log);
  // every measure at once: both re-asks, the model's confidence, sampled re-answers
  const circularOut = path.join(options.work, 'filter-run-measures');
  await runCli([...args.slice(0, -1), circularOut, '--filter', 'refined-circular', '--confidence', '--samples', String(SAMPLES)], log);
  const circular = (await gradeRun(circularOut)).triplets;
  // refined-agreement in its own run: its samples share their batches with its own calls only
  const agreementOut = path.join(options.work, 'filter-run-agreement');
  await runCli([...args.slice(0, -1), agreementOut, '--filter', 'refined-agreement'], log);
  const agreement = (await gradeRun(agreementOut)).triplets;

  const { triplets, census } = await gradeRun(out);
  const defaultFilter = (JSON.parse(await readFile(path.join(out, MANIFEST_FILE), 'utf8')) as { filter?: { name: string } }).filter?.name ?? 'paper';
  const paper = await gradeRun(paperOut);
  const keptOf = (ts: readonly GradedTriplet[]): Selection => new Set(ts.filter((t) => t.kept).map((t) => t.id));
  const paperKept = keptOf(paper.triplets);
  const kept = keptOf(triplets);
  const references: ReferenceSelections = { paper: paperKept, default: kept };
  const variants = [
    variantOf("the paper's filter (--filter paper)", 'paper', paper.triplets, paperKept, references),
    variantOf(`the paper's score with the floor S >= ${REFINED_MIN_SCORE} alone`, 'paper', paper.triplets, selectByScore(paper.triplets, (t) => t.score, 0.2, REFINED_MIN_SCORE), references),
    variantOf('option-text letter choices, no re-ask, no floor', 'refined', circular, selectByScore(circular, (t) => scoreWithReasks(t, { rotated: false, open: false })), references),
    variantOf('option-text letter choices with the rotated re-ask (CircularEval), no floor', 'refined', circular, selectByScore(circular, (t) => scoreWithReasks(t, { rotated: true, open: false })), references),
    variantOf('option-text letter choices with the open re-ask, no floor', 'refined', circular, selectByScore(circular, openS), references),
    variantOf('option-text letter choices with both re-asks, no floor', 'refined', circular, selectByScore(circular, (t) => t.score), references),
    variantOf('option-text letter choices with the rotated re-ask and the floor, no open re-ask', 'refined', circular, selectByScore(circular, (t) => scoreWithReasks(t, { rotated: true, open: false }), 0.2, REFINED_MIN_SCORE), references),
    variantOf('the model\'s confidence alone (exp mean log P of A and Q, --confidence), no floor', 'refined', circular, selectByScore(circular, modelConfidence), references),
    variantOf('S (option text, open re-ask) x the model\'s confidence, no floor (= --filter refined-confidence)', 'refined', circular, selectByScore(circular, (t) => openS(t) * modelConfidence(t)), references),
    ...agreementVariants(circular, references),
    variantOf('both re-asks and the floor (--filter refined-circular)', 'refined', circular, keptOf(circular), references),
    variantOf('refined-agreement in its own run (--filter refined-agreement)', 'refined', agreement, keptOf(agreement), references),
    variantOf(`all of it (the default, --filter ${defaultFilter})`, 'refined', triplets, kept, references),
  ];
  const floorSweep = FLOORS.map((floor) => ({ floor, paper: floorPoint(paper.triplets, (t) => t.score, floor), refined: floorPoint(circular, openS, floor) }));
  const random = selectRandomLike(triplets, kept);
  const main = [accuracyOf('all triplets', triplets, null), accuracyOf('kept: the default filter (srf-native run)', triplets, kept), accuracyOf('random, as many per type as kept', triplets, random)];

  const lexical = await lexicalScores(triplets);
  const check = await failingObjectCheck(models, triplets.map((t) => ({ id: t.id, image: path.join(imageDir, t.image), question: t.question })));
  const checkedSelection = selectByScore(triplets, (t) => (check.failed.has(t.id) ? 0 : t.score));
  const ablations = [
    accuracyOf('S = sqrt(simQ * simA), per type, no floor', triplets, selectByScore(triplets, (t) => t.score)),
    accuracyOf('simQ only', triplets, selectByScore(triplets, (t) => t.simQ)),
    accuracyOf('simA only', triplets, selectByScore(triplets, (t) => t.simA)),
    accuracyOf('lexical fallback (token F1) instead of the embedder', triplets, selectByScore(triplets, (t) => lexical.get(t.id)!)),
    accuracyOf('one global threshold (top 20 % of all)', triplets, selectGlobal(triplets)),
    accuracyOf('S with the object check (beyond the paper; below)', triplets, checkedSelection),
  ];
  const objectCheck = {
    checked: check.checked,
    failed: check.failed.size,
    failedRight: triplets.filter((t) => check.failed.has(t.id) && t.grade.right).length,
    unanswerableKept: unanswerableCounts(triplets, checkedSelection),
    kept: checkedSelection.size,
  };
  const sweep: FilterResults['sweep'] = [];
  for (const keepTop of KEEP_FRACTIONS) {
    const selection = await reselectFraction(out, keepTop);
    sweep.push({ ...accuracyOf(`top ${keepTop * 100} % per type`, triplets, selection), keepTop, kept: selection.size });
  }
  const verdicts: Record<string, number> = {};
  for (const t of triplets) verdicts[t.grade.verdict] = (verdicts[t.grade.verdict] ?? 0) + 1;
  const examples = pickExamples(triplets);
  const command = ['srf-native', ...args.map((a) => a.replace(options.work, '$WORK').replace(packageRoot() + path.sep, ''))];
  const expectedRandom = expectedRandomAccuracy(triplets, kept);
  const expectedRandomByFamily = expectedRandomAccuracy(triplets, kept, byTypeAndFamily);
  const oddsRatio = keptOddsRatio(triplets, kept);
  const unanswerable = { all: unanswerableCounts(triplets, null), kept: unanswerableCounts(triplets, kept) };
  const families = familyAccuracies(triplets, kept);
  return { images: options.images, firstSeed, filter: defaultFilter, census, paperCensus: paper.census, variants, floorSweep, runSeconds, resumed, main, expectedRandom, expectedRandomByFamily, oddsRatio, ablations, sweep, verdicts, unanswerable, families, objectCheck, examples, command };
}

/** A few of each kind (kept right, kept wrong, dropped right, dropped wrong), so a reader sees what the numbers count. */
function pickExamples(triplets: readonly GradedTriplet[]): FilterResults['examples'] {
  const out: FilterResults['examples'] = [];
  for (const kept of [true, false]) {
    for (const right of [true, false]) {
      for (const t of triplets.filter((x) => x.kept === kept && x.grade.right === right).slice(0, 2)) {
        out.push({ type: t.type, question: t.question, answer: t.answer, questionPrime: t.questionPrime, answerPrime: t.answerPrime, score: t.score, kept, right, truth: t.grade.truth });
      }
    }
  }
  return out;
}

const PAPER = { kept: 0.853, all: 0.599 };

function gainText(s: SelectionAccuracy): string {
  const g = s.gain;
  return `${g.difference >= 0 ? '+' : ''}${percent(g.difference)} [${percent(g.low)}, ${percent(g.high)}]`;
}

export function filterMarkdown(r: FilterResults, command: string): string {
  const [all, kept, random] = r.main as [SelectionAccuracy, SelectionAccuracy, SelectionAccuracy];
  const lines: string[] = [];
  lines.push(`## 1. The filter: are kept triplets more often right?`);
  lines.push('');
  lines.push(
    `\`srf-native run\` with its defaults (grammar-held I->QA sampled at temperature 0.7, greedy re-predictions, ` +
      `the world embedder for cosines and BERTScore, the default filter \`${r.filter ?? 'refined'}\`: ${FILTERS[(r.filter ?? 'refined') as FilterName]?.description ?? ''}) on ${r.images} held-out world images ` +
      `(scene seeds ${r.firstSeed}..${r.firstSeed + r.images - 1}, never seen in training; the pipeline gets only the PNGs). ` +
      `${r.census.scored} triplets scored, ${r.census.rejected} replies rejected by the parser, ${r.census.errors} errors; ` +
      `${r.resumed ? 'the run resumed an earlier one in its work folder' : `the run took ${r.runSeconds.toFixed(0)} s`}. Every scored triplet is graded by the oracle: right when its question is one the ` +
      `oracle can answer on that image and its answer is the oracle's (exact after normalising for short answers, yes/no and ` +
      `letters; box IoU >= 0.5 for REC; word for word after normalising for free text, whose world answers are templated). ` +
      `A question the oracle cannot answer (about an object the image does not have, say) is wrong (${r.verdicts.unanswerable ?? 0} of ${r.census.scored}; by cause below). ` +
      `Intervals: 95 % percentile bootstrap, 2000 resamples; "gain" is the paired bootstrap of the difference to all triplets.`,
  );
  lines.push('');
  lines.push(
    table(
      ['', 'paper (LLaVA-1.5-7B, LAION, judged by GPT-4o)', 'here (world model, judged by the oracle)', 'gain over all'],
      [
        ['all triplets', `${percent(PAPER.all)} %`, formatAccuracy(all.overall), ''],
        ['kept (the default filter)', `${percent(PAPER.kept)} %`, formatAccuracy(kept.overall), gainText(kept)],
        ['random 20 % per type (one draw)', '–', formatAccuracy(random.overall), gainText(random)],
        ['random, expected value at the kept counts per type', '–', `${percent(r.expectedRandom)} %`, ''],
        ['random, expected value at the kept counts per type and question family', '–', `${percent(r.expectedRandomByFamily)} %`, ''],
      ],
    ),
  );
  lines.push('');
  lines.push(`Kept minus the expected random draw: ${percent(kept.overall.accuracy - r.expectedRandom)} points (${percent(kept.overall.accuracy - r.expectedRandomByFamily)} against a draw matched per family as well); odds ratio of right between kept and dropped triplets: ${r.oddsRatio.toFixed(2)}.`);
  lines.push('');
  lines.push(
    `The paper's filter and ours on the same ${r.images} images (\`--filter paper\`, \`--filter refined-circular --confidence --samples ${SAMPLES}\` and \`--filter refined-agreement\` are three more runs over them: the same I->QA seeds, so the same triplets; the rows with and without each re-ask, the confidence or the samples are selections over refined-circular's journal, which has them all; ` +
      `${r.paperCensus.scored} scored there), each part alone and together (lib/srf/filters.ts; targets of issue 36: kept >= 85 % right, odds ratio >= 5, letter-choice kept above letter-choice all):`,
  );
  lines.push('');
  lines.push(
    table(
      ['filter', 'kept right', 'gain over all', "minus the paper's kept", "minus the default's kept", 'kept minus expected random (per type; per type and family)', 'odds ratio', 'letter choice: all', 'letter choice: kept', 'kept: ambiguous; absent'],
      r.variants.map((v) => [v.name, formatAccuracy(v.kept), gainText({ gain: v.gain } as SelectionAccuracy), gainText({ gain: v.vsPaper } as SelectionAccuracy), v.vsDefault ? gainText({ gain: v.vsDefault } as SelectionAccuracy) : '–', `${percent(v.kept.accuracy - v.expectedRandom)}; ${percent(v.kept.accuracy - v.expectedRandomByFamily)}`, v.oddsRatio.toFixed(2), formatAccuracy(v.choiceAll), formatAccuracy(v.choiceKept), v.unanswerableKept ? `${v.unanswerableKept.ambiguous}; ${v.unanswerableKept.absent}` : '–']),
    ),
  );
  lines.push('');
  lines.push('The score floor under the per-type top 20 % (kept, right, odds ratio kept vs dropped), on either run\'s scores:');
  lines.push('');
  lines.push(
    table(
      ['floor', "paper's scores", 'refined scores'],
      r.floorSweep.map((f) => [f.floor === null ? 'none' : String(f.floor), floorText(f.paper), floorText(f.refined)]),
    ),
  );
  lines.push('');
  lines.push('Per data type (lib/srf/data-types.ts):');
  lines.push('');
  const typeRows = DATA_TYPES.filter((type) => all.byType[type]).map((type) => [
    type,
    formatAccuracy(all.byType[type]!),
    formatAccuracy(kept.byType[type]!),
    formatAccuracy(random.byType[type]!),
  ]);
  lines.push(table(['data type', 'all', 'kept', 'random'], typeRows));
  lines.push('');
  lines.push('Per question family, by the form of the question (garbled questions have none; lib/world/families.ts):');
  lines.push('');
  lines.push(table(['family', 'all', 'kept', 'random, expected'], r.families.map((f) => [f.family ?? '(garbled)', formatAccuracy(f.all), formatAccuracy(f.kept), `${percent(f.expectedRandom)} %`])));
  lines.push('');
  lines.push(unanswerableTable(r.unanswerable, r.census.scored, kept.overall.n));
  lines.push('');
  lines.push('Ablations, each keeping the top 20 % per data type by its own score (the run\'s selector, lib/srf/select.ts), except the global threshold:');
  lines.push('');
  lines.push(table(['selection', 'accuracy of the kept set', 'gain over all'], r.ablations.map((a) => [a.name, formatAccuracy(a.overall), gainText(a)])));
  lines.push('');
  const c = r.objectCheck;
  lines.push(
    `The object check (issue 19's item 5, not the paper's method; bench/quality/object-check.ts): for the ${c.checked} questions that name an object ` +
      `("the red circle at the top"), the generator is asked how many objects of that colour and shape there are; a triplet fails when it counts none, ` +
      `or two or more for a reference that names only colour and shape, and is then not kept. ${c.failed} triplets failed (${c.failedRight} of them right). ` +
      `The kept set then holds ${unanswerableTotal(c.unanswerableKept)} unanswerable triplets of ${c.kept} (${c.unanswerableKept.absent} about an absent object, ${c.unanswerableKept.ambiguous} ambiguous).`,
  );
  lines.push('');
  lines.push('Keep fraction (the paper compared 5/20/50/80/100 % and chose 20 %), each by `srf-native select --keep-top F` on the same run (S = 0 is never kept, so 100 % keeps fewer than all):');
  lines.push('');
  lines.push(table(['keep top', 'kept', 'accuracy', 'gain over all'], r.sweep.map((s) => [`${s.keepTop * 100} %`, String(s.kept), formatAccuracy(s.overall), gainText(s)])));
  lines.push('');
  lines.push('Examples (the first of each kind in the journal):');
  lines.push('');
  lines.push(
    table(
      ['kept', 'right', 'type', 'Q', 'A', "Q'", "A'", 'S', 'oracle'],
      r.examples.map((e) => [e.kept ? 'yes' : 'no', e.right ? 'yes' : 'no', e.type, cell(e.question), cell(e.answer), cell(e.questionPrime), cell(e.answerPrime), e.score.toFixed(2), cell(e.truth ?? '(cannot answer)')]),
    ),
  );
  lines.push('');
  lines.push(`Made by \`${command}\` (the run inside it: \`${r.command.join(' ')}\`).`);
  return lines.join('\n');
}

function floorText(p: FloorPoint): string {
  return `${p.kept} kept, ${percent(p.accuracy)} %, ${Number.isFinite(p.oddsRatio) ? p.oddsRatio.toFixed(2) : '–'}`;
}

const REASON_TEXT: Record<UnanswerableReason, string> = {
  absent: 'names an object the image does not have',
  ambiguous: 'its reference fits several objects',
  malformed: 'malformed: names the attribute it asks, lacks the right option, or its box does not parse',
  garbled: 'garbled: no family\'s form',
};

/** Why unanswerable triplets are, among all and among the kept, as counts and shares. */
export function unanswerableTable(counts: UnanswerableCounts, all: number, kept: number): string {
  const share = (n: number, of: number) => `${n} (${percent(of === 0 ? NaN : n / of)} %)`;
  const rows = UNANSWERABLE_REASONS.map((r) => [REASON_TEXT[r], share(counts.all[r], all), share(counts.kept[r], kept)]);
  rows.push(['unanswerable, in all', share(unanswerableTotal(counts.all), all), share(unanswerableTotal(counts.kept), kept)]);
  return ['Questions the oracle cannot answer, by cause (lib/world/oracle.ts), as a share of the triplets:', '', table(['the question', `all (${all})`, `kept (${kept})`], rows)].join('\n');
}

function cell(text: string): string {
  return text.replace(/\n/g, ' / ').replace(/\|/g, '\\|').slice(0, 120);
}

export async function writeFilterResults(r: FilterResults, jsonFile: string, qualityFile: string, command: string): Promise<void> {
  await writeFile(jsonFile, JSON.stringify(r, null, 1) + '\n');
  await writeSection(qualityFile, 'filter', filterMarkdown(r, command));
}

/** The filter's figures in bench/quality/claims.json (percentage points), beside the loop's. */
export async function writeFilterClaims(r: FilterResults, claimsFile: string): Promise<void> {
  const [all, kept] = r.main as [SelectionAccuracy, SelectionAccuracy];
  const pts = (a: SelectionAccuracy['overall']) => ({ acc: round2(100 * a.accuracy), lo: round2(100 * a.low), hi: round2(100 * a.high) });
  let claims: Record<string, unknown> = {};
  try {
    claims = JSON.parse(await readFile(claimsFile, 'utf8')) as Record<string, unknown>;
  } catch {
    // first write
  }
  const paper = r.variants[0]!;
  const filter = {
    images: r.images,
    firstSeed: r.firstSeed,
    filter: r.filter ?? 'refined',
    all: pts(all.overall),
    kept: pts(kept.overall),
    expectedRandom: round2(100 * r.expectedRandom),
    expectedRandomByFamily: round2(100 * r.expectedRandomByFamily),
    oddsRatio: round2(r.oddsRatio),
    letterChoice: { all: pts(r.variants.at(-1)!.choiceAll), kept: pts(r.variants.at(-1)!.choiceKept) },
    vsPaper: { gain: round2(100 * r.variants.at(-1)!.vsPaper.difference), lo: round2(100 * r.variants.at(-1)!.vsPaper.low), hi: round2(100 * r.variants.at(-1)!.vsPaper.high) },
    paper: { all: pts(paper.all), kept: pts(paper.kept), expectedRandom: round2(100 * paper.expectedRandom), oddsRatio: round2(paper.oddsRatio), letterChoice: { all: pts(paper.choiceAll), kept: pts(paper.choiceKept) } },
  };
  await writeFile(claimsFile, JSON.stringify({ ...claims, filter }, null, 1) + '\n');
}

const round2 = (x: number) => Math.round(x * 100) / 100;

export async function readFilterResults(jsonFile: string): Promise<FilterResults> {
  return JSON.parse(await readFile(jsonFile, 'utf8')) as FilterResults;
}
