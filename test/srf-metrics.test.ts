import t, { type Test } from 'tap';
import { SrfError } from '../lib/errors.js';
import {
  bertScore,
  bertScoreF1,
  boxIoU,
  cosine,
  exactMatch,
  geometricMean,
  lexicalSimilarity,
} from '../lib/srf/metrics.js';

/** Equal up to floating-point rounding of the hand-worked value. */
function near(t: Test, actual: number, expected: number, message: string) {
  t.ok(Math.abs(actual - expected) < 1e-12, `${message}: ${actual} vs ${expected}`);
}

t.test('boxIoU', async (t) => {
  // overlap: [0,0,.5,.5] and [.25,.25,.75,.75] share .25 x .25 = .0625;
  // union = .25 + .25 - .0625 = .4375; IoU = .0625 / .4375 = 1/7
  near(t, boxIoU([0, 0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75]), 1 / 7, 'overlapping');
  // disjoint: no shared area
  t.equal(boxIoU([0, 0, 0.2, 0.2], [0.5, 0.5, 0.9, 0.9]), 0, 'disjoint');
  // touching along x = .5: the shared strip has zero width
  t.equal(boxIoU([0, 0, 0.5, 0.5], [0.5, 0, 1, 0.5]), 0, 'touching');
  // nested: inner .5 x .5 = .25 inside outer 1 x 1; IoU = .25 / 1
  t.equal(boxIoU([0, 0, 1, 1], [0.25, 0.25, 0.75, 0.75]), 0.25, 'nested');
  t.equal(boxIoU([0.25, 0.25, 0.75, 0.75], [0, 0, 1, 1]), 0.25, 'nested, other order');
  t.equal(boxIoU([0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]), 1, 'identical');
  // half overlap in x: [0,0,.5,1] and [.25,0,.75,1]: shared .25 x 1; union .5 + .5 - .25 = .75; IoU 1/3
  near(t, boxIoU([0, 0, 0.5, 1], [0.25, 0, 0.75, 1]), 1 / 3, 'half shifted');
  t.equal(boxIoU([0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]), 1, 'same zero-area box');
  t.equal(boxIoU([0.5, 0.5, 0.5, 0.5], [0.2, 0.2, 0.2, 0.2]), 0, 'different zero-area boxes');
});

t.test('exactMatch normalises like VQA evaluation', async (t) => {
  const cases: [string, string, 0 | 1][] = [
    ['Yes', 'yes.', 1],
    ['Yes', 'Yes, there is a dog in the picture.', 1], // leading yes/no word
    ['no', 'Nope!', 1],
    ['no', 'No parking', 0], // "No parking" is not a no
    ['(B)', 'B. red', 1], // option letters
    ['B', '[B]', 1],
    ['A', 'a', 1],
    ['A', 'A dog', 0], // an article, not option A
    ['two', '2', 1], // number words
    ['The dog', 'dog', 1], // articles
    ['Red!', 'red', 1], // punctuation
    ['3.5', '3.5', 1], // decimal point kept
    ['3.5', '35', 0],
    ['1,000', '1000', 1],
    ["man's", 'mans', 1],
    ['cat', 'cats', 0],
    ['', '', 0], // nothing matches nothing
    ['</s>', '', 0],
  ];
  for (const [a, b, expected] of cases) t.equal(exactMatch(a, b), expected, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
});

t.test('cosine is clamped to [0, 1]', async (t) => {
  t.equal(cosine([1, 0], [0, 1]), 0, 'orthogonal');
  t.equal(cosine([1, 1], [2, 2]), 1, 'same direction');
  t.equal(cosine([3, 4], [4, 3]), 24 / 25, '(12 + 12) / (5 * 5)');
  t.equal(cosine([1, 0], [-1, 0]), 0, 'opposite: -1 clamped to 0');
  t.equal(cosine(new Float32Array([0, 0]), new Float32Array([1, 0])), 0, 'zero vector');
  t.throws(() => cosine([1, 0], [1, 0, 0]), SrfError, 'length mismatch');
});

t.test('BERTScore greedy matching on hand-made 2-D vectors', async (t) => {
  // C = [(1,0)], R = [(1,0), (0,1)]
  // P: (1,0) best matches (1,0) with cos 1 -> P = 1
  // R: (1,0) -> 1, (0,1) -> cos((0,1),(1,0)) = 0 -> R = 0.5
  // F1 = 2 * 1 * 0.5 / 1.5 = 2/3
  const one = bertScore([[1, 0]], [[1, 0], [0, 1]]);
  t.equal(one.precision, 1);
  t.equal(one.recall, 0.5);
  near(t, one.f1, 2 / 3, 'F1');

  // C = [(1,0), (0,1)], R = [(1,1), (-1,0)]
  // cos((1,0),(1,1)) = cos((0,1),(1,1)) = 1/sqrt2; cos with (-1,0) is -1 or 0, clamped to 0
  // P = (1/sqrt2 + 1/sqrt2) / 2 = 1/sqrt2
  // R = (max(1/sqrt2, 1/sqrt2) + max(0, 0)) / 2 = 1/(2 sqrt2)
  // F1 = 2PR / (P + R) = (1/2) / (3 / (2 sqrt2)) = sqrt2 / 3
  const two = bertScore([[1, 0], [0, 1]], [[1, 1], [-1, 0]]);
  near(t, two.precision, Math.SQRT1_2, 'P');
  near(t, two.recall, Math.SQRT1_2 / 2, 'R');
  near(t, two.f1, Math.SQRT2 / 3, 'F1');
  near(t, bertScoreF1([[1, 1], [-1, 0]], [[1, 0], [0, 1]]), Math.SQRT2 / 3, 'F1 is symmetric');

  t.same(bertScore([[-1, 0]], [[1, 0]]), { precision: 0, recall: 0, f1: 0 }, 'only negative cosines');
  t.equal(bertScoreF1([], [[1, 0]]), 0, 'empty candidate');
  t.equal(bertScoreF1([[1, 0]], []), 0, 'empty reference');
  t.throws(() => bertScoreF1([[1, 0]], [[1, 0, 0]]), SrfError, 'mixed dimensions');
});

t.test('geometricMean', async (t) => {
  t.equal(geometricMean(0.25, 1), 0.5);
  t.equal(geometricMean(0.81, 0.81), 0.81);
  t.equal(geometricMean(0, 0.9), 0, 'Q side 0');
  t.equal(geometricMean(0.9, 0), 0, 'A side 0');
  t.equal(geometricMean(-0.1, 0.5), 0, 'negative counts as 0');
  t.throws(() => geometricMean(Number.NaN, 0.5), SrfError);
});

t.test('lexicalSimilarity is token F1 over normalised words', async (t) => {
  // [what, is, color, of, car] vs [what, color, is, car]: 4 shared; P = 4/4, R = 4/5; F1 = 1.6 / 1.8 = 8/9
  near(t, lexicalSimilarity('What is the color of the car?', 'What color is the car?'), 8 / 9, 'paraphrase');
  t.equal(lexicalSimilarity('two dogs', '2 Dogs.'), 1, 'number words and case');
  t.equal(lexicalSimilarity('red', 'blue'), 0);
  // bags, not sets: [dog, dog] vs [dog]: 1 shared; P = 1, R = 1/2; F1 = 2/3
  near(t, lexicalSimilarity('dog dog', 'dog'), 2 / 3, 'repeated words count once each');
  t.equal(lexicalSimilarity('', 'x'), 0);
  t.equal(lexicalSimilarity('the', 'a'), 0, 'only articles: nothing left');
});
