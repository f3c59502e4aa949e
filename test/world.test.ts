import t from 'tap';
import { detectDataType } from '../lib/srf/data-types.js';
import { parseBoxAnswer } from '../lib/srf/box.js';
import { splitConversations } from '../lib/srf/tasks.js';
import {
  FAMILIES,
  FAMILY_NAMES,
  RGB,
  buildWorldData,
  generateScene,
  objectBox,
  objectRegion,
  oracleAnswer,
  oracleReading,
  renderScenePng,
  SHAPES,
  renderSceneRgb,
  type Scene,
  type SceneObject,
} from '../lib/world/index.js';
import { boxIoU as iou } from '../lib/srf/metrics.js';
import { createRandom } from '../lib/srf/random.js';

const SIZE = 64;

t.test('the same seed gives the same scene, image and data; another seed another', async (t) => {
  t.same(generateScene(42), generateScene(42));
  t.notSame(generateScene(42), generateScene(43));
  const a = await renderScenePng(generateScene(7));
  const b = await renderScenePng(generateScene(7));
  t.ok(a.equals(b), 'PNG bytes identical');
  t.notOk(a.equals(await renderScenePng(generateScene(8))));
  t.same(buildWorldData({ count: 50, firstSeed: 100 }), buildWorldData({ count: 50, firstSeed: 100 }));
  t.notSame(buildWorldData({ count: 50, questionSeed: 1 }).records, buildWorldData({ count: 50, questionSeed: 2 }).records);
});

t.test('scenes keep their promises: 1-4 objects inside the image, no two alike, none hidden', async (t) => {
  for (let seed = 0; seed < 500; seed++) {
    const scene = generateScene(seed);
    t.ok(scene.objects.length >= 1 && scene.objects.length <= 4, `seed ${seed}: ${scene.objects.length} objects`);
    const kinds = new Set(scene.objects.map((o) => `${o.colour} ${o.shape}`));
    if (kinds.size !== scene.objects.length) t.fail(`seed ${seed}: two objects share colour and shape`);
    for (const o of scene.objects) {
      const [x1, y1, x2, y2] = objectBox(o);
      if (!(x1 >= 0 && y1 >= 0 && x2 <= 1 && y2 <= 1)) t.fail(`seed ${seed}: object outside the image`);
    }
  }
});

/** Bounding box (0..1) of the pixels where `object` alone differs from the bare background. */
async function drawnBox(scene: Scene, object: SceneObject): Promise<[number, number, number, number] | null> {
  const rgb = await renderSceneRgb(scene, { size: SIZE, objects: [object], noise: false });
  const bg = RGB[scene.background];
  let [x1, y1, x2, y2] = [SIZE, SIZE, -1, -1];
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const i = (y * SIZE + x) * 3;
      const diff = Math.abs(rgb[i]! - bg[0]) + Math.abs(rgb[i + 1]! - bg[1]) + Math.abs(rgb[i + 2]! - bg[2]);
      if (diff > 60) [x1, y1, x2, y2] = [Math.min(x1, x), Math.min(y1, y), Math.max(x2, x), Math.max(y2, y)];
    }
  }
  return x2 < 0 ? null : [x1 / SIZE, y1 / SIZE, (x2 + 1) / SIZE, (y2 + 1) / SIZE];
}

