import t from 'tap';
import { cutTruncatedAnswer, endOnSentence, truncationCause } from '../lib/srf/truncation.js';

t.test('a stopped reply: by the token budget, or by the grammar\'s longest answer line', async (t) => {
  t.equal(truncationCause('Question: Q?\nAnswer: It is a', 'length', 1000), 'max-tokens');
  t.equal(truncationCause('Question: Q?\nAnswer: It is a cat.', 'eos', 1000), undefined, 'the model ended it');
  t.equal(truncationCause(`Question: Q?\nAnswer: ${'a'.repeat(40)}`, 'eos', 40), 'grammar-bound', 'the one answer line is as long as the grammar allows');
  t.equal(truncationCause(`Question: Q?\nAnswer: First.\n\n${'b'.repeat(40)}`, 'eos', 40), 'grammar-bound', 'a later paragraph at the bound');
  t.equal(truncationCause(`Question: Q?\nAnswer: ${'a'.repeat(39)}`, 'eos', 40), undefined);
  t.equal(truncationCause(`Question: Q?\nAnswer: ${'a'.repeat(400)}`, 'eos', undefined), undefined, 'a custom grammar has no known bound');
});

t.test('the answer ends on its last full sentence or line', async (t) => {
  t.equal(endOnSentence('The dog runs. It jumps over the fen'), 'The dog runs.');
  t.equal(endOnSentence('Is it "safe?" Maybe n'), 'Is it "safe?"');
  t.equal(endOnSentence('It costs 3.5 dollars and'), undefined, 'a decimal point is not a sentence end');
  t.equal(endOnSentence('A red bus (a double-decker.) It st'), 'A red bus (a double-decker.)');
  t.equal(endOnSentence('First paragraph, no full stop\nSecond paragraph cut mid'), 'First paragraph, no full stop', 'a line the model ended is whole');
  t.equal(endOnSentence('[0.12, 0.30, 0.4'), undefined, 'a cut box has nothing whole');
  t.equal(endOnSentence('Done!'), 'Done!');
  t.same(cutTruncatedAnswer('The cat sleeps. The dog', 'max-tokens'), { answer: 'The cat sleeps.', truncation: { by: 'max-tokens', removedChars: 8 } });
  t.same(cutTruncatedAnswer('Complete sentence.', 'max-tokens'), { answer: 'Complete sentence.', truncation: { by: 'max-tokens', removedChars: 0 } }, 'recorded even when nothing was cut');
  t.equal(cutTruncatedAnswer('no end at a', 'grammar-bound'), undefined);
});
