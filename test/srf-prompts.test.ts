import t from 'tap';
import { SrfError } from '../lib/errors.js';
import { parseQaReply } from '../lib/srf/parse.js';
import { DEFAULT_DECODING, DEFAULT_TEMPLATES, QA_REPLY_GRAMMAR, qaReplyGrammar, resolveTemplates, templatesFromStrings } from '../lib/srf/prompts.js';
import { IMAGE_TOKEN, LLAVA_SYSTEM, llavaPromptParts, renderLlavaPrompt, stripImageToken } from '../lib/engine/llava-prompt.js';

t.test('vicuna_v1 prompt around the image', async (t) => {
  t.equal(
    LLAVA_SYSTEM,
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.",
  );
  t.equal(IMAGE_TOKEN, '<image>');
  t.same(llavaPromptParts('What is this?'), {
    beforeImage: `${LLAVA_SYSTEM} USER: `,
    afterImage: '\nWhat is this? ASSISTANT:',
  });
  t.equal(renderLlavaPrompt('What is this?'), `${LLAVA_SYSTEM} USER: <image>\nWhat is this? ASSISTANT:`);
  t.throws(() => llavaPromptParts(42 as unknown as string), { code: 'INVALID_ARGUMENT' });
});

t.test('stripImageToken', async (t) => {
  t.equal(stripImageToken('<image>\nWhat is this?'), 'What is this?');
  t.equal(stripImageToken('What is this?\n<image>'), 'What is this?', 'marker at the end, as in some mix665k samples');
  t.equal(stripImageToken('no marker'), 'no marker');
});

t.test('default task instructions', async (t) => {
  t.equal(
    DEFAULT_TEMPLATES.iToQaInstruction,
    'Look at the image, write one question about it, then answer it. Reply exactly as:\nQuestion: <question>\nAnswer: <answer>',
  );
  t.equal(
    DEFAULT_TEMPLATES.iaToQInstruction('Two dogs.'),
    'Here is an answer about the image: "Two dogs."\nWrite the question that this answer responds to.',
  );
  t.equal(DEFAULT_TEMPLATES.iqToAInstruction('How many dogs?'), 'How many dogs?');
});

