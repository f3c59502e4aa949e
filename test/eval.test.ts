// `srf-native eval`: LLaVA's question and answers files, scoring as the benchmarks score, the paired
// comparison, resuming, and bad input; end to end on the world with the committed model.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { compareScored, pairedBootstrap } from '../lib/jobs/eval/compare.js';
import { evaluate, scoreAnswersFile } from '../lib/jobs/eval/evaluate.js';
import { readQuestions, readTruth } from '../lib/jobs/eval/files.js';
import { interval, scoreAnswer, scoreKind, summarize, vqaAccuracy, vqaNormalize, type ScoredAnswer } from '../lib/jobs/eval/score.js';
import { isSrfError } from '../lib/errors.js';
import { worldModelPaths } from '../lib/world/model-files.js';
import { writeWorldQuestions } from '../lib/world/questions.js';
import { runCli } from './helpers/cli.js';

const dir = await mkdtemp(path.join(tmpdir(), 'srf-eval-test-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test("VQAv2's answer normalisation and accuracy", async (t) => {
  t.equal(vqaNormalize('Two.'), '2');
  t.equal(vqaNormalize('A dog'), 'dog');
  t.equal(vqaNormalize('none'), '0');
  t.equal(vqaNormalize('red, white'), 'red white', 'a comma before a space goes');
  t.equal(vqaNormalize('1,000'), '1000', 'a thousands comma goes');
  t.equal(vqaNormalize("man's"), "man's", 'apostrophes stay (VQA keeps them)');
  const refs = ['2', '2', 'two', 'three', '3', '3', '3', '3', '3', '3'];
  // Three humans said 2 (the word counts): 1 in the 7 subsets that keep all three, 2/3 in the other 3.
  t.equal(vqaAccuracy('2', refs).toFixed(4), '0.9000', 'three humans said 2 (two as a word counts)');
  t.equal(vqaAccuracy('3', refs), 1, 'six said 3');
  // Two of ten humans: 8 subsets where both remain (2/3) and 2 where one does (1/3): 0.6.
  t.equal(vqaAccuracy('dog', ['dog', 'dog', 'cat', 'cat', 'cat', 'cat', 'cat', 'cat', 'cat', 'cat']).toFixed(4), '0.6000');
  t.equal(vqaAccuracy('bird', refs), 0);
});

t.test('how each question is scored, as the benchmarks do', async (t) => {
  t.equal(scoreKind('What is it?', ['a', 'b']), 'vqa');
  t.equal(scoreKind('Is there a cat?', ['Yes']), 'yesno');
  t.equal(scoreKind('Which one?\nA. cat\nB. dog\nAnswer with the option\'s letter from the given choices directly.', ['B']), 'choice');
  t.equal(scoreKind('Please provide the bounding box coordinate of the region this sentence describes: the cat.', ['[0.10, 0.20, 0.50, 0.60]']), 'box');
  t.equal(scoreKind('What color is it?', ['red']), 'exact');
  const truth = (answers: string[]) => ({ questionId: 'q', answers });
  t.equal(scoreAnswer('Which one?\nA. cat\nB. dog', '(B) dog', truth(['B'])).score, 1, 'an option letter in any of its forms');
  t.equal(scoreAnswer('Is there a cat?', 'Yes, there is.', truth(['yes'])).score, 1);
  t.equal(scoreAnswer('Box?', '[0.12, 0.22, 0.50, 0.60]', truth(['[0.10, 0.20, 0.50, 0.60]'])).score, 1, 'IoU >= 0.5');
  t.equal(scoreAnswer('Box?', '[0.60, 0.60, 0.90, 0.90]', truth(['[0.10, 0.20, 0.50, 0.60]'])).score, 0);
  t.equal(scoreAnswer('What color?', 'Red.', truth(['red'])).score, 1);
});

