/**
 * One case of the stress suite (test/16-stress.test.ts), run in a child process of its own so that
 * a crash (SIGABRT, SIGSEGV) is a failed assertion in the parent, not a dead test runner.
 *
 *   node --loader <ts> stress-child.ts <case>     (the world's files in SRF_STRESS_WORLD, JSON)
 *
 * Exits 0 when the case held, 1 with the reason on stderr when it did not.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Embedder, SrfError, VisionModel } from '../../lib/index.js';
import { native, packageRoot } from '../../lib/engine/native.js';
import type { NativeCompletion } from '../../lib/engine/native.js';
import type { TestWorld } from './fixtures.js';

const world = JSON.parse(process.env.SRF_STRESS_WORLD ?? '{}') as TestWorld;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small seeded PRNG (mulberry32): the same run every time. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

async function until(what: string, condition: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(5);
  }
}

const open = (options: Partial<Parameters<typeof VisionModel.open>[0]> = {}) =>
  VisionModel.open({ model: world.model, mmproj: world.mmproj, threads: 1, ...options });

/** The raw addon's loader arguments, for cases that go around lib/ on purpose. */
const rawLoad = (extra: Record<string, unknown>) => ({ model: world.model, mmproj: world.mmproj, threads: 1, contextSize: 4096, ...extra });

