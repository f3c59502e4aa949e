/**
 * Makes the world model's training data, all through the project's own code:
 *  1. world instruction data (lib/world, LLaVA mix665k format) for the training images;
 *  2. step 1 of the method by `srf-native tasks` (50 % I->QA, 20 % IA->Q, 30 % IQ->A);
 *  3. a BPE vocabulary learned on those texts;
 *  4. every record tokenized exactly as the engine will see it (fixtures/gguf/spm-tokenizer.ts, llama.cpp's
 *     algorithm): `<s>` + "{system} USER: " | image | "\n{instruction} ASSISTANT:" | target + `</s>`;
 *  5. caption data for LLaVA's first stage (feature alignment), from the same images;
 *  6. the images as raw RGB for PyTorch (world/scenes.jsonl is their ground truth, for the vision tower);
 *  7. the same for held-out scenes: a validation loss and the vision tower's probes.
 *
 *     node dist/training/world/make-data.js OUT_DIR [IMAGES]
 *
 * Writes OUT_DIR/{world/, tasks/, vocab.json, train.jsonl, pretrain.jsonl, images.u8, data.json} and the held-out
 * OUT_DIR/{val-world/, val-tasks/, val.jsonl, images-val.u8} (validation loss, vision probes).
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile, open } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpmTokenizer } from '../../fixtures/gguf/spm-tokenizer.js';
import { IMAGE_TOKEN, LLAVA_SYSTEM, llavaPromptParts } from '../../lib/engine/llava-prompt.js';
import type { MultiTaskRecord } from '../../lib/srf/tasks.js';
import { renderSceneRgb } from '../../lib/world/render.js';
import { writeWorldData, type WorldImage } from '../../lib/world/dataset.js';
import { FAMILIES } from '../../lib/world/families.js';
import { learnVocab } from './vocab.js';
import { WORLD_MODEL } from './config.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** One training sequence: `pre` (the shared prefix), the image (or none), `post`, then the target. */
export interface TokenizedRecord {
  image: number; // index into images.u8, -1 for text-only
  pre: number[];
  post: number[];
  target: number[];
  task: string;
}

/** The three strings of a record as the engine feeds them (image records) or one prompt (text-only). */
export function promptTexts(record: MultiTaskRecord): { pre: string; post: string; target: string } {
  const human = record.conversations[0]!.value;
  const target = record.conversations[1]!.value;
  if (record.image === undefined) return { pre: `${LLAVA_SYSTEM} USER: ${human} ASSISTANT:`, post: '', target };
  const instruction = human.startsWith(`${IMAGE_TOKEN}\n`) ? human.slice(IMAGE_TOKEN.length + 1) : human;
  const parts = llavaPromptParts(instruction);
  return { pre: parts.beforeImage, post: parts.afterImage, target };
}

/** Tokens of a record, as the engine's prefix (add_special), suffix and a generated reply (no space prefix) + `</s>`. */
export function tokenizeRecord(tokenizer: SpmTokenizer, texts: { pre: string; post: string; target: string }): Omit<TokenizedRecord, 'image' | 'task'> {
  return {
    pre: tokenizer.tokenize(texts.pre, { addBos: true }),
    post: texts.post === '' ? [] : tokenizer.tokenize(texts.post),
    target: [...tokenizer.tokenize(texts.target, { addSpacePrefix: false }), tokenizer.eos],
  };
}

/** Records tokenized as the engine sees them, one JSON line each, with their image's index in `images`. */
function tokenizeRecords(
  tokenizer: SpmTokenizer,
  records: readonly MultiTaskRecord[],
  texts: ReadonlyArray<{ pre: string; post: string; target: string }>,
  images: readonly WorldImage[],
): { lines: string[]; longest: number; total: number } {
  const imageIndex = new Map(images.map((image, i) => [image.file, i]));
  const lines: string[] = [];
  let longest = 0;
  let total = 0;
  records.forEach((record, i) => {
    const tokens = tokenizeRecord(tokenizer, texts[i]!);
    const check = tokenizer.decode(tokens.target);
    if (check !== texts[i]!.target) throw new Error(`record ${record.id}: target does not decode back (${JSON.stringify(check)})`);
    const image = record.image === undefined ? -1 : (imageIndex.get(record.image) as number);
    const length = tokens.pre.length + tokens.post.length + tokens.target.length + (image >= 0 ? WORLD_MODEL.imageTokens : 0);
    longest = Math.max(longest, length);
    total += length;
    lines.push(JSON.stringify({ image, ...tokens, task: record.srf.task } satisfies TokenizedRecord));
  });
  return { lines, longest, total };
}