t.test('POPE-style yes/no summary and the intervals', async (t) => {
  const yn = (truth: 'yes' | 'no', answer: 'yes' | 'no'): ScoredAnswer => ({ questionId: `${truth}${answer}${Math.random()}`, category: 'pope', dataType: 'multiple_choice', kind: 'yesno', score: truth === answer ? 1 : 0, yesNo: { truth, answer } });
  const s = summarize([yn('yes', 'yes'), yn('yes', 'yes'), yn('yes', 'no'), yn('no', 'yes'), yn('no', 'no')]);
  t.equal(s.accuracy, 0.6);
  t.same(s.yesNo, { precision: 2 / 3, recall: 2 / 3, f1: 2 / 3, yesRatio: 0.6 });
  const i = interval(Array.from({ length: 100 }, (_, k) => (k < 50 ? 1 : 0)));
  t.ok(Math.abs(i.low - 0.404) < 0.002 && Math.abs(i.high - 0.596) < 0.002, `Wilson 50/100: [${i.low}, ${i.high}]`);
});

t.test('the paired bootstrap finds a real difference and not a null one', async (t) => {
  const better = pairedBootstrap(Array.from({ length: 400 }, (_, k) => [k % 2, k % 4 === 0 ? 0 : 1] as const));
  t.ok(better.difference > 0.2 && better.low > 0, `B better: ${better.difference} [${better.low}, ${better.high}]`);
  const same = pairedBootstrap(Array.from({ length: 400 }, (_, k) => [k % 2, (k + 1) % 2] as const));
  t.ok(same.low < 0 && same.high > 0, `no difference: [${same.low}, ${same.high}] spans 0`);
  const a: ScoredAnswer[] = [{ questionId: '1', category: 'c', dataType: 'short_answer', kind: 'exact', score: 0 }];
  const c = compareScored(a, [{ ...a[0]!, score: 1 }, { ...a[0]!, questionId: '2' }]);
  t.equal(c.overall.n, 1);
  t.equal(c.unpaired, 1, 'a question only B answered is left out and counted');
});

t.test("LLaVA's file formats: question file, truth as jsonl or LLaVA JSON, and bad lines", async (t) => {
  const q = path.join(dir, 'q.jsonl');
  await writeFile(q, '{"question_id": 1, "image": "a.png", "text": "What is it?\\nAnswer the question using a single word or phrase.", "category": "x"}\n\n{"question_id": "b", "image": "b.png", "text": "Is it?"}\n');
  t.same(await readQuestions(q), [
    { questionId: '1', image: 'a.png', text: 'What is it?\nAnswer the question using a single word or phrase.', category: 'x' },
    { questionId: 'b', image: 'b.png', text: 'Is it?' },
  ]);
  const bad = path.join(dir, 'bad.jsonl');
  await writeFile(bad, '{"question_id": 1, "image": "a.png", "text": "x"}\n{"question_id": 2, "text": "no image"}\n');
  const error = await readQuestions(bad).catch((e: unknown) => e);
  t.ok(isSrfError(error) && error.code === 'DATA_INVALID' && error.file === bad && /line 2: no image/.test(error.message), String(error));
  await writeFile(bad, '{"question_id": 1, "image": "a.png", "text": "x"}\n{not json\n{"question_id": 3, "image": "a.png", "text": "x"}\n');
  t.match(String(await readQuestions(bad).catch((e: unknown) => e)), /line 2: not JSON/);

  const vqa = path.join(dir, 'vqa-truth.jsonl');
  await writeFile(vqa, '{"question_id": 1, "answers": [{"answer": "two", "answer_confidence": "yes", "answer_id": 1}, {"answer": "2"}]}\n');
  t.same((await readTruth(vqa)).get('1')?.answers, ['two', '2'], "VQAv2's answers list");
  const llava = path.join(dir, 'truth.llava.json');
  await writeFile(llava, JSON.stringify([{ id: 'r1', image: 'a.png', conversations: [{ from: 'human', value: '<image>\nQ1' }, { from: 'gpt', value: 'A1' }, { from: 'human', value: 'Q2' }, { from: 'gpt', value: 'A2' }] }]));
  const fromLlava = await readTruth(llava);
  t.same([...fromLlava.keys()], ['r1', 'r1_1'], 'a LLaVA JSON: one truth per gpt turn');
});

