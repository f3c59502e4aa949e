// Every bad input ends in its coded SrfError naming the file, and the process stays alive.
import { copyFile, open as openFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { VisionModel, SrfError } from '../lib/index.js';
import { writeLlavaPair } from '../fixtures/gguf/fixtures.js';
import { makeWorld } from './helpers/fixtures.js';

const world = await makeWorld(2);
const d = world.dir;

async function expectCode(t: Tap.Test, promise: Promise<unknown>, code: string, file?: string) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(error, SrfError, `rejects with SrfError (${code})`);
  if (!(error instanceof SrfError)) return;
  t.equal(error.code, code, error.message);
  if (file) {
    t.equal(error.file, file);
    t.ok(error.message.includes(file), 'the message names the file');
  }
}

t.test('bad model files', async (t) => {
  const missing = join(d, 'nope.gguf');
  const text = join(d, 'text.gguf');
  await writeFile(text, 'hello, I am not a model\n');
  const empty = join(d, 'empty.gguf');
  await writeFile(empty, '');
  const truncated = join(d, 'truncated.gguf');
  const bytes = await readFile(world.model);
  await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  const other = await writeLlavaPair(join(d, 'other'), { ...world.llava, name: 'wider', text: { ...world.llava.text, nEmbd: 96 } }, { seed: 3 });

  const open = (model: string, mmproj: string) => VisionModel.open({ model, mmproj, threads: 1 });
  await expectCode(t, open(missing, world.mmproj), 'FILE_NOT_FOUND', missing);
  await expectCode(t, open(world.model, missing), 'FILE_NOT_FOUND', missing);
  await expectCode(t, open(text, world.mmproj), 'NOT_GGUF', text);
  await expectCode(t, open(empty, world.mmproj), 'NOT_GGUF', empty);
  await expectCode(t, open(truncated, world.mmproj), 'GGUF_TRUNCATED', truncated);
  await expectCode(t, open(world.mmproj, world.model), 'MODEL_ARCH_UNSUPPORTED', world.mmproj);
  await expectCode(t, open(world.model, world.model), 'MMPROJ_INVALID', world.model);
  await expectCode(t, open(other.model, world.mmproj), 'MMPROJ_MISMATCH');
  await expectCode(t, VisionModel.open({ model: world.model, mmproj: world.mmproj, loras: [{ path: text }] }), 'NOT_GGUF', text);
  await expectCode(t, VisionModel.open({ model: other.model, mmproj: other.mmproj, loras: [{ path: world.lora! }] }), 'LORA_INVALID', world.lora!);
  await expectCode(t, VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 0 }), 'INVALID_ARGUMENT');
  await expectCode(t, VisionModel.open({ model: world.model, mmproj: world.mmproj, contextSize: 64, threads: 1 }).then((m) =>
    m.generate({ image: world.images[0]!, prompt: 'x' }).finally(() => m.close()),
  ), 'CONTEXT_TOO_SMALL');
});

t.test('bad images fail only their own item', async (t) => {
  await using model = await VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 4, threads: 1 });
  const empty = join(d, 'empty.jpg');
  await writeFile(empty, '');
  const notImage = join(d, 'notes.png');
  await writeFile(notImage, 'this is text with a .png name');
  const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#3366aa' } }).jpeg().toBuffer();
  const truncated = join(d, 'truncated.jpg');
  await writeFile(truncated, jpeg.subarray(0, Math.floor(jpeg.length / 2)));
  const missing = join(d, 'missing.png');
  // A PNG header claiming 100000 x 100000 pixels: refused before decoding.
  const huge = join(d, 'huge.png');
  const small = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).png().toBuffer();
  const header = Buffer.from(small);
  header.writeUInt32BE(100000, 16);
  header.writeUInt32BE(100000, 20);
  await writeFile(huge, header);

  const inputs = [world.images[0]!, empty, notImage, truncated, missing, huge, world.images[1]!];
  const results = await model.generateBatch(inputs.map((image) => ({ image, prompt: 'What is it?', sampling: { maxTokens: 4 } })));
  const codes = results.map((r) => (r.ok ? 'ok' : r.error.code));
  t.same(codes, ['ok', 'IMAGE_EMPTY', 'IMAGE_UNREADABLE', 'IMAGE_UNREADABLE', 'FILE_NOT_FOUND', 'IMAGE_TOO_LARGE', 'ok']);
  for (const [i, r] of results.entries()) {
    if (!r.ok) t.ok(r.error.message.includes(inputs[i]!), `${r.error.code} names ${inputs[i]}`);
  }
  await expectCode(t, model.generate({ image: new Uint8Array(0), prompt: 'x' }), 'IMAGE_EMPTY');
  await expectCode(t, model.generate({ image: 42 as unknown as string, prompt: 'x' }), 'INVALID_ARGUMENT');
  await expectCode(t, model.generate({ image: world.images[0]!, prompt: 'x', sampling: { maxTokens: 0 } }), 'INVALID_ARGUMENT');
  // Still alive and working.
  t.equal((await model.generate({ image: world.images[1]!, prompt: 'ok?', sampling: { maxTokens: 3 } })).generatedTokens, 3);
});

t.test('a file that changes under us between check and load still fails cleanly', async (t) => {
  const copy = join(d, 'copy-model.gguf');
  await copyFile(world.model, copy);
  const handle = await openFile(copy, 'r+');
  await handle.write(Buffer.alloc(64, 0xff), 0, 64, 200); // scribble over metadata
  await handle.close();
  const error = await VisionModel.open({ model: copy, mmproj: world.mmproj, threads: 1 }).then(
    (m) => m.close().then(() => undefined),
    (e: unknown) => e,
  );
  t.type(error, SrfError);
  t.match((error as SrfError).code, /^(GGUF_INVALID|GGUF_TRUNCATED|NOT_GGUF|MODEL_LOAD_FAILED|MODEL_ARCH_UNSUPPORTED)$/);
});
