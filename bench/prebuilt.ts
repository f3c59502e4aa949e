/**
 * The engine on node-llama-cpp's prebuilt llama.cpp (build/, the default install) against the engine
 * compiled from source (build-source/, made once by bench/tools.ts's sourceTree), in one run: the
 * engine-only benchmark (`npm run bench -- --skip-pipeline --skip-cli --skip-server --json`) in child
 * processes, alternating A B A B so that drift on a shared machine falls on both. Prints triplets/s of
 * each and the ratio prebuilt / source (target >= 1.0: the prebuilt library may pick a wider CPU
 * variant than the source build's AVX2).
 *
 *     node dist/bench/prebuilt.js [--rounds 2] [-- bench flags...]
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchRoot, sourceTree } from './tools.js';

interface EngineRun {
  tripletsPerSecond: number;
  build: string;
}

function runEngine(root: string, addon: string | undefined, extra: string[]): Promise<EngineRun> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    if (addon) env.SRF_NATIVE_ADDON = addon;
    else delete env.SRF_NATIVE_ADDON;
    const child = spawn(process.execPath, [join(root, 'dist', 'bench', 'run.js'), '--skip-pipeline', '--skip-cli', '--skip-server', '--json', '--no-record', ...extra], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`bench exited with ${code}`));
      const report = JSON.parse(out) as { build: string; results: Array<{ peer: string; tripletsPerSecond: number }> };
      const engine = report.results.find((r) => r.peer.startsWith('srf-native'));
      if (!engine) return reject(new Error('no srf-native result'));
      resolve({ tripletsPerSecond: engine.tripletsPerSecond, build: report.build });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = benchRoot();
  const args = process.argv.slice(2);
  const at = args.indexOf('--rounds');
  const rounds = at >= 0 ? Number(args[at + 1]) : 2;
  const extra = args.includes('--') ? args.slice(args.indexOf('--') + 1) : [];
  const tree = await sourceTree(root, (line) => console.error(line));
  if (!tree.prebuiltAddon) throw new Error('build/ is a source build: build the default (prebuilt) engine first (npm run build:native)');
  const prebuilt: number[] = [];
  const source: number[] = [];
  for (let r = 0; r < rounds; r++) {
    prebuilt.push((await runEngine(root, undefined, extra)).tripletsPerSecond);
    source.push((await runEngine(root, tree.addon, extra)).tripletsPerSecond);
    console.error(`round ${r + 1}: prebuilt ${prebuilt[r]!.toFixed(3)}, source ${source[r]!.toFixed(3)} triplets/s`);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`engine triplets/s: prebuilt ${mean(prebuilt).toFixed(3)} (${prebuilt.map((x) => x.toFixed(3)).join(', ')}), source ${mean(source).toFixed(3)} (${source.map((x) => x.toFixed(3)).join(', ')}); prebuilt / source ${(mean(prebuilt) / mean(source)).toFixed(2)}`);
}
