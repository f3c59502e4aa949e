import t from 'tap';
import {
  countSentences,
  countWords,
  detectDataType,
  FORMAT_SUFFIXES,
  formatSuffixOf,
  parseBox,
  parseBoxAnswer,
  stripFormatSuffix,
  type DataType,
} from '../lib/srf/data-types.js';

const SHORT = FORMAT_SUFFIXES.shortAnswer;
const CHOICE = FORMAT_SUFFIXES.multipleChoice;

t.test('format suffixes are LLaVA-1.5 strings', async (t) => {
  t.equal(SHORT, 'Answer the question using a single word or phrase.');
  t.equal(CHOICE, "Answer with the option's letter from the given choices directly.");
});

t.test('data types of LLaVA-1.5 mix665k-style pairs', async (t) => {
  const cases: [string, string, string, DataType][] = [
    ['VQAv2', `<image>\nWhat is the man holding?\n${SHORT}`, 'Frisbee', 'short_answer'],
    ['VQAv2 yes/no', `<image>\nIs the sky cloudy?\n${SHORT}`, 'Yes', 'multiple_choice'],
    ['GQA', `<image>\nWhich side of the picture is the bag on?\n${SHORT}`, 'Left', 'short_answer'],
    ['GQA yes/no', `Are there both cars and buses in this picture?\n${SHORT}`, 'No', 'multiple_choice'],
    ['OCR-VQA', `<image>\nWho wrote this book?\n${SHORT}`, 'Robert Smith', 'short_answer'],
    [
      'A-OKVQA multiple choice',
      `<image>\nWhat is the purpose of the orange cones?\nA. decoration\nB. mark a hazard\nC. advertise\nD. sell\n${CHOICE}`,
      'B',
      'multiple_choice',
    ],
    [
      'ScienceQA-style multiple choice',
      `<image>\nContext: Select the best answer.\nWhich property do these three objects have in common?\nA. shiny\nB. salty\nC. transparent\n${CHOICE}`,
      'C',
      'multiple_choice',
    ],
    [
      'RefCOCO REC',
      '<image>\nPlease provide the bounding box coordinate of the region this sentence describes: woman in red jacket on left.',
      '[0.07, 0.25, 0.38, 0.98]',
      'box',
    ],
    ['RefCOCO REG', '<image>\nPlease provide a short description for this region: [0.1, 0.2, 0.3, 0.4]', 'Man with umbrella.', 'region_text'],
    [
      'VG region, long description still region text',
      'Please provide a short description for this region: [0.55, 0.12, 0.71, 0.40]',
      'A black and white cat is sitting on the window sill. It is looking outside at the birds in the garden.',
      'region_text',
    ],
    [
      'LLaVA-Instruct detailed description',
      '<image>\nWhat do you see happening in this image?',
      'The image shows a busy city street with several cars waiting at a red light. Pedestrians are crossing the road, and a cyclist rides along the bike lane.',
      'long_text',
    ],
    [
      'LLaVA-Instruct conversation, one short sentence',
      '<image>\nWhat color is the fire hydrant in the image?',
      'The fire hydrant in the image is green.',
      'short_text',
    ],
    [
      'LLaVA-Instruct complex reasoning',
      "What might be the purpose of the man's outfit?",
      "The man is wearing a bright safety vest. This suggests he works on the road and wants to be seen by drivers.",
      'long_text',
    ],
    [
      'TextCaps caption',
      '<image>\nProvide a one-sentence caption for the provided image.',
      'A bottle of Coca-Cola sits on a wooden table next to a glass.',
      'short_text',
    ],
    ['conversation yes with detail is chat, not yes/no', '<image>\nIs the dog sleeping?', 'Yes, the dog is sleeping on the couch.', 'short_text'],
    ['bare yes without suffix', 'Is the dog sleeping?', 'yes.', 'multiple_choice'],
    ['pixel box is not a LLaVA box', 'Where is the cat?', '[120, 45, 300, 400]', 'short_text'],
  ];
  for (const [name, question, answer, type] of cases) t.equal(detectDataType(question, answer), type, name);
});

