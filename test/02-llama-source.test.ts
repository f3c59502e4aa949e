// Where the build finds llama.cpp's source (node-llama-cpp's bundle) and how it is told to build:
// scripts/llama-source.mjs and scripts/build-native.mjs, on package layouts made in a temp folder.
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
// @ts-expect-error: plain ESM scripts (they run before TypeScript is compiled), no declarations
import { findLlamaSource } from '../scripts/llama-source.mjs';
// @ts-expect-error: as above
import { buildOptions, cmakeJsArgs, describeBuild, missingTools } from '../scripts/build-native.mjs';
import { tempDir } from './helpers/fixtures.js';
import { ROOT } from './helpers/cli.js';

/** A package folder with a package.json; node-llama-cpp also gets its llama/ files unless told not to. */
async function pkg(dir: string, name: string, { bundle = true, info = true } = {}): Promise<string> {
  await mkdir(join(dir, 'llama'), { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name, version: '3.21.1' }));
  if (name === 'node-llama-cpp') {
    if (bundle) await writeFile(join(dir, 'llama', 'gitRelease.bundle'), 'bundle');
    if (info) await writeFile(join(dir, 'llama', 'llama.cpp.info.json'), JSON.stringify({ tag: 'v0.4.0' }));
  }
  return dir;
}

t.test('hoisted: node-llama-cpp beside srf-native in the project node_modules', async (t) => {
  const project = await tempDir();
  const srf = await pkg(join(project, 'node_modules', 'srf-native'), 'srf-native');
  const llama = await pkg(join(project, 'node_modules', 'node-llama-cpp'), 'node-llama-cpp');
  const found = findLlamaSource(srf);
  t.equal(found.packageDir, realpathSync(llama));
  t.equal(found.bundle, join(realpathSync(llama), 'llama', 'gitRelease.bundle'));
  t.equal(found.tag, 'v0.4.0');
});

t.test('nested: srf-native/node_modules wins over a hoisted copy, as in Node', async (t) => {
  const project = await tempDir();
  const srf = await pkg(join(project, 'node_modules', 'srf-native'), 'srf-native');
  await pkg(join(project, 'node_modules', 'node-llama-cpp'), 'node-llama-cpp');
  const nested = await pkg(join(srf, 'node_modules', 'node-llama-cpp'), 'node-llama-cpp');
  t.equal(findLlamaSource(srf).packageDir, realpathSync(nested));
});

t.test("symlinked (pnpm's layout): the link is followed to the real folder", async (t) => {
  const project = await tempDir();
  const store = await pkg(join(project, 'node_modules', '.pnpm', 'node-llama-cpp@3.21.1', 'node_modules', 'node-llama-cpp'), 'node-llama-cpp');
  const srf = await pkg(join(project, 'node_modules', '.pnpm', 'srf-native@0.1.0', 'node_modules', 'srf-native'), 'srf-native');
  // pnpm links a package's dependencies next to it inside the store
  await symlink(store, join(project, 'node_modules', '.pnpm', 'srf-native@0.1.0', 'node_modules', 'node-llama-cpp'), 'dir');
  const found = findLlamaSource(srf);
  t.equal(found.packageDir, realpathSync(store));
  t.equal(found.info, join(realpathSync(store), 'llama', 'llama.cpp.info.json'));
});

t.test('a clone: the repository root finds its own node_modules', async (t) => {
  const found = findLlamaSource(ROOT);
  t.equal(found.packageDir, realpathSync(join(ROOT, 'node_modules', 'node-llama-cpp')));
  t.match(found.tag, /^v\d/);
});

t.test('missing or incomplete: one coded error that names what is missing', async (t) => {
  const project = await tempDir();
  const srf = await pkg(join(project, 'node_modules', 'srf-native'), 'srf-native');
  t.throws(() => findLlamaSource(srf), {
    code: 'LLAMA_SOURCE_MISSING',
    message: new RegExp(`node-llama-cpp package was not found .*${join(project, 'node_modules').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
  });
  await pkg(join(project, 'node_modules', 'node-llama-cpp'), 'node-llama-cpp', { bundle: false });
  t.throws(() => findLlamaSource(srf), { code: 'LLAMA_SOURCE_MISSING', message: /gitRelease\.bundle is missing/ });
  await writeFile(join(project, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle'), 'bundle');
  await writeFile(join(project, 'node_modules', 'node-llama-cpp', 'llama', 'llama.cpp.info.json'), '{ not json');
  t.throws(() => findLlamaSource(srf), { code: 'LLAMA_SOURCE_MISSING', message: /llama\.cpp\.info\.json is not valid JSON/ });
});

t.test('build options: every core by default, SRF_BUILD_JOBS and flags override, bad values refused', async (t) => {
  t.equal(buildOptions([], {}).jobs, availableParallelism());
  t.equal(buildOptions([], { SRF_BUILD_JOBS: '3' }).jobs, 3);
  t.equal(buildOptions(['--jobs', '5'], { SRF_BUILD_JOBS: '3' }).jobs, 5);
  t.equal(buildOptions([], {}).gpu, 'auto');
  t.equal(buildOptions([], { SRF_GPU: 'cpu' }).gpu, 'cpu');
  t.equal(buildOptions(['--gpu=cuda'], { SRF_GPU: 'cpu' }).gpu, 'cuda');
  t.throws(() => buildOptions(['--gpu', 'metal'], {}), /must be one of auto, cuda, cpu, not 'metal'/);
  t.throws(() => buildOptions([], { SRF_BUILD_JOBS: 'many' }), /SRF_BUILD_JOBS\) must be a whole number/);
  t.throws(() => buildOptions(['--jobs', '0'], {}), /must be a whole number >= 1/);

  const args = cmakeJsArgs(buildOptions(['--gpu', 'cuda', '--jobs', '16'], { CMAKE_CUDA_ARCHITECTURES: '90' }), 'build');
  t.same(args, ['compile', '--out', 'build', '--parallel', '16', '--CDSRF_GPU=cuda', '--CDCMAKE_CUDA_ARCHITECTURES=90']);
});

t.test('the build says what it builds before it starts', async (t) => {
  const lines = describeBuild(buildOptions(['--gpu', 'cpu', '--jobs', '2'], {}), { PATH: '' }).join('\n');
  t.match(lines, /backend: CPU/);
  t.match(lines, /jobs: 2 \(SRF_BUILD_JOBS to change\)/);
  t.match(lines, /ccache: not found/);
  t.match(lines, /expect about \d+ min for a first build/);
});

t.test('missing tools are named with how to get them', async (t) => {
  const problems = missingTools({ PATH: '/nonexistent' }).join('\n');
  t.match(problems, /cmake >= 3\.19/);
  t.match(problems, /C\+\+17 compiler/);
  t.match(problems, /git/);
  t.same(missingTools(process.env), [], 'this machine has all it needs');
});
