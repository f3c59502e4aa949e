/**
 * Training data of the world's sentence embedder: groups of texts that mean the same (an answer or a
 * question of the world said several ways: case, punctuation, wording, order of listed objects), for
 * contrastive training (train_bert.py): texts of one group close, of other groups of the same kind far.
 * Tokenized by llama.cpp itself (node-llama-cpp on the embedder's vocabulary), so PyTorch sees exactly
 * the tokens the engine's embedder will.
 *
 *     node dist/training/world/embedder-data.js OUT_DIR
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { TokenType } from '../../lib/gguf/constants.js';
import { planBertEmbedder, type BertShape } from '../../fixtures/gguf/fixtures.js';
import { SPM_SPACE } from '../../fixtures/gguf/spm-tokenizer.js';
import type { Vocab } from '../../fixtures/gguf/vocab.js';
import { writeGguf } from '../../fixtures/gguf/writer.js';
import { createRandom, shuffled, type Random } from '../../lib/srf/random.js';
import { FAMILIES } from '../../lib/world/families.js';
import { makeReference, referenceText } from '../../lib/world/refer.js';
import { COLOURS, REGIONS, SHAPES, SIZES, generateScene, type Scene } from '../../lib/world/scene.js';

export const WORLD_BERT: BertShape = { name: 'world', nEmbd: 64, nLayer: 2, nHead: 4, nFf: 256, nCtxTrain: 128, vocabSize: 0, layerNormEps: 1e-12, pooling: 'mean' };

export interface TextGroup {
  kind: string;
  texts: string[];
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six'];
const PLURAL: Record<string, string> = { circle: 'circles', square: 'squares', triangle: 'triangles', cross: 'crosses', star: 'stars' };

function answerGroups(): TextGroup[] {
  const groups: TextGroup[] = [];
  for (const c of COLOURS) groups.push({ kind: 'colour', texts: [c, cap(c), `${c}.`, `It is ${c}.`, `The color is ${c}.`] });
  for (const s of SHAPES) groups.push({ kind: 'shape', texts: [s, cap(s), `a ${s}`, `It is a ${s}.`, `The shape is a ${s}.`] });
  for (let n = 0; n <= 6; n++) groups.push({ kind: 'count', texts: [String(n), NUMBER_WORDS[n]!, cap(NUMBER_WORDS[n]!), `There are ${n}.`, `${n} objects`] });
  for (const r of REGIONS) {
    const phrase = r === 'center' ? 'in the center' : `at the ${r}`;
    groups.push({ kind: 'position', texts: [r, cap(r), phrase, `It is ${phrase}.`, `${cap(r)} of the image.`] });
  }
  groups.push({ kind: 'yesno', texts: ['Yes', 'yes', 'Yes.', 'Yes, there is.'] });
  groups.push({ kind: 'yesno', texts: ['No', 'no', 'No.', 'No, there is not.'] });
  for (const size of SIZES) {
    for (const c of COLOURS) {
      for (const s of SHAPES) groups.push({ kind: 'object', texts: [`A ${size} ${c} ${s}.`, `${size} ${c} ${s}`, `The ${size} ${c} ${s}.`, `It is a ${size} ${c} ${s}.`] });
    }
  }
  return groups;
}

function sceneGroups(scene: Scene, random: Random): TextGroup[] {
  const groups: TextGroup[] = [];
  const brief = FAMILIES.brief.answer(scene, 'What is in the image?') as string;
  const names = scene.objects.map((o) => `a ${o.colour} ${o.shape}`);
  const list = (items: string[]) => (items.length <= 1 ? items[0]! : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`);
  const other = shuffled(names, random);
  groups.push({
    kind: 'brief',
    texts: [brief, `${cap(list(other))} on a ${scene.background} background.`, `There is ${list(names)} on a ${scene.background} background.`],
  });
  const detail = FAMILIES.detail.answer(scene, 'Describe the image in detail.') as string;
  const sentences = detail.split(/(?<=\.) /);
  groups.push({ kind: 'detail', texts: [detail, [sentences[0], ...shuffled(sentences.slice(1), random)].join(' ')] });

  const object = scene.objects[Math.floor(random() * scene.objects.length)]!;
  const ref = (without: Array<'colour' | 'shape' | 'region'>) => {
    const r = makeReference(scene, object, random, without);
    return r ? referenceText(r) : null;
  };
  const colourRef = ref(['colour']);
  if (colourRef) groups.push({ kind: 'q-colour', texts: [`What color is the ${colourRef}?`, `What is the color of the ${colourRef}?`, `Which color is the ${colourRef}?`] });
  const shapeRef = ref(['shape']);
  if (shapeRef) groups.push({ kind: 'q-shape', texts: [`What shape is the ${shapeRef}?`, `What is the shape of the ${shapeRef}?`, `Which shape is the ${shapeRef}?`] });
  const placeRef = ref(['region']);
  if (placeRef) groups.push({ kind: 'q-position', texts: [`Where is the ${placeRef}?`, `Where is the ${placeRef} located?`, `In which part of the image is the ${placeRef}?`] });
  const anyRef = ref([]);
  if (anyRef) {
    groups.push({
      kind: 'q-box',
      texts: [`Please provide the bounding box coordinate of the region this sentence describes: the ${anyRef}.`, `Give the bounding box of the ${anyRef}.`],
    });
  }
  const c = COLOURS[Math.floor(random() * COLOURS.length)]!;
  const s = SHAPES[Math.floor(random() * SHAPES.length)]!;
  const counted = random() < 0.5 ? `${c} objects` : PLURAL[s]!;
  groups.push({ kind: 'q-count', texts: [`How many ${counted} are there?`, `How many ${counted} are in the image?`, `What is the number of ${counted}?`] });
  groups.push({ kind: 'q-exists', texts: [`Is there a ${c} ${s} in the image?`, `Does the image contain a ${c} ${s}?`, `Is there a ${c} ${s}?`] });
  return groups;
}

/** All groups: every answer meaning, and question/description groups from `scenes` scenes; no first text twice. */
export function embedderGroups(scenes: number, seed = 3): TextGroup[] {
  const random = createRandom(seed);
  const groups = answerGroups();
  for (let i = 0; i < scenes; i++) groups.push(...sceneGroups(generateScene(2_000_000 + i), random));
  groups.push({ kind: 'q-brief', texts: ['What is in the image?', 'Describe the image briefly.', 'What does the image show?'] });
  groups.push({ kind: 'q-brief', texts: ['Describe the image in detail.', 'Give a detailed description of the image.'] });
  const seen = new Set<string>();
  return groups.filter((g) => !seen.has(g.texts[0]!) && (seen.add(g.texts[0]!), true));
}