t.test('data type options', async (t) => {
  const yesNo = `Is the sky cloudy?\n${SHORT}`;
  t.equal(detectDataType(yesNo, 'Yes', { yesNoBeforeShortAnswer: false }), 'short_answer');
  t.equal(detectDataType('Is it?', 'Yes', { yesNoBeforeShortAnswer: false }), 'multiple_choice', 'no suffix: still yes/no');
  t.equal(detectDataType('Is it?', 'Yes', { yesNoAnswers: ['true', 'false'] }), 'short_text');
  t.equal(detectDataType('Where?', '[120, 45, 300, 400]', { boxScale: 1000 }), 'box');
  const words20 = Array.from({ length: 20 }, (_, i) => `w${i}`).join(' ');
  t.equal(detectDataType('Q?', words20), 'short_text', '20 words is short');
  t.equal(detectDataType('Q?', `${words20} w20`), 'long_text', '21 words is long');
  t.equal(detectDataType('Q?', `${words20} w20`, { maxShortWords: 30 }), 'short_text');
  t.equal(detectDataType('Q?', 'One. Two.'), 'long_text', 'two sentences');
  t.equal(detectDataType('Q?', 'One. Two.', { maxShortSentences: 2 }), 'short_text');
  t.throws(() => detectDataType('Q?', 'A', { maxShortWords: 0 }), { code: 'INVALID_ARGUMENT' });
});

t.test('format suffix recognised and stripped', async (t) => {
  t.equal(formatSuffixOf(`What?\n${SHORT}`), 'short_answer');
  t.equal(formatSuffixOf(`A?\nA. x\nB. y\n${CHOICE}`), 'multiple_choice');
  t.equal(formatSuffixOf('What?\nanswer the question using a single word or phrase'), 'short_answer', 'case, no period');
  t.equal(formatSuffixOf('A?\nAnswer with the option’s letter from the given choices directly.'), 'multiple_choice', 'curly apostrophe');
  t.equal(formatSuffixOf(`${SHORT} What?`), null, 'only at the end');
  t.equal(stripFormatSuffix(`<image>\nWhat is it?\n${SHORT}`), 'What is it?');
  t.equal(stripFormatSuffix(`Which?\nA. x\nB. y\n${CHOICE}`), 'Which?\nA. x\nB. y', 'options stay');
  t.equal(stripFormatSuffix('What is it?'), 'What is it?');
});

t.test('parseBox', async (t) => {
  t.same(parseBox('[0.12, 0.30, 0.45, 0.88]'), [0.12, 0.3, 0.45, 0.88]);
  t.same(parseBox('region [0.1,0.2,0.3,0.4] and [0.5, 0.5, 0.6, 0.6]'), [0.1, 0.2, 0.3, 0.4], 'first box');
  t.same(parseBox('[0, 0, 1, 1]'), [0, 0, 1, 1], 'edges included');
  t.equal(parseBox('[1.2, 0, 0.5, 0.5]'), null, 'above 1: not a LLaVA box');
  t.equal(parseBox('[-0.1, 0, 0.5, 0.5]'), null, 'below 0');
  t.equal(parseBox('[0.5, 0.5, 0.2, 0.9]'), null, 'inverted');
  t.equal(parseBox('[0.1, 0.2, 0.3]'), null, 'three numbers');
  t.equal(parseBox('[2, 0.1, 0.2, 0.3] then [0.1, 0.1, 0.2, 0.2]'), null, 'only the first is tried');
  t.same(parseBox('[120, 45, 300, 400]', { scale: 1000 }), [0.12, 0.045, 0.3, 0.4], 'scale');
  t.same(parseBoxAnswer(' [0.1, 0.2, 0.3, 0.4]. '), [0.1, 0.2, 0.3, 0.4], 'whole answer, final period');
  t.equal(parseBoxAnswer('It is at [0.1, 0.2, 0.3, 0.4]'), null, 'a box inside text is not a box answer');
  t.throws(() => parseBox('[0,0,1,1]', { scale: 0 }), { code: 'INVALID_ARGUMENT' });
});

t.test('counting words and sentences', async (t) => {
  t.equal(countWords('A dog , and two cats.'), 5, 'a lone comma is not a word');
  t.equal(countSentences('It is 3.5 m tall.'), 1, 'decimal point');
  t.equal(countSentences('Hello. World'), 2);
  t.equal(countSentences('Wow!! Great?'), 2);
  t.equal(countSentences('Left\nRight'), 2, 'line break');
  t.equal(countSentences('Dr. Smith'), 2, 'abbreviations count as an end (documented)');
});
