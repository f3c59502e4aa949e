import t from 'tap';
import { FORMAT_SUFFIXES } from '../lib/srf/data-types.js';
import { DEFAULT_TEMPLATES } from '../lib/srf/prompts.js';
import { buildMultiTaskData, checkTaskRatios, planTaskRatios, splitConversations, taskRecord } from '../lib/srf/tasks.js';

const human = (value: string) => ({ from: 'human', value });
const gpt = (value: string) => ({ from: 'gpt', value });
const SHORT = FORMAT_SUFFIXES.shortAnswer;

t.test('splitting multi-turn and text-only samples', async (t) => {
  const { turns, skipped } = splitConversations([
    {
      id: '000000033471',
      image: 'coco/train2017/000000033471.jpg',
      conversations: [
        human('What are the colors of the bus in the image?\n<image>'),
        gpt('The bus in the image is white and red.'),
        human(`What feature can be seen on the back of the bus?\n${SHORT}`),
        gpt('Advertisement'),
        human('Is the bus driving down the street or pulled off to the side?'),
        gpt(''),
      ],
    },
    { id: 42, conversations: [human('Write a haiku.'), gpt('Autumn moonlight...'), human('Another?'), gpt('Old pond...')] },
  ]);
  t.same(turns, [
    {
      id: '000000033471#0',
      sampleId: '000000033471',
      turnIndex: 0,
      image: 'coco/train2017/000000033471.jpg',
      question: 'What are the colors of the bus in the image?',
      answer: 'The bus in the image is white and red.',
      humanValue: '<image>\nWhat are the colors of the bus in the image?',
    },
    {
      id: '000000033471#1',
      sampleId: '000000033471',
      turnIndex: 1,
      image: 'coco/train2017/000000033471.jpg',
      question: `What feature can be seen on the back of the bus?\n${SHORT}`,
      answer: 'Advertisement',
      humanValue: `<image>\nWhat feature can be seen on the back of the bus?\n${SHORT}`,
    },
    { id: '42#0', sampleId: '42', turnIndex: 0, question: 'Write a haiku.', answer: 'Autumn moonlight...', humanValue: 'Write a haiku.' },
    { id: '42#1', sampleId: '42', turnIndex: 1, question: 'Another?', answer: 'Old pond...', humanValue: 'Another?' },
  ]);
  t.same(skipped, [{ sampleId: '000000033471', turnIndex: 2, reason: 'empty-answer' }]);
});

t.test('malformed samples name file, record and id', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{ id: 'a', image: 'x.jpg', conversations: [human('<image>\nQ')] }, /record 0 \(id "a"\): expected "conversations" to be a list of human\/gpt pairs/],
    [{ id: 'a', image: 'x.jpg', conversations: [human('<image>\nQ'), human('A')] }, /conversations\[1\] must be \{"from": "gpt"/],
    [{ id: 'a', conversations: [human('<image>\nQ'), gpt('A')] }, /carries <image> but the record has no image/],
    [{ image: 'x.jpg', conversations: [human('Q'), gpt('A')] }, /expected "id"/],
    [{ id: 'a', image: ['x.jpg', 'y.jpg'], conversations: [human('Q'), gpt('A')] }, /several images/],
    ['not a record', /record 0: expected an object/],
  ];
  for (const [sample, message] of cases) {
    t.throws(() => splitConversations([sample], { file: 'data/mix.json' }), { code: 'DATA_INVALID', file: 'data/mix.json', message });
  }
  t.throws(() => splitConversations(42 as never), { code: 'INVALID_ARGUMENT' });
});

