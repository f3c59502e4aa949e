// The README's library example, as a TypeScript user writes it: the test that packs srf-native and
// installs it into a fresh project type-checks this file there (test/04-consumer-types.test.ts).
import { VisionModel, Embedder, refine, isSrfError, type TripletLine } from 'srf-native';

export async function main(): Promise<void> {
  await using model = await VisionModel.open({ model: 'llava.gguf', mmproj: 'mmproj.gguf', parallel: 16 });
  const qa = await model.imageToQA(['a.jpg', 'b.png']); // I->QA, one item per image
  const q = await model.answerToQuestion([{ image: 'a.jpg', answer: 'A red bus.' }]); // IA->Q
  const a = await model.questionToAnswer([{ image: 'a.jpg', question: 'What is it?' }]); // IQ->A
  for (const item of qa) console.log(item.ok ? `${item.question} -> ${item.answer}` : item.error.code);
  console.log(q[0]?.ok && q[0].text, a[0]?.ok && a[0].text);
  const one = await model.generate({ image: 'a.jpg', prompt: 'Describe it.', sampling: { temperature: 0.7, seed: 1 } });
  console.log(one.text, one.finishReason);

  await using embedder = await Embedder.open({ model: 'all-MiniLM-L6-v2.gguf' });
  const [vector] = await embedder.embed(['a red bus']);
  console.log(vector?.pooled.length);

  // The whole pipeline: events while it runs, a summary at the end.
  const run = refine({ model: 'llava.gguf', mmproj: 'mmproj.gguf', embedder: 'all-MiniLM-L6-v2.gguf', images: './photos', out: './srf-round0' });
  run.on('progress', (p) => console.log(`${p.done}/${p.total}`));
  run.on('result', (line: TripletLine) => console.log(line.image));
  try {
    const summary = await run.result;
    console.log(summary.status, summary.counts, summary.imagesPerSecond);
  } catch (error) {
    if (isSrfError(error)) {
      // `code` is a union of the stable codes: narrowing works.
      if (error.code === 'FILE_NOT_FOUND') console.error(`missing: ${error.file}`);
      else console.error(error.code, error.message);
    } else throw error;
  }
}
