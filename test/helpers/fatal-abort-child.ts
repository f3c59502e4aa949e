// Child process of test/19-fatal-abort.test.ts: buffers journal lines that no timer will write
// (a minute's batch), then makes llama.cpp abort the process from the engine's thread
// (SRF_FAILPOINTS=ggml-abort@1). Only the fatal-abort hook can get those lines onto the disk.
import { Worker } from 'node:worker_threads';
import { Journal } from '../../lib/outputs/journal.js';
import { native, onFatalAbort } from '../../lib/engine/native.js';
import { VisionModel } from '../../lib/vision-model.js';

const [journalFile, model, mmproj, image] = process.argv.slice(2) as [string, string, string, string];
const journal = await Journal.open(journalFile, { batchMs: 60_000, batchLines: 1000 });
for (let i = 0; i < 3; i++) journal.append({ id: `line-${i}`, image: `img${i}.png`, round: 0, status: 'error', error: { code: 'IMAGE_UNREADABLE', message: 'x' }, ms: 1 });
onFatalAbort(journal.writeBufferedSync);
native();
// A worker that loads the engine and ends takes only its own hook along, not this thread's.
const nativeModule = new URL('../../lib/engine/native.ts', import.meta.url).href;
await new Promise((resolve, reject) => {
  const worker = new Worker(`import(${JSON.stringify(nativeModule)}).then((m) => m.native())`, { eval: true });
  worker.on('error', reject);
  worker.on('exit', resolve);
});
const vision = await VisionModel.open({ model, mmproj, parallel: 1, threads: 1, devices: ['cpu'] });
await vision.generate({ image, prompt: 'What is it?', sampling: { maxTokens: 4 } });
console.log('not aborted');
