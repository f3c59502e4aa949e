// Host work per step (issue 10): rows are sampled in parallel on a pool, and greedy requests can
// carry a draft reply that the engine verifies several tokens per step. Neither may change a
// single output byte: the same seed gives the same tokens whatever the thread count, and a draft,
// right or wrong, gives exactly the greedy reply.
import t from 'tap';
import { VisionModel } from '../lib/index.js';
import type { GenerateRequest, GenerateResult, OpenVisionModelOptions } from '../lib/index.js';
import { QA_REPLY_GRAMMAR } from '../lib/srf/prompts.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { makeWorld, tempDir } from './helpers/fixtures.js';

const world = await makeWorld(4);
const KV_LAYOUTS = ['unified', 'per-sequence'] as const;

const open = (extra: Partial<OpenVisionModelOptions> = {}) =>
  VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 4, threads: 1, ...extra });

const reply = (r: GenerateResult) => [r.text, r.generatedTokens, r.finishReason];

t.test('sampled tokens do not depend on the number of sampling threads', async (t) => {
  // Sampled rows of every kind in the same steps: default top-k, top-k off, grammar, ignoreEos.
  const requests: GenerateRequest[] = [0, 1, 2, 3, 0, 1, 2, 3].map((i, k) => ({
    image: world.images[i]!,
    prompt: `Tell me ${k}.`,
    sampling: {
      temperature: 0.7 + 0.1 * (k % 3),
      topP: 0.9,
      seed: 100 + k,
      maxTokens: 48,
      ...(k % 4 === 1 ? { topK: 0 } : {}),
      ...(k % 4 === 2 ? { grammar: QA_REPLY_GRAMMAR, maxTokens: 96 } : { ignoreEos: true }),
    },
  }));
  const runs: unknown[][] = [];
  for (const samplingThreads of [1, 4, 3]) {
    await using model = await open({ samplingThreads, parallel: 8 });
    runs.push((await Promise.all(requests.map((r) => model.generate(r)))).map(reply));
  }
  t.same(runs[1], runs[0], '4 threads = 1 thread');
  t.same(runs[2], runs[0], '3 threads = 1 thread');
  t.ok(new Set(runs[0]!.map((r) => (r as unknown[])[0])).size > 4, 'the requests differ, so the comparison means something');
});

t.test('top-k 40 is the default for sampled requests', async (t) => {
  await using model = await open();
  const ask = (sampling: object) => model.generate({ image: world.images[0]!, prompt: 'Go.', sampling: { temperature: 1, seed: 3, maxTokens: 40, ignoreEos: true, ...sampling } });
  const [unset, forty, off] = await Promise.all([ask({}), ask({ topK: 40 }), ask({ topK: 0 })]);
  t.equal(unset.text, forty.text);
  t.not(off.text, forty.text, 'top-k off samples from the whole vocabulary');
});

for (const kvLayout of KV_LAYOUTS) {
  t.test(`drafts give exactly the greedy reply (kvLayout ${kvLayout})`, async (t) => {
    await using model = await open({ kvLayout });
    const requests: GenerateRequest[] = [0, 1, 2, 3, 0, 1].map((i, k) => ({
      image: world.images[i]!,
      prompt: `Question ${k}?`,
      sampling: { maxTokens: 24 + 4 * k, ...(k % 2 ? { ignoreEos: true } : {}) },
    }));
    const run = async (drafts: (GenerateRequest['draft'] | undefined)[]) => {
      const before = model.stats();
      const results = await Promise.all(requests.map((r, k) => model.generate({ ...r, ...(drafts[k] !== undefined ? { draft: drafts[k] } : {}) })));
      const after = model.stats();
      return { results, steps: after.steps - before.steps, drafted: after.draftTokens - before.draftTokens, accepted: after.draftAccepted - before.draftAccepted };
    };
    const plain = await run([]);
    t.ok(new Set(plain.results.map((r) => r.text)).size > 1, 'the requests differ, so the comparison means something');
    const truth = plain.results.map((r) => r.tokens);
    t.same(truth.map((tokens) => tokens.length), plain.results.map((r) => r.generatedTokens), 'a reply carries its token ids');
    const other = (token: number) => (token + 7) % model.info.vocabSize;

    const right = await run(truth);
    t.same(right.results.map(reply), plain.results.map(reply), 'the right draft');
    t.ok(right.accepted > 0, `the model confirmed draft tokens (${right.accepted} of ${right.drafted})`);
    t.ok(right.steps < plain.steps, `fewer steps with the right draft (${right.steps} vs ${plain.steps})`);

    // Right first token (so drafting starts), every later one wrong.
    const wrong = await run(truth.map((tokens) => tokens.map((token, i) => (i === 0 ? token : other(token)))));
    t.same(wrong.results.map(reply), plain.results.map(reply), 'a wrong draft');
    t.ok(wrong.drafted > 0 && wrong.accepted === 0, `wrong drafts were tried and none kept (${wrong.drafted})`);

    const half = await run(truth.map((tokens) => tokens.map((token, i) => (i < tokens.length / 2 ? token : other(token)))));
    t.same(half.results.map(reply), plain.results.map(reply), 'a draft right for its first half');
    t.ok(half.accepted > 0 && half.accepted < right.accepted, `part of it kept (${half.accepted})`);

    // Drafting and plain rows in the same steps, text drafts among them.
    const mixed = await run(truth.map((tokens, k) => (k % 3 === 0 ? undefined : k % 3 === 1 ? tokens : plain.results[k]!.text)));
    t.same(mixed.results.map(reply), plain.results.map(reply), 'drafting and plain requests together');
  });
}

