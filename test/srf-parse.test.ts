import t from 'tap';
import { cleanReply, parseQaReply, QA_PARSE_FAILURES } from '../lib/srf/parse.js';

t.test('well-formed and tolerated I->QA replies', async (t) => {
  const cases: [string, string, string, string][] = [
    ['plain', 'Question: What color is the bus?\nAnswer: Red.', 'What color is the bus?', 'Red.'],
    ['surrounding whitespace', '  \n Question: Is it raining?\nAnswer: No \n\n', 'Is it raining?', 'No'],
    ['CRLF and </s>', 'Question: How many cats?\r\nAnswer: Two.</s>', 'How many cats?', 'Two.'],
    ['lowercase labels', 'question: what is this?\nanswer: a kite', 'what is this?', 'a kite'],
    ['Q:/A:', 'Q: Where is the dog?\nA: On the sofa.', 'Where is the dog?', 'On the sofa.'],
    ['bold labels', '**Question:** What sport is this?\n**Answer:** Tennis', 'What sport is this?', 'Tennis'],
    ['bold label, colon outside', '**Question**: What sport is this?\n**Answer**: Tennis', 'What sport is this?', 'Tennis'],
    ['heading and bullet labels', '### Question: Why?\n- Answer: Because.', 'Why?', 'Because.'],
    ['preamble', 'Sure! Here is one.\nQuestion: What time is it?\nAnswer: Noon', 'What time is it?', 'Noon'],
    ['one line', 'Question: What animal is shown? Answer: A giraffe.', 'What animal is shown?', 'A giraffe.'],
    ['quoted fields', 'Question: "What is on the table?"\nAnswer: "A laptop"', 'What is on the table?', 'A laptop'],
    ['second pair ignored', 'Question: A?\nAnswer: B\nQuestion: C?\nAnswer: D', 'A?', 'B'],
    ['next turn cut', 'Question: What?\nAnswer: That. USER: more', 'What?', 'That.'],
    [
      'suffix and options kept in the question',
      "Question: Which is red?\nA. car\nB. tree\nAnswer with the option's letter from the given choices directly.\nAnswer: A",
      "Which is red?\nA. car\nB. tree\nAnswer with the option's letter from the given choices directly.",
      'A',
    ],
    [
      'short-answer suffix line is not the answer label',
      'Question: How many?\nAnswer the question using a single word or phrase.\nAnswer: 2',
      'How many?\nAnswer the question using a single word or phrase.',
      '2',
    ],
  ];
  for (const [name, reply, question, answer] of cases) {
    t.same(parseQaReply(reply), { ok: true, question, answer }, name);
  }
});

t.test('malformed replies carry a distinct reason', async (t) => {
  t.same([...QA_PARSE_FAILURES], ['empty-reply', 'unparsable', 'empty-question', 'empty-answer', 'truncated'], "'truncated' is the pipeline's (srf-truncation.test.ts)");
  const cases: [string, string][] = [
    ['', 'empty-reply'],
    ['  \n</s>', 'empty-reply'],
    ['The image shows a cat on a sofa.', 'unparsable'],
    ['Question: What is this?', 'unparsable'], // cut off before the answer
    ['Answer: a cat', 'unparsable'], // no question label
    ['Question:\nAnswer: a cat', 'empty-question'],
    ['Question: **  **\nAnswer: a cat', 'empty-question'],
    ['Question: What is this?\nAnswer:', 'empty-answer'],
    ['Question: What is this?\nAnswer: </s> a cat', 'empty-answer'],
    ['Question: What is this?\nAnswer: ""', 'empty-answer'],
  ];
  for (const [reply, reason] of cases) t.same(parseQaReply(reply), { ok: false, reason }, JSON.stringify(reply));
  t.throws(() => parseQaReply(undefined as unknown as string), { code: 'INVALID_ARGUMENT' });
});

t.test('cleanReply for re-predictions', async (t) => {
  const cases: [string, string][] = [
    ['  Two dogs.  ', 'Two dogs.'],
    ['Answer: Two dogs.', 'Two dogs.'],
    ['Question: How many dogs are there?</s>', 'How many dogs are there?'],
    ['**Question:** What is it?', 'What is it?'],
    ['A: yes', 'yes'],
    ['A dog.', 'A dog.'], // an article, not a label
    ['Red.\nUSER: What else? ASSISTANT: Blue.', 'Red.'],
    ['ASSISTANT: Red.', 'Red.'],
    ['"What is in the box?"', 'What is in the box?'],
    ['Line one.\r\nLine two.', 'Line one.\nLine two.'],
    ['</s>', ''],
  ];
  for (const [reply, cleaned] of cases) t.equal(cleanReply(reply), cleaned, JSON.stringify(reply));
});
