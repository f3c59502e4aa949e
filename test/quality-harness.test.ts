/**
 * The quality benchmark's own parts, against the oracle alone (no model): grading, intervals and the
 * selections the benchmark compares. The end-to-end check on the world model is quality-filter.test.ts.
 */
import t from 'tap';
import { DATA_TYPES, type DataType } from '../lib/srf/data-types.js';
import { createRandom } from '../lib/srf/random.js';
import { FAMILIES, FAMILY_NAMES, generateScene } from '../lib/world/index.js';
import { gradeTriplet } from '../bench/quality/grade.js';
import { accuracyOf, byTypeAndFamily, expectedRandomAccuracy, keptOddsRatio, selectByScore, selectGlobal, selectRandomLike, type GradedTriplet } from '../bench/quality/filter.js';
import { sceneOfImage } from '../bench/quality/images.js';
import { accuracyWithInterval, pairedDifference } from '../bench/quality/stats.js';
import { armStatistics, type ArmModel } from '../bench/quality/loop.js';
import { objectCheckFor, passesObjectCheck } from '../bench/quality/object-check.js';
import { worldImageFile } from '../lib/world/dataset.js';

t.test('the oracle\'s own answers grade right; another scene\'s answers mostly wrong; made-up questions unanswerable', async (t) => {
  const random = createRandom(3);
  let asked = 0;
  let wrongElsewhere = 0;
  for (let seed = 2_000_000; seed < 2_000_100; seed++) {
    const scene = generateScene(seed);
    const other = generateScene(seed + 1);
    for (const name of FAMILY_NAMES) {
      const qa = FAMILIES[name].ask(scene, random);
      if (!qa) continue;
      const grade = gradeTriplet(scene, qa.question, qa.answer);
      if (!grade.right) t.fail(`${name}: the oracle's own answer graded ${grade.verdict}: ${qa.question} -> ${qa.answer}`);
      t.equal(grade.family, name);
      asked++;
      if (!FAMILIES[name].needsImage) continue;
      if (!gradeTriplet(other, qa.question, qa.answer).right) wrongElsewhere++;
    }
  }
  t.ok(asked > 800, `${asked} questions`);
  t.ok(wrongElsewhere / asked > 0.5, `another image's truth is wrong ${wrongElsewhere} / ${asked} times`);
  const scene = generateScene(5);
  t.equal(gradeTriplet(scene, 'What is the meaning of life?', '42').verdict, 'unanswerable');
  t.equal(gradeTriplet(scene, 'Describe the image in detail.', 'Nothing.').verdict, 'wrong-answer');
});

t.test('a box is right from IoU 0.5 on, and a wrong box is wrong', async (t) => {
  const random = createRandom(1);
  const scene = generateScene(11);
  let qa = FAMILIES.rec.ask(scene, random);
  while (!qa) qa = FAMILIES.rec.ask(scene, random);
  const [x1, y1, x2, y2] = JSON.parse(qa.answer) as number[];
  const w = x2! - x1!;
  const shifted = (dx: number) => `[${[x1! + dx, y1!, x2! + dx, y2!].map((v) => v.toFixed(2)).join(', ')}]`;
  t.ok(gradeTriplet(scene, qa.question, shifted(w * 0.2)).right, 'shifted by 20 % of its width: IoU 0.67');
  t.notOk(gradeTriplet(scene, qa.question, shifted(w * 0.5)).right, 'shifted by half its width: IoU 0.33');
  t.notOk(gradeTriplet(scene, qa.question, 'the left one').right, 'no box');
});

t.test('image files name their scene', async (t) => {
  t.same(sceneOfImage(`/x/y/${worldImageFile(1_100_007)}`), generateScene(1_100_007));
  t.equal(sceneOfImage('photo.png'), null);
});

t.test('bootstrap intervals hold the estimate, are seeded, and narrow with n', async (t) => {
  const outcomes = (n: number, p: number) => Array.from({ length: n }, (_, i) => i < Math.round(n * p));
  const small = accuracyWithInterval(outcomes(50, 0.6));
  const large = accuracyWithInterval(outcomes(2000, 0.6));
  t.equal(small.accuracy, 0.6);
  t.ok(small.low < 0.6 && small.high > 0.6);
  t.ok(large.high - large.low < (small.high - small.low) / 4, 'about 1/sqrt(40) as wide');
  t.same(accuracyWithInterval(outcomes(50, 0.6)), small, 'same seed, same interval');
  t.ok(Math.abs(small.high - small.low - 2 * 1.96 * Math.sqrt(0.24 / 50)) < 0.05, 'close to the normal approximation');
  t.ok(Number.isNaN(accuracyWithInterval([]).accuracy));
  const right = outcomes(400, 0.5);
  const inA = right.map((r, i) => r || i % 4 === 0); // all right ones and a quarter of the wrong ones
  const d = pairedDifference(right, inA, right.map(() => true));
  t.ok(Math.abs(d.difference - (200 / 250 - 0.5)) < 1e-9);
  t.ok(d.low > 0.2 && d.high < 0.4, `[${d.low}, ${d.high}]`);
});