t.test('a grammar holds every answer; one that does not parse stops the call with its code', async (t) => {
  const world = path.join(dir, 'world-grammar');
  const written = await writeWorldQuestions(world, { images: 1 });
  const files = worldModelPaths();
  const base = { questions: written.questionsFile, imageFolder: world, model: files.model, mmproj: files.mmproj, threads: 1, maxTokens: 8 };
  const held = await evaluate({ ...base, answersFile: path.join(world, 'held.jsonl'), grammar: 'root ::= "zebra" | "okapi"' });
  t.equal(held.answered, written.questions);
  const answers = (await readFile(path.join(world, 'held.jsonl'), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
  t.ok(answers.every((a) => a === 'zebra' || a === 'okapi'), `every answer is one the grammar allows (${[...new Set(answers)].join(', ')})`);
  await t.rejects(evaluate({ ...base, answersFile: path.join(world, 'bad.jsonl'), grammar: 'root ::= (' }), { code: 'GRAMMAR_INVALID' });
  t.equal((await readFile(path.join(world, 'bad.jsonl'), 'utf8')).trim(), '', 'no error line per question: the call stopped');
});

t.test('the world end to end: answer, resume, a missing image, score, compare', async (t) => {
  const world = path.join(dir, 'world');
  const written = await writeWorldQuestions(world, { images: 12 });
  t.equal(written.questions, 120, 'one question per image family per scene');
  // One question's image is missing: an error line, the others go on.
  const questions = (await readFile(written.questionsFile, 'utf8')).trim().split('\n');
  const missing = JSON.parse(questions[5]!) as { question_id: string; image: string };
  questions[5] = JSON.stringify({ ...missing, image: 'images/no-such-image.png' });
  await writeFile(written.questionsFile, `${questions.join('\n')}\n`);
  const files = worldModelPaths();
  const answers = path.join(world, 'round0.answers.jsonl');
  const base = { questions: written.questionsFile, imageFolder: world, model: files.model, mmproj: files.mmproj, answersFile: answers, threads: 1, truth: written.truthFile };
  const first = await evaluate({ ...base, shard: '0/2' });
  t.equal(first.questions, 60, 'shard 0/2: every other question');
  const second = await evaluate(base);
  t.equal(second.resumed, 60, 'the first shard is kept, not asked again');
  t.equal(second.answered + second.errors, 60);
  t.equal(first.errors + second.errors, 1, 'the missing image is one error');
  const lines = (await readFile(answers, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(lines.length, 120);
  for (const key of ['question_id', 'prompt', 'text', 'answer_id', 'model_id', 'metadata']) t.ok(lines.every((l) => key in l), `every line has ${key}`);
  const failed = lines.find((l) => l.question_id === missing.question_id)!;
  t.match(failed.metadata, { error: { code: /^(FILE_NOT_FOUND|IMAGE_UNREADABLE)$/ } });

  // A cut-short line (a kill mid-write) and the error line are asked again on the next call.
  await writeFile(answers, `${(await readFile(answers, 'utf8'))}{"question_id": "x", "te`);
  const third = await evaluate(base);
  t.equal(third.resumed, 119, 'the good lines are kept');
  t.equal(third.errors, 1, 'the error line is asked again (the image is still missing)');

  const score = third.score!;
  t.equal(score.report.overall.n, 120);
  t.equal(Object.keys(score.report.byCategory).length, 10, 'one category per family');
  t.equal(score.answersWithoutTruth, 0);

  // The CLI: score, and compare with itself (a difference of exactly 0).
  const cli = await runCli(['eval', '--answers-file', answers, '--truth', written.truthFile, '--questions', written.questionsFile]);
  t.equal(cli.code, 0, cli.stderr);
  t.match(cli.stdout, /all\s+120\s+\d+\.\d %/);
  const compared = await runCli(['eval', '--compare', answers, answers, '--truth', written.truthFile, '--json']);
  t.equal(compared.code, 0, compared.stderr);
  const c = JSON.parse(compared.stdout.trim().split('\n').pop()!) as { comparison: { overall: { difference: number; n: number } } };
  t.same([c.comparison.overall.n, c.comparison.overall.difference], [120, 0]);

  // Truth and answers that do not match are reported with counts.
  const partialTruth = path.join(world, 'partial-truth.jsonl');
  await writeFile(partialTruth, (await readFile(written.truthFile, 'utf8')).split('\n').slice(0, 100).join('\n') + '\n{"question_id": "not-asked", "answer": "red"}\n');
  const partial = await scoreAnswersFile(answers, partialTruth);
  t.same([partial.answersWithoutTruth, partial.truthWithoutAnswer], [20, 1]);
});
