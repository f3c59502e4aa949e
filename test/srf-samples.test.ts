/**
 * Sampled re-answers (issue 36, item 2's option; `run --samples K`): Q answered K more times at the
 * model's own distribution, seeded from the triplet's seed, and their agreement with A recorded, so a
 * selection can see probability spread over several answers that one greedy A' hides.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { equalityProvider } from './helpers/similarity.js';
import { refine } from '../lib/jobs/refine.js';
import { MAX_SAMPLES } from '../lib/jobs/refine-options.js';
import { AGREEMENT_SAMPLES } from '../lib/srf/filters.js';
import { FORMAT_SUFFIXES } from '../lib/srf/data-types.js';
import { DEFAULT_DECODING, DEFAULT_TEMPLATES } from '../lib/srf/prompts.js';
import { answerAgreement, lexicalSimilarityProvider } from '../lib/srf/score.js';
import { SAMPLED_REANSWER, imageSeed, runTriangle, type TriangleSettings } from '../lib/srf/triangle.js';
import type { GenerateRequest, GenerateResult } from '../lib/engine/types.js';
import type { TripletLine } from '../lib/outputs/journal.js';
import { runCli } from './helpers/cli.js';
import { SHORT_DECODING, SHORT_GRAMMAR, readJournal, tinyRun } from './helpers/tiny-run.js';

const SHORT_Q = `What shape is the red object?\n${FORMAT_SUFFIXES.shortAnswer}`;
const CHOICE_Q = ['What shape is the red object at the top?', 'A. cross', 'B. square', 'C. circle', 'D. star', FORMAT_SUFFIXES.multipleChoice].join('\n');

const provider = equalityProvider;

/** An engine that writes SHORT_Q and "circle" for I->QA, gives Q back for IA->Q, and answers sampled requests by their seed. */
function scriptedEngine() {
  const requests: GenerateRequest[] = [];
  return {
    requests,
    async generate(request: GenerateRequest): Promise<GenerateResult> {
      requests.push(request);
      let text = 'circle';
      if (request.prompt === DEFAULT_TEMPLATES.iToQaInstruction) text = `Question: ${SHORT_Q}\nAnswer: circle`;
      else if (request.prompt.startsWith('Here is an answer')) text = SHORT_Q;
      else if ((request.sampling?.temperature ?? 0) > 0) text = (request.sampling?.seed ?? 0) % 2 === 0 ? 'circle' : 'square';
      return { text, finishReason: 'stop', promptTokens: 1, prefixTokens: 0, prefixReused: false, generatedTokens: 1, tokens: [] };
    },
  };
}

const settings = (samples: number): TriangleSettings => ({
  templates: DEFAULT_TEMPLATES,
  sampling: { ...DEFAULT_DECODING, iToQa: { ...DEFAULT_DECODING.iToQa, grammar: undefined } } as TriangleSettings['sampling'],
  drafts: true,
  truncatedAnswers: 'cut',
  answerLineBound: undefined,
  samples,
});

t.test('the triangle samples Q\'s answer K more times, each with its own seed, only when told', async (t) => {
  const image = new Uint8Array(0);
  const engine = scriptedEngine();
  const result = await runTriangle(engine, image, settings(3), 41);
  t.equal(engine.requests.length, 6, 'I->QA, IA->Q, IQ->A and three sampled IQ->A');
  const sampled = engine.requests.filter((r) => (r.sampling?.temperature ?? 0) > 0 && r.prompt === SHORT_Q);
  t.equal(sampled.length, 3);
  t.same(sampled.map((r) => r.sampling?.seed), [1, 2, 3].map((i) => imageSeed(41, i)), 'seeded from the triplet\'s seed, one apart, none the I->QA seed itself');
  for (const r of sampled) {
    t.match(r.sampling, { ...SAMPLED_REANSWER, maxTokens: DEFAULT_DECODING.iqToA.maxTokens }, 'at the model\'s own distribution, the check\'s token budget');
    t.equal(r.draft, undefined, 'no draft: a sampled reply does not follow the logits greedily');
  }
  t.ok(result.status === 'complete');
  if (result.status === 'complete') t.same(result.answerSamples, ['circle', 'square', 'circle'], 'seeds 42, 43, 44 of the script');

  const plain = scriptedEngine();
  const none = await runTriangle(plain, image, settings(0), 41);
  t.equal(plain.requests.length, 3, 'the paper\'s three calls');
  t.ok(none.status === 'complete' && !('answerSamples' in none));
});

