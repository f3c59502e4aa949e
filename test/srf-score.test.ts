import t from 'tap';
import { FORMAT_SUFFIXES } from '../lib/srf/data-types.js';
import {
  embeddingSimilarityProvider,
  lexicalSimilarityProvider,
  MEASURES_BY_TYPE,
  scoreTriplet,
  type SimilarityProvider,
} from '../lib/srf/score.js';
import type { Embedding } from '../lib/engine/types.js';

/** A provider with fixed answers, recording what it was asked. */
function fixedProvider(sentence: number, bert: number) {
  const calls: string[] = [];
  const provider: SimilarityProvider = {
    paperFaithful: true,
    async sentenceSimilarity(a, b) {
      calls.push(`sentence(${a} | ${b})`);
      return a === b ? 1 : sentence;
    },
    async bertScore(a, b) {
      calls.push(`bert(${a} | ${b})`);
      return bert;
    },
  };
  return { provider, calls };
}

t.test('the per-type table', async (t) => {
  t.same(MEASURES_BY_TYPE, {
    short_answer: { question: 'sentence', answer: 'sentence' },
    multiple_choice: { question: 'sentence', answer: 'exact' },
    box: { question: 'sentence', answer: 'box-iou' },
    region_text: { question: 'box-iou', answer: 'sentence' },
    long_text: { question: 'sentence', answer: 'bertscore' },
    short_text: { question: 'sentence', answer: 'sentence' },
  });
});

t.test('short answer: cosine on both sides, Q compared without its suffix', async (t) => {
  const { provider, calls } = fixedProvider(0.64, 0.5);
  const result = await scoreTriplet(
    {
      question: `<image>\nWhat is the man holding?\n${FORMAT_SUFFIXES.shortAnswer}`,
      answer: 'Frisbee',
      questionPrime: 'What is the man holding?',
      answerPrime: 'A frisbee',
    },
    provider,
  );
  // simQ: same text after stripping -> 1; simA: 0.64; S = sqrt(1 * 0.64) = 0.8
  t.same(result, { type: 'short_answer', simQ: 1, simA: 0.64, score: 0.8, paperFaithful: true });
  t.same(calls.sort(), ['sentence(Frisbee | A frisbee)', 'sentence(What is the man holding? | What is the man holding?)']);
});

t.test('multiple choice / yes-no: exact match on the answer', async (t) => {
  const { provider, calls } = fixedProvider(0.81, 0);
  const yes = await scoreTriplet({ question: 'Is it raining?', answer: 'Yes', questionPrime: 'Is it wet?', answerPrime: 'Yes, it is.' }, provider);
  t.same(yes, { type: 'multiple_choice', simQ: 0.81, simA: 1, score: 0.9, paperFaithful: true });
  const no = await scoreTriplet({ question: 'Is it raining?', answer: 'Yes', questionPrime: 'Is it wet?', answerPrime: 'No.' }, provider);
  t.same(no, { type: 'multiple_choice', simQ: 0.81, simA: 0, score: 0, paperFaithful: true });
  const letter = await scoreTriplet(
    {
      question: `Which one?\nA. cat\nB. dog\n${FORMAT_SUFFIXES.multipleChoice}`,
      answer: 'B',
      questionPrime: 'Which one?\nA. cat\nB. dog',
      answerPrime: 'B. dog',
    },
    provider,
  );
  t.same(letter, { type: 'multiple_choice', simQ: 1, simA: 1, score: 1, paperFaithful: true });
  t.notOk(calls.some((call) => call.includes('Yes')), 'answers never go to the provider');
});

