import { createHash } from 'node:crypto';
import { appendFile, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { readJsonArray, writeJsonAtomic } from '../lib/util/files.js';
import { Journal, readJournal, type TripletLine } from '../lib/outputs/journal.js';
import { LOCK_FILE, acquireOutputLock } from '../lib/outputs/lock.js';
import { HASH_CACHE_FILE, fingerprintFile } from '../lib/outputs/manifest.js';
import { tempDir } from './helpers/fixtures.js';

function line(id: string): TripletLine {
  return { id, image: `${id}.png`, status: 'error', error: { code: 'IMAGE_UNREADABLE', message: 'x' }, round: 0 };
}

async function ids(file: string): Promise<string[]> {
  const out: string[] = [];
  for await (const l of readJournal(file)) out.push(l.id);
  return out;
}

t.test('lines are on disk after flush, and a reopened journal knows them', async (t) => {
  const file = join(await tempDir(), 'triplets.jsonl');
  const journal = await Journal.open(file, { batchLines: 2, batchMs: 10_000 });
  journal.append(line('a'));
  journal.append(line('b')); // a batch of 2: written and synced without waiting for the timer
  journal.append(line('c'));
  await journal.flush();
  t.same(await ids(file), ['a', 'b', 'c']);
  await journal.close();
  const again = await Journal.open(file);
  t.same([...again.ids], ['a', 'b', 'c']);
  t.equal(again.existing, 3);
  await again.close();
});

t.test('a torn last line (kill -9 in the middle of a write) is truncated away on open', async (t) => {
  const file = join(await tempDir(), 'triplets.jsonl');
  await writeFile(file, `${JSON.stringify(line('a'))}\n${JSON.stringify(line('b'))}\n{"id":"c","ima`);
  const repairs: string[] = [];
  const journal = await Journal.open(file, { onRepair: (m) => repairs.push(m) });
  t.same([...journal.ids], ['a', 'b']);
  t.equal(repairs.length, 1);
  journal.append(line('c'));
  await journal.close();
  const text = await readFile(file, 'utf8');
  t.equal(text.split('\n').filter(Boolean).length, 3, 'every line whole');
  t.same(await ids(file), ['a', 'b', 'c']);
});

t.test('zeros after a power loss are an unreadable tail too; a bad line in the middle is an error', async (t) => {
  const dir = await tempDir();
  const zeros = join(dir, 'zeros.jsonl');
  await writeFile(zeros, `${JSON.stringify(line('a'))}\n`);
  await appendFile(zeros, Buffer.alloc(64));
  const journal = await Journal.open(zeros);
  t.same([...journal.ids], ['a']);
  await journal.close();
  t.equal((await stat(zeros)).size, `${JSON.stringify(line('a'))}\n`.length);

  const edited = join(dir, 'edited.jsonl');
  await writeFile(edited, `${JSON.stringify(line('a'))}\nnot json\n${JSON.stringify(line('b'))}\n`);
  await t.rejects(Journal.open(edited), { code: 'DATA_INVALID', message: /line 2/ });
  const twice = join(dir, 'twice.jsonl');
  await writeFile(twice, `${JSON.stringify(line('a'))}\n${JSON.stringify(line('a'))}\n`);
  await t.rejects(Journal.open(twice), { code: 'DATA_INVALID', message: /twice/ });
});

t.test('one writer per output folder; a stale lock is taken over', async (t) => {
  const dir = await tempDir();
  const lock = await acquireOutputLock(dir);
  await t.rejects(acquireOutputLock(dir), { code: 'OUTPUT_CONFLICT' });
  await lock.release();
  t.same((await readdir(dir)).filter((f) => f === LOCK_FILE), [], 'released: the file is gone');

  // a lock left by a process that no longer exists
  await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), startedAt: 'then' }));
  const taken = await acquireOutputLock(dir);
  t.match(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')), { pid: process.pid });
  await taken.release();

  // a live process (our parent) holds it
  await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, host: (await import('node:os')).hostname(), startedAt: 'now' }));
  await t.rejects(acquireOutputLock(dir), { code: 'OUTPUT_CONFLICT', message: new RegExp(`pid ${process.ppid}`) });
});

