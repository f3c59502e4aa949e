/**
 * The paper's first claim on the world, in miniature: triplets kept by Triangular Consistency are
 * right more often than all triplets. The committed world model and embedder run the whole pipeline
 * (refine, its defaults) on held-out world images with fixed seeds; the oracle grades every triplet.
 * bench/QUALITY.md has the full-size measurement (npm run bench:quality).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { refine } from '../lib/jobs/refine.js';
import { DATA_TYPES } from '../lib/srf/data-types.js';
import { AGREEMENT_SAMPLES, REFINED_MIN_SCORE } from '../lib/srf/filters.js';
import type { TripletLine } from '../lib/outputs/journal.js';
import type { RunManifest } from '../lib/outputs/manifest.js';
import { worldModelPaths } from '../lib/world/model-files.js';
import { accuracyOf, expectedRandomAccuracy, gradeRun, reselectFraction } from '../bench/quality/filter.js';
import { QUALITY_SEEDS, writeHeldOutImages } from '../bench/quality/images.js';

/** Images in the test: the first of the benchmark's held-out set. */
const IMAGES = 500;
/**
 * Kept accuracy (top 20 % per type, the default) must beat all-triplet accuracy by MARGIN, and the top
 * 5 % per type (`srf-native select --keep-top 0.05` on the same run) by TOP5_MARGIN (absolute).
 * Measured with the committed world model v3 on these 500 images (x86-64, 2 threads, 2026-12-02):
 * all 275/500 = 55.0 %, kept 75/102 = 73.5 % (+18.5; a random draw of the kept counts per type
 * 54.8 % in expectation, one seeded draw 52.0 %; kept must beat both all and that expectation), top 5 % 18/27 = 66.7 % (+11.7), top 50 % 71.3 % (not checked). On v2 the same figures
 * were 14.8 %, 21.6 % (+6.8) and 24.1 % (+9.3), and the margins 0.04 and 0.05; they are raised to 0.12
 * and 0.07 (under the v3 figures by a third of the gap, for other machines' rounding and the 27
 * triplets of the top 5 %), never below what v2 met. Broken on purpose on v3: the similarity inverted
 * (1 - cosine, 1 - BERTScore) fails both (see the commit that set these).
 */
const MARGIN = 0.12;
const TOP5_MARGIN = 0.07;

t.test("the paper's filter: kept triplets are right more often than all triplets, by a margin", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'srf-quality-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const images = path.join(dir, 'images');
  await writeHeldOutImages(images, QUALITY_SEEDS.filter, IMAGES);
  const files = worldModelPaths();
  await refine({ model: files.model, mmproj: files.mmproj, embedder: files.embedder, images, out: path.join(dir, 'out'), threads: 1, report: false, filter: 'paper' }).result;

  const { triplets, census } = await gradeRun(path.join(dir, 'out'));
  t.equal(census.images, IMAGES);
  t.ok(census.scored >= 0.95 * IMAGES, `${census.scored} of ${IMAGES} replies parsed and scored`);
  const kept = new Set(triplets.filter((x) => x.kept).map((x) => x.id));
  const all = accuracyOf('all', triplets, null).overall;
  const keptAccuracy = accuracyOf('kept', triplets, kept).overall;
  const expectedRandom = expectedRandomAccuracy(triplets, kept);
  const summary = `all ${all.right}/${all.n} = ${(100 * all.accuracy).toFixed(1)} %, kept ${keptAccuracy.right}/${keptAccuracy.n} = ${(100 * keptAccuracy.accuracy).toFixed(1)} %, a random draw of the kept counts per type ${(100 * expectedRandom).toFixed(1)} % in expectation`;
  t.ok(keptAccuracy.n >= 0.15 * census.scored, `about 20 % kept (${keptAccuracy.n})`);
  t.ok(all.accuracy > 0.05 && all.accuracy < 0.95, `the model makes mistakes for the filter to find: ${summary}`);
  t.ok(keptAccuracy.accuracy >= all.accuracy + MARGIN, `kept beats all by >= ${MARGIN * 100} points: ${summary}`);
  // The control that matters: the kept counts per type drawn at random (its expected value, not one draw).
  t.ok(keptAccuracy.accuracy >= expectedRandom + MARGIN, `kept beats the expected random draw by >= ${MARGIN * 100} points: ${summary}`);
  const top5 = accuracyOf('top5', triplets, await reselectFraction(path.join(dir, 'out'), 0.05)).overall;
  t.ok(top5.accuracy >= all.accuracy + TOP5_MARGIN, `top 5 % per type beats all by >= ${TOP5_MARGIN * 100} points: ${top5.right}/${top5.n} = ${(100 * top5.accuracy).toFixed(1)} %`);
  const half = accuracyOf('half', triplets, await reselectFraction(path.join(dir, 'out'), 0.5)).overall;
  t.comment(`top 50 % (not checked): ${(100 * half.accuracy).toFixed(1)} %`);
});

