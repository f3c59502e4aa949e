import t from 'tap';
import { assertLlavaDataset, toLlavaRecord, validateLlavaDataset } from '../lib/emit/llava.js';
import { sampleFromLlavaRecord, type KeptTriplet } from '../lib/emit/sample.js';
import { FORMAT_SUFFIXES } from '../lib/srf/data-types.js';

const ROOT = '/data/images';

const KEPT: KeptTriplet = {
  id: 'laion-000123',
  image: '/data/images/laion/00/000123.jpg',
  question: 'What is the dog holding?',
  answer: 'A red frisbee.',
  questionPrime: 'What does the dog have in its mouth?',
  answerPrime: 'A frisbee.',
  type: 'short_text',
  simQ: 0.81,
  simA: 0.64,
  score: 0.72,
  paperFaithful: true,
  round: 0,
};

t.test('a kept triplet as a LLaVA record', async (t) => {
  const record = toLlavaRecord(KEPT, { imageRoot: ROOT });
  t.same(record, {
    id: 'laion-000123',
    image: 'laion/00/000123.jpg',
    conversations: [
      { from: 'human', value: '<image>\nWhat is the dog holding?' },
      { from: 'gpt', value: 'A red frisbee.' },
    ],
    srf: { type: 'short_text', simQ: 0.81, simA: 0.64, score: 0.72, round: 0, paperFaithful: true },
  });
  t.same(validateLlavaDataset([record]), { ok: true, records: 1 });
  const suffixed = toLlavaRecord({ ...KEPT, question: `<image>\nHow many dogs?\n${FORMAT_SUFFIXES.shortAnswer}`, answer: '2' }, { imageRoot: ROOT });
  t.equal(suffixed.conversations[0]?.value, `<image>\nHow many dogs?\n${FORMAT_SUFFIXES.shortAnswer}`, 'one marker, suffix kept');
  t.equal(toLlavaRecord({ ...KEPT, image: 'laion/x.jpg' }, { imageRoot: ROOT }).image, 'laion/x.jpg', 'relative paths are already relative to imageRoot');
});

t.test('bad kept triplets and paths', async (t) => {
  t.throws(() => toLlavaRecord({ ...KEPT, image: '/elsewhere/x.jpg' }, { imageRoot: ROOT }), { code: 'DATA_INVALID', message: /not inside imageRoot/ });
  t.throws(() => toLlavaRecord({ ...KEPT, image: '../x.jpg' }, { imageRoot: ROOT }), { code: 'DATA_INVALID' });
  t.throws(() => toLlavaRecord({ ...KEPT, answer: ' ' }, { imageRoot: ROOT }), { code: 'DATA_INVALID', message: /laion-000123.*answer/ });
  t.throws(() => toLlavaRecord({ ...KEPT, score: 2 }, { imageRoot: ROOT }), { code: 'DATA_INVALID' });
  t.throws(() => toLlavaRecord({ ...KEPT, type: 'caption' as never }, { imageRoot: ROOT }), { code: 'DATA_INVALID' });
  t.throws(() => toLlavaRecord(KEPT, {} as never), { code: 'INVALID_ARGUMENT' });
});

t.test('original LLaVA records re-emitted, re-based onto a common root', async (t) => {
  const original = {
    id: '000000033471',
    image: 'coco/train2017/000000033471.jpg',
    conversations: [
      { from: 'human', value: 'What are the colors of the bus?\n<image>' },
      { from: 'gpt', value: 'White and red.' },
      { from: 'human', value: 'Where is it?' },
      { from: 'gpt', value: 'On a street.' },
    ],
  };
  const sample = sampleFromLlavaRecord(original, { index: 0 }, { imageFolder: '/data/images/llava' });
  t.same(toLlavaRecord(sample, { imageRoot: ROOT }), {
    id: '000000033471',
    image: 'llava/coco/train2017/000000033471.jpg',
    conversations: [
      { from: 'human', value: '<image>\nWhat are the colors of the bus?' },
      { from: 'gpt', value: 'White and red.' },
      { from: 'human', value: 'Where is it?' },
      { from: 'gpt', value: 'On a street.' },
    ],
  });
  const textOnly = sampleFromLlavaRecord({ id: 't1', conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello' }] }, { index: 1 });
  const record = toLlavaRecord(textOnly, { imageRoot: ROOT });
  t.same(record, { id: 't1', conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello' }] });
  t.same(validateLlavaDataset([record]), { ok: true, records: 1 });
});

t.test('the validator rejects what LLaVA cannot train on', async (t) => {
  const good = { id: 'a', image: 'a.jpg', conversations: [{ from: 'human', value: '<image>\nQ' }, { from: 'gpt', value: 'A' }] };
  const cases: [unknown, string][] = [
    [{ notAList: true }, 'expected a JSON list of records'],
    [[{ ...good, id: undefined }], 'record 0: missing "id"'],
    [[{ ...good, conversations: [{ from: 'gpt', value: 'A' }, { from: 'human', value: '<image>\nQ' }] }], 'record 0 (id "a"): conversations[0] must be {"from": "human", "value": <string>}'],
    [[{ ...good, conversations: [{ from: 'human', value: '<image>\nQ' }] }], 'record 0 (id "a"): "conversations" must be a list of human/gpt pairs'],
    [[{ ...good, conversations: [{ from: 'human', value: 'Q' }, { from: 'gpt', value: 'A' }] }], 'record 0 (id "a"): the first human turn must carry <image> exactly once (found 0)'],
    [[{ ...good, conversations: [{ from: 'human', value: '<image>\n<image>\nQ' }, { from: 'gpt', value: 'A' }] }], 'record 0 (id "a"): the first human turn must carry <image> exactly once (found 2)'],
    [
      [{ ...good, conversations: [...good.conversations, { from: 'human', value: '<image>\nQ2' }, { from: 'gpt', value: 'A2' }] }],
      'record 0 (id "a"): <image> in conversations[2]; only the first human turn may carry it',
    ],
    [[{ id: 'b', conversations: good.conversations }], 'record 0 (id "b"): <image> in a record without "image"'],
    [[{ ...good, image: 7 }], 'record 0 (id "a"): "image" must be a non-empty string'],
    [[good, 'x'], 'record 1: expected an object'],
  ];
  for (const [json, problem] of cases) {
    const result = validateLlavaDataset(json);
    t.equal(result.ok, false, problem);
    if (!result.ok) t.same(result.problems, [problem]);
  }
  t.same(validateLlavaDataset([]), { ok: true, records: 0 });
  t.same(validateLlavaDataset([good, good]), { ok: true, records: 2 });
  t.throws(() => assertLlavaDataset([{ id: 'b', conversations: good.conversations }], 'out/train.llava.json'), {
    code: 'DATA_INVALID',
    file: 'out/train.llava.json',
    message: /^out\/train\.llava\.json: not a valid LLaVA dataset: record 0/,
  });
  const many = validateLlavaDataset(Array.from({ length: 50 }, () => 'x'), 3);
  t.equal(many.ok ? 0 : many.problems.length, 3, 'stops listing at maxProblems');
});
