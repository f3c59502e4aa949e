/** Shared by the engine tests: a temp folder with the tiny generated models and test images. */
import { rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeFixtures } from '../../fixtures/gguf/fixtures.js';
import type { FixtureSet } from '../../fixtures/gguf/fixtures.js';

export interface TestWorld extends FixtureSet {
  dir: string;
  images: string[];
}

/** A temporary folder removed when the test process exits. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'srf-test-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes the tiny LLaVA pair, a LoRA for it, a tiny BERT and `count` distinct PNG images. */
export async function makeWorld(count = 4): Promise<TestWorld> {
  const dir = await tempDir();
  const set = await writeFixtures(join(dir, 'models'), { llava: 'tiny', lora: true, bert: 'tiny', seed: 7 });
  const images: string[] = [];
  for (let i = 0; i < count; i++) images.push(await writeTestImage(dir, `img${i}.png`, i));
  return { ...set, dir, images };
}

/** A small image whose pixels depend on `variant`, so every variant is a different image. */
export async function writeTestImage(dir: string, name: string, variant: number, width = 40, height = 30): Promise<string> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * (variant + 3) * 37 + variant * 91) % 256;
  const path = join(dir, name);
  await writeFile(path, await sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer());
  return path;
}