/** Triplets whose score says something about whether they are right, with a type whose scores are all high. */
function fakeTriplets(): GradedTriplet[] {
  const random = createRandom(9);
  const out: GradedTriplet[] = [];
  for (let i = 0; i < 600; i++) {
    const type: DataType = DATA_TYPES[i % 3]!;
    const right = random() < 0.5;
    const simQ = Math.min(1, 0.3 * random() + (right ? 0.5 : 0.3));
    const simA = Math.min(1, 0.3 * random() + (right ? 0.5 : 0.35));
    const offset = type === 'box' ? 0.4 : 0; // an easy type: everything scores high
    out.push({
      id: `t${i}`, image: `world-${i}.png`, question: 'q', answer: 'a', questionPrime: 'q', answerPrime: 'a', type,
      simQ: Math.min(1, simQ + offset), simA: Math.min(1, simA + offset), score: Math.min(1, Math.sqrt(simQ * simA) + offset),
      kept: false, grade: { verdict: right ? 'right' : 'wrong-answer', right, family: null, truth: null, cause: null },
    });
  }
  return out;
}

t.test('the selections: per type, global, random like; a selection that tracks rightness gains', async (t) => {
  const triplets = fakeTriplets();
  const perType = selectByScore(triplets, (x) => x.score);
  const count = (sel: ReadonlySet<string>, type: DataType) => triplets.filter((x) => x.type === type && sel.has(x.id)).length;
  for (const type of DATA_TYPES.slice(0, 3)) t.equal(count(perType, type), 40, `${type}: 20 % of 200`);
  const global = selectGlobal(triplets);
  t.equal(global.size, 120);
  t.ok(count(global, 'box') > 100, 'one threshold: the easy type crowds out the rest');
  const random = selectRandomLike(triplets, perType);
  for (const type of DATA_TYPES.slice(0, 3)) t.equal(count(random, type), 40);
  t.notSame([...random].sort(), [...perType].sort());
  const all = accuracyOf('all', triplets, null);
  const kept = accuracyOf('kept', triplets, perType);
  t.equal(all.overall.n, 600);
  t.ok(kept.overall.accuracy > all.overall.accuracy + 0.3, `kept ${kept.overall.accuracy} vs all ${all.overall.accuracy}`);
  t.ok(kept.gain.low > 0, 'the gain\'s interval is above 0');
  const byRandom = accuracyOf('random', triplets, random);
  t.ok(Math.abs(byRandom.gain.difference) < 0.1, `a random subset gains little: ${byRandom.gain.difference}`);
  const inverted = accuracyOf('inverted', triplets, selectByScore(triplets, (x) => 1 - x.score));
  t.ok(inverted.gain.high < 0, 'sorting the wrong way loses');
});

t.test('the random control as an expected value: the mean of many random draws of the kept count per type', async (t) => {
  const triplets = fakeTriplets();
  const kept = selectByScore(triplets, (x) => x.score);
  const expected = expectedRandomAccuracy(triplets, kept);
  let sum = 0;
  const draws = 300;
  for (let seed = 0; seed < draws; seed++) {
    const random = selectRandomLike(triplets, kept, seed);
    sum += triplets.filter((x) => random.has(x.id) && x.grade.right).length / random.size;
  }
  t.ok(Math.abs(expected - sum / draws) < 0.005, `expected ${expected.toFixed(4)}, mean of ${draws} draws ${(sum / draws).toFixed(4)}`);
  // Weighted by the kept counts: keeping only one type's triplets gives that type's accuracy.
  const boxes = new Set(triplets.filter((x) => x.type === 'box').slice(0, 10).map((x) => x.id));
  const ofBox = triplets.filter((x) => x.type === 'box');
  const boxAccuracy = ofBox.filter((x) => x.grade.right).length / ofBox.length;
  const overall = triplets.filter((x) => x.grade.right).length / triplets.length;
  t.not(boxAccuracy.toFixed(3), overall.toFixed(3), 'the fixture\'s types differ, so the check below can tell per type from overall');
  t.ok(Math.abs(expectedRandomAccuracy(triplets, boxes) - boxAccuracy) < 1e-12, 'one type kept: that type\'s accuracy');
  t.ok(Number.isNaN(expectedRandomAccuracy(triplets, new Set())));
});

