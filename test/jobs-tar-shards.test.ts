// WebDataset tar shards as img2dataset writes them, read directly by `run`: samples by key, metadata
// carried into the journal, ids <shard>/<key>, workers splitting by whole tars, broken shards as
// error lines, the exported images the training files reference, standard input, and resume.
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import t from 'tap';
import { pack } from 'tar-stream';
import { DEMO_SETTINGS } from '../lib/jobs/demo.js';
import { refine } from '../lib/jobs/refine.js';
import { readTarSamples, splitMemberName } from '../lib/jobs/tar-samples.js';
import { resolveInputSource, streamInputs } from '../lib/jobs/inputs.js';
import { ROOT, spawnCli } from './helpers/cli.js';
import { readJournal, tinyRun } from './helpers/tiny-run.js';

interface Member {
  name: string;
  data: Buffer | string;
}

async function tarBytes(members: Member[]): Promise<Buffer> {
  const tar = pack();
  for (const m of members) tar.entry({ name: m.name }, typeof m.data === 'string' ? Buffer.from(m.data) : m.data);
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function jpeg(i: number): Promise<Buffer> {
  const [width, height] = [30 + i, 20 + (i % 5)];
  const pixels = Buffer.alloc(width * height * 3);
  for (let p = 0; p < pixels.length; p++) pixels[p] = (p * (i + 7) * 29 + i * 41) % 256;
  return sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg().toBuffer();
}

/** img2dataset's layout: per sample .jpg, .json (url, caption, key) and .txt (the caption). */
async function sample(shard: number, n: number): Promise<Member[]> {
  const key = String(shard * 10_000 + n).padStart(9, '0');
  return [
    { name: `${key}.jpg`, data: await jpeg(shard * 10 + n) },
    { name: `${key}.json`, data: JSON.stringify({ key, url: `https://example.org/${key}.jpg`, caption: `picture ${key}` }) },
    { name: `${key}.txt`, data: `picture ${key}` },
  ];
}

async function writeShards(dir: string, shards: number, perShard: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (let s = 0; s < shards; s++) {
    const members = (await Promise.all(Array.from({ length: perShard }, (_, n) => sample(s, n)))).flat();
    const file = join(dir, `${String(s).padStart(5, '0')}.tar`);
    await writeFile(file, await tarBytes(members));
    files.push(file);
  }
  return files;
}

/** A temp folder and refine() options on the world model (models/world), which writes real questions and answers, so that some are kept. */
async function worldRun() {
  const { dir, base } = await tinyRun([]);
  const world = join(ROOT, 'models', 'world');
  return { dir, base: { ...base, model: join(world, 'world-llava-model-f16.gguf'), mmproj: join(world, 'world-llava-mmproj-f16.gguf'), embedder: join(world, 'world-bert-f16.gguf'), grammar: DEMO_SETTINGS.grammar, decoding: DEMO_SETTINGS.decoding } };
}

t.test('samples by WebDataset key, with their metadata; broken samples and a cut shard said', async (t) => {
  t.same(splitMemberName('000000123.jpg'), { key: '000000123', extension: 'jpg' });
  t.same(splitMemberName('sub/000000123.seg.png'), { key: 'sub/000000123', extension: 'seg.png' }, 'the first dot of the file name');
  const good = await tarBytes([...(await sample(0, 0)), { name: '000000001.txt', data: 'a caption without an image' }, ...(await sample(0, 2))]);
  const read = [];
  for await (const s of readTarSamples(Readable.from([good]), 'good.tar')) read.push(s);
  t.same(read.map((s) => s.key), ['000000000', '000000001', '000000002']);
  t.same(read[0]?.metadata, { json: { key: '000000000', url: 'https://example.org/000000000.jpg', caption: 'picture 000000000' }, txt: 'picture 000000000' });
  t.equal(read[0]?.extension, 'jpg');
  t.match(read[1]?.problem, { code: 'IMAGE_UNREADABLE', message: /good\.tar: sample 000000001 has no image member/ });
  // Cut in the middle of the third sample's image: the first two come out, then the coded error.
  const cut = good.subarray(0, good.length - 2048 - 700);
  const before: string[] = [];
  const error = await (async () => {
    for await (const s of readTarSamples(Readable.from([cut]), 'cut.tar')) before.push(s.key);
  })().catch((e: unknown) => e);
  t.match(error, { code: 'DATA_INVALID', message: /cut\.tar: not a readable tar, or cut short/ });
  t.same(before, ['000000000', '000000001']);
});

t.test('a run over tar shards: every sample once, ids <shard>/<key>, metadata, exported images the training data references', async (t) => {
  const { dir, base } = await worldRun();
  const shards = join(dir, 'shards');
  await writeShards(shards, 3, 3);
  // One more shard with the broken kinds: a corrupt JPEG, a sample with no image, and a cut tail.
  const broken = await tarBytes([
    { name: '000030000.jpg', data: 'this is not a jpeg' },
    { name: '000030001.txt', data: 'no image here' },
    ...(await sample(3, 2)),
    ...(await sample(3, 3)),
  ]);
  await writeFile(join(shards, '00003.tar'), broken.subarray(0, broken.length - 2048 - 600));
  const summary = await refine({ ...base, images: join(shards, '{00000..00003}.tar') }).complete();
  t.equal(summary.status, 'complete');
  const lines = await readJournal(summary.out);
  const ids = lines.map((l) => l.id);
  t.equal(new Set(ids).size, ids.length, 'no id twice');
  for (const s of ['00000', '00001', '00002']) for (const n of [0, 1, 2]) t.ok(ids.includes(`${s}/${String(Number(s) * 10_000 + n).padStart(9, '0')}`), `${s} sample ${n} is there`);
  const byId = new Map(lines.map((l) => [l.id, l]));
  t.equal(byId.get('00003/000030000')?.error?.code, 'IMAGE_UNREADABLE', 'a corrupt JPEG is its own error line');
  t.match(byId.get('00003/000030001')?.error?.message, /00003\.tar: sample 000030001 has no image member/);
  t.ok(byId.has('00003/000030002'), 'the samples before the cut were read');
  t.equal(byId.get('00003/#tar')?.error?.code, 'DATA_INVALID', 'the cut shard is one error line');
  t.match(byId.get('00003/#tar')?.error?.message, /00003\.tar: not a readable tar, or cut short at sample 00003000[23]/);
  const scored = lines.filter((l) => l.status === 'scored');
  t.ok(scored.length >= 5, `${scored.length} scored`);
  t.match(scored[0]?.metadata, { json: { url: /^https:\/\/example\.org\// }, txt: /^picture / }, 'the sample\'s .json and .txt ride along');
  for (const l of scored) await t.resolves(access(join(summary.out, 'images', l.image)), `${l.image} exported`);
  const manifest = JSON.parse(await readFile(join(summary.out, 'run.json'), 'utf8'));
  t.equal(manifest.imageRoot, join(summary.out, 'images'), 'OUT/images is the image root');
  const llava = JSON.parse(await readFile(join(summary.out, 'train.llava.json'), 'utf8')) as { image: string }[];
  t.ok(llava.length > 0);
  for (const record of llava) await t.resolves(access(join(summary.out, 'images', record.image)), `train.llava.json's ${record.image} is there`);
  const original = await readFile(join(summary.out, 'images', scored[0]!.image));
  const sampleKey = scored[0]!.id.split('/')[1]!;
  const shardIndex = Number(scored[0]!.id.split('/')[0]);
  t.same(original, await jpeg(shardIndex * 10 + (Number(sampleKey) - shardIndex * 10_000)), 'the original bytes');

  // Resumed: nothing again.
  const again = await refine({ ...base, images: join(shards, '{00000..00003}.tar') }).complete();
  t.equal(again.processed, 0, 'a resume finds every sample done');
});

t.test('workers take whole tars, round-robin; too few tars is said', async (t) => {
  const { dir } = await tinyRun([]);
  const shards = join(dir, 'shards');
  await writeShards(shards, 3, 2);
  const source = await resolveInputSource(shards);
  t.equal(source.kind, 'shards', 'a folder of tars');
  const of = async (index: number, count: number, warnings: string[] = []) => {
    const ids: string[] = [];
    for await (const item of streamInputs(source, { shard: { index, count }, onWarning: (w) => warnings.push(w) })) ids.push(item.id);
    return ids;
  };
  const [w0, w1] = [await of(0, 2), await of(1, 2)];
  t.same([...new Set(w0.map((id) => id.split('/')[0]))], ['00000', '00002'], 'worker 0: tars 0 and 2');
  t.same([...new Set(w1.map((id) => id.split('/')[0]))], ['00001'], 'worker 1: tar 1');
  t.equal(w0.length + w1.length, 6, 'together every sample once');
  const warnings: string[] = [];
  t.same(await of(3, 4, warnings), [], 'a fourth worker has none');
  t.match(warnings.join('\n'), /3 shard files for 4 workers: worker 3 has none/);
});

t.test('one tar on standard input: `--images -`', async (t) => {
  const { dir, models } = await tinyRun([]);
  const [file] = await writeShards(join(dir, 'shards'), 1, 2);
  const out = join(dir, 'stdin-out');
  const result = await spawnCli(['run', '--model', models.model, '--mmproj', models.mmproj, '--images', '-', '--out', out, '--parallel', '2', '--threads', '1', '--max-tokens-qa', '16', '--max-tokens-check', '8', '--no-report'], { cwd: ROOT, stdin: await readFile(file!) }).output;
  t.equal(result.code, 0, result.stderr);
  const lines = await readJournal(out);
  t.same(lines.map((l) => l.id).sort(), ['stdin/000000000', 'stdin/000000001']);
});

t.test('three workers split the tars, each writes its shard, merge joins them: every sample once, every image there', async (t) => {
  const { dir, base } = await worldRun();
  const shards = join(dir, 'shards');
  await writeShards(shards, 4, 2);
  const { mergeShards } = await import('../lib/jobs/merge-shards.js');
  for (const i of [0, 1, 2]) {
    const summary = await refine({ ...base, images: shards, shard: `${i}/3` }).complete();
    t.equal(summary.status, 'complete', `worker ${i}`);
  }
  const merged = await mergeShards({ out: base.out });
  t.ok(merged.allComplete, 'all three shards joined');
  const lines = await readJournal(base.out);
  const ids = lines.map((l) => l.id).sort();
  t.equal(ids.length, 8, 'eight samples');
  t.equal(new Set(ids).size, 8, 'each once');
  const llava = JSON.parse(await readFile(join(base.out, 'train.llava.json'), 'utf8')) as { image: string }[];
  t.ok(llava.length > 0, `${llava.length} kept`);
  for (const record of llava) await t.resolves(access(join(base.out, 'images', record.image)), `merged train.llava.json's ${record.image} is in OUT/images`);
});

t.test('a resume skips the finished tars without reading them', async (t) => {
  const { dir, base } = await tinyRun([]);
  const shards = join(dir, 'shards');
  const files = await writeShards(shards, 3, 2);
  const first = await refine({ ...base, images: shards, limit: 3 }).complete();
  t.equal(first.processed, 3);
  t.same((await readFile(join(base.out, 'shards-done.txt'), 'utf8')).split('\n').filter(Boolean), ['00000'], 'the first tar is finished; the second was cut by --limit');
  // Were the finished tar read again, its damage would show as an error line.
  await writeFile(files[0]!, 'no longer a tar');
  const logs: string[] = [];
  const second = await refine({ ...base, images: shards, onLog: (e) => logs.push(e.message) }).complete();
  t.match(logs.join('\n'), /resuming: 1 finished shards skipped unread/);
  t.equal(second.processed, 3, 'the other three samples');
  const lines = await readJournal(base.out);
  t.equal(lines.length, 6, 'every sample once');
  t.same(lines.filter((l) => l.status === 'error'), [], 'the damaged finished tar was not read');
  t.same((await readFile(join(base.out, 'shards-done.txt'), 'utf8')).split('\n').filter(Boolean).sort(), ['00000', '00001', '00002']);
});

/** A parquet file written by test/helpers/write-parquet.mjs (hyparquet-writer, in a plain Node process). */
async function writeParquet(spec: { filename: string; codec?: string; rowGroupSize?: number; columns: { name: string; type: string; data: (string | Buffer)[] }[] }): Promise<void> {
  const specFile = `${spec.filename}.spec.json`;
  const columns = spec.columns.map((c) => ({ ...c, data: c.data.map((d) => (Buffer.isBuffer(d) ? d.toString('base64') : d)) }));
  await writeFile(specFile, JSON.stringify({ ...spec, columns }));
  const { execFileSync } = await import('node:child_process');
  execFileSync(process.execPath, [join(ROOT, 'test', 'helpers', 'write-parquet.mjs'), specFile], { cwd: ROOT });
}

t.test('parquet files with the image bytes in a column, snappy and zstd; the wrong column said', async (t) => {
  const { dir, base } = await worldRun();
  const folder = join(dir, 'parquet');
  await mkdir(folder, { recursive: true });
  const images = await Promise.all([0, 1, 2, 3, 4].map((i) => jpeg(i + 50)));
  const columns = (from: number) => [
    { name: 'key', data: images.map((_, i) => String(from + i).padStart(9, '0')), type: 'STRING' },
    { name: 'caption', data: images.map((_, i) => `caption ${from + i}`), type: 'STRING' },
    { name: 'jpg', data: images, type: 'BYTE_ARRAY' },
  ];
  await writeParquet({ filename: join(folder, '00000.parquet'), columns: columns(0), rowGroupSize: 2 }); // snappy, three row groups
  await writeParquet({ filename: join(folder, '00001.parquet'), columns: columns(100), codec: 'ZSTD' });
  await writeParquet({ filename: join(folder, '00002.parquet'), columns: [{ name: 'picture', data: images.slice(0, 1), type: 'BYTE_ARRAY' }] });
  const summary = await refine({ ...base, images: folder }).complete();
  const lines = await readJournal(summary.out);
  const byId = new Map(lines.map((l) => [l.id, l]));
  for (const id of ['00000/000000000', '00000/000000004', '00001/000000100', '00001/000000104']) t.ok(byId.has(id), `${id} read`);
  t.equal(lines.filter((l) => l.id.startsWith('00000/') || l.id.startsWith('00001/')).length, 10, 'every row of both files once');
  t.match(byId.get('00001/000000102')?.metadata, { caption: 'caption 102', key: '000000102' }, 'the other columns are the metadata');
  t.match(byId.get('00002/#parquet')?.error, { code: 'DATA_INVALID', message: /none of the image columns jpg, image \(its columns: picture\); name the image column with --image-column/ });
  const scored = lines.filter((l) => l.status === 'scored');
  t.ok(scored.length > 0);
  for (const l of scored) t.same(await readFile(join(summary.out, 'images', l.image)), images[Number(l.id.split('/')[1]) % 100], `${l.image}: the original bytes`);
  // --image-column names it.
  const named = await refine({ ...base, images: join(folder, '00002.parquet'), out: join(dir, 'named'), imageColumn: 'picture' }).complete();
  t.same((await readJournal(named.out)).map((l) => l.id), ['00002/000000000']);
});

t.test('a run over tar shards killed with SIGKILL resumes: every sample once, none lost', async (t) => {
  const { dir, models } = await tinyRun([]);
  const shards = join(dir, 'shards');
  await writeShards(shards, 4, 3);
  const out = join(dir, 'killed');
  const args = ['run', '--model', models.model, '--mmproj', models.mmproj, '--images', shards, '--out', out, '--parallel', '2', '--in-flight', '2', '--threads', '1', '--max-tokens-check', '64', '--progress-interval', '0', '--no-report'];
  const journal = join(out, 'triplets.jsonl');
  const lineCount = async () => (await readFile(journal, 'utf8').catch(() => '')).split('\n').filter((l) => l.endsWith('}')).length;
  const first = spawnCli(args);
  for (let waited = 0; waited < 120_000 && (await lineCount()) < 4 && first.exitCode === null; waited += 20) await new Promise((r) => setTimeout(r, 20));
  first.kill('SIGKILL');
  await first.output;
  const before = await lineCount();
  t.ok(before >= 4 && before < 12, `killed mid-run (${before} of 12 lines)`);
  const second = await spawnCli(args).output;
  t.equal(second.code, 0, second.stderr);
  const ids = (await readJournal(out)).map((l) => l.id);
  t.equal(ids.length, 12, 'twelve samples');
  t.equal(new Set(ids).size, 12, 'each once');
});

t.test('a shard is recorded as finished only after the journal has made its lines durable', async (t) => {
  const { ShardsDone } = await import('../lib/outputs/shards-done.js');
  const { dir } = await tinyRun([]);
  const order: string[] = [];
  const record = join(dir, 'shards-done.txt');
  const done = await ShardsDone.open(dir, async () => {
    order.push(`journal flushed, record holds: ${JSON.stringify(await readFile(record, 'utf8').catch(() => ''))}`);
  });
  await done.read('00000');
  done.started('00000');
  await done.read('00001'); // the input moved past 00000 while its sample is in flight
  t.same(order, [], 'not finished while its sample runs');
  await done.journaled('00000');
  t.same(order, ['journal flushed, record holds: ""'], 'the journal first');
  t.equal(await readFile(record, 'utf8'), '00000\n', 'then the record');
});