/** The images as raw RGB at the model's size, one after another (PyTorch reads them as one tensor). */
async function writeRgb(file: string, images: readonly WorldImage[]): Promise<void> {
  const handle = await open(file, 'w');
  try {
    for (const image of images) await handle.write(await renderSceneRgb(image.scene, { size: WORLD_MODEL.imageSize }));
  } finally {
    await handle.close();
  }
}

async function main(): Promise<void> {
  const out = path.resolve(process.argv[2] ?? 'training/world/out');
  const count = Number(process.argv[3] ?? WORLD_MODEL.trainImages);
  const started = Date.now();

  const world = await writeWorldData(path.join(out, 'world'), { count, firstSeed: 0, questionSeed: 1, size: WORLD_MODEL.imageSize });
  execFileSync(process.execPath, [path.join(root, 'bin/srf-native.js'), 'tasks', '--data', world.data, '--out', path.join(out, 'tasks'), '--seed', '0'], {
    stdio: 'inherit',
  });
  const records = JSON.parse(await readFile(path.join(out, 'tasks', 'tasks.llava.json'), 'utf8')) as MultiTaskRecord[];

  const texts = records.map(promptTexts);
  const corpus = function* () {
    for (const t of texts) {
      yield ` ${t.pre}`;
      if (t.post !== '') yield ` ${t.post}`;
      yield t.target;
    }
  };
  const vocab = learnVocab(corpus(), WORLD_MODEL.vocabSize);
  const tokenizer = new SpmTokenizer(vocab);

  const train = tokenizeRecords(tokenizer, records, texts, world.images);
  await writeFile(path.join(out, 'train.jsonl'), train.lines.join('\n') + '\n');

  // Stage 1 of LLaVA's recipe (feature alignment on captions): every training image with its one-line
  // or detailed description, so that nearly every target token depends on the image.
  const pretrain = world.images.map((image, i) => {
    const question = i % 2 === 0 ? 'What is in the image?' : 'Describe the image in detail.';
    const family = i % 2 === 0 ? FAMILIES.brief : FAMILIES.detail;
    const parts = llavaPromptParts(question);
    const tokens = tokenizeRecord(tokenizer, { pre: parts.beforeImage, post: parts.afterImage, target: family.answer(image.scene, question) as string });
    return JSON.stringify({ image: i, ...tokens, task: 'caption' } satisfies TokenizedRecord);
  });
  await writeFile(path.join(out, 'pretrain.jsonl'), pretrain.join('\n') + '\n');
  await writeFile(
    path.join(out, 'vocab.json'),
    JSON.stringify({ tokens: vocab.tokens, scores: [...vocab.scores], tokenTypes: [...vocab.tokenTypes] }),
  );

  await writeRgb(path.join(out, 'images.u8'), world.images);

  // Held-out scenes for the validation loss (their own step-1 draw) and the vision tower's probes.
  const validation = await writeWorldData(path.join(out, 'val-world'), {
    count: WORLD_MODEL.validationImages,
    firstSeed: WORLD_MODEL.validationFirstSeed,
    questionSeed: 2,
    size: WORLD_MODEL.imageSize,
  });
  execFileSync(process.execPath, [path.join(root, 'bin/srf-native.js'), 'tasks', '--data', validation.data, '--out', path.join(out, 'val-tasks'), '--seed', '1'], {
    stdio: 'inherit',
  });
  const valRecords = JSON.parse(await readFile(path.join(out, 'val-tasks', 'tasks.llava.json'), 'utf8')) as MultiTaskRecord[];
  const val = tokenizeRecords(tokenizer, valRecords, valRecords.map(promptTexts), validation.images);
  await writeFile(path.join(out, 'val.jsonl'), val.lines.join('\n') + '\n');
  await writeRgb(path.join(out, 'images-val.u8'), validation.images);

  const summary = {
    images: world.images.length,
    records: records.length,
    vocabSize: vocab.tokens.length,
    validationImages: validation.images.length,
    validationRecords: valRecords.length,
    longestSequence: train.longest,
    meanSequence: train.total / records.length,
    seconds: (Date.now() - started) / 1000,
  };
  await writeFile(path.join(out, 'config.json'), JSON.stringify(WORLD_MODEL, null, 1) + '\n');
  await writeFile(path.join(out, 'data.json'), JSON.stringify(summary, null, 1) + '\n');
  console.log(summary);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) await main();
