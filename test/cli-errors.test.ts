import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { parseFormats, parseGpu, parseLoraSpec } from '../lib/cli/options.js';
import { progressBar, progressLine } from '../lib/cli/progress.js';
import { writeFixtures } from '../fixtures/gguf/fixtures.js';
import { tempDir } from './helpers/fixtures.js';
import { runCli, writeImages } from './helpers/cli.js';
import { refine } from '../lib/index.js';

t.test('a bad model file is one clear error line, exit 2, before any work', async (t) => {
  const dir = await tempDir();
  const models = await writeFixtures(join(dir, 'models'), { llava: 'tiny', seed: 2 });
  await writeImages(join(dir, 'images'), ['a.png']);
  const fake = join(dir, 'fake.gguf');
  await writeFile(fake, 'this is not a GGUF file at all, just text');
  const out = join(dir, 'out');
  const result = await runCli(['run', '--model', fake, '--mmproj', models.mmproj, '--images', join(dir, 'images'), '--out', out]);
  t.equal(result.code, 2);
  const lines = result.stderr.trim().split('\n');
  t.equal(lines.length, 1, 'one line');
  t.match(lines[0], /^srf-native: NOT_GGUF: .*fake\.gguf/);
  t.notOk((await readdir(out)).includes('triplets.jsonl'), 'no image was touched');

  const swapped = await runCli(['run', '--model', models.mmproj, '--mmproj', models.model, '--images', join(dir, 'images'), '--out', out]);
  t.equal(swapped.code, 2);
  t.match(swapped.stderr, /^srf-native: MODEL_ARCH_UNSUPPORTED: .*--mmproj/m, 'says what to do');

  const missing = await runCli(['run', '--model', join(dir, 'nope.gguf'), '--mmproj', models.mmproj, '--images', join(dir, 'images'), '--out', out]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /^srf-native: FILE_NOT_FOUND: /m);
});

t.test('bad options: exit 2 with the reason, nothing written', async (t) => {
  const never = join(await tempDir(), 'never');
  const cases: [string[], RegExp][] = [
    [['run', '--model', 'm.gguf'], /INVALID_ARGUMENT: run needs --mmproj, --images, --out \(or --demo\)/],
    [['run', '--demo', '--no-such-option'], /INVALID_ARGUMENT: Unknown argument/],
    [['frobnicate'], /INVALID_ARGUMENT: Unknown argument: frobnicate/],
    [[], /INVALID_ARGUMENT: name a command/],
    [['run', '--demo', '--out', never, '--shard', '2/2'], /INVALID_ARGUMENT: Expected I\/N/],
    [['run', '--demo', '--out', never, '--parallel', '2', '--parallel=1'], /INVALID_ARGUMENT: --parallel was given more than once/],
    [['run', '--demo', '--out', never, '--gpu', 'maybe'], /INVALID_ARGUMENT: Expected on, off or a number of layers/],
    [['run', '--demo', '--out', never, '--truncated', 'maybe'], /INVALID_ARGUMENT: Invalid values:[\s\S]*truncated/],
    [['select', '--in', '/no/such/folder'], /FILE_NOT_FOUND: .*no run\.json/],
  ];
  for (const [args, pattern] of cases) {
    const result = await runCli(args);
    t.equal(result.code, 2, args.join(' '));
    t.match(result.stderr, pattern, args.join(' '));
  }
  await t.rejects(readdir(never), 'bad values are refused before --demo writes its files');
});

t.test('--help documents every command and run option; info prints the build', async (t) => {
  const help = await runCli(['run', '--help']);
  t.equal(help.code, 0);
  for (const option of ['--model', '--mmproj', '--images', '--out', '--lora', '--embedder', '--bertscore-model', '--keep-top', '--parallel', '--ctx', '--gpu', '--seed', '--limit', '--format', '--json', '--shard', '--round', '--merge-with', '--match-mix', '--grammar', '--truncated', '--demo']) {
    t.match(help.stdout, new RegExp(`${option}\\b`), option);
  }
  const top = await runCli(['--help']);
  for (const command of ['run', 'tasks', 'select', 'merge', 'report', 'info']) t.match(top.stdout, new RegExp(`srf-native ${command}`));
  const info = await runCli(['info', '--json']);
  t.equal(info.code, 0);
  t.match(JSON.parse(info.stdout), { backend: /^(cpu|cuda)$/, llamaCppVersion: String });
});

t.test('option parsers', async (t) => {
  t.same(parseLoraSpec('a/b.gguf'), { path: 'a/b.gguf' });
  t.same(parseLoraSpec('a/b.gguf:0.5'), { path: 'a/b.gguf', scale: 0.5 });
  t.same(parseLoraSpec('C:\\models\\x.gguf'), { path: 'C:\\models\\x.gguf' }, 'a drive letter is not a scale');
  t.same(parseLoraSpec('C:\\models\\x.gguf:2'), { path: 'C:\\models\\x.gguf', scale: 2 });
  t.same(parseGpu('on'), { gpuLayers: -1 });
  t.same(parseGpu('off'), { gpuLayers: 0, gpuVision: false });
  t.same(parseGpu('20'), { gpuLayers: 20 });
  t.same(parseFormats(['sharegpt,openai', 'llava', 'openai']), ['sharegpt', 'openai', 'llava']);
  t.throws(() => parseFormats(['csv']), { code: 'INVALID_ARGUMENT' });
});

t.test('progress: a bar with images/s, ETA and keep rate on a terminal, plain lines elsewhere', async (t) => {
  const p = { phase: 'generating' as const, done: 50, resumed: 10, processed: 40, total: 100, inFlight: 8, scored: 45, rejected: 3, errors: 2, keptEstimate: 10, keepRate: 0.2, imagesPerSecond: 2.5, etaSeconds: 20, elapsedSeconds: 16 };
  const bar = progressBar(p, 10);
  t.match(bar, /^\[█████░░░░░\] 50\/100 50% · 2\.50 img\/s · ETA 20s · kept≈20\.0% · rejected 3 · errors 2$/);
  t.match(progressBar({ ...p, total: null, etaSeconds: null }), /^\[counting…\] 50 · .* ETA \?/);
  t.match(progressLine({ ...p, etaSeconds: 3725 }), /^progress: 50\/100 images \(50\.0%\) · 2\.50 img\/s · ETA 1h02m .* in flight 8$/);
});

t.test('refine() refuses a truncatedAnswers it does not know, before it starts', async (t) => {
  t.throws(() => refine({ model: 'm.gguf', mmproj: 'p.gguf', images: 'i', out: 'o', truncatedAnswers: 'drop' as 'cut' }), { code: 'INVALID_ARGUMENT', message: /truncatedAnswers/ });
});