t.test('overriding templates', async (t) => {
  const custom = resolveTemplates({ iqToAInstruction: (q) => `Q: ${q}` });
  t.equal(custom.iqToAInstruction('x'), 'Q: x');
  t.equal(custom.iToQaInstruction, DEFAULT_TEMPLATES.iToQaInstruction, 'others keep their default');
  const fromStrings = templatesFromStrings({ iaToQ: 'Answer: {A}. Question? ({A})', iqToA: '{Q} Be brief.' });
  t.equal(fromStrings.iaToQInstruction('red'), 'Answer: red. Question? (red)');
  t.equal(fromStrings.iqToAInstruction('Color?'), 'Color? Be brief.');
  t.throws(() => templatesFromStrings({ iaToQ: 'no placeholder' }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => templatesFromStrings({ iqToA: 'no placeholder' }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => resolveTemplates({ iToQaInstruction: ' ' }), SrfError);
});

t.test('decoding defaults of docs/METHOD.md', async (t) => {
  t.same(DEFAULT_DECODING.iToQa, { temperature: 0.7, topK: 40, topP: 0.9, maxTokens: 256, grammar: QA_REPLY_GRAMMAR });
  t.same(DEFAULT_DECODING.iaToQ, { temperature: 0, maxTokens: 128 });
  t.same(DEFAULT_DECODING.iqToA, { temperature: 0, maxTokens: 128 });
});

t.test('QA reply grammar text', async (t) => {
  t.equal(
    QA_REPLY_GRAMMAR,
    [
      'root ::= "Question: " question "\\nAnswer: " answer',
      'question ::= qline options? suffix?',
      'qline ::= [^\\r\\n ] [^\\r\\n]{0,119}',
      'options ::= "\\nA. " option ("\\nB. " option ("\\nC. " option ("\\nD. " option)?)?)?',
      'option ::= [^\\r\\n ] [^\\r\\n]{0,39}',
      `suffix ::= "\\n" ("Answer the question using a single word or phrase." | "Answer with the option's letter from the given choices directly.")`,
      'answer ::= aline ("\\n" "\\n"? aline){0,7}',
      'aline ::= [^\\r\\n ] [^\\r\\n]{0,999}',
      '',
    ].join('\n'),
  );
  t.notMatch(qaReplyGrammar({ maxOptions: 0 }), /^options? ::=/m, 'no option rules when options are off');
  t.throws(() => qaReplyGrammar({ maxAnswerChars: 0 }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => qaReplyGrammar({ maxAnswerLines: 0 }), { code: 'INVALID_ARGUMENT' });
  t.match(qaReplyGrammar({ maxAnswerLines: 1, maxAnswerChars: 200 }), /^answer ::= aline\naline ::= \[\^\\r\\n \] \[\^\\r\\n\]\{0,199\}$/m, 'one line of 200: the old shape, on request');
});

/** Replies the default grammar must accept (each also parses) and replies it must refuse. */
const ACCEPTED = [
  'Question: What color is the bus?\nAnswer: Red.',
  'Question: How many people are there?\nAnswer the question using a single word or phrase.\nAnswer: 3',
  "Question: What is the man holding?\nA. umbrella\nB. bat\nC. kite\nD. phone\nAnswer with the option's letter from the given choices directly.\nAnswer: B",
  'Question: Please provide the bounding box coordinate of the region this sentence describes: man in red.\nAnswer: [0.12, 0.30, 0.45, 0.88]',
  `Question: ${'q'.repeat(119)}?\nAnswer: ${'a'.repeat(1000)}`,
  // step-1 targets hold multi-paragraph answers (LLaVA's detailed descriptions): the grammar lets them through
  'Question: What is happening in the scene?\nAnswer: A man rides a bike down a busy street.\n\nBehind him, a bus waits at the light.\nPeople cross the road.',
  `Question: Describe the image in detail.\nAnswer: ${Array.from({ length: 8 }, (_, i) => `Paragraph ${i + 1}.`).join('\n\n')}`,
];
const REFUSED = [
  'Question: What?\nAnswer: ', // empty answer
  'Question:  What?\nAnswer: x', // field starts with a space
  'Question: What?\nAnswer: two\n\n\nblank lines', // one blank line between paragraphs at most
  'Question: What?\nAnswer: x\n', // a line break must start a line
  `Question: ${'q'.repeat(120)}?\nAnswer: x`, // first line too long
  `Question: What?\nAnswer: ${'a'.repeat(1001)}`,
  `Question: What?\nAnswer: ${Array.from({ length: 9 }, (_, i) => `Line ${i + 1}.`).join('\n')}`, // 9 lines
  'Question: What?\nB. skipped A\nAnswer: B',
  'Answer: x',
];

t.test('QA reply grammar shapes parse', async (t) => {
  for (const reply of ACCEPTED) t.equal(parseQaReply(reply).ok, true, JSON.stringify(reply.slice(0, 40)));
});

t.test('QA reply grammar in llama.cpp (node-llama-cpp prebuilt, no model)', async (t) => {
  let llama: { createGrammar(o: { grammar: string }): Promise<unknown>; dispose(): Promise<void> };
  try {
    const { getLlama } = await import('node-llama-cpp');
    llama = await getLlama({ build: 'never', gpu: false, logLevel: 'error' as never });
  } catch (error) {
    t.pass('grammar check in llama.cpp', { skip: `no prebuilt llama.cpp binary: ${String(error)}` });
    return;
  }
  t.teardown(() => llama.dispose());
  const grammar = (await llama.createGrammar({ grammar: QA_REPLY_GRAMMAR })) as { _testText?: (text: string) => boolean };
  if (typeof grammar._testText !== 'function') {
    t.pass('grammar check in llama.cpp', { skip: 'this node-llama-cpp has no grammar text test' });
    return;
  }
  for (const reply of ACCEPTED) t.equal(grammar._testText(reply), true, `accepts ${JSON.stringify(reply.slice(0, 50))}`);
  for (const reply of REFUSED) t.equal(grammar._testText(reply), false, `refuses ${JSON.stringify(reply.slice(0, 50))}`);
});