t.test('agreement: the answer-side similarity of each sample to A, averaged', async (t) => {
  const short = { question: SHORT_Q, answer: 'circle' };
  t.equal(await answerAgreement(short, ['circle', 'circle', 'square', 'circle'], provider), (1 + 1 + 0.5 + 1) / 4, 'the sentence cosine of short answers');
  t.ok(Number.isNaN(await answerAgreement(short, [], provider)), 'no samples: no agreement');
  const choice = { question: CHOICE_Q, answer: 'C' };
  t.equal(await answerAgreement(choice, ['C', 'circle', 'A', 'D'], provider, { choices: 'option-text' }), 0.5, 'letter choices by the option text they point to');
  t.equal(await answerAgreement(choice, ['C', 'circle', 'A', 'D'], provider, { choices: 'letter' }), 0.25, "the paper's letters: only C is C");
  t.equal(await answerAgreement({ question: 'Where is the star?\nAnswer with a box.', answer: '[0.1, 0.1, 0.5, 0.5]' }, ['[0.1, 0.1, 0.5, 0.5]', 'no box'], provider, { type: 'box' }), 0.5, 'boxes by IoU');
});

const NAMES = Array.from({ length: 6 }, (_, i) => `s${i}.png`);

t.test('a run with --samples records the samples and their agreement, reproducibly, and resumes only with the same K', async (t) => {
  // One sequence: batched decoding's rounding depends on what shares the batch, and a sampled token can follow it.
  const { dir, base } = await tinyRun(NAMES, { parallel: 1, inFlight: 1, grammar: SHORT_GRAMMAR, decoding: SHORT_DECODING, samples: 3 });
  const summary = await refine(base).result;
  const lines = (await readJournal(summary.out)).filter((l): l is TripletLine & { status: 'scored' } => l.status === 'scored');
  t.ok(lines.length >= 4, `${lines.length} scored`);
  for (const line of lines) {
    t.equal(line.answerSamples?.length, 3, `${line.id}: three samples`);
    // no embedder: the lexical fallback, as the run scored
    const expected = await answerAgreement({ question: line.question!, answer: line.answer! }, line.answerSamples!, lexicalSimilarityProvider, { choices: 'option-text', type: line.type! });
    t.equal(line.agreement, expected, `${line.id}: agreement ${line.agreement?.toFixed(3)} is the samples' similarity to A`);
  }
  t.ok(lines.some((l) => new Set(l.answerSamples).size > 1 || l.answerSamples![0] !== l.answerPrime), 'sampled, not greedy: some samples differ from each other or from A\'');
  const manifest = JSON.parse(await readFile(join(summary.out, 'run.json'), 'utf8'));
  t.match(manifest.generation.sampledReanswers, { count: 3, decoding: SAMPLED_REANSWER });
  t.equal(manifest.identity.values.samples, 3);

  const again = await refine({ ...base, out: join(dir, 'again') }).result;
  const twice = new Map((await readJournal(again.out)).map((l) => [l.id, l.answerSamples]));
  t.ok(lines.every((l) => JSON.stringify(twice.get(l.id)) === JSON.stringify(l.answerSamples)), 'the same samples again: seeded');

  await t.rejects(refine({ ...base, samples: 2 }).result, { code: 'OUTPUT_CONFLICT' }, 'a resume with another K is refused');
  const plain = await refine({ ...base, samples: undefined, filter: 'paper', out: join(dir, 'plain') }).result;
  t.ok((await readJournal(plain.out)).every((l) => l.answerSamples === undefined && l.agreement === undefined), 'a filter that asks for none, without --samples: the journal has neither');
  const byDefault = await refine({ ...base, samples: undefined, out: join(dir, 'default') }).result;
  t.ok((await readJournal(byDefault.out)).every((l) => l.answerSamples === undefined), 'the default filter asks for none');
  const agreement = await refine({ ...base, samples: undefined, filter: 'refined-agreement', out: join(dir, 'agreement') }).result;
  t.ok((await readJournal(agreement.out)).every((l) => l.status !== 'scored' || l.answerSamples?.length === AGREEMENT_SAMPLES), `refined-agreement asks for ${AGREEMENT_SAMPLES}`);
  t.throws(() => refine({ ...base, samples: 0, filter: 'refined-agreement', out: join(dir, 'none') }), { code: 'INVALID_ARGUMENT', message: /at least 1 with --filter refined-agreement.*samples/ }, 'refined-agreement cannot rank without samples');
  for (const bad of [MAX_SAMPLES + 1, -1, 1.5]) t.throws(() => refine({ ...base, samples: bad, out: join(dir, 'bad') }), { code: 'INVALID_ARGUMENT', message: /samples/ }, `samples ${bad}`);
});

t.test('the CLI takes --samples and refuses a count past the limit', async (t) => {
  const result = await runCli(['run', '--model', 'm.gguf', '--mmproj', 'p.gguf', '--images', '.', '--out', 'o', '--samples', String(MAX_SAMPLES + 1)]);
  t.not(result.code, 0);
  t.match(result.stderr, /INVALID_ARGUMENT[\s\S]*samples/);
});
