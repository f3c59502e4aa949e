/**
 * Letter choices judged by option text (issue 36, item 1): reading the options, the rotated re-ask,
 * the option-text score, and the triangle asking the rotated question.
 */
import t from 'tap';
import { equalityProvider } from './helpers/similarity.js';
import { circularReask, openReask, formatChoiceQuestion, optionTextOf, parseChoiceQuestion, rotateOptions } from '../lib/srf/choices.js';
import { FORMAT_SUFFIXES } from '../lib/srf/data-types.js';
import { scoreTriplet } from '../lib/srf/score.js';
import { runTriangle, type TriangleSettings } from '../lib/srf/triangle.js';
import { DEFAULT_DECODING, DEFAULT_TEMPLATES } from '../lib/srf/prompts.js';
import type { GenerateRequest, GenerateResult } from '../lib/engine/types.js';

const Q = ['What shape is the red object at the top?', 'A. cross', 'B. square', 'C. circle', 'D. star', FORMAT_SUFFIXES.multipleChoice].join('\n');

t.test('a letter-choice question reads as stem and options', async (t) => {
  const choice = parseChoiceQuestion(Q);
  t.same(choice, {
    stem: 'What shape is the red object at the top?',
    options: [
      { letter: 'A', text: 'cross' },
      { letter: 'B', text: 'square' },
      { letter: 'C', text: 'circle' },
      { letter: 'D', text: 'star' },
    ],
  });
  t.equal(formatChoiceQuestion(choice!), Q, 'written back as it was');
  t.equal(parseChoiceQuestion('Is there a cat?\nAnswer the question using a single word or phrase.'), null, 'no options');
  t.equal(parseChoiceQuestion('What is it?\nA. cat'), null, 'one option is no choice');
  t.equal(parseChoiceQuestion('What is it?\nA. cat\nC. dog'), null, 'letters out of order');
  t.equal(parseChoiceQuestion('A. cat\nB. dog'), null, 'no stem');
});

t.test('an answer points to option text by its letter or its text', async (t) => {
  const choice = parseChoiceQuestion(Q)!;
  for (const answer of ['C', 'C.', '(C)', 'C. circle', 'circle', 'Circle']) t.equal(optionTextOf(choice, answer), 'circle', answer);
  t.equal(optionTextOf(choice, 'E'), null, 'a letter with no option');
  t.equal(optionTextOf(choice, 'triangle'), null, 'a text that is no option');
});

t.test('the rotated re-ask moves every text one letter on', async (t) => {
  const rotated = rotateOptions(parseChoiceQuestion(Q)!, 1);
  t.same(rotated.options.map((o) => o.text), ['star', 'cross', 'square', 'circle']);
  const reask = circularReask(Q, 'C');
  t.same(reask, { question: formatChoiceQuestion(rotated), expected: 'D' }, 'circle moved from C to D');
  t.equal(circularReask(Q, 'E'), null, 'A names no option: nothing to re-ask');
  t.equal(circularReask('Is it red?', 'yes'), null, 'yes/no: no options');
});

t.test('the open re-ask is the stem alone, as a short-answer question', async (t) => {
  t.same(openReask(Q, 'C'), { question: `What shape is the red object at the top?\n${FORMAT_SUFFIXES.shortAnswer}`, expected: 'circle' });
  t.equal(openReask(Q, 'E'), null);
});

const provider = equalityProvider;

