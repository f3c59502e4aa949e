// Scoring a draft (issue 36, item 2): GenerateRequest.scoreDraft takes every draft token whatever
// the model would choose and returns each one's log-probability, all of them, past the first token
// the model disagrees with. Checked against the model itself: the greedy reply scores its own tokens
// at their greedy probability, and the sum over a reply equals the chain of one-token scores.
import t from 'tap';
import { VisionModel } from '../lib/index.js';
import { makeWorld } from './helpers/fixtures.js';

const world = await makeWorld(1);
const image = world.images[0]!;
const prompt = 'What is in the image?';

t.test('a scored draft is taken whole, with one log-probability per token', async (t) => {
  await using model = await VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 4, threads: 1 });
  const greedy = await model.generate({ image, prompt, sampling: { temperature: 0, maxTokens: 24 } });
  t.equal(greedy.draftLogProbs, undefined, 'a plain request carries none');

  // The greedy reply scored: every token is the model's own argmax, so none scores lower than
  // log(1 / vocab), and the reply comes back unchanged.
  const own = await model.generate({ image, prompt, sampling: { temperature: 0, maxTokens: 24 }, draft: greedy.tokens, scoreDraft: true });
  t.same(own.tokens, greedy.tokens, 'the draft is the reply');
  t.equal(own.draftLogProbs?.length, greedy.tokens.length, 'one log-probability per draft token');
  t.ok(own.draftLogProbs!.every((x) => x <= 0 && x > -Math.log(model.info.vocabSize)), `greedy tokens are likely: ${own.draftLogProbs!.map((x) => x.toFixed(2)).join(' ')}`);

  // A draft the model disagrees with at its first token: still scored to its end.
  const other = [...greedy.tokens].reverse();
  const forced = await model.generate({ image, prompt, sampling: { temperature: 0, maxTokens: 24 }, draft: other, scoreDraft: true });
  t.same(forced.tokens, other, 'taken whatever the model would choose');
  t.equal(forced.draftLogProbs?.length, other.length, 'scored past the first disagreement');
  if (other[0] !== greedy.tokens[0]) t.ok(own.draftLogProbs![0]! >= forced.draftLogProbs![0]!, 'at the first token the greedy choice is at least as likely as any other');
  const plain = await model.generate({ image, prompt, sampling: { temperature: 0, maxTokens: 24 }, draft: other });
  t.same(plain.tokens, greedy.tokens, 'without scoreDraft a wrong draft still gives the greedy reply');

  // Chain rule: the log-probability of the second token given the first equals what a two-token
  // draft reports for it, whichever step batches them.
  if (other.length >= 2) {
    const two = await model.generate({ image, prompt, sampling: { temperature: 0, maxTokens: 24 }, draft: other.slice(0, 2), scoreDraft: true });
    t.ok(Math.abs(two.draftLogProbs![1]! - forced.draftLogProbs![1]!) < 1e-3, 'the same token in the same context scores the same');
    t.ok(Math.abs(two.draftLogProbs![0]! - forced.draftLogProbs![0]!) < 1e-3);
  }
  await t.rejects(model.generate({ image, prompt, sampling: { temperature: 0.7, maxTokens: 8 }, draft: 'x', scoreDraft: true }), { code: 'INVALID_ARGUMENT' });
  await t.rejects(model.generate({ image, prompt, sampling: { temperature: 0, maxTokens: 8 }, scoreDraft: true }), { code: 'INVALID_ARGUMENT' });
});
