import t from 'tap';
import type { DataType } from '../lib/srf/data-types.js';
import { FORMAT_SUFFIXES } from '../lib/srf/data-types.js';
import { matchTypeMix, PerTypeSelector, quotaFor, selectTopPerType, typeMixFromLlavaData, type ScoredItem } from '../lib/srf/select.js';

function items(type: DataType, prefix: string, scores: number[]): ScoredItem[] {
  return scores.map((score, i) => ({ id: `${prefix}${String(i).padStart(2, '0')}`, type, score }));
}

t.test('a type with all-high scores cannot crowd out another', async (t) => {
  const easy = items('multiple_choice', 'mc', [0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99]);
  const hard = items('long_text', 'lt', [0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.22, 0.24, 0.26, 0.3]);
  const result = selectTopPerType([...easy, ...hard]);
  // 20 % of 10 = 2 per type; a single global top 20 % would have kept only mc08, mc09, mc07, mc06.
  t.same(result.kept.map((r) => r.id), ['mc08', 'mc09', 'lt08', 'lt09'], 'kept in input order');
  t.same(result.byType.multiple_choice, { total: 10, quota: 2, kept: 2, threshold: 0.98 });
  t.same(result.byType.long_text, { total: 10, quota: 2, kept: 2, threshold: 0.26 });
  t.same(result.byType.box, { total: 0, quota: 0, kept: 0, threshold: null });
  t.equal(result.total, 20);
  t.equal(result.kept.length, 4);
  t.equal(result.keptCount, 4);
});

t.test('rounding rule', async (t) => {
  // default ceil: every non-empty type keeps at least one; 20 % of 7 = 1.4 -> 2
  t.equal(quotaFor(0.2, 7, 'ceil'), 2);
  t.equal(quotaFor(0.2, 7, 'floor'), 1);
  t.equal(quotaFor(0.2, 7, 'round'), 1);
  t.equal(quotaFor(0.2, 8, 'round'), 2, '1.6 -> 2');
  t.equal(quotaFor(0.2, 15, 'ceil'), 3, '0.2 * 15 is 3.0000000000000004 in floating point; still 3');
  t.equal(quotaFor(0.2, 1, 'ceil'), 1);
  t.equal(quotaFor(0.2, 1, 'floor'), 0);
  t.equal(quotaFor(0.2, 0, 'ceil'), 0);
  t.equal(quotaFor(1, 5, 'ceil'), 5);
  const seven = items('short_text', 's', [0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]);
  t.same(selectTopPerType(seven).kept.map((r) => r.id), ['s00', 's01']);
  t.same(selectTopPerType(seven, { rounding: 'floor' }).kept.map((r) => r.id), ['s00']);
  t.same(selectTopPerType(seven, { keepTop: 0.5 }).kept.map((r) => r.id), ['s00', 's01', 's02', 's03'], 'ceil(3.5) = 4');
  t.same(selectTopPerType(seven, { keepTopByType: { short_text: 0.05 } }).byType.short_text.quota, 1);
});

t.test('ties are broken by id, whatever the input order', async (t) => {
  const tied = [
    { id: 'c', type: 'box' as const, score: 0.5 },
    { id: 'a', type: 'box' as const, score: 0.5 },
    { id: 'd', type: 'box' as const, score: 0.5 },
    { id: 'b', type: 'box' as const, score: 0.5 },
    { id: 'e', type: 'box' as const, score: 0.4 },
  ];
  t.same([...selectTopPerType(tied, { keepTop: 0.4 }).keptIds].sort(), ['a', 'b']);
  t.same([...selectTopPerType(tied.slice().reverse(), { keepTop: 0.4 }).keptIds].sort(), ['a', 'b']);
});

t.test('zero scores and minScore', async (t) => {
  const zeros = items('multiple_choice', 'z', [0, 0, 0, 0, 0]);
  t.same(selectTopPerType(zeros).byType.multiple_choice, { total: 5, quota: 1, kept: 0, threshold: null }, 'S = 0 is never kept by default');
  t.same(selectTopPerType(zeros, { keepZeroScores: true }).kept.map((r) => r.id), ['z00']);
  const mixed = items('short_answer', 'm', [0.9, 0.5, 0.4, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1]);
  const floored = selectTopPerType(mixed, { keepTop: 0.3, minScore: 0.5 });
  t.same(floored.byType.short_answer, { total: 10, quota: 3, kept: 2, threshold: 0.5 }, 'minScore is inclusive');
});