t.test('the random control matched per type and question family: the same counts in every group, a fresh draw per seed', async (t) => {
  // Families whose rightness differs, spread unevenly over the kept: a per-type draw cannot match them.
  const families = ['shape', 'colour', 'count'] as const;
  const triplets = fakeTriplets().map((x, i) => {
    const family = families[Math.floor(i / 3) % 3]!;
    const right = family === 'shape' ? i % 5 !== 0 : family === 'colour' ? i % 5 === 0 : x.grade.right;
    return { ...x, grade: { ...x.grade, family, right } };
  });
  const kept = selectByScore(triplets, (x) => (x.grade.family === 'shape' ? 0.5 : 0) + x.score / 2);
  const countBy = (sel: ReadonlySet<string>) => {
    const counts = new Map<string, number>();
    for (const x of triplets) if (sel.has(x.id)) counts.set(byTypeAndFamily(x), (counts.get(byTypeAndFamily(x)) ?? 0) + 1);
    return [...counts].sort();
  };
  const first = selectRandomLike(triplets, kept, 1000, byTypeAndFamily);
  const second = selectRandomLike(triplets, kept, 1001, byTypeAndFamily);
  t.same(countBy(first), countBy(kept), 'as many of each type and family as kept');
  t.same(countBy(second), countBy(kept));
  t.notSame([...first].sort(), [...second].sort(), 'another seed, another draw');
  t.same([...selectRandomLike(triplets, kept, 1000, byTypeAndFamily)].sort(), [...first].sort(), 'the same seed, the same draw');
  t.notSame(countBy(selectRandomLike(triplets, kept, 1000)), countBy(kept), 'matched per type only, the family mix drifts');
  let sum = 0;
  const draws = 300;
  for (let seed = 0; seed < draws; seed++) {
    const random = selectRandomLike(triplets, kept, seed, byTypeAndFamily);
    sum += triplets.filter((x) => random.has(x.id) && x.grade.right).length / random.size;
  }
  const expected = expectedRandomAccuracy(triplets, kept, byTypeAndFamily);
  t.ok(Math.abs(expected - sum / draws) < 0.005, `expected ${expected.toFixed(4)}, mean of ${draws} draws ${(sum / draws).toFixed(4)}`);
  t.ok(Math.abs(expected - expectedRandomAccuracy(triplets, kept)) > 0.05, 'and it differs from the per-type control here');
});

t.test('arm statistics: seed means, differences, and intervals that widen with the spread between seeds', async (t) => {
  const outcomes = (p: number, seed: number) => {
    const random = createRandom(seed);
    return Array.from({ length: 2000 }, () => random() < p);
  };
  const arm = (name: ArmModel['arm'], ps: number[], seed0: number): ArmModel[] => ps.map((p, s) => ({ arm: name, seed: s, records: 0, bestStep: 0, right: outcomes(p, seed0 + s) }));
  const steady = [...arm('kept', [0.6, 0.6, 0.6], 1), ...arm('lOnly', [0.5, 0.5, 0.5], 10)];
  const a = armStatistics(steady, 'kept', null);
  t.ok(Math.abs(a.value - 0.6) < 0.02 && a.low < a.value && a.high > a.value, `kept ${JSON.stringify(a)}`);
  const d = armStatistics(steady, 'kept', 'lOnly');
  t.ok(d.value > 0.07 && d.low > 0.04, `difference ${JSON.stringify(d)}`);
  // The same mean with seeds far apart: the interval must hold the seeds' spread, not only the questions'.
  const spread = [...arm('kept', [0.45, 0.6, 0.75], 1), ...arm('lOnly', [0.5, 0.5, 0.5], 10)];
  const w = armStatistics(spread, 'kept', 'lOnly');
  t.ok(w.high - w.low > 2 * (d.high - d.low), `seed spread widens the interval: ${(w.high - w.low).toFixed(3)} against ${(d.high - d.low).toFixed(3)}`);
  t.ok(Number.isNaN(armStatistics(steady, 'ceiling', null).value), 'an arm without models has no figure');
});

t.test('the odds ratio: about 1 for a random selection, above 1 for one that tracks rightness', async (t) => {
  const triplets = fakeTriplets();
  const byScore = keptOddsRatio(triplets, selectByScore(triplets, (x) => x.score));
  const random = keptOddsRatio(triplets, selectRandomLike(triplets, selectByScore(triplets, (x) => x.score), 3));
  t.ok(byScore > 2, `by score ${byScore.toFixed(2)}`);
  t.ok(random > 0.5 && random < 1.6, `random ${random.toFixed(2)}`);
  const right = new Set(triplets.filter((x) => x.grade.right).slice(0, 50).map((x) => x.id));
  t.equal(keptOddsRatio(triplets, right), Infinity, 'keeping only right triplets: no wrong one kept');
});

t.test('the object check asks how many objects of the named colour and shape there are, and reads the count', async (t) => {
  const SHORT = 'Answer the question using a single word or phrase.';
  const position = objectCheckFor(`Where is the red cross?\n${SHORT}`)!;
  t.equal(position.question, `How many red crosses are there?\n${SHORT}`);
  t.equal(passesObjectCheck(position, '0'), false, 'none there: absent');
  t.equal(passesObjectCheck(position, 'one'), true);
  t.equal(passesObjectCheck(position, '2'), false, 'two for a colour-and-shape reference: ambiguous');
  t.equal(passesObjectCheck(position, 'many'), true, 'an unreadable count passes');
  const rec = objectCheckFor('Please provide the bounding box coordinate of the region this sentence describes: the large circle at the top left.')!;
  t.equal(rec.question, `How many circles are there?\n${SHORT}`);
  t.equal(passesObjectCheck(rec, '2'), true, 'size and region can tell two circles apart');
  t.equal(objectCheckFor('How many stars are there?\n' + SHORT), null, 'a question that names no object is not checked');
  t.equal(objectCheckFor('Is there a red star in the image?'), null);
});
