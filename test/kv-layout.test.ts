// The sizing defaults: the 'auto' KV layout (per-sequence wherever it fits: RAM on CPU, free memory
// on a GPU, else unified) and the default sequence count.
import t from 'tap';
import { chooseKvLayout, defaultParallel, kvBytesPerCell, perSequenceCells } from '../lib/engine/sizing.js';

const GiB = 1024 ** 3;

t.test('bytes per KV cell follow the model shape', async (t) => {
  // LLaVA-1.5-7B: 32 layers, 4096 wide, 32 heads, no GQA: 2 (K, V) x 32 x 4096 x 2 bytes = 512 KiB.
  t.equal(kvBytesPerCell({ nEmbd: 4096, nLayer: 32, nHead: 32, nHeadKv: 32 }), 512 * 1024);
  t.equal(kvBytesPerCell({ nEmbd: 4096, nLayer: 32, nHead: 32, nHeadKv: 8 }), 128 * 1024, 'grouped-query attention stores fewer heads');
  t.equal(kvBytesPerCell({ nEmbd: 768, nLayer: 6, nHead: 0, nHeadKv: 0 }), 2 * 6 * 768 * 2, 'missing head counts: one head');
});

t.test('auto picks by device and memory; explicit choices pass; others fail', async (t) => {
  const cpu = { onGpu: false, perSequenceBytes: 2 * GiB, totalMemory: 24 * GiB };
  t.equal(chooseKvLayout(undefined, cpu), 'per-sequence');
  t.equal(chooseKvLayout('auto', cpu), 'per-sequence');
  t.equal(chooseKvLayout('auto', { ...cpu, perSequenceBytes: 7 * GiB }), 'unified', 'over a quarter of memory: the smaller layout');
  t.equal(chooseKvLayout('per-sequence', { ...cpu, perSequenceBytes: 20 * GiB }), 'per-sequence', 'an explicit choice is not second-guessed');
  t.equal(chooseKvLayout('per-sequence', { ...cpu, onGpu: true }), 'per-sequence');
  t.equal(chooseKvLayout('unified', cpu), 'unified');
  t.throws(() => chooseKvLayout('split', cpu), { code: 'INVALID_ARGUMENT' });
});


t.test('on a GPU, auto picks per-sequence when its KV and the weights fit in 80 % of free memory', async (t) => {
  // The bench's 7B shape: 32 sequences + 32 cached prefixes x 1280 cells x 512 KiB = 40 GiB, weights ~4.5 GiB.
  const h100 = { onGpu: true, perSequenceBytes: 40 * GiB, weightBytes: 4.5 * GiB, totalMemory: 128 * GiB, gpuMemoryFree: 79 * GiB };
  t.equal(chooseKvLayout('auto', h100), 'per-sequence');
  t.equal(chooseKvLayout('auto', { ...h100, gpuMemoryFree: 23 * GiB }), 'unified', 'a 24 GB card: the smaller layout');
  t.equal(chooseKvLayout('auto', { ...h100, gpuMemoryFree: 55 * GiB }), 'unified', '44.5 GiB is more than 80 % of 55');
  t.equal(chooseKvLayout('auto', { ...h100, gpuMemoryFree: 56 * GiB }), 'per-sequence', '44.5 GiB is within 80 % of 56');
  t.equal(chooseKvLayout('auto', { ...h100, gpuMemoryFree: undefined }), 'unified', 'unknown free memory: the smaller layout');
  t.equal(chooseKvLayout('auto', { ...h100, totalMemory: 8 * GiB }), 'per-sequence', 'RAM does not limit a KV cache on the GPU');
  t.equal(chooseKvLayout('unified', h100), 'unified');
});

t.test('default sequence count: 8 on CPU; on a GPU the most of 32, 24, 16 whose per-sequence KV fits', async (t) => {
  // srf-native run's 7B: 3 streams per sequence (its own + 2 cached prefixes) x 1280 cells x 512 KiB.
  const cells = perSequenceCells(576, 448);
  t.equal(cells, 1280, 'an image prefix plus a request, in whole 256-cell blocks');
  const bytesFor = (n: number) => 3 * n * cells * 512 * 1024;
  const gpu = { onGpu: true, totalMemory: 128 * GiB, weightBytes: 4.5 * GiB };
  // 32 -> 60 GiB, 24 -> 45 GiB, 16 -> 30 GiB of KV, each plus 4.5 GiB of weights, within 80 % of free memory.
  t.equal(defaultParallel({ ...gpu, gpuMemoryFree: 139 * GiB }, bytesFor), 32, 'H200');
  t.equal(defaultParallel({ ...gpu, gpuMemoryFree: 79 * GiB }, bytesFor), 24, 'H100 80 GB: 64.5 GiB > 63.2');
  t.equal(defaultParallel({ ...gpu, gpuMemoryFree: 44 * GiB }, bytesFor), 16, '48 GB card (L40S): 34.5 GiB <= 35.2');
  t.equal(defaultParallel({ ...gpu, gpuMemoryFree: 23 * GiB }, bytesFor), 8, '24 GB card: none fits, the CPU default');
  t.equal(defaultParallel({ ...gpu, gpuMemoryFree: undefined }, bytesFor), 8, 'unknown free memory');
  t.equal(defaultParallel({ onGpu: false, totalMemory: 1024 * GiB }, bytesFor), 8, 'CPU: 8 however much RAM');
  // Each GPU choice also gets the per-sequence layout from 'auto' (the same fit rule).
  for (const free of [139, 79, 44]) {
    const facts = { ...gpu, gpuMemoryFree: free * GiB };
    const n = defaultParallel(facts, bytesFor);
    t.equal(chooseKvLayout('auto', { ...facts, perSequenceBytes: bytesFor(n) }), 'per-sequence', `${n} sequences on ${free} GiB: per-sequence`);
  }
});