t.test('a floor on another score than the rank: the quota is filled in rank order from the records above it', async (t) => {
  // rank: S x agreement; floor: S. r0 ranks first but its S is under the floor.
  const ranked: ScoredItem[] = [
    { id: 'r0', type: 'short_answer', score: 0.85, floorScore: 0.85 },
    { id: 'r1', type: 'short_answer', score: 0.8, floorScore: 0.95 },
    { id: 'r2', type: 'short_answer', score: 0.3, floorScore: 1 },
    { id: 'r3', type: 'short_answer', score: 0.6, floorScore: 0.9 },
    { id: 'r4', type: 'short_answer', score: 0, floorScore: 0.92 },
    ...items('short_answer', 'low', [0.1, 0.1, 0.1, 0.1, 0.1]).map((item) => ({ ...item, floorScore: 0.1 })),
  ];
  const floored = selectTopPerType(ranked, { keepTop: 0.3, minScore: 0.9 });
  t.same([...floored.keptIds], ['r1', 'r3', 'r2'], 'r0 under the floor is passed over; the next above it by rank fill the 3 places');
  t.same(floored.byType.short_answer, { total: 10, quota: 3, kept: 3, threshold: 0.3 }, 'the threshold is the lowest kept rank');
  const loose = selectTopPerType(ranked, { keepTop: 0.5, minScore: 0.9 });
  t.same([...loose.keptIds], ['r1', 'r3', 'r2', 'r4'], 'a rank of 0 with S above the floor may be kept: the S = 0 rule reads S');
  t.same([...selectTopPerType(ranked, { keepTop: 0.3 }).keptIds], ['r0', 'r1', 'r3'], 'no floor: rank order alone');
  t.throws(() => selectTopPerType([{ id: 'a', type: 'box', score: 0.5, floorScore: 2 }]), { code: 'DATA_INVALID', message: /floorScore must be a number in \[0, 1\]/ });
});

