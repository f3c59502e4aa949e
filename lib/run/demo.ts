/**
 * The material of `srf-native run --demo`: a tiny generated LLaVA pair and BERT embedder (random
 * weights, written in well under a second), a few generated images (coloured shapes in several
 * formats, one in a subfolder, and one deliberately broken file that shows up as an error line), and
 * a three-record "original" LLaVA data file for --merge-with. No downloads. The tiny model's text is
 * random; the reply grammar makes it parse anyway, so every output of a real run appears.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { writeFixtures } from '../gguf/fixtures.js';
import type { TaskName } from '../srf/prompts.js';
import type { SamplingOptions } from '../types.js';

export interface DemoAssets {
  model: string;
  mmproj: string;
  embedder: string;
  /** Folder of the demo images (the run's --images and image root). */
  images: string;
  /** LLaVA JSON standing in for the original instruction data. */
  original: string;
}

interface Shape {
  file: string;
  svg: string;
  width: number;
  height: number;
}

function svg(width: number, height: number, body: string, background: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="${background}"/>${body}</svg>`;
}

const SHAPES: Shape[] = [
  { file: 'red-circle.png', width: 160, height: 120, svg: svg(160, 120, '<circle cx="80" cy="60" r="40" fill="#d32f2f"/>', '#fafafa') },
  { file: 'blue-square.jpg', width: 120, height: 160, svg: svg(120, 160, '<rect x="20" y="40" width="80" height="80" fill="#1976d2"/>', '#fff3e0') },
  { file: 'green-triangle.webp', width: 140, height: 140, svg: svg(140, 140, '<polygon points="70,15 130,125 10,125" fill="#388e3c"/>', '#ffffff') },
  { file: 'two-dots.gif', width: 128, height: 96, svg: svg(128, 96, '<circle cx="40" cy="48" r="20" fill="#fbc02d"/><circle cx="90" cy="48" r="20" fill="#7b1fa2"/>', '#e0f7fa') },
  { file: 'stripes.tiff', width: 150, height: 100, svg: svg(150, 100, '<rect y="0" width="150" height="25" fill="#000"/><rect y="50" width="150" height="25" fill="#000"/>', '#ffeb3b') },
  { file: 'more/orange-ring.png', width: 100, height: 100, svg: svg(100, 100, '<circle cx="50" cy="50" r="35" fill="none" stroke="#f57c00" stroke-width="12"/>', '#263238') },
  { file: 'more/cross.jpg', width: 110, height: 90, svg: svg(110, 90, '<rect x="45" y="5" width="20" height="80" fill="#c2185b"/><rect x="10" y="35" width="90" height="20" fill="#c2185b"/>', '#f1f8e9') },
];

/** The deliberately broken image: an image extension, but text inside. */
export const DEMO_BROKEN_IMAGE = 'broken.jpg';

/**
 * The I->QA grammar of the demo: the shape of lib/srf/prompts.ts qaReplyGrammar with short bounds and
 * without the multiple-choice suffix and option lines (a random model's option letters never match
 * exactly, so those triplets would all score 0 and the demo would keep nothing). Short-answer
 * suffix, short text and long text remain.
 */
export const DEMO_GRAMMAR = [
  'root ::= "Question: " qline suffix? "\\nAnswer: " answer',
  'qline ::= [^\\r\\n ] [^\\r\\n]{0,47}',
  'suffix ::= "\\nAnswer the question using a single word or phrase."',
  'answer ::= [^\\r\\n ] [^\\r\\n]{0,47}',
  '',
].join('\n');

/** Decoding and grammar of the demo: short replies, so the whole run takes seconds on a laptop CPU. */
export const DEMO_SETTINGS: {
  parallel: number;
  grammar: string;
  decoding: Partial<Record<TaskName, Omit<SamplingOptions, 'seed' | 'grammar'>>>;
  keepTop: number;
} = {
  parallel: 4,
  grammar: DEMO_GRAMMAR,
  decoding: { iToQa: { maxTokens: 160 }, iaToQ: { maxTokens: 32 }, iqToA: { maxTokens: 32 } },
  keepTop: 0.5,
};

async function encode(shape: Shape): Promise<Buffer> {
  const image = sharp(Buffer.from(shape.svg));
  switch (path.extname(shape.file)) {
    case '.jpg':
      return image.jpeg({ quality: 85 }).toBuffer();
    case '.webp':
      return image.webp().toBuffer();
    case '.gif':
      return image.gif().toBuffer();
    case '.tiff':
      return image.tiff().toBuffer();
    default:
      return image.png().toBuffer();
  }
}

/** Writes (or reuses) the demo models into `dir/demo-models` and the images into `dir/demo-images`. */
export async function writeDemoAssets(dir: string): Promise<DemoAssets> {
  const modelsDir = path.join(dir, 'demo-models');
  const imagesDir = path.join(dir, 'demo-images');
  const set = await writeFixtures(modelsDir, { llava: 'tiny', bert: 'tiny', seed: 1 });
  for (const shape of SHAPES) {
    const file = path.join(imagesDir, shape.file);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, await encode(shape));
  }
  await writeFile(path.join(imagesDir, DEMO_BROKEN_IMAGE), 'this is not an image: it shows how a bad file becomes an error line\n');
  // Beside its images: a LLaVA file's image paths are relative to its own folder unless told otherwise.
  const original = path.join(imagesDir, 'original.llava.json');
  const records = [
    { id: 'orig-1', image: 'red-circle.png', conversations: [{ from: 'human', value: '<image>\nWhat colour is the circle?\nAnswer the question using a single word or phrase.' }, { from: 'gpt', value: 'Red' }] },
    { id: 'orig-2', image: 'blue-square.jpg', conversations: [{ from: 'human', value: '<image>\nIs there a square in the picture?' }, { from: 'gpt', value: 'Yes' }] },
    { id: 'orig-3', conversations: [{ from: 'human', value: 'What is two plus two?' }, { from: 'gpt', value: 'Four.' }] },
  ];
  await writeFile(original, `${JSON.stringify(records, null, 1)}\n`);
  return { model: set.model, mmproj: set.mmproj, embedder: set.embedder as string, images: imagesDir, original };
}

/** How many demo input files there are (good + broken). */
export const DEMO_IMAGE_COUNT = SHAPES.length + 1;
