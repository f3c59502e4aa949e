import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { EMITTERS } from '../lib/emit/emitters.js';
import { validateLlavaDataset } from '../lib/emit/llava.js';
import { RecordFileWriter } from '../lib/emit/record-file.js';
import type { KeptTriplet } from '../lib/emit/sample.js';

function kept(i: number, root: string): KeptTriplet {
  return {
    id: `laion-${i}`,
    image: path.join(root, 'images', `${i}.jpg`),
    question: `What is in picture ${i}?`,
    answer: `Thing ${i}.`,
    questionPrime: 'What is shown?',
    answerPrime: 'A thing.',
    type: 'short_text',
    simQ: 0.5,
    simA: 0.5,
    score: 0.5,
    paperFaithful: true,
    round: 0,
  };
}

t.test('the registry', async (t) => {
  t.same(
    Object.values(EMITTERS).map((e) => [e.format, e.fileName, e.layout]),
    [
      ['llava', 'train.llava.json', 'json-array'],
      ['sharegpt', 'train.sharegpt.json', 'json-array'],
      ['openai', 'train.openai.jsonl', 'jsonl'],
    ],
  );
});

t.test('each emitter streams a valid file, visible only when closed', async (t) => {
  const dir = t.testdir({});
  const imageRoot = path.join(dir, 'images');
  for (const emitter of Object.values(EMITTERS)) {
    const writer = await emitter.open(dir, { imageRoot });
    t.equal(writer.path, path.join(dir, emitter.fileName));
    for (let i = 0; i < 3; i++) await writer.write(kept(i, dir));
    const before = await readdir(dir);
    t.ok(before.includes(`${emitter.fileName}.tmp`) && !before.includes(emitter.fileName), `${emitter.format}: only the .tmp file while open`);
    t.same(await writer.close(), { path: writer.path, count: 3 });
  }
  const files = (await readdir(dir)).filter((f) => f.startsWith('train.')).sort();
  t.same(files, ['train.llava.json', 'train.openai.jsonl', 'train.sharegpt.json'], 'no .tmp files left');
  const llava = JSON.parse(await readFile(path.join(dir, 'train.llava.json'), 'utf8'));
  t.same(validateLlavaDataset(llava), { ok: true, records: 3 });
  t.equal(llava[2].image, '2.jpg', 'relative to imageRoot');
  const sharegpt = JSON.parse(await readFile(path.join(dir, 'train.sharegpt.json'), 'utf8'));
  t.same(sharegpt[0], { messages: [{ role: 'user', content: '<image>What is in picture 0?' }, { role: 'assistant', content: 'Thing 0.' }], images: ['0.jpg'] });
  const lines = (await readFile(path.join(dir, 'train.openai.jsonl'), 'utf8')).split('\n');
  t.equal(lines.length, 4, 'three lines and a final newline');
  t.equal(lines[3], '');
  t.same(JSON.parse(lines[1] as string).messages[1], { role: 'assistant', content: 'Thing 1.' });
});

t.test('atomic record file', async (t) => {
  const dir = t.testdir({ 'taken.json': 'old' });
  await t.rejects(RecordFileWriter.open(path.join(dir, 'taken.json'), 'json-array'), { code: 'OUTPUT_CONFLICT', message: /taken\.json/ });
  const replace = await RecordFileWriter.open(path.join(dir, 'taken.json'), 'json-array', { overwrite: true });
  t.equal(await readFile(path.join(dir, 'taken.json'), 'utf8'), 'old', 'the old file stays until close');
  await replace.write({ a: 1 });
  await replace.close();
  t.same(JSON.parse(await readFile(path.join(dir, 'taken.json'), 'utf8')), [{ a: 1 }]);

  const empty = await RecordFileWriter.open(path.join(dir, 'empty.json'), 'json-array');
  await empty.close();
  t.equal(await readFile(path.join(dir, 'empty.json'), 'utf8'), '[]\n', 'an empty list is still valid JSON');

  const aborted = await RecordFileWriter.open(path.join(dir, 'aborted.json'), 'json-array');
  await aborted.write({ a: 1 });
  await aborted.abort();
  t.notOk((await readdir(dir)).some((f) => f.startsWith('aborted')), 'abort leaves nothing');
  await t.rejects(aborted.write({ a: 2 }), { code: 'CLOSED' });

  // enough records to pass the 1 MiB buffer several times, written without awaiting each
  const big = await RecordFileWriter.open(path.join(dir, 'big.jsonl'), 'jsonl');
  const pending: Promise<void>[] = [];
  for (let i = 0; i < 30000; i++) pending.push(big.write({ i, text: 'x'.repeat(100) }));
  await Promise.all(pending);
  await big.close();
  const lines = (await readFile(path.join(dir, 'big.jsonl'), 'utf8')).trimEnd().split('\n');
  t.equal(lines.length, 30000);
  t.ok(lines.every((line, i) => JSON.parse(line).i === i), 'in order');
  await t.rejects(big.close(), { code: 'CLOSED' });
  await t.rejects(RecordFileWriter.open(path.join(dir, 'x.json'), 'csv' as never), { code: 'INVALID_ARGUMENT' });
});

t.test('emitter options are checked before a file is created', async (t) => {
  const dir = t.testdir({});
  await t.rejects(EMITTERS.llava.open(dir, {} as never), { code: 'INVALID_ARGUMENT' });
  await t.rejects(EMITTERS.llava.open(dir, { imageRoot: dir, fileName: '../escape.json' }), { code: 'INVALID_ARGUMENT' });
  const custom = await EMITTERS.llava.open(dir, { imageRoot: dir, fileName: 'round1.json' });
  await t.rejects(custom.write({ ...kept(0, dir), image: '/outside/0.jpg' }), { code: 'DATA_INVALID' });
  await custom.close();
  t.same(JSON.parse(await readFile(path.join(dir, 'round1.json'), 'utf8')), []);
  await writeFile(path.join(dir, 'train.llava.json'), '[]');
  await t.rejects(EMITTERS.llava.open(dir, { imageRoot: dir }), { code: 'OUTPUT_CONFLICT' });
});

t.test('an OpenAI writer inlining images leaves out what it cannot inline, counts it and goes on', async (t) => {
  const dir = t.testdir({ images: {} });
  const imageRoot = path.join(dir, 'images');
  await writeFile(path.join(imageRoot, '0.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2]));
  await writeFile(path.join(imageRoot, '1.jpg'), Buffer.from('GIF89a', 'latin1')); // a GIF named .jpg
  // 2.jpg does not exist
  await writeFile(path.join(imageRoot, '3.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xdb, 3]));
  const writer = await EMITTERS.openai.open(dir, { imageRoot, imageUrl: 'data-url' });
  for (let i = 0; i < 4; i++) await writer.write(kept(i, dir));
  t.equal(writer.dropped.count, 2);
  t.match(writer.dropped.examples[0], /laion-1.*GIF/);
  t.match(writer.dropped.examples[1], /cannot read image of sample "laion-2"/);
  t.same(await writer.close(), { path: path.join(dir, 'train.openai.jsonl'), count: 2 });
  const lines = (await readFile(path.join(dir, 'train.openai.jsonl'), 'utf8')).trim().split('\n');
  t.equal(lines.length, 2, 'the two JPEGs');
  const llava = await EMITTERS.llava.open(dir, { imageRoot });
  await llava.write(kept(2, dir));
  t.equal(llava.dropped.count, 0, 'paths only: nothing to leave out');
  await llava.abort();
});