t.test('bad input', async (t) => {
  t.throws(() => selectTopPerType([{ id: 'a', type: 'box', score: 1 }, { id: 'a', type: 'box', score: 0.5 }]), {
    code: 'DATA_INVALID',
    message: /record 1: id "a" appears twice/,
  });
  t.throws(() => selectTopPerType([{ id: 'a', type: 'box', score: Number.NaN }]), { code: 'DATA_INVALID', message: /record 0 \(id "a"\): score/ });
  t.throws(() => selectTopPerType([{ id: 'a', type: 'caption' as DataType, score: 0.5 }]), { code: 'DATA_INVALID', message: /unknown data type/ });
  t.throws(() => new PerTypeSelector().add({ id: '', type: 'box', score: 0.5 }, 'triplets.jsonl:3'), { code: 'DATA_INVALID', message: /^triplets.jsonl:3/ });
  t.throws(() => selectTopPerType([], { keepTop: 1.5 }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => selectTopPerType([], { rounding: 'up' as never }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => selectTopPerType([], { keepTopByType: { caption: 0.1 } as never }), { code: 'INVALID_ARGUMENT' });
});

t.test('streaming selector at scale: 200k items, one sort per type', async (t) => {
  const selector = new PerTypeSelector();
  const types: DataType[] = ['short_answer', 'multiple_choice', 'box', 'region_text', 'long_text', 'short_text'];
  const totals = [70000, 50000, 30000, 20000, 20000, 10000];
  let n = 0;
  types.forEach((type, k) => {
    for (let i = 0; i < (totals[k] as number); i++) selector.add({ id: `${type}-${i}`, type, score: ((i * 7919) % 10007) / 10007 + 1e-6 });
    n += totals[k] as number;
  });
  t.equal(selector.size, n);
  const started = Date.now();
  const summary = selector.finish();
  t.same(types.map((type) => summary.byType[type].kept), [14000, 10000, 6000, 4000, 4000, 2000]);
  t.equal(summary.keptIds.size, 40000);
  t.ok(Date.now() - started < 20000, `finish took ${Date.now() - started} ms`);
});

function mixItems(): ScoredItem[] {
  return [
    ...items('short_answer', 'sa', Array.from({ length: 50 }, (_, i) => (i + 1) / 100)),
    ...items('long_text', 'lt', Array.from({ length: 30 }, (_, i) => (i + 1) / 100)),
    ...items('box', 'bx', Array.from({ length: 20 }, (_, i) => (i + 1) / 100)),
  ];
}

t.test('matchTypeMix downsamples to the target mix', async (t) => {
  const kept = mixItems();
  // size = min(50 / .5, 30 / .25, 20 / .25) = 80 -> short_answer 40, long_text 20, box 20 (all of box)
  const result = matchTypeMix(kept, { short_answer: 0.5, long_text: 0.25, box: 0.25 });
  t.same(result.byType.short_answer, { available: 50, target: 0.5, kept: 40 });
  t.same(result.byType.long_text, { available: 30, target: 0.25, kept: 20 });
  t.same(result.byType.box, { available: 20, target: 0.25, kept: 20 });
  t.equal(result.kept.length, 80);
  const shortKept = result.kept.filter((r) => r.type === 'short_answer').map((r) => r.id);
  t.same(shortKept[0], 'sa10', 'the 10 lowest-scoring short answers (sa00..sa09) went');
  t.same(result.missingTypes, []);
  const counts = matchTypeMix(kept, { short_answer: 2, long_text: 1, box: 1 });
  t.same(counts.kept.length, 80, 'counts work as weights');
});

t.test('matchTypeMix: missing and absent types', async (t) => {
  const result = matchTypeMix(mixItems(), { short_answer: 1, region_text: 1 });
  t.same(result.missingTypes, ['region_text']);
  t.same(result.byType.short_answer, { available: 50, target: 1, kept: 50 });
  t.same(result.byType.long_text, { available: 30, target: 0, kept: 0 }, 'not in the target: dropped');
  t.same(matchTypeMix(mixItems(), { region_text: 1 }).kept, []);
  t.throws(() => matchTypeMix(mixItems(), { short_answer: -1 }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => matchTypeMix(mixItems(), { caption: 1 } as never), { code: 'INVALID_ARGUMENT' });
});

t.test('matchTypeMix by seeded random draw', async (t) => {
  const kept = mixItems();
  const target = { short_answer: 0.5, long_text: 0.25, box: 0.25 };
  const one = matchTypeMix(kept, target, { by: 'random', seed: 7 }).kept.map((r) => r.id);
  const again = matchTypeMix(kept.slice().reverse(), target, { by: 'random', seed: 7 }).kept.map((r) => r.id);
  const other = matchTypeMix(kept, target, { by: 'random', seed: 8 }).kept.map((r) => r.id);
  t.equal(one.length, 80);
  t.same(one.slice().sort(), again.slice().sort(), 'same seed, same subset, whatever the input order');
  t.notSame(one.slice().sort(), other.slice().sort(), 'another seed, another subset');
  t.throws(() => matchTypeMix(kept, target, { by: 'random', seed: -1 }), { code: 'INVALID_ARGUMENT' });
});

t.test('typeMixFromLlavaData', async (t) => {
  const human = (value: string) => ({ from: 'human', value });
  const gpt = (value: string) => ({ from: 'gpt', value });
  const records = [
    { id: '1', image: 'coco/1.jpg', conversations: [human(`<image>\nWhat is it?\n${FORMAT_SUFFIXES.shortAnswer}`), gpt('Cat'), human('And?'), gpt('Dog')] },
    { id: '2', image: 'coco/2.jpg', conversations: [human('Is it red?\n<image>'), gpt('No')] },
    { id: '3', image: 'vg/3.jpg', conversations: [human('<image>\nPlease provide a short description for this region: [0.1, 0.2, 0.3, 0.4]'), gpt('A dog.')] },
    { id: '4', conversations: [human('Tell me a story.'), gpt('Once upon a time. The end.')] },
    { id: 5, image: 'coco/5.jpg', conversations: [human('<image>\nWhat is this?'), gpt('')] },
  ];
  const mix = typeMixFromLlavaData(records);
  t.same(mix.counts, { short_answer: 1, multiple_choice: 1, box: 0, region_text: 1, long_text: 0, short_text: 0 });
  t.equal(mix.total, 3);
  t.equal(mix.skipped, 2, 'the text-only record and the empty answer');
  t.equal(mix.fractions.short_answer, 1 / 3);
  const withText = typeMixFromLlavaData(records, { includeTextOnly: true });
  t.equal(withText.counts.long_text, 1);
  t.throws(
    () => typeMixFromLlavaData([{ id: 'x', image: 'a.jpg', conversations: [gpt('hi'), human('?')] }], { file: 'mix.json' }),
    { code: 'DATA_INVALID', file: 'mix.json', message: /mix\.json: record 0 \(id "x"\): conversations\[0\]/ },
  );
});