t.test('records of each task', async (t) => {
  const turn = {
    id: 's#1',
    sampleId: 's',
    turnIndex: 1,
    image: 'img/s.jpg',
    question: `How many dogs?\n${SHORT}`,
    answer: '2',
    humanValue: `<image>\nHow many dogs?\n${SHORT}`,
  };
  t.same(taskRecord(turn, 'iToQa', DEFAULT_TEMPLATES), {
    id: 's#1:iToQa',
    image: 'img/s.jpg',
    conversations: [
      { from: 'human', value: `<image>\n${DEFAULT_TEMPLATES.iToQaInstruction}` },
      { from: 'gpt', value: `Question: How many dogs?\n${SHORT}\nAnswer: 2` },
    ],
    srf: { task: 'iToQa', sourceId: 's', turn: 1 },
  });
  t.same(taskRecord(turn, 'iaToQ', DEFAULT_TEMPLATES).conversations, [
    { from: 'human', value: '<image>\nHere is an answer about the image: "2"\nWrite the question that this answer responds to.' },
    { from: 'gpt', value: `How many dogs?\n${SHORT}` },
  ], 'the question keeps its format suffix');
  t.same(taskRecord(turn, 'iqToA', DEFAULT_TEMPLATES).conversations, [
    { from: 'human', value: `<image>\nHow many dogs?\n${SHORT}` },
    { from: 'gpt', value: '2' },
  ]);
  const textOnly = { id: 't#0', sampleId: 't', turnIndex: 0, question: 'Hi?', answer: 'Hello.', humanValue: 'Hi?' };
  const record = taskRecord(textOnly, 'iqToA', DEFAULT_TEMPLATES);
  t.same(record.conversations[0], { from: 'human', value: 'Hi?' });
  t.notOk('image' in record);
});

function imageSamples(count: number, turnsPerSample = 1) {
  return Array.from({ length: count }, (_, i) => ({
    id: `img${i}`,
    image: `images/${i}.jpg`,
    conversations: Array.from({ length: turnsPerSample }, (_, k) => [human(`${k === 0 ? '<image>\n' : ''}Question ${i}.${k}?`), gpt(`Answer ${i}.${k}`)]).flat(),
  }));
}
function textSamples(count: number) {
  return Array.from({ length: count }, (_, i) => ({ id: `txt${i}`, conversations: [human(`Text question ${i}?`), gpt(`Text answer ${i}`)] }));
}

t.test('task ratios on 4000 synthetic turns (seeded)', async (t) => {
  const data = buildMultiTaskData(imageSamples(2000, 2), { seed: 1 });
  t.equal(data.records.length, 4000);
  t.same(data.plan.image, { iToQa: 0.5, iaToQ: 0.2, iqToA: 0.3 });
  // binomial standard deviation at n = 4000 is at most 0.8 %; 2.5 % is over 3 of them
  t.ok(Math.abs(data.counts.iToQa / 4000 - 0.5) < 0.025, `I->QA ${data.counts.iToQa}`);
  t.ok(Math.abs(data.counts.iaToQ / 4000 - 0.2) < 0.025, `IA->Q ${data.counts.iaToQ}`);
  t.ok(Math.abs(data.counts.iqToA / 4000 - 0.3) < 0.025, `IQ->A ${data.counts.iqToA}`);
  t.same(buildMultiTaskData(imageSamples(2000, 2), { seed: 1 }).counts, data.counts, 'same seed, same draw');
  t.same(data.counts, { iToQa: 2006, iaToQ: 817, iqToA: 1177 }, 'the draw of seed 1 (changes only if the generator changes)');
  const other = buildMultiTaskData(imageSamples(2000, 2), { seed: 2 });
  t.notSame(other.records.map((r) => r.id), data.records.map((r) => r.id), 'another seed, another draw');
  t.ok(data.records.every((r) => r.image !== undefined && r.conversations[0]?.value.startsWith('<image>\n')));
});