t.test('a draft is refused where it cannot be verified', async (t) => {
  await using model = await open();
  const image = world.images[0]!;
  await t.rejects(model.generate({ image, prompt: 'x', sampling: { temperature: 0.5 }, draft: 'a' }), { code: 'INVALID_ARGUMENT' });
  await t.rejects(model.generate({ image, prompt: 'x', sampling: { grammar: QA_REPLY_GRAMMAR }, draft: 'a' }), { code: 'INVALID_ARGUMENT' });
  await t.rejects(model.generate({ image, prompt: 'x', draft: [1, model.info.vocabSize] }), { code: 'INVALID_ARGUMENT', message: /draft/ });
  const tokens = await model.generate({ image, prompt: 'x', sampling: { maxTokens: 8 }, draft: [1, 2, 3] });
  t.equal(tokens.generatedTokens > 0, true, 'token-id drafts are taken');
});

t.test('the trace times each step\'s sampling and counts its draft rows', async (t) => {
  const file = path.join(await tempDir(), 'trace.jsonl');
  process.env.SRF_TRACE = file; // read when the engine starts
  let stats;
  try {
    await using model = await open();
    const request = (i: number) => ({ image: world.images[i]!, prompt: 'Hello?', sampling: { maxTokens: 16, ignoreEos: true } });
    const first = await Promise.all([0, 1].map((i) => model.generate(request(i))));
    await Promise.all([0, 1].map((i) => model.generate({ ...request(i), draft: first[i]!.tokens })));
    stats = model.stats();
  } finally {
    delete process.env.SRF_TRACE;
  }
  const steps = (await readFile(file, 'utf8')).trim().split('\n').map((line) => JSON.parse(line)).filter((e) => e.ev === 'step');
  t.equal(steps.length, stats.steps);
  t.equal(steps.reduce((n, e) => n + e.draftRows, 0), stats.draftTokens, 'draft rows per step add up to stats().draftTokens');
  t.ok(stats.draftTokens > 0);
  t.ok(Math.abs(steps.reduce((n, e) => n + e.sampleUs, 0) / 1000 - stats.sampleMs) < 1, 'sampleUs adds up to stats().sampleMs');
  t.ok(steps.every((e, i) => i === 0 || e.t >= steps[i - 1].t + steps[i - 1].us), 'steps are timestamped in order');
});

t.test('the first-character prefilter gives the grammar passes over the whole vocabulary the same tokens', async (t) => {
  const requests: GenerateRequest[] = [0, 1, 2, 3, 0, 1].map((i, k) => ({
    image: world.images[i]!,
    prompt: `Ask ${k}.`,
    sampling: { grammar: QA_REPLY_GRAMMAR, maxTokens: 80, ...(k < 4 ? { temperature: 0.9, seed: 40 + k } : {}), ...(k === 3 ? { topK: 0 } : {}) },
  }));
  const runs: unknown[][] = [];
  let fullPasses = 0;
  for (const prefilter of ['1', '0']) {
    const file = path.join(await tempDir(), `trace-${prefilter}.jsonl`);
    process.env.SRF_GRAMMAR_PREFILTER = prefilter;
    process.env.SRF_TRACE = file;
    try {
      await using model = await open();
      runs.push((await Promise.all(requests.map((r) => model.generate(r)))).map(reply));
    } finally {
      delete process.env.SRF_GRAMMAR_PREFILTER;
      delete process.env.SRF_TRACE;
    }
    const steps = (await readFile(file, 'utf8')).trim().split('\n').map((line) => JSON.parse(line)).filter((e) => e.ev === 'step');
    if (prefilter === '1') fullPasses = steps.reduce((n, e) => n + e.grammarFull, 0);
  }
  t.ok(fullPasses > 0, `the grammar went over the whole vocabulary ${fullPasses} times, so the comparison means something`);
  t.same(runs[0], runs[1]);
});