t.test('option-text scoring: the letter alone no longer decides', async (t) => {
  // Q' invents its own options: its C is triangle. By letter the paper calls A and A' equal.
  const questionPrime = ['What shape is the red object at the top?', 'A. circle', 'B. square', 'C. triangle', 'D. cross', FORMAT_SUFFIXES.multipleChoice].join('\n');
  const triplet = { question: Q, answer: 'C', questionPrime, answerPrime: 'C' };
  const letter = await scoreTriplet(triplet, provider);
  t.equal(letter.type, 'multiple_choice');
  t.ok(letter.score < 1, 'the paper compares the whole questions: the invented options differ');
  const text = await scoreTriplet(triplet, provider, { choices: 'option-text' });
  t.equal(text.simQ, 1, "Q' carries Q's options: the same stem is the same question");
  t.equal(text.score, 1, "A and A' both point to circle");
  // A letter-biased model: answers C to the rotated question too, which now means square.
  const biased = await scoreTriplet({ ...triplet, answerRotated: 'C' }, provider, { choices: 'option-text' });
  t.equal(biased.simA, 0, 'the rotated re-ask pointing elsewhere fails the answer side');
  t.equal(biased.score, 0);
  const steady = await scoreTriplet({ ...triplet, answerRotated: 'D' }, provider, { choices: 'option-text' });
  t.equal(steady.score, 1, 'the rotated re-ask pointing to circle again passes');
  t.equal((await scoreTriplet({ ...triplet, answerRotated: 'D', answerOpen: 'square' }, provider, { choices: 'option-text' })).score, 0, 'the open re-ask naming another shape fails it');
  t.equal((await scoreTriplet({ ...triplet, answerRotated: 'D', answerOpen: 'Circle.' }, provider, { choices: 'option-text' })).score, 1, 'the open re-ask naming circle passes');
  const textAnswer = await scoreTriplet({ ...triplet, answerPrime: 'circle' }, provider, { choices: 'option-text' });
  t.equal(textAnswer.simA, 1, "A' written out as the option's text");
  const noOption = await scoreTriplet({ ...triplet, answer: 'E', answerPrime: 'E' }, provider, { choices: 'option-text' });
  t.equal(noOption.score, 0, 'A names no option: not data (the paper keeps it: E equals E)');
  t.equal((await scoreTriplet({ ...triplet, answer: 'E', answerPrime: 'E' }, provider)).simA, 1);
  const yesNo = { question: 'Is there a red circle?', answer: 'yes', questionPrime: 'Is there a red circle?', answerPrime: 'yes' };
  t.same(await scoreTriplet(yesNo, provider, { choices: 'option-text' }), await scoreTriplet(yesNo, provider), 'yes/no scored the same either way');
  await t.rejects(scoreTriplet(triplet, provider, { choices: 'letters' as 'letter' }), { code: 'INVALID_ARGUMENT' });
});

/** An engine that answers by the instruction: C to every letter choice unless told how, Q back for IA->Q. */
function scriptedEngine(answerFor: (prompt: string) => string) {
  const prompts: GenerateRequest[] = [];
  return {
    prompts,
    async generate(request: GenerateRequest): Promise<GenerateResult> {
      prompts.push(request);
      const prompt = request.prompt;
      let text: string;
      if (prompt === DEFAULT_TEMPLATES.iToQaInstruction) text = `Question: ${Q}\nAnswer: C`;
      else if (prompt.startsWith('Here is an answer')) text = Q;
      else text = answerFor(prompt);
      return { text, finishReason: 'stop', promptTokens: 1, prefixTokens: 0, prefixReused: false, generatedTokens: 1, tokens: [] };
    },
  };
}

const settings = (circular: boolean, open = false): TriangleSettings => ({
  templates: DEFAULT_TEMPLATES,
  sampling: { ...DEFAULT_DECODING, iToQa: { ...DEFAULT_DECODING.iToQa, grammar: undefined } } as TriangleSettings['sampling'],
  drafts: true,
  truncatedAnswers: 'cut',
  answerLineBound: undefined,
  circular,
  open,
});

t.test('the triangle asks the rotated question beside IQ->A, only when told', async (t) => {
  const image = new Uint8Array(0);
  const biased = scriptedEngine(() => 'C');
  const result = await runTriangle(biased, image, settings(true), 1);
  t.equal(biased.prompts.length, 4, 'I->QA, IA->Q, IQ->A and the rotated IQ->A');
  const rotated = biased.prompts[3]!;
  t.equal(rotated.prompt, formatChoiceQuestion(rotateOptions(parseChoiceQuestion(Q)!, 1)));
  t.equal(rotated.draft, 'D', "the draft is the letter circle moved to");
  t.ok(result.status === 'complete' && result.answerRotated === 'C');

  const paper = scriptedEngine(() => 'C');
  const plain = await runTriangle(paper, image, settings(false), 1);
  t.equal(paper.prompts.length, 3, 'the paper asks three times');
  t.ok(plain.status === 'complete' && !('answerRotated' in plain));

  const both = scriptedEngine((prompt) => (prompt.endsWith(FORMAT_SUFFIXES.shortAnswer) ? 'square' : 'C'));
  const asked = await runTriangle(both, image, settings(true, true), 1);
  t.equal(both.prompts.length, 5, 'and the open re-ask');
  t.equal(both.prompts[4]!.draft, 'circle', 'its draft is the option text');
  t.ok(asked.status === 'complete' && asked.answerOpen === 'square');
});