t.test('text-only turns go to IQ->A and image turns make up for them', async (t) => {
  // 3200 image turns + 800 text-only: f = 0.2
  const data = buildMultiTaskData([...imageSamples(3200), ...textSamples(800)], { seed: 3 });
  t.equal(data.textOnlyTurns, 800);
  t.equal(data.imageTurns, 3200);
  // image turns: I->QA 0.5 / 0.8 = 0.625, IA->Q 0.2 / 0.8 = 0.25, IQ->A (0.3 - 0.2) / 0.8 = 0.125
  t.equal(data.plan.image.iToQa, 0.625);
  t.equal(data.plan.image.iaToQ, 0.25);
  t.ok(Math.abs(data.plan.image.iqToA - 0.125) < 1e-12, 'IQ->A 0.125 up to rounding of 0.3 - 0.2');
  t.ok(Math.abs(data.plan.expected.iqToA - 0.3) < 1e-12 && Math.abs(data.plan.expected.iToQa - 0.5) < 1e-12);
  const textRecords = data.records.filter((r) => r.image === undefined);
  t.equal(textRecords.length, 800);
  t.ok(textRecords.every((r) => r.srf.task === 'iqToA' && !r.conversations[0]?.value.includes('<image>')), 'text-only: only IQ->A, no <image>');
  for (const [task, target] of [['iToQa', 0.5], ['iaToQ', 0.2], ['iqToA', 0.3]] as const) {
    t.ok(Math.abs(data.counts[task] / 4000 - target) < 0.025, `${task} ${data.counts[task]} of 4000`);
  }
  const plain = buildMultiTaskData([...imageSamples(3200), ...textSamples(800)], { seed: 3, compensateTextOnly: false });
  t.same(plain.plan.image, { iToQa: 0.5, iaToQ: 0.2, iqToA: 0.3 });
  t.ok(plain.counts.iqToA / 4000 > 0.4, 'without compensation IQ->A is over target (0.2 + 0.8 * 0.3 = 0.44)');
});

t.test('more text-only turns than the IQ->A share', async (t) => {
  // f = 0.5 > 0.3: image turns split 5 : 2 between I->QA and IA->Q, never IQ->A
  const plan = planTaskRatios({ iToQa: 0.5, iaToQ: 0.2, iqToA: 0.3 }, 1000, 1000);
  t.same(plan.image, { iToQa: 0.5 / 0.7, iaToQ: 0.2 / 0.7, iqToA: 0 });
  t.equal(plan.expected.iqToA, 0.5);
  const data = buildMultiTaskData([...imageSamples(1000), ...textSamples(1000)], { seed: 4 });
  t.equal(data.counts.iqToA, 1000, 'exactly the text-only turns');
  t.same(planTaskRatios({ iToQa: 0, iaToQ: 0, iqToA: 1 }, 10, 90).image, { iToQa: 0, iaToQ: 0, iqToA: 1 });
  t.same(planTaskRatios({ iToQa: 0.5, iaToQ: 0.2, iqToA: 0.3 }, 0, 10).expected, { iToQa: 0, iaToQ: 0, iqToA: 1 }, 'text only');
});

t.test('ratios are overridable and validated', async (t) => {
  const all = buildMultiTaskData(imageSamples(50), { ratios: { iToQa: 1, iaToQ: 0, iqToA: 0 } });
  t.same(all.counts, { iToQa: 50, iaToQ: 0, iqToA: 0 });
  t.same(checkTaskRatios({ iToQa: 0.6, iaToQ: 0.1, iqToA: 0.3 }), { iToQa: 0.6, iaToQ: 0.1, iqToA: 0.3 });
  const bad: unknown[] = [
    { iToQa: 0.5, iaToQ: 0.2, iqToA: 0.2 },
    { iToQa: 0.5, iaToQ: 0.5 },
    { iToQa: 1.2, iaToQ: -0.2, iqToA: 0 },
    { iToQa: 0.5, iaToQ: 0.2, iqToA: 0.3, extra: 0 },
    'half',
  ];
  for (const ratios of bad) t.throws(() => checkTaskRatios(ratios), { code: 'INVALID_ARGUMENT' }, JSON.stringify(ratios));
  t.throws(() => buildMultiTaskData([], { seed: 1.5 }), { code: 'INVALID_ARGUMENT' });
  const custom = buildMultiTaskData(imageSamples(1), { ratios: { iToQa: 0, iaToQ: 0, iqToA: 1 }, templates: { iqToAInstruction: (q) => `${q} Answer briefly.` } });
  t.equal(custom.records[0]?.conversations[0]?.value, '<image>\nQuestion 0.0? Answer briefly.');
});