/** An uncased WordPiece vocabulary (llama.cpp's phantom-space layout) of the groups' words. */
export function embedderVocab(groups: readonly TextGroup[]): Vocab {
  const tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const types: number[] = tokens.map(() => TokenType.CONTROL);
  const add = (t: string) => {
    if (!tokens.includes(t)) {
      tokens.push(t);
      types.push(TokenType.NORMAL);
    }
  };
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789';
  for (const c of chars) add(SPM_SPACE + c);
  for (const c of '.,?!:;\'"[]()-<>/') add(SPM_SPACE + c);
  for (const c of chars) add(c);
  const words = new Set<string>();
  for (const g of groups) for (const t of g.texts) for (const w of t.toLowerCase().split(/[^a-z0-9]+/)) if (w) words.add(w);
  for (const w of [...words].sort()) add(SPM_SPACE + w);
  return { tokens, tokenTypes: Int32Array.from(types) };
}

async function main(): Promise<void> {
  const out = path.resolve(process.argv[2] ?? 'training/world/out/bert');
  await mkdir(out, { recursive: true });
  const groups = embedderGroups(1500);
  const vocab = embedderVocab([...groups, ...embedderGroups(200, 99)]);
  const shape = { ...WORLD_BERT, vocabSize: vocab.tokens.length };
  // The vocabulary in a GGUF (weights irrelevant here) so that llama.cpp itself tokenizes.
  const vocabFile = path.join(out, 'vocab-only.gguf');
  const plan = planBertEmbedder(shape, { vocab });
  await writeGguf(vocabFile, plan.metadata, plan.tensors);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: vocabFile, vocabOnly: true });
  const tokenize = (text: string) => [2, ...model.tokenize(text, false).map(Number), 3];
  const tokenized = groups.map((g) => ({ kind: g.kind, texts: g.texts, tokens: g.texts.map(tokenize) }));
  await model.dispose();
  await writeFile(path.join(out, 'groups.json'), JSON.stringify(tokenized));
  await writeFile(path.join(out, 'vocab.json'), JSON.stringify({ tokens: vocab.tokens, tokenTypes: [...vocab.tokenTypes] }));
  await writeFile(path.join(out, 'config.json'), JSON.stringify(shape, null, 1) + '\n');
  const longest = Math.max(...tokenized.flatMap((g) => g.tokens.map((t) => t.length)));
  console.log({ groups: groups.length, vocab: vocab.tokens.length, longest });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) await main();