const cases: Record<string, () => Promise<void>> = {
  /** parallel > batchSize: refused at open, never an abort of the process. */
  async 'parallel-above-batch'() {
    const opened = await open({ parallel: 16, batchSize: 8, contextSize: 8192 }).then(
      (m) => m,
      (e: unknown) => e,
    );
    if (opened instanceof VisionModel) {
      // What used to abort the process: 16 running sequences in a batch of 8.
      await opened.generateBatch(Array.from({ length: 16 }, (_, i) => ({ image: world.images[i % 4]!, prompt: `q${i}`, sampling: { maxTokens: 4 } })));
      await opened.close();
      assert.fail('open({ parallel: 16, batchSize: 8 }) should have been refused');
    }
    assert.ok(opened instanceof SrfError && opened.code === 'INVALID_ARGUMENT', String(opened));
    assert.match(opened.message, /parallel/);
    assert.match(opened.message, /16/);

    // The addon itself, called around lib/'s check, refuses the relation too.
    const raw = new (native().VisionModel)(() => {});
    const rawLoaded = await Promise.resolve()
      .then(() => raw.load(rawLoad({ parallel: 16, prefixCache: 2, batchSize: 8 })))
      .then(
      () => 'loaded',
      (e: SrfError) => e.code,
    );
    if (rawLoaded === 'loaded') {
      const rgb = new Uint8Array(56 * 56 * 3).fill(100);
      for (let i = 0; i < 16; i++) {
        raw.submit({ beforeImage: 'sys ', afterImage: `q${i}`, prefixKey: `k${i % 4}`, rgb, size: 56, temperature: 0, topP: 1, topK: 0, seed: 0, maxTokens: 4, ignoreEos: true, grammar: '' });
      }
      await sleep(2000);
      await raw.close();
      assert.fail('the addon loaded parallel 16 with batchSize 8');
    }
    assert.equal(rawLoaded, 'INVALID_ARGUMENT');

    // A default parallel is sized to the batch instead: 8 requests in a batch of 4 all complete.
    const model = await open({ batchSize: 4, contextSize: 4096 });
    assert.ok(model.info.parallel <= 4, `parallel ${model.info.parallel} with batchSize 4`);
    const results = await model.generateBatch(Array.from({ length: 8 }, (_, i) => ({ image: world.images[i % 4]!, prompt: `q${i}`, sampling: { maxTokens: 6, ignoreEos: true } })));
    assert.deepEqual(results.map((r) => r.ok && r.generatedTokens), Array(8).fill(6));
    await model.close();
  },

  /** stats() called without pause while close() frees the engine; afterwards it answers the final counts. */
  async 'stats-during-close'() {
    const model = await open({ parallel: 4, contextSize: 16384, kvLayout: 'unified' });
    const images = await Promise.all(world.images.map((i) => model.prepareImage(i)));
    const work = Array.from({ length: 8 }, (_, i) =>
      model.generate({ image: images[i % 4]!, prompt: `q${i}`, sampling: { maxTokens: i < 2 ? 2 : 3000, ignoreEos: true } }).then(
        () => 'ok',
        (e: SrfError) => e.code,
      ),
    );
    await until('two requests complete and four run', () => model.stats().completed === 2 && model.stats().active === 4);
    let closed = false;
    let calls = 0;
    const hammer = (async () => {
      while (!closed) {
        model.stats();
        calls++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    await model.close().finally(() => (closed = true));
    await hammer;
    const codes = await Promise.all(work);
    assert.deepEqual(codes.filter((c) => c !== 'ok').sort(), Array(6).fill('CLOSED'));
    const after = model.stats();
    assert.equal(after.completed, 2, 'a closed model reports its final counts');
    assert.equal(after.failed, 6);
    assert.equal(after.active + after.queued, 0);
    assert.ok(calls > 0);
  },

  /** The process exits (process.exit) while requests run, with two models never closed. */
  async 'exit-without-close'() {
    const idle = await open({ parallel: 2 });
    await idle.generate({ image: world.images[0]!, prompt: 'x', sampling: { maxTokens: 2 } });
    const busy = await open({ parallel: 4, contextSize: 16384, kvLayout: 'unified' });
    for (let i = 0; i < 8; i++) void busy.generate({ image: world.images[i % 4]!, prompt: `q${i}`, sampling: { maxTokens: 3000, ignoreEos: true } }).catch(() => {});
    await until('four requests run', () => busy.stats().active === 4);
    process.stdout.write('exiting\n');
    process.exit(0);
  },

  /** A model never closed whose requests are done: the process ends by itself, cleanly. */
  async 'natural-exit-without-close'() {
    const model = await open({ parallel: 2 });
    const r = await model.generate({ image: world.images[0]!, prompt: 'x', sampling: { maxTokens: 2 } });
    assert.equal(r.generatedTokens, 2);
    const embedder = await Embedder.open({ model: world.embedder!, threads: 1 });
    await embedder.embed(['a']);
    // Neither is closed: teardown must free them without touching what Node already freed.
  },

  /** Three worker threads, each with a model running requests, terminated mid-run. */
  async 'workers-terminated'() {
    const addon = process.env.SRF_NATIVE_ADDON ?? join(packageRoot(), 'build', 'Release', 'srf_native.node');
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.addon);
      const m = new addon.VisionModel(() => {});
      m.load(workerData.load).then(() => {
        const rgb = new Uint8Array(56 * 56 * 3);
        for (let i = 0; i < 24; i++) {
          rgb.fill(i * 10);
          m.submit({ beforeImage: 'sys ', afterImage: 'q' + i, prefixKey: 'k' + i, rgb, size: 56, temperature: 0.8, topP: 0.9, topK: 40, seed: i, maxTokens: 40 + i * 8, ignoreEos: true, grammar: '' });
        }
        const poll = setInterval(() => { if (m.stats().active > 0) { clearInterval(poll); parentPort.postMessage('running'); } }, 5);
      }, (e) => parentPort.postMessage('load failed: ' + e.message));
    `;
    const workers = Array.from({ length: 3 }, () => new Worker(code, { eval: true, workerData: { addon, load: rawLoad({ parallel: 4, prefixCache: 4 }) } }));
    const states = await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
    assert.deepEqual(states, ['running', 'running', 'running']);
    await Promise.all(workers.map((w) => w.terminate()));
    // Their engines' requests would be completing now: give a loop still running time to do harm.
    await sleep(1500);
    // The process goes on: a model on the main thread still works.
    const model = await open({ parallel: 2 });
    const r = await model.generate({ image: world.images[1]!, prompt: 'after', sampling: { maxTokens: 3, ignoreEos: true } });
    assert.equal(r.generatedTokens, 3);
    await model.close();
  },

  /** 120 requests, about half aborted at random times: every one settles, ok or ABORTED. */
  async 'random-aborts'() {
    const rand = random(11);
    const model = await open({ parallel: 4, contextSize: 4096 });
    const images = await Promise.all(world.images.map((i) => model.prepareImage(i)));
    const work = Array.from({ length: 120 }, (_, i) => {
      const control = new AbortController();
      if (rand() < 0.5) setTimeout(() => control.abort(), Math.floor(rand() * 400));
      const sampling = { maxTokens: 1 + Math.floor(rand() * 60), ignoreEos: rand() < 0.5, temperature: rand() < 0.5 ? 0 : 0.8, seed: i };
      return model.generate({ image: images[i % 4]!, prompt: `question ${i}`, sampling, signal: control.signal }).then(
        () => 'ok',
        (e: SrfError) => e.code,
      );
    });
    const codes = await Promise.all(work);
    const counts = codes.reduce<Record<string, number>>((c, code) => ({ ...c, [code]: (c[code] ?? 0) + 1 }), {});
    assert.deepEqual(Object.keys(counts).sort(), ['ABORTED', 'ok'], JSON.stringify(counts));
    const stats = model.stats();
    assert.equal(stats.active + stats.queued, 0);
    assert.equal(stats.completed + stats.failed, 120);
    await model.close();
    process.stdout.write(`${JSON.stringify(counts)}\n`);
  },

  /** Numbers that would be undefined behaviour in C++: refused up front, naming option and value. */
  async 'bad-numbers'() {
    const expectInvalid = async (what: Promise<unknown>, option: string, value: unknown) => {
      const error = await what.then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof SrfError, `${option} = ${String(value)} was accepted`);
      assert.equal(error.code, 'INVALID_ARGUMENT', error.message);
      assert.ok(error.message.includes(option), `"${error.message}" names ${option}`);
      assert.ok(error.message.includes(String(value)), `"${error.message}" names ${String(value)}`);
    };
    const model = await open({ parallel: 2 });
    const sampling: [string, unknown][] = [
      ['seed', -1], ['seed', 2 ** 40], ['seed', 1.5], ['seed', NaN],
      ['temperature', NaN], ['temperature', -1], ['temperature', Infinity],
      ['topP', 2], ['topP', -0.1], ['topP', NaN],
      ['topK', -3], ['topK', 2.5], ['topK', 2 ** 40],
      ['maxTokens', 0], ['maxTokens', 2 ** 31], ['maxTokens', NaN],
      ['ignoreEos', 1], ['grammar', 5],
    ];
    for (const [name, value] of sampling) {
      await expectInvalid(model.generate({ image: world.images[0]!, prompt: 'x', sampling: { maxTokens: 2, [name]: value } }), name, value);
    }
    assert.equal(model.stats().completed + model.stats().failed, 0, 'no bad request reached the engine');
    await model.close();
    const opens: [string, unknown][] = [
      ['contextSize', -1], ['contextSize', 1.5], ['contextSize', NaN], ['contextSize', 2 ** 40],
      ['gpuLayers', 1.5], ['gpuLayers', -2], ['gpuLayers', NaN],
      ['threads', -1], ['threads', 0.5],
      ['parallel', 0], ['parallel', 300], ['prefixCache', 2.5],
      ['batchSize', 0], ['batchSize', NaN], ['requestTokens', NaN],
    ];
    for (const [name, value] of opens) await expectInvalid(open({ [name]: value }), name, value);
    await expectInvalid(open({ loras: [{ path: world.lora!, scale: NaN }] }), 'scale', NaN);
    for (const [name, value] of [['threads', -1], ['maxTokens', 1.5], ['gpuLayers', NaN]] as const) {
      await expectInvalid(Embedder.open({ model: world.embedder!, [name]: value }), name, value);
    }
  },

  /**
   * A unified KV cache with room for about two requests and six submitted at once, one of them
   * too long for the cache on its own: that one fails alone with CONTEXT_TOO_SMALL before
   * generating anything; the others complete, waiting for room instead of failing.
   */
  async 'overcommit'() {
    const probe = await open({ parallel: 1, contextSize: 1024 });
    const first = await probe.generate({ image: world.images[0]!, prompt: 'q', sampling: { maxTokens: 1 } });
    const budget = probe.info.contextSize - 16; // engine.cpp's kCellSlack
    await probe.close();
    const own = Math.floor((budget - 2 * first.prefixTokens) / 2) - first.promptTokens - 4;
    const model = await open({ parallel: 4, prefixCache: 4, contextSize: 1024, kvLayout: 'unified' });
    const images = await Promise.all(world.images.map((i) => model.prepareImage(i)));
    const tooLong = budget - first.promptTokens - 2; // fits the budget without its prefix, not with it
    const settle = (p: Promise<NativeCompletion | { generatedTokens: number }>) =>
      p.then(
        (r) => `ok:${r.generatedTokens}`,
        (e: SrfError) => e.code,
      );
    const results = await Promise.all([
      settle(model.generate({ image: images[0]!, prompt: 'q', sampling: { maxTokens: tooLong, ignoreEos: true } })),
      ...Array.from({ length: 5 }, (_, i) => settle(model.generate({ image: images[i % 4]!, prompt: 'q', sampling: { maxTokens: own, ignoreEos: true } }))),
    ]);
    assert.deepEqual(results, ['CONTEXT_TOO_SMALL', ...Array(5).fill(`ok:${own}`)]);
    assert.equal(model.stats().generatedTokens, 5 * own, 'the request that cannot fit generated nothing');
    await model.close();
  },

  // Recovery paths a healthy CPU run cannot produce on demand, reached through SRF_FAILPOINTS
  // (native/failpoints.h), which the parent sets for these cases.

  /** llama_decode throws at step 5 (SRF_FAILPOINTS=step-throw@5): that step's requests fail, the engine keeps serving. */
  async 'step-throws'() {
    const model = await open({ parallel: 4 });
    const images = await Promise.all(world.images.map((i) => model.prepareImage(i)));
    const batch = (tag: string) =>
      Promise.all(images.map((image, i) => model.generate({ image, prompt: `${tag}${i}`, sampling: { maxTokens: 12, ignoreEos: true } }).then(
        (r) => `ok:${r.generatedTokens}`,
        (e: SrfError) => `${e.code}:${e.message}`,
      )));
    const first = await batch('a');
    assert.equal(first.filter((r) => r.startsWith('DECODE_FAILED:') && r.includes('failpoint step-throw')).length, 4, first.join('\n'));
    assert.deepEqual(await batch('b'), Array(4).fill('ok:12'), 'the engine serves after a step threw');
    await model.close();
  },

  /** Admitting the second request throws (admit-throw@2): it fails alone. */
  async 'admit-throws'() {
    const model = await open({ parallel: 4 });
    const images = await Promise.all(world.images.map((i) => model.prepareImage(i)));
    const results = await model.generateBatch(images.slice(0, 3).map((image, i) => ({ image, prompt: `q${i}`, sampling: { maxTokens: 5, ignoreEos: true } })));
    assert.deepEqual(results.map((r) => (r.ok ? r.generatedTokens : r.error.code)), [5, 'DECODE_FAILED', 5]);
    await model.close();
  },

  /** llama_decode finds no KV slot at step 4 (decode-full@4): the newest request fails, the others go on. */
  async 'kv-full'() {
    const model = await open({ parallel: 4, contextSize: 4096, kvLayout: 'unified' });
    const images = await Promise.all(world.images.map((i) => model.prepareImage(i)));
    const results = await model.generateBatch(images.slice(0, 3).map((image, i) => ({ image, prompt: `q${i}`, sampling: { maxTokens: 10, ignoreEos: true } })));
    assert.deepEqual(results.map((r) => (r.ok ? r.generatedTokens : r.error.code)), [10, 10, 'CONTEXT_TOO_SMALL']);
    await model.close();
  },
};

const name = process.argv[2] ?? '';
const run = cases[name];
if (!run) {
  process.stderr.write(`unknown stress case ${name}; known: ${Object.keys(cases).join(', ')}\n`);
  process.exit(2);
}
run().then(
  () => process.stdout.write(`case ${name} held\n`),
  (error: unknown) => {
    process.stderr.write(`case ${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