t.test('box: IoU on the answer, text on the question', async (t) => {
  const { provider } = fixedProvider(0.7, 0);
  const result = await scoreTriplet(
    {
      question: 'Please provide the bounding box coordinate of the region this sentence describes: the left dog.',
      answer: '[0, 0, 0.5, 0.5]',
      questionPrime: 'Please provide the bounding box coordinate of the region this sentence describes: a dog.',
      answerPrime: '[0.25, 0.25, 0.75, 0.75]',
    },
    provider,
  );
  t.equal(result.type, 'box');
  t.equal(result.simQ, 0.7);
  t.ok(Math.abs(result.simA - 1 / 7) < 1e-12, 'IoU 1/7 (see srf-metrics)');
  t.ok(Math.abs(result.score - Math.sqrt(0.7 / 7)) < 1e-12);
  const noBox = await scoreTriplet(
    { question: 'Where is the dog?', answer: '[0, 0, 0.5, 0.5]', questionPrime: 'Where?', answerPrime: 'On the left.' },
    provider,
  );
  t.same([noBox.simA, noBox.score], [0, 0], 'no box in A\'');
});

t.test('region text: IoU on the question boxes, text on the answer', async (t) => {
  const { provider } = fixedProvider(0.36, 0);
  const result = await scoreTriplet(
    {
      question: 'Please provide a short description for this region: [0, 0, 1, 1]',
      answer: 'A red bus.',
      questionPrime: 'Please provide a short description for this region: [0.25, 0.25, 0.75, 0.75]',
      answerPrime: 'Bus',
    },
    provider,
  );
  // simQ = IoU = 0.25 (nested); simA = 0.36; S = sqrt(0.09) = 0.3
  t.same(result, { type: 'region_text', simQ: 0.25, simA: 0.36, score: 0.3, paperFaithful: true });
});

t.test('long text: BERTScore on the answer', async (t) => {
  const { provider, calls } = fixedProvider(0.25, 0.49);
  const answer = 'A man rides a bike. He wears a helmet.';
  const result = await scoreTriplet({ question: 'Describe the image.', answer, questionPrime: 'What is shown?', answerPrime: 'A cyclist.' }, provider);
  t.same(result, { type: 'long_text', simQ: 0.25, simA: 0.49, score: 0.35, paperFaithful: true });
  t.ok(calls.includes(`bert(${answer} | A cyclist.)`));
});

t.test('empty re-prediction scores 0 without asking the provider', async (t) => {
  const { provider, calls } = fixedProvider(0.9, 0.9);
  const result = await scoreTriplet({ question: 'What is it?', answer: 'A cat.', questionPrime: 'What is it?', answerPrime: '  ' }, provider);
  t.same(result, { type: 'short_text', simQ: 1, simA: 0, score: 0, paperFaithful: true });
  t.notOk(calls.some((call) => call.includes('A cat.')));
});

t.test('options: type and measure overrides, bad input', async (t) => {
  const { provider } = fixedProvider(0.5, 0.04);
  const triplet = { question: 'What is it?', answer: 'A cat.', questionPrime: 'What?', answerPrime: 'Cat' };
  const forced = await scoreTriplet(triplet, provider, { type: 'long_text' });
  t.same([forced.type, forced.simA], ['long_text', 0.04]);
  const remeasured = await scoreTriplet(triplet, provider, { measures: { short_text: { answer: 'exact' } } });
  t.same([remeasured.type, remeasured.simA], ['short_text', 1], '"A cat." and "Cat" match exactly after normalising');
  await t.rejects(scoreTriplet(triplet, provider, { measures: { short_text: { answer: 'bleu' as never } } }), { code: 'INVALID_ARGUMENT' });
  await t.rejects(scoreTriplet(triplet, provider, { type: 'caption' as never }), { code: 'INVALID_ARGUMENT' });
  await t.rejects(scoreTriplet({ ...triplet, answerPrime: undefined as never }, provider), { code: 'INVALID_ARGUMENT' });
  const broken: SimilarityProvider = { ...provider, sentenceSimilarity: async () => Number.NaN };
  await t.rejects(scoreTriplet(triplet, broken), { code: 'INVALID_ARGUMENT' });
  const outOfRange: SimilarityProvider = { ...provider, sentenceSimilarity: async () => 1.5 };
  t.equal((await scoreTriplet(triplet, outOfRange)).simQ, 1, 'clamped');
});

