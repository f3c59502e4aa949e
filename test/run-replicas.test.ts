/**
 * Engine replicas: `devices` in VisionModel.open and refine(), `--devices` in the CLI. Here on the CPU
 * backend (two CPU replicas); real multi-GPU hardware is exercised by the same code with GPU numbers.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { resolveDevices, parseDevicesOption, defaultDevices } from '../lib/engine/devices.js';
import { VisionModel } from '../lib/vision-model.js';
import { identifyImage } from '../lib/jobs/inputs.js';
import { refine } from '../lib/jobs/refine.js';
import type { ReplicaFailure } from '../lib/engine/replicas.js';
import { runCli } from './helpers/cli.js';
import { readJournal as lines, tinyRun } from './helpers/tiny-run.js';

async function world(count = 16) {
  const names = [...Array.from({ length: count }, (_, i) => `p${i}.png`), 'broken.png'];
  const { dir, models, base } = await tinyRun(names, { threads: 2, devices: ['cpu', 'cpu'] });
  return { dir, models, names, base };
}

async function withEnv<T>(name: string, value: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env[name];
  process.env[name] = value;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  }
}

t.test('devices: all, GPU numbers, names and cpu, checked against what the engine sees', async (t) => {
  const cpu = { name: 'CPU', description: 'x', type: 'cpu', memoryTotal: 0, memoryFree: 0 };
  const gpu = (i: number) => ({ name: `CUDA${i}`, description: 'H200', type: 'gpu', memoryTotal: 1, memoryFree: 1 });
  const two = [gpu(0), gpu(1), cpu];
  t.same(resolveDevices('all', two).map((d) => d.label), ['gpu 0 (CUDA0)', 'gpu 1 (CUDA1)']);
  t.same(resolveDevices('all', [cpu]), [{ label: 'cpu', onGpu: false }], 'all without a GPU is the CPU');
  t.same(resolveDevices('1,0', two).map((d) => d.device), ['CUDA1', 'CUDA0']);
  t.same(resolveDevices(['cpu', 'CUDA1'], two).map((d) => d.label), ['cpu', 'gpu 1 (CUDA1)']);
  t.same(resolveDevices('cpu,cpu', [cpu]).length, 2);
  t.same(resolveDevices('split', two), [], 'split: no replicas, one engine over all GPUs');
  t.throws(() => resolveDevices('2', two), { code: 'INVALID_ARGUMENT', message: /GPU 2 was asked for, but the engine sees 2 GPUs \(0: CUDA0, 1: CUDA1\)/ });
  t.throws(() => resolveDevices('0', [cpu]), { code: 'INVALID_ARGUMENT', message: /sees no GPU/ });
  t.throws(() => resolveDevices('Vulkan0', two), { code: 'INVALID_ARGUMENT', message: /no device named "Vulkan0"/ });
  t.throws(() => parseDevicesOption('0,,1'), { code: 'INVALID_ARGUMENT' });
  t.throws(() => resolveDevices([], two), { code: 'INVALID_ARGUMENT' });
  t.equal(defaultDevices(undefined, two), 'all', 'several GPUs: all of them by default');
  t.equal(defaultDevices(0, two), undefined, 'not when layers stay on the CPU');
  t.equal(defaultDevices(undefined, [gpu(0), cpu]), undefined, 'one GPU: one engine as before');
});

t.test('VisionModel.open with two CPU replicas: requests spread over both, an image stays on its replica', async (t) => {
  const { models, dir, names } = await world(4);
  await using model = await VisionModel.open({ model: models.model, mmproj: models.mmproj, parallel: 2, threads: 2, devices: 'cpu,cpu' });
  t.same(model.info.devices, ['cpu', 'cpu']);
  const images = names.filter((n) => !n.includes('broken')).map((n) => join(dir, 'images', n));
  const results = await model.generateBatch(images.map((image) => ({ image, prompt: 'What is it?', sampling: { maxTokens: 8 } })));
  t.ok(results.every((r) => r.ok), 'every image answered');
  const first = model.replicaStats();
  t.equal(first.length, 2);
  t.ok(first.every((r) => r.requests > 0 && r.engine.completed > 0), `both replicas worked (${first.map((r) => r.requests).join(' + ')})`);
  // the same image again: its prefix is cached on the replica that encoded it, so no new misses anywhere
  const misses = model.stats().prefixMisses;
  await model.generate({ image: images[0]!, prompt: 'Describe it.', sampling: { maxTokens: 4 } });
  t.equal(model.stats().prefixMisses, misses, 'routed to the replica that holds its prefix');
  t.equal(model.stats().completed, first.reduce((sum, r) => sum + r.engine.completed, 0) + 1, 'stats add the replicas up');
});

t.test('refine with two CPU replicas: one stream, one journal, every image once', async (t) => {
  const { base, names } = await world();
  const logs: string[] = [];
  const summary = await refine({ ...base, onLog: (e) => logs.push(e.message) }).complete();
  t.equal(summary.status, 'complete');
  t.match(logs.join('\n'), /2 replicas \(cpu, cpu\), each with 2 sequences/);
  const ids = (await lines(summary.out)).map((l) => l.id);
  t.same([...ids].sort(), names.map((n) => identifyImage(n).id).sort(), 'each image exactly once in the one journal');
  const manifest = JSON.parse(await readFile(join(summary.out, 'run.json'), 'utf8'));
  t.same(manifest.generation.devices, ['cpu', 'cpu']);
  t.equal(manifest.replicas.length, 2);
  t.ok(manifest.replicas.every((r: { requests: number }) => r.requests > 0), 'both replicas took images from the stream');
  t.equal(manifest.generation.inFlight, 2 * 2 * 2, 'in flight: twice the sequences of all replicas');
});

// Faults are injected in the native engine (native/failpoints.h, scoped to one replica with #R):
// device-lost makes every decode and image encode of that engine fail from its Nth decode on, as a
// lost GPU does; the engine itself declares the device lost (DEVICE_FAILED) after two in a row.
t.test('a replica whose device is lost hands its requests back and the run goes on with the other', async (t) => {
  const { base, names } = await world();
  const logs: string[] = [];
  const summary = await withEnv('SRF_FAILPOINTS', 'device-lost@3#1', () => refine({ ...base, onLog: (e) => logs.push(e.message) }).complete());
  t.equal(summary.status, 'complete');
  t.match(logs.join('\n'), /engine replica 1 on cpu failed \(DEVICE_FAILED: the device stopped working \(2 decodes or image encodes in a row failed; the last: .*\(code -3\)\).*\); it handed back its \d+ requests in flight, and the run goes on with 1 replica/);
  const journal = await lines(summary.out);
  t.same(journal.map((l) => l.id).sort(), names.map((n) => identifyImage(n).id).sort(), 'no image lost or doubled');
  t.same(journal.filter((l) => l.status === 'error').map((l) => l.image), ['broken.png'], 'no image failed because of the replica');
  const manifest = JSON.parse(await readFile(join(summary.out, 'run.json'), 'utf8'));
  t.same(manifest.replicas.map((r: { down: boolean }) => r.down), [false, true]);
});

t.test('a request\'s own failure does not take its replica down', async (t) => {
  const { models, dir, names } = await world(6);
  const failures: ReplicaFailure[] = [];
  const images = names.filter((n) => !n.includes('broken')).map((n) => join(dir, 'images', n));
  // One decode step of replica 0 throws: its requests fail with DECODE_FAILED, once; the device is fine.
  await withEnv('SRF_FAILPOINTS', 'step-throw@2#0', async () => {
    await using model = await VisionModel.open({ model: models.model, mmproj: models.mmproj, parallel: 2, threads: 2, devices: ['cpu', 'cpu'], onReplicaFailure: (f) => failures.push(f) });
    const results = await model.generateBatch(images.map((image) => ({ image, prompt: 'What is it?', sampling: { maxTokens: 8 } })));
    t.same(results.filter((r) => !r.ok), [], 'the failed step\'s requests were answered on the other replica');
    // A context too small for the prompt is the request's, on whichever replica: it reaches the caller.
    const long = await model.generate({ image: images[0]!, prompt: 'word '.repeat(5000), sampling: { maxTokens: 4 } }).catch((e: { code: string }) => e.code);
    t.equal(long, 'CONTEXT_TOO_SMALL');
    t.same(failures, [], 'no replica was taken down');
    t.same(model.replicaStats().map((r) => r.down), [false, false]);
    const after = await model.generate({ image: images[1]!, prompt: 'What is it?', sampling: { maxTokens: 4 } });
    t.type(after.text, 'string', 'both still serve');
  });
});

t.test('VisionModel.open: a lost device passes its requests on; when every replica is lost, DEVICE_FAILED', async (t) => {
  const { models, dir, names } = await world(6);
  const failures: ReplicaFailure[] = [];
  const images = names.filter((n) => !n.includes('broken')).map((n) => join(dir, 'images', n));
  await withEnv('SRF_FAILPOINTS', 'device-lost@2#0', async () => {
    await using model = await VisionModel.open({ model: models.model, mmproj: models.mmproj, parallel: 2, threads: 2, devices: ['cpu', 'cpu'], onReplicaFailure: (f) => failures.push(f) });
    const results = await model.generateBatch(images.map((image) => ({ image, prompt: 'What is it?', sampling: { maxTokens: 8 } })));
    t.same(results.filter((r) => !r.ok), [], 'every image answered despite the failure');
    t.equal(failures.length, 1);
    t.equal(failures[0]?.replica, 0);
    t.equal(failures[0]?.error.code, 'DEVICE_FAILED');
    t.equal(failures[0]?.remaining, 1);
  });
  failures.length = 0;
  await withEnv('SRF_FAILPOINTS', 'device-lost@2#0,device-lost@3#1', async () => {
    await using model = await VisionModel.open({ model: models.model, mmproj: models.mmproj, parallel: 2, threads: 2, devices: ['cpu', 'cpu'], onReplicaFailure: (f) => failures.push(f) });
    const results = await model.generateBatch(images.map((image) => ({ image, prompt: 'What is it?', sampling: { maxTokens: 8 } })));
    t.equal(failures.length, 2, 'both went down');
    const errors = results.flatMap((r) => (r.ok ? [] : [r.error]));
    t.ok(errors.length > 0 && errors.every((e) => e.code === 'DEVICE_FAILED'), `the callers get DEVICE_FAILED (${errors.map((e) => e.code).join(', ')})`);
    t.match(errors[0]?.message, /every engine replica's device failed \(replica 0 \(cpu\): the device stopped working.*replica 1 \(cpu\): the device stopped working/);
  });
});

t.test('every replica lost in a run: it stops with DEVICE_FAILED, journals no image it did not finish, and a resume does them', async (t) => {
  const { base, names } = await world();
  const first = await withEnv('SRF_FAILPOINTS', 'device-lost@120#0,device-lost@200#1', () => refine(base).complete().then(() => null, (e: { code: string }) => e));
  t.equal(first?.code, 'DEVICE_FAILED', 'the run ends with the coded error');
  const before = await lines(base.out);
  t.same(before.filter((l) => l.status === 'error' && l.image !== 'broken.png'), [], 'no image became an error line');
  const manifest = JSON.parse(await readFile(join(base.out, 'run.json'), 'utf8'));
  t.equal(manifest.status, 'failed');
  t.equal(manifest.error.code, 'DEVICE_FAILED');
  const summary = await refine(base).complete();
  t.equal(summary.status, 'complete', 'the resume, on working devices, finishes');
  const after = await lines(base.out);
  t.same(after.map((l) => l.id).sort(), names.map((n) => identifyImage(n).id).sort(), 'every image once');
  t.ok(before.length < after.length, `the resume did the rest (${before.length} before, ${after.length} after)`);
});

t.test('--devices in the CLI, and a device the machine does not have', async (t) => {
  const { models, dir } = await world(3);
  const args = ['run', '--model', models.model, '--mmproj', models.mmproj, '--images', join(dir, 'images'), '--out', join(dir, 'cli'), '--parallel', '1', '--threads', '2', '--max-tokens-qa', '16', '--max-tokens-check', '8', '--no-report'];
  const ok = await runCli([...args, '--devices', 'cpu,cpu']);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stderr, /2 replicas \(cpu, cpu\)/);
  const info = await runCli(['info']);
  t.match(info.stdout, /run uses one engine on the CPU \(--devices cpu,cpu: two CPU replicas\)/, 'info says what run will use');
  const bad = await runCli([...args, '--devices', '3']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /INVALID_ARGUMENT: devices: GPU 3 was asked for, but the engine sees no GPU/);
});
