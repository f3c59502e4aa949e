// Image ids at scale: 16 hex digits of the path's hash for new runs, the 12 of a run begun before
// kept when it is resumed, and an id on two journal lines (two inputs sharing it) a warning, not a
// stopped resume.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ID_HEX_DIGITS, LEGACY_ID_HEX_DIGITS, identifyImage } from '../lib/jobs/inputs.js';
import { refine } from '../lib/jobs/refine.js';
import { readJournal, tinyRun } from './helpers/tiny-run.js';

const names = ['a.png', 'b.png', 'c.png', 'd.png'];

t.test('new runs: 16 hex digits, recorded in run.json', async (t) => {
  const { base } = await tinyRun(names);
  const summary = await refine(base).complete();
  const lines = await readJournal(summary.out);
  t.same(lines.map((l) => l.id).sort(), names.map((n) => identifyImage(n).id).sort());
  t.match(lines[0]?.id, new RegExp(`^[0-9a-f]{${ID_HEX_DIGITS}}-`));
  t.equal(JSON.parse(await readFile(join(summary.out, 'run.json'), 'utf8')).idHexDigits, ID_HEX_DIGITS);
});

t.test('a run begun with 12-digit ids resumes with them: nothing done twice', async (t) => {
  const { base } = await tinyRun(names);
  await refine({ ...base, limit: 2 }).complete();
  // As an older srf-native left it: 12-digit ids, no idHexDigits in run.json.
  const journalFile = join(base.out, 'triplets.jsonl');
  const old = (await readJournal(base.out)).map((l) => ({ ...l, id: identifyImage(l.image, LEGACY_ID_HEX_DIGITS).id }));
  await writeFile(journalFile, old.map((l) => `${JSON.stringify(l)}\n`).join(''));
  const manifestFile = join(base.out, 'run.json');
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
  delete manifest.idHexDigits;
  await writeFile(manifestFile, JSON.stringify(manifest));
  const resumed = await refine(base).complete();
  t.equal(resumed.processed, 2, 'only the two not done');
  const ids = (await readJournal(base.out)).map((l) => l.id);
  t.same(ids.sort(), names.map((n) => identifyImage(n, LEGACY_ID_HEX_DIGITS).id).sort(), 'every image once, with the run\'s own ids');
});

t.test('a key a tar shard holds twice: both samples, the second as key~2, and a resume matches them', async (t) => {
  const { dir, base } = await tinyRun([]);
  const { pack } = await import('tar-stream');
  const sharp = (await import('sharp')).default;
  const image = (i: number) => sharp(Buffer.alloc(24 * 20 * 3, i * 40), { raw: { width: 24, height: 20, channels: 3 } }).png().toBuffer();
  const tar = pack();
  for (const [key, i] of [['000000000', 0], ['000000001', 1], ['000000000', 2]] as const) tar.entry({ name: `${key}.png` }, await image(i));
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar as AsyncIterable<Buffer>) chunks.push(chunk);
  await writeFile(join(dir, '00000.tar'), Buffer.concat(chunks));
  const logs: string[] = [];
  await refine({ ...base, images: join(dir, '00000.tar'), onLog: (e) => logs.push(e.message) }).complete();
  t.match(logs.join('\n'), /key 000000000 appears again; this sample is 000000000~2/);
  t.same((await readJournal(base.out)).map((l) => l.id).sort(), ['00000/000000000', '00000/000000000~2', '00000/000000001']);
  const resumed = await refine({ ...base, images: join(dir, '00000.tar') }).complete();
  t.equal(resumed.processed, 0, 'a resume finds all three done');
});