t.test('lexical fallback is marked not paper-faithful', async (t) => {
  const result = await scoreTriplet(
    { question: 'What color is the car?', answer: 'red', questionPrime: 'What is the color of the car?', answerPrime: 'Red.' },
    lexicalSimilarityProvider,
  );
  // simQ = 8/9 (srf-metrics), simA = 1
  t.equal(result.type, 'short_text');
  t.ok(Math.abs(result.simQ - 8 / 9) < 1e-12);
  t.equal(result.simA, 1);
  t.equal(result.paperFaithful, false);
});

/** Hand-made embeddings: 'cat' = (1,0) with token (1,0); 'a cat' = (1,1) with tokens (0,1), (1,0). */
const VECTORS: Record<string, Embedding> = {
  cat: { pooled: new Float32Array([1, 0]), tokens: [new Float32Array([1, 0])] },
  'a cat': { pooled: new Float32Array([1, 1]), tokens: [new Float32Array([0, 1]), new Float32Array([1, 0])] },
  dog: { pooled: new Float32Array([0, 1]), tokens: [new Float32Array([0, 1])] },
};

function fakeEmbedder() {
  const batches: string[][] = [];
  const embed = async (texts: string[]) => {
    batches.push(texts);
    return texts.map((text) => {
      const vectors = VECTORS[text];
      if (!vectors) throw new Error(`no vectors for ${text}`);
      return vectors;
    });
  };
  return { embed, batches };
}

t.test('embedding provider: cosine, BERTScore, cache', async (t) => {
  const { embed, batches } = fakeEmbedder();
  const provider = embeddingSimilarityProvider(embed, { cacheSize: 2 });
  t.equal(provider.paperFaithful, true);
  // cos((1,0),(1,1)) = 1/sqrt2, computed in float32
  t.ok(Math.abs((await provider.sentenceSimilarity('cat', 'a cat')) - Math.SQRT1_2) < 1e-6);
  // C = [(1,0)], R = [(0,1),(1,0)]: P = 1, R = 1/2, F1 = 2/3
  t.ok(Math.abs((await provider.bertScore('cat', 'a cat')) - 2 / 3) < 1e-6);
  t.same(batches, [['cat', 'a cat']], 'second call served from the cache');
  t.equal(await provider.sentenceSimilarity('dog', 'cat'), 0);
  t.same(batches[1], ['dog'], 'only the missing text is embedded');
  await provider.sentenceSimilarity('a cat', 'a cat');
  t.same(batches[2], ['a cat'], '"a cat" was evicted (cache of 2, least recently used)');
  t.equal(await provider.bertScore('', 'cat'), 0, 'empty text: 0');
  t.equal(batches.length, 3, 'empty text is not embedded');
});

t.test('embedding provider: concurrent requests share one call; failures are not cached', async (t) => {
  const { embed, batches } = fakeEmbedder();
  const provider = embeddingSimilarityProvider(embed);
  await Promise.all([provider.sentenceSimilarity('cat', 'dog'), provider.sentenceSimilarity('cat', 'dog'), provider.bertScore('dog', 'cat')]);
  t.same(batches, [['cat', 'dog']]);
  await t.rejects(provider.sentenceSimilarity('cat', 'horse'), /no vectors for horse/);
  await t.rejects(provider.sentenceSimilarity('horse', 'dog'), /no vectors for horse/);
  t.same(batches, [['cat', 'dog'], ['horse'], ['horse']], 'tried again, not served a cached failure');
  const short = embeddingSimilarityProvider(async () => []);
  await t.rejects(short.sentenceSimilarity('a', 'b'), { code: 'INVALID_ARGUMENT' });
  t.throws(() => embeddingSimilarityProvider('nope' as never), { code: 'INVALID_ARGUMENT' });
});
