import { appendFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { writeFixtures } from '../fixtures/gguf/fixtures.js';
import { identifyImage } from '../lib/jobs/inputs.js';
import type { TripletLine } from '../lib/outputs/journal.js';
import { acquireOutputLock } from '../lib/outputs/lock.js';
import type { RunManifest } from '../lib/outputs/manifest.js';
import { tempDir } from './helpers/fixtures.js';
import { parseJsonLines, spawnCli, writeImages } from './helpers/cli.js';

async function journalLines(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter((l) => l.endsWith('}'));
  } catch {
    return [];
  }
}

t.test('a run killed with SIGKILL resumes with the same command: no image twice, none lost, JSON valid', async (t) => {
  const dir = await tempDir();
  const models = await writeFixtures(join(dir, 'models'), { llava: 'tiny', seed: 3 });
  const names = Array.from({ length: 14 }, (_, i) => (i % 2 ? `set-a/img${i}.png` : `set-b/img${i}.jpg`));
  names.push('set-a/broken-1.png', 'broken-2.jpg');
  await writeImages(join(dir, 'images'), names);
  const out = join(dir, 'out');
  const args = ['run', '--model', models.model, '--mmproj', models.mmproj, '--images', join(dir, 'images'), '--out', out, '--parallel', '2', '--in-flight', '2', '--threads', '1', '--max-tokens-check', '64', '--progress-interval', '0'];
  const journal = join(out, 'triplets.jsonl');

  // first run: kill -9 once a few lines are on disk
  const first = spawnCli(args);
  let seen = 0;
  for (let waited = 0; waited < 120_000; waited += 20) {
    seen = (await journalLines(journal)).length;
    if (seen >= 3 || first.exitCode !== null) break;
    await sleep(20);
  }
  first.kill('SIGKILL');
  const killed = await first.output;
  const before = await journalLines(journal);
  t.ok(before.length >= 3 && before.length < names.length, `killed mid-run (${before.length} of ${names.length} lines; exit ${killed.code})`);
  const manifestWhileRunning = JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as RunManifest;
  t.equal(manifestWhileRunning.status, 'running', 'run.json is valid JSON even after a kill');
  t.ok((await readdir(out)).includes('.srf-native.lock'), 'the dead run left its lock behind');
  // as if the kill had landed in the middle of a write
  await appendFile(journal, '{"id":"torn-half-line","ima');

  // the same command again
  const second = spawnCli(args);
  const resumed = await second.output;
  t.equal(resumed.code, 0, resumed.code === 0 ? 'the rerun finished' : resumed.stderr);
  t.match(resumed.stderr, /dropped an incomplete last line/);
  t.match(resumed.stderr, new RegExp(`resuming: ${before.length} images already`));
  t.match(resumed.stderr, /scores are NOT the paper's/, 'no --embedder: the lexical fallback is announced');

  const lines = parseJsonLines(await readFile(journal, 'utf8')) as TripletLine[];
  const ids = lines.map((l) => l.id);
  t.equal(new Set(ids).size, ids.length, 'no image twice');
  t.same([...ids].sort(), names.map((n) => identifyImage(n).id).sort(), 'none lost, none extra');
  const firstSession = before.map((l) => JSON.parse(l) as TripletLine);
  for (const old of firstSession) {
    const now = lines.find((l) => l.id === old.id);
    const { kept: _a, ...oldRest } = old;
    const { kept: _b, ...nowRest } = now as TripletLine;
    t.same(nowRest, oldRest, `${old.id} kept as the first run wrote it`);
  }
  t.equal(lines.filter((l) => l.status === 'error').length, 2, 'both broken files are error lines');

  const manifest = JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as RunManifest;
  t.equal(manifest.status, 'complete');
  t.equal(manifest.counts?.images, names.length);
  t.equal(manifest.scoring?.paperFaithful, false);
  t.match(manifest.scoring?.warning, /NOT the paper's/);
  t.equal((manifest.timings as { sessions: number }).sessions, 1, 'the killed session never finished, so this is the first finished one');
  const llava = JSON.parse(await readFile(join(out, 'train.llava.json'), 'utf8')) as unknown[];
  t.equal(llava.length, manifest.counts?.kept);
  t.notOk((await readdir(out)).some((f) => f.endsWith('.tmp') || f === '.srf-native.lock'), 'no temp files, lock released');
});

t.test('a second run on a folder another process is writing is refused before any work', async (t) => {
  const dir = await tempDir();
  const models = await writeFixtures(join(dir, 'models'), { llava: 'tiny', seed: 3 });
  await writeImages(join(dir, 'images'), ['img0.png']);
  const out = join(dir, 'out');
  await mkdir(out);
  const lock = await acquireOutputLock(out); // this (live) test process is "the first run"
  const second = await spawnCli(['run', '--model', models.model, '--mmproj', models.mmproj, '--images', join(dir, 'images'), '--out', out]).output;
  await lock.release();
  t.equal(second.code, 2);
  t.match(second.stderr, new RegExp(`^srf-native: OUTPUT_CONFLICT: .*another srf-native \\(pid ${process.pid}\\)`, 'm'));
  t.same((await readdir(out)).sort(), [], 'nothing written');
});

t.test('Ctrl-C: the first press stops and writes outputs (JSON events stay valid), the second exits at once', async (t) => {
  const dir = await tempDir();
  const models = await writeFixtures(join(dir, 'models'), { llava: 'tiny', seed: 3 });
  await writeImages(join(dir, 'images'), Array.from({ length: 16 }, (_, i) => `img${i}.png`));
  const args = (out: string) => ['run', '--model', models.model, '--mmproj', models.mmproj, '--images', join(dir, 'images'), '--out', out, '--parallel', '2', '--in-flight', '2', '--threads', '1', '--json'];
  const imageEvents = (text: string) => text.split('\n').filter((l) => l.includes('"event":"image"')).length;

  const out = join(dir, 'once');
  const child = spawnCli(args(out));
  let stdout = '';
  child.stdout?.on('data', (chunk) => (stdout += chunk));
  for (let waited = 0; waited < 120_000 && imageEvents(stdout) < 2 && child.exitCode === null; waited += 20) await sleep(20);
  child.kill('SIGINT');
  const once = await child.output;
  t.equal(once.code, 130, 'interrupted: exit 130');
  const events = parseJsonLines(once.stdout) as { event: string; status?: string }[];
  t.equal(events.at(-1)?.event, 'finish');
  t.equal(events.at(-1)?.status, 'interrupted');
  t.match(once.stderr, /Ctrl-C: stopping/);
  t.match(once.stderr, /To resume, run the same command: srf-native run --model /);
  const manifest = JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as RunManifest;
  t.equal(manifest.status, 'interrupted');
  const done = parseJsonLines(await readFile(join(out, 'triplets.jsonl'), 'utf8'));
  t.ok(done.length < 16, `stopped early (${done.length} of 16)`);
  t.equal(JSON.parse(await readFile(join(out, 'train.llava.json'), 'utf8')).length, manifest.counts?.kept);

  // A big --merge-with keeps the first press busy writing outputs long enough for the second to land.
  const original = join(dir, 'original.json');
  const record = { id: 0, image: 'img0.png', conversations: [{ from: 'human', value: '<image>\nWhat is it?' }, { from: 'gpt', value: 'A test pattern.' }] };
  await writeFile(original, JSON.stringify(Array.from({ length: 150_000 }, (_, id) => ({ ...record, id }))));
  const twice = spawnCli([...args(join(dir, 'twice')), '--merge-with', original]);
  let early = '';
  let log = '';
  twice.stdout?.on('data', (chunk) => (early += chunk));
  twice.stderr?.on('data', (chunk) => (log += chunk));
  for (let waited = 0; waited < 120_000 && imageEvents(early) < 1 && twice.exitCode === null; waited += 20) await sleep(20);
  twice.kill('SIGINT');
  for (let waited = 0; waited < 60_000 && !log.includes('Ctrl-C: stopping') && twice.exitCode === null; waited += 5) await sleep(5);
  twice.kill('SIGINT');
  const exited = await twice.output;
  t.equal(exited.code, 130);
  t.match(exited.stderr, /exiting now; triplets\.jsonl is valid\. To resume: srf-native run /);
  parseJsonLines(await readFile(join(dir, 'twice', 'triplets.jsonl'), 'utf8')); // throws on a broken line
  t.pass('the journal is whole');
});