t.test('model hashes are cached by path, size and mtime', async (t) => {
  const dir = await tempDir();
  const file = join(dir, 'model.gguf');
  await writeFile(file, 'weights v1');
  const first = await fingerprintFile(file, dir);
  t.equal(first.sha256, createHash('sha256').update('weights v1').digest('hex'));
  t.match(first, { path: file, bytes: 10 });
  let hashed = 0;
  const cached = await fingerprintFile(file, dir, () => hashed++);
  t.equal(hashed, 0, 'second time from the cache');
  t.equal(cached.sha256, first.sha256);
  await writeFile(file, 'weights v2');
  await utimes(file, new Date(), new Date(Date.now() + 5000));
  const changed = await fingerprintFile(file, dir, () => hashed++);
  t.equal(hashed, 1, 'a changed file is hashed again');
  t.not(changed.sha256, first.sha256);
  t.ok(JSON.parse(await readFile(join(dir, HASH_CACHE_FILE), 'utf8'))[file]);
  await t.rejects(fingerprintFile(join(dir, 'nope.gguf'), dir), { code: 'FILE_NOT_FOUND' });
});

t.test('a JSON list is read one element at a time, like JSON.parse would', async (t) => {
  const dir = await tempDir();
  const value = [{ id: 1, text: 'a, "quoted" [bracket] {brace} \\ back' }, [1, [2, 3]], 'str,ing', 42, null, { nested: { deep: ['x', { y: '}' }] } }, 'ünïcödé ✓'];
  const file = join(dir, 'list.json');
  await writeFile(file, `\uFEFF  ${JSON.stringify(value, null, 2)}\n`);
  const out: unknown[] = [];
  for await (const element of readJsonArray(file)) out.push(element);
  t.same(out, value);
  await writeFile(file, '[]');
  const empty: unknown[] = [];
  for await (const element of readJsonArray(file)) empty.push(element);
  t.same(empty, []);
  for (const bad of ['{"a": 1}', '[1, 2', '[1, {"a": }]', '[1] 2']) {
    await writeFile(file, bad);
    await t.rejects(
      (async () => {
        for await (const _ of readJsonArray(file));
      })(),
      { code: 'DATA_INVALID' },
      bad,
    );
  }
});

t.test('an element larger than a read chunk still parses', async (t) => {
  const file = join(await tempDir(), 'big.json');
  const big = { text: 'x'.repeat(3 << 20), after: 'end' };
  await writeFile(file, JSON.stringify([1, big, 2]));
  const out: unknown[] = [];
  for await (const element of readJsonArray(file)) out.push(element);
  t.equal(out.length, 3);
  t.equal((out[1] as typeof big).after, 'end');
  t.equal((out[1] as typeof big).text.length, 3 << 20);
});

t.test('atomic JSON writes leave no temporary files and replace the old file whole', async (t) => {
  const dir = await tempDir();
  const file = join(dir, 'run.json');
  await writeJsonAtomic(file, { a: 1 });
  await writeJsonAtomic(file, { a: 2 });
  t.same(JSON.parse(await readFile(file, 'utf8')), { a: 2 });
  t.same(await readdir(dir), ['run.json']);
});

t.test('identity differences: leaf paths with both values, and the run option that sets them', async (t) => {
  const { identityDifferences, describeDifference } = await import('../lib/outputs/manifest.js');
  const before = { seed: 0, decoding: { iToQa: { temperature: 0.7, maxTokens: 256 }, iaToQ: { maxTokens: 128 } }, grammar: 'x'.repeat(500), loras: [] };
  const after = { seed: 0, decoding: { iToQa: { temperature: 0.7, maxTokens: 256, topK: 40 }, iaToQ: { maxTokens: 64 } }, grammar: 'y'.repeat(600), loras: [], truncatedAnswers: 'keep' };
  const differences = identityDifferences(before, after);
  t.same(differences.map((d) => d.path), ['decoding.iToQa.topK', 'decoding.iaToQ.maxTokens', 'grammar', 'truncatedAnswers']);
  t.same(differences.map(describeDifference), [
    'decoding.iToQa.topK differs: was unset, now 40 (--top-k)',
    'decoding.iaToQ.maxTokens differs: was 128, now 64 (--max-tokens-check)',
    'grammar differs: was a 500-character text, now a 600-character text (--no-grammar, --max-question-chars, --max-answer-chars, --max-answer-lines, --max-options)',
    'truncatedAnswers differs: was unset, now "keep" (--truncated)',
  ]);
  t.same(identityDifferences(before, structuredClone(before)), [], 'equal identities: nothing');
});