/** The named colour nearest to a pixel. */
function nearestColour(pixel: readonly number[]): string {
  let best = '';
  let bestDistance = Infinity;
  for (const [name, rgb] of Object.entries(RGB)) {
    const d = (pixel[0]! - rgb[0]) ** 2 + (pixel[1]! - rgb[1]) ** 2 + (pixel[2]! - rgb[2]) ** 2;
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

t.test('the oracle agrees with the ground truth and with the pixels', async (t) => {
  const { images, records } = buildWorldData({ count: 300, firstSeed: 5000 });
  const scenes = new Map(images.map((image) => [image.file, image.scene]));
  let checked = 0;
  for (const record of records) {
    const scene = record.image === undefined ? null : (scenes.get(record.image) as Scene);
    for (let i = 0; i < record.conversations.length; i += 2) {
      const question = record.conversations[i]!.value;
      const answer = record.conversations[i + 1]!.value;
      const oracle = oracleAnswer(scene, question);
      if (!oracle || oracle.answer !== answer) t.fail(`${record.id}: oracle says ${JSON.stringify(oracle)} to ${JSON.stringify(question)}, data says ${answer}`);
      checked++;
    }
  }
  t.ok(checked > 400, `${checked} turns answered as in the data`);

  // Independent of the templates: every object, asked about directly.
  for (const { scene } of images.slice(0, 120)) {
    const full = await renderSceneRgb(scene, { size: SIZE, noise: false });
    for (const object of scene.objects) {
      const ref = `${object.size} ${object.colour} ${object.shape}`;
      // REC: the box the oracle gives is where the object is drawn.
      const box = parseBoxAnswer(oracleAnswer(scene, `Please provide the bounding box coordinate of the region this sentence describes: the ${ref}.`)!.answer);
      const drawn = await drawnBox(scene, object);
      t.ok(box && drawn && iou(box, drawn) > 0.75, `seed ${scene.seed} ${ref}: box ${box} vs drawn ${drawn}`);
      // Colour: the named colour of the object's centre pixel, when no later object covers it.
      const covered = scene.objects.some((o) => o.index > object.index && iou(objectBox(o), [object.x, object.y, object.x + 0.001, object.y + 0.001]) > 0);
      const colour = oracleAnswer(scene, `What color is the ${object.size} ${object.shape} ${regionPhrase(object)}?\nAnswer the question using a single word or phrase.`);
      if (!covered && colour) {
        const i = (Math.floor(object.y * SIZE) * SIZE + Math.floor(object.x * SIZE)) * 3;
        t.equal(colour.answer, nearestColour([full[i]!, full[i + 1]!, full[i + 2]!]), `seed ${scene.seed}: colour of the ${ref}`);
      }
      // REG: the object's own box is described as that object.
      t.equal(oracleAnswer(scene, `Please provide a short description for this region: ${formatted(objectBox(object))}`)?.answer, `A ${ref}.`);
    }
    // Counting, by a different route than the oracle's.
    for (const colour of ['red', 'blue']) {
      const n = scene.objects.reduce((sum, o) => sum + (o.colour === colour ? 1 : 0), 0);
      t.equal(oracleAnswer(scene, `How many ${colour} objects are there?\nAnswer the question using a single word or phrase.`)?.answer, String(n));
    }
    t.equal(
      oracleAnswer(scene, 'Is there a purple cross in the image?')?.answer,
      scene.objects.some((o) => o.colour === 'purple' && o.shape === 'cross') ? 'Yes' : 'No',
    );
  }
  t.equal(oracleAnswer(generateScene(1), 'What is the meaning of life?'), null, 'a question of no family has no answer');
  t.equal(oracleAnswer(null, 'How many sides does a triangle have?')?.answer, 'A triangle has three sides.');
});

t.test('where the oracle has no answer it says why: absent, ambiguous, malformed or garbled', async (t) => {
  const SHORT = 'Answer the question using a single word or phrase.';
  const scene = [...Array(500).keys()].map((seed) => generateScene(seed)).find((s) => {
    const shapes = s.objects.map((o) => o.shape);
    return shapes.some((shape) => shapes.filter((x) => x === shape).length === 2) && SHAPES.some((shape) => !shapes.includes(shape)) && shapes.some((shape) => shapes.filter((x) => x === shape).length === 1);
  })!;
  const count = (shape: string) => scene.objects.filter((o) => o.shape === shape).length;
  const twice = SHAPES.find((shape) => count(shape) === 2)!;
  const missing = SHAPES.find((shape) => count(shape) === 0)!;
  const once = scene.objects.find((o) => count(o.shape) === 1)!;
  const reason = (question: string) => {
    const r = oracleReading(scene, question);
    return 'answer' in r ? `answer ${r.answer}` : `${r.family} ${r.unanswerable}`;
  };
  t.equal(reason(`What color is the ${missing}?\n${SHORT}`), 'colour absent');
  t.equal(reason(`Where is the ${twice}?\n${SHORT}`), 'position ambiguous');
  t.equal(reason(`Please provide the bounding box coordinate of the region this sentence describes: the ${missing}.`), 'rec absent');
  t.equal(reason(`What color is the ${once.colour} ${once.shape}?\n${SHORT}`), 'colour malformed', 'a colour question naming the colour');
  const wrongColours = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'].filter((c) => c !== once.colour).slice(0, 4);
  const options = wrongColours.map((c, i) => `${'ABCD'[i]}. ${c}`).join('\n');
  t.equal(reason(`What color is the ${once.shape}?\n${options}\nAnswer with the option's letter from the given choices directly.`), 'choice malformed', 'no option is right');
  t.equal(reason(`What color is the ${once.shape}?\n${SHORT}`), `answer ${once.colour}`);
  t.equal(reason('Please provide a short description for this region: [0.98, 0.98, 0.99, 0.99]'), 'reg absent', 'a box around no object');
  t.equal(reason('Please provide a short description for this region: [0.98, 0.98'), 'reg malformed');
  t.equal(reason('What is the meaning of life?'), 'null garbled');
  t.equal(reason('Describe the image in detail.').startsWith('answer There are'), true);
  t.equal(oracleReading(null, 'Describe the image in detail.').family, 'detail', 'a question about an image without one');
  t.same(oracleReading(null, 'Describe the image in detail.'), { family: 'detail', unanswerable: 'absent' });
  // The reasons and the answers agree: no family both answers and refuses a question.
  for (const name of FAMILY_NAMES) {
    const qa = FAMILIES[name].ask(scene, createRandom(3));
    if (!qa) continue;
    t.same(FAMILIES[name].read(scene, qa.question), { answer: FAMILIES[name].answer(scene, qa.question) }, `${name}: read and answer agree`);
  }
});

function regionPhrase(o: SceneObject): string {
  const r = objectRegion(o);
  return r === 'center' ? 'in the center' : r === 'left' || r === 'right' ? `on the ${r}` : `at the ${r}`;
}
function formatted(box: readonly number[]): string {
  return `[${box.map((v) => v.toFixed(2)).join(', ')}]`;
}

t.test("every family's pairs have the data type lib/srf/data-types.ts detects, and all types are covered", async (t) => {
  const { images, records } = buildWorldData({ count: 800, firstSeed: 9000 });
  const scenes = new Map(images.map((image) => [image.file, image.scene]));
  const { turns } = splitConversations(records);
  const seen = new Map<string, number>();
  for (const turn of turns) {
    const family = oracleAnswer(turn.image === undefined ? null : (scenes.get(turn.image) as Scene), turn.question)!.family;
    const type = detectDataType(turn.question, turn.answer);
    if (type !== FAMILIES[family].dataType) t.fail(`${family}: ${JSON.stringify(turn.question)} -> ${JSON.stringify(turn.answer)} is ${type}`);
    seen.set(family, (seen.get(family) ?? 0) + 1);
  }
  t.same([...seen.keys()].sort(), [...FAMILY_NAMES].sort(), 'every family occurs');
  t.same(new Set(Object.values(FAMILIES).map((f) => f.dataType)), new Set(['short_answer', 'multiple_choice', 'box', 'region_text', 'long_text', 'short_text']));
  t.ok(turns.some((turn) => turn.image === undefined), 'some text-only turns');
  t.ok(records.some((r) => r.conversations.length >= 4), 'some multi-turn records');
});

t.test('descriptions list objects in reading order: the top row of regions first, left to right within a row', async (t) => {
  let checked = 0;
  for (let seed = 0; seed < 400; seed++) {
    const scene = generateScene(seed);
    if (scene.objects.length < 2) continue;
    const detail = FAMILIES.detail.answer(scene, 'Describe the image in detail.') as string;
    // Each object's sentence, found by its words: their order in the text is the listing order.
    const at = scene.objects.map((o) => ({ o, index: detail.indexOf(`A ${o.size} ${o.colour} ${o.shape} is`) }));
    t.ok(at.every((a) => a.index > 0), `seed ${seed}: every object described`);
    const listed = at.sort((a, b) => a.index - b.index).map((a) => a.o);
    const row = (o: SceneObject) => Math.floor(['top left', 'top', 'top right', 'left', 'center', 'right', 'bottom left', 'bottom', 'bottom right'].indexOf(objectRegion(o)) / 3);
    for (let i = 1; i < listed.length; i++) {
      const [a, b] = [listed[i - 1]!, listed[i]!];
      if (!(row(a) < row(b) || (row(a) === row(b) && a.x <= b.x))) t.fail(`seed ${seed}: ${detail}`);
    }
    const brief = FAMILIES.brief.answer(scene, 'What is in the image?') as string;
    const order = listed.map((o) => brief.toLowerCase().indexOf(`${o.colour} ${o.shape}`));
    t.same(order, [...order].sort((x, y) => x - y), `seed ${seed}: the brief description in the same order`);
    checked++;
  }
  t.ok(checked > 200, `${checked} scenes with several objects`);
});

t.test('an exists question that names a size does not give its answer away', async (t) => {
  const random = createRandom(5);
  const answers = { sized: { Yes: 0, No: 0 }, plain: { Yes: 0, No: 0 } };
  for (let seed = 0; seed < 4000; seed++) {
    const qa = FAMILIES.exists.ask(generateScene(seed), random)!;
    const sized = /^Is there an? (small|large) /.test(qa.question);
    answers[sized ? 'sized' : 'plain'][qa.answer as 'Yes' | 'No']++;
  }
  const share = (c: { Yes: number; No: number }) => c.Yes / (c.Yes + c.No);
  t.ok(answers.sized.Yes + answers.sized.No > 800, 'enough questions name a size');
  t.ok(share(answers.sized) < 0.6, `"Yes" ${(100 * share(answers.sized)).toFixed(1)} % of the time when a size is named`);
  t.ok(share(answers.sized) < share(answers.plain) + 0.05, `not more often than without a size (${(100 * share(answers.plain)).toFixed(1)} %)`);
});