/**
 * The default filter (refined: letter choices by option text with an open re-ask, and the floor
 * S >= 0.9) against the paper's on the same images and I->QA seeds (issue 36): its kept triplets must
 * be right more often by REFINED_MARGIN. Measured on these 500 images (x86-64, 1 thread, 2026-12-05):
 * refined 70/82 = 85.4 %, paper 75/102 = 73.5 % (+11.9); letter choices kept 6/9 (refined) and 2/8
 * (paper) against 30/66 of all; refined-agreement 71/82 = 86.6 %. The margin is half the measured
 * gap; the block the filter was confirmed on gave +7.9 [+5.0, +11.0] (bench/QUALITY.md). Broken on
 * purpose: the floor set to 0 (lib/srf/filters.ts REFINED_MIN_SCORE) fails it, and ranking
 * refined-agreement by S alone fails its ranking check.
 */
const REFINED_MARGIN = 0.06;

t.test('the default filter keeps better data than the paper\'s on the same triplets', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'srf-quality-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const images = path.join(dir, 'images');
  await writeHeldOutImages(images, QUALITY_SEEDS.filter, IMAGES);
  const files = worldModelPaths();
  const base = { model: files.model, mmproj: files.mmproj, embedder: files.embedder, images, threads: 1, report: false };
  await refine({ ...base, out: path.join(dir, 'refined') }).result;
  await refine({ ...base, out: path.join(dir, 'paper'), filter: 'paper' }).result;
  const refined = (await gradeRun(path.join(dir, 'refined'))).triplets;
  const paper = (await gradeRun(path.join(dir, 'paper'))).triplets;
  t.same(refined.map((x) => [x.id, x.question, x.answer]).sort(), paper.map((x) => [x.id, x.question, x.answer]).sort(), 'the same triplets: the filters differ in re-asks and selection only');
  const keptOf = (ts: typeof refined) => new Set(ts.filter((x) => x.kept).map((x) => x.id));
  const r = accuracyOf('refined', refined, keptOf(refined)).overall;
  const p = accuracyOf('paper', paper, keptOf(paper)).overall;
  const summary = `refined ${r.right}/${r.n} = ${(100 * r.accuracy).toFixed(1)} %, paper ${p.right}/${p.n} = ${(100 * p.accuracy).toFixed(1)} %`;
  t.ok(r.n >= 0.1 * refined.length && r.n <= p.n, `the floor keeps fewer, not almost none: ${summary}`);
  t.ok(r.accuracy >= p.accuracy + REFINED_MARGIN, `refined beats paper by >= ${REFINED_MARGIN * 100} points: ${summary}`);
  const letter = refined.filter((x) => x.grade.family === 'choice');
  const letterKept = letter.filter((x) => x.kept);
  const share = (ts: typeof refined) => ts.filter((x) => x.grade.right).length / ts.length;
  t.ok(letterKept.length > 0 && share(letterKept) > share(letter), `letter choices: kept ${letterKept.filter((x) => x.grade.right).length}/${letterKept.length} above all ${(100 * share(letter)).toFixed(1)} %`);
  // run.json says which filter ran, its floor, and which quotas the floor left short
  const manifestOf = async (name: string) => JSON.parse(await readFile(path.join(dir, name, 'run.json'), 'utf8')) as RunManifest;
  const refinedRun = await manifestOf('refined');
  const paperRun = await manifestOf('paper');
  t.match(refinedRun.filter, { name: 'refined', minScore: REFINED_MIN_SCORE, choices: 'option-text', open: true, agreement: false, samples: 0 });
  t.match(paperRun.filter, { name: 'paper', minScore: null, choices: 'letter', open: false, circular: false });
  const byType = refinedRun.selection!.byType;
  const short = DATA_TYPES.filter((type) => byType[type].kept < byType[type].quota);
  t.ok(short.length > 0, `the floor left quotas short: ${short.join(', ')}`);
  t.same(refinedRun.selection!.underFilled, short, 'run.json names them');
  t.equal(refinedRun.selection!.minScore, REFINED_MIN_SCORE);
  t.equal(paperRun.selection!.minScore, null);
  t.ok(refined.every((x) => x.kept !== true || x.score >= REFINED_MIN_SCORE), 'nothing kept under the floor');

  // refined-agreement ranks by S x the sampled re-answers' agreement; its floor stays on S.
  await refine({ ...base, out: path.join(dir, 'agreement'), filter: 'refined-agreement' }).result;
  const lines = (await readFile(path.join(dir, 'agreement', 'triplets.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as TripletLine);
  t.ok(lines.every((l) => l.answerSamples?.length === AGREEMENT_SAMPLES && Math.abs(l.score! - l.consistency! * l.agreement!) < 1e-12), `every line: ${AGREEMENT_SAMPLES} samples, score = S x agreement`);
  t.ok(lines.every((l) => l.kept !== true || l.consistency! >= REFINED_MIN_SCORE), 'nothing kept with S under the floor');
  const misranked = DATA_TYPES.flatMap((type) => {
    const above = lines.filter((l) => l.type === type && l.consistency! >= REFINED_MIN_SCORE);
    const lowestKept = Math.min(...above.filter((l) => l.kept).map((l) => l.score!));
    return above.filter((l) => !l.kept && l.score! > lowestKept).map((l) => `${type} ${l.id}`);
  });
  t.same(misranked, [], 'above the floor, each quota goes to the highest S x agreement');
  const mean = (ls: TripletLine[]) => ls.reduce((sum, l) => sum + l.agreement!, 0) / ls.length;
  const aboveFloor = lines.filter((l) => l.consistency! >= REFINED_MIN_SCORE);
  const dropped = aboveFloor.filter((l) => !l.kept);
  t.ok(dropped.length > 0 && mean(aboveFloor.filter((l) => l.kept)) > mean(dropped), `kept agree more than those the quota left out above the floor (${mean(aboveFloor.filter((l) => l.kept)).toFixed(2)} vs ${mean(dropped).toFixed(2)})`);

  // refined-confidence: no floor, ranked by S x the model's confidence (measured: 87/102 = 85.3 %)
  await refine({ ...base, out: path.join(dir, 'confidence'), filter: 'refined-confidence' }).result;
  const confident = (await gradeRun(path.join(dir, 'confidence'))).triplets;
  const c = accuracyOf('confidence', confident, keptOf(confident)).overall;
  t.equal(c.n, p.n, `every quota filled, as the paper's: ${c.n}`);
  t.ok(c.accuracy >= p.accuracy + REFINED_MARGIN, `refined-confidence ${c.right}/${c.n} = ${(100 * c.accuracy).toFixed(1)} % beats paper by >= ${REFINED_MARGIN * 100} points`);
  const confidenceLines = (await readFile(path.join(dir, 'confidence', 'triplets.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { score: number; consistency: number; logProbA: number; logProbQ: number });
  t.ok(confidenceLines.every((l) => Math.abs(l.score - l.consistency * Math.exp((l.logProbA + l.logProbQ) / 2)) < 1e-9), 'its score is S x exp(mean log P)');
});
