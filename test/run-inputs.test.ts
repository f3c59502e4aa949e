import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { globToRegExp, splitGlob } from '../lib/jobs/glob.js';
import { identifyImage, parseShard, resolveInputSource, streamInputs, type InputImage, type StreamInputsOptions } from '../lib/jobs/inputs.js';
import { tempDir } from './helpers/fixtures.js';

async function collect(images: string, options: StreamInputsOptions & { imageRoot?: string } = {}): Promise<InputImage[]> {
  const { imageRoot, ...streamOptions } = options;
  const source = await resolveInputSource(images, imageRoot ? { imageRoot } : {});
  const out: InputImage[] = [];
  for await (const item of streamInputs(source, streamOptions)) out.push(item);
  return out;
}

async function tree(): Promise<string> {
  const dir = await tempDir();
  const files = ['b.png', 'a.jpg', 'A.JPEG', 'notes.txt', '.hidden.png', 'sub/c.webp', 'sub/deeper/d.png', 'sub/z.gif', 'zz/e.tiff', '.git/x.png'];
  for (const file of files) {
    await mkdir(join(dir, file, '..'), { recursive: true });
    await writeFile(join(dir, file), file);
  }
  return dir;
}

t.test('a folder is walked recursively in sorted order, image extensions only, hidden entries skipped', async (t) => {
  const dir = await tree();
  const items = await collect(dir);
  t.same(items.map((i) => i.image), ['A.JPEG', 'a.jpg', 'b.png', 'sub/c.webp', 'sub/deeper/d.png', 'sub/z.gif', 'zz/e.tiff']);
  t.same(items.map((i) => i.index), [0, 1, 2, 3, 4, 5, 6]);
  t.equal(items[0]?.path, join(dir, 'A.JPEG'));
  t.match(items[3]?.id, /^[0-9a-f]{16}-c\.webp$/, 'id = 16 hex digits of the hash + the file name');
  t.equal(items[3]?.id, identifyImage('sub/c.webp').id, 'ids depend only on the path relative to the image root');
  t.notOk(items.some((i) => i.problem));
});

t.test('a symlinked folder is followed once; a loop is not followed forever', async (t) => {
  const dir = await tree();
  await symlink(join(dir, 'sub'), join(dir, 'link-to-sub'));
  await symlink(dir, join(dir, 'sub', 'loop'));
  const warnings: string[] = [];
  const items = await collect(dir, { onWarning: (m) => warnings.push(m) });
  const images = items.map((i) => i.image);
  t.ok(images.includes('link-to-sub/c.webp'), 'the link sorts first and is walked');
  t.equal(images.filter((i) => i.endsWith('c.webp')).length, 1, 'the same folder is walked once');
  t.ok(warnings.length >= 1, 'the skipped duplicate is reported');
});

t.test('a glob matches *, ** and ? against paths below its fixed folder', async (t) => {
  const dir = await tree();
  t.same((await collect(join(dir, 'sub', '*.{webp,gif}'))).map((i) => i.image), ['c.webp', 'z.gif'], 'the image root is the fixed folder');
  t.same((await collect(join(dir, '**', '*.png'))).map((i) => i.image), ['b.png', 'sub/deeper/d.png']);
  t.same((await collect(join(dir, '?.jpg'))).map((i) => i.image), ['a.jpg']);
  t.same((await collect(join(dir, '*', '*.*'), { imageRoot: dir })).map((i) => i.image), ['sub/c.webp', 'sub/z.gif', 'zz/e.tiff'], 'one level, relative to --image-root');
  const re = globToRegExp('a/**/b?.{png,jpg}');
  t.ok(re.test('a/b1.png'));
  t.ok(re.test('a/x/y/b2.jpg'));
  t.notOk(re.test('a/b12.png'));
  t.notOk(re.test('ab1.png'));
  t.same(splitGlob('/data/imgs/**/*.jpg'), { base: '/data/imgs', pattern: '**/*.jpg', maxDepth: Infinity });
});

t.test('a list file: one path per line, relative to its folder; comments and blank lines skipped; outside the root is a problem', async (t) => {
  const dir = await tree();
  const list = join(dir, 'list.txt');
  await writeFile(list, `# my images\nsub/c.webp\r\n\n  b.png  \n${join(dir, 'zz', 'e.tiff')}\n../elsewhere.png\nmissing.png\n`);
  const items = await collect(list);
  t.same(items.map((i) => i.image), ['sub/c.webp', 'b.png', 'zz/e.tiff', '../elsewhere.png', 'missing.png']);
  t.equal(items[3]?.problem?.code, 'INVALID_ARGUMENT', 'a path outside the image root cannot become training data');
  t.notOk(items[4]?.problem, 'a missing file is found out when the image is read, as an error line');
});

t.test('one image file is an input of one', async (t) => {
  const dir = await tree();
  const items = await collect(join(dir, 'sub', 'c.webp'));
  t.same(items.map((i) => i.image), ['c.webp']);
});

t.test('--images that is nothing is one clear error', async (t) => {
  await t.rejects(resolveInputSource('/no/such/folder'), { code: 'FILE_NOT_FOUND' });
});

t.test('shards are disjoint, complete and independent of order; --limit counts after sharding', async (t) => {
  const dir = await tempDir();
  const names = Array.from({ length: 60 }, (_, i) => `img-${String(i).padStart(3, '0')}.png`);
  for (const name of names) await writeFile(join(dir, name), 'x');
  const all = (await collect(dir)).map((i) => i.id);
  const shards = [];
  for (let index = 0; index < 4; index++) shards.push((await collect(dir, { shard: { index, count: 4 } })).map((i) => i.id));
  const union = shards.flat();
  t.equal(new Set(union).size, union.length, 'no image in two shards');
  t.same([...union].sort(), [...all].sort(), 'every image in one shard');
  t.ok(shards.every((s) => s.length > 5), 'the hash spreads images over the shards');
  // the same images listed in another order land in the same shards
  const list = join(dir, 'reversed.txt');
  await writeFile(list, [...names].reverse().join('\n'));
  const fromList = (await collect(list, { shard: { index: 2, count: 4 } })).map((i) => i.id);
  t.same([...fromList].sort(), [...(shards[2] as string[])].sort());
  const limited = await collect(dir, { shard: { index: 1, count: 4 }, limit: 3 });
  t.same(limited.map((i) => i.id), (shards[1] as string[]).slice(0, 3));
  t.same(parseShard('3/8'), { index: 3, count: 8 });
  t.throws(() => parseShard('8/8'), { code: 'INVALID_ARGUMENT' });
  t.throws(() => parseShard('1-4'), { code: 'INVALID_ARGUMENT' });
});
