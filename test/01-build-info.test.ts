// The addon says what it was built with and which devices it sees.
import t from 'tap';
import { buildInfo } from '../lib/index.js';

t.test('build info', async (t) => {
  const info = buildInfo();
  t.match(info.backend, /^(cpu|cuda)$/);
  t.match(info.gpuChoice, /^(auto|cpu|cuda)$/);
  t.match(info.llamaCppVersion, /^v\d+\.\d+\.\d+/);
  t.ok(info.devices.length >= 1, 'at least the CPU');
  t.ok(info.devices.some((d) => d.type === 'cpu'));
  t.equal(info.supportsGpuOffload, info.backend === 'cuda', 'GPU offload exactly when built with CUDA');
  if (info.gpuChoice === 'cuda') t.equal(info.backend, 'cuda', 'a forced CUDA build is a CUDA build');
});
