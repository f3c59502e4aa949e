/**
 * World instruction data in the format of `llava_v1_5_mix665k.json`: one record per image with one
 * to three turns of different families (`<image>\n` before the first question), plus a few
 * text-only records, as mix665k has. Answers come from the oracle's families; images are rendered
 * PNGs named after their scene seed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRandom, type Random } from '../srf/random.js';
import type { LlavaRecord } from '../srf/llava-data.js';
import { IMAGE_TOKEN } from '../engine/llava-prompt.js';
import { FAMILIES, type FamilyName, type QuestionAnswer } from './families.js';
import { renderScenePng } from './render.js';
import { generateScene, type Scene } from './scene.js';

/** How often each image family is asked (relative weights). */
export const FAMILY_WEIGHTS: Readonly<Record<Exclude<FamilyName, 'fact'>, number>> = {
  colour: 1,
  shape: 1,
  count: 1,
  position: 1,
  exists: 1,
  choice: 1,
  rec: 1,
  reg: 1,
  brief: 0.7,
  detail: 0.5,
};

export interface WorldDataOptions {
  /** Scene seeds are firstSeed, firstSeed + 1, ... Default 0. */
  firstSeed?: number;
  /** Number of images. */
  count: number;
  /** Seed of the question draw. Default 1. */
  questionSeed?: number;
  /** Share of extra text-only records. Default 0.03. */
  textOnlyShare?: number;
}

export interface WorldImage {
  /** File name relative to the image folder. */
  file: string;
  scene: Scene;
}

export interface WorldData {
  images: WorldImage[];
  records: LlavaRecord[];
}

function drawFamily(random: Random, exclude: ReadonlySet<FamilyName>): FamilyName {
  const entries = Object.entries(FAMILY_WEIGHTS).filter(([name]) => !exclude.has(name as FamilyName));
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  let draw = random() * total;
  for (const [name, w] of entries) {
    draw -= w;
    if (draw < 0) return name as FamilyName;
  }
  return entries[entries.length - 1]![0] as FamilyName;
}

/** One to three turns of different families about the scene. */
export function askAbout(scene: Scene, random: Random): QuestionAnswer[] {
  const draw = random();
  const wanted = draw < 0.6 ? 1 : draw < 0.85 ? 2 : 3;
  const used = new Set<FamilyName>();
  const turns: QuestionAnswer[] = [];
  for (let tries = 0; turns.length < wanted && tries < 20; tries++) {
    const family = drawFamily(random, used);
    const qa = FAMILIES[family].ask(scene, random);
    if (!qa) continue;
    used.add(family);
    turns.push(qa);
  }
  return turns;
}

export function worldImageFile(seed: number): string {
  return `world-${String(seed).padStart(6, '0')}.png`;
}

/** The records and scenes for `count` images (nothing is written). */
export function buildWorldData(options: WorldDataOptions): WorldData {
  const firstSeed = options.firstSeed ?? 0;
  const random = createRandom(options.questionSeed ?? 1);
  const textOnlyShare = options.textOnlyShare ?? 0.03;
  const images: WorldImage[] = [];
  const records: LlavaRecord[] = [];
  for (let i = 0; i < options.count; i++) {
    const scene = generateScene(firstSeed + i);
    const file = worldImageFile(scene.seed);
    images.push({ file, scene });
    const turns = askAbout(scene, random);
    records.push({
      id: `world-${scene.seed}`,
      image: file,
      conversations: turns.flatMap((qa, t) => [
        { from: 'human' as const, value: t === 0 ? `${IMAGE_TOKEN}\n${qa.question}` : qa.question },
        { from: 'gpt' as const, value: qa.answer },
      ]),
    });
    if (random() < textOnlyShare) {
      const qa = FAMILIES.fact.ask(scene, random) as QuestionAnswer;
      records.push({ id: `world-text-${scene.seed}`, conversations: [{ from: 'human', value: qa.question }, { from: 'gpt', value: qa.answer }] });
    }
  }
  return { images, records };
}

export interface WrittenWorldData extends WorldData {
  /** The LLaVA JSON file. */
  data: string;
  /** Folder of the PNGs. */
  imageFolder: string;
  /** One scene per line: the ground truth. */
  scenes: string;
}

/**
 * Writes `dir/images/*.png`, `dir/world.llava.json` (instruction data) and `dir/scenes.jsonl`
 * (ground truth, one scene per line).
 */
export async function writeWorldData(dir: string, options: WorldDataOptions & { size?: number }): Promise<WrittenWorldData> {
  const data = buildWorldData(options);
  const imageFolder = path.join(dir, 'images');
  await mkdir(imageFolder, { recursive: true });
  for (const image of data.images) {
    const png = await renderScenePng(image.scene, options.size === undefined ? {} : { size: options.size });
    await writeFile(path.join(imageFolder, image.file), png);
  }
  const file = path.join(dir, 'world.llava.json');
  await writeFile(file, `${JSON.stringify(data.records, null, 1)}\n`);
  const scenes = path.join(dir, 'scenes.jsonl');
  await writeFile(scenes, data.images.map((image) => JSON.stringify({ file: image.file, ...image.scene })).join('\n') + '\n');
  return { ...data, data: file, imageFolder, scenes };
}
