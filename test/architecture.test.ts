// The layout is the architecture: every file of lib/ belongs to a layer by its folder, and imports
// (type-only ones and re-exports included) go only to a lower layer or within its own folder. No
// import cycle, of any length. The table below is the picture of the README's "Architecture"; a
// new folder has to be placed in it before a file there can import anything.
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import t from 'tap';
import ts from 'typescript';
import { ROOT } from './helpers/cli.js';

const LIB = join(ROOT, 'lib');

/** Layer of each place in lib/, lowest first; a place is a folder, or a file at lib/'s root. */
const LAYERS: Record<string, number> = {
  'errors.ts': 0,
  'util/': 1,
  'gguf/': 2,
  'engine/': 3,
  'srf/': 4,
  'emit/': 5,
  'world/': 5,
  'vision-model.ts': 5,
  'outputs/': 6,
  'jobs/': 7,
  'cli/': 8,
  'index.ts': 9,
};

function placeOf(file: string): string {
  const rel = relative(LIB, file).split('\\').join('/');
  const slash = rel.indexOf('/');
  return slash < 0 ? rel : rel.slice(0, slash + 1);
}

async function libFiles(dir = LIB): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await libFiles(path)));
    else if (entry.name.endsWith('.ts')) files.push(path);
  }
  return files;
}

/** The lib/ files a file imports or re-exports from, type-only included. */
async function importsOf(file: string): Promise<string[]> {
  const info = ts.preProcessFile(await readFile(file, 'utf8'), true, true);
  return info.importedFiles
    .map((i) => i.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) => resolve(dirname(file), name).replace(/\.js$/, '.ts'));
}

const files = await libFiles();
const known = new Set(files);
const graph = new Map<string, string[]>();
for (const file of files) graph.set(file, (await importsOf(file)).filter((f) => known.has(f)));

t.test('every file of lib/ is in a layer', async (t) => {
  const unplaced = [...new Set(files.map(placeOf))].filter((place) => !(place in LAYERS));
  t.same(unplaced, [], 'folders and root files the layer table does not name');
});

t.test('imports go down the layers, or stay in their folder', async (t) => {
  const violations: string[] = [];
  for (const [file, imports] of graph) {
    const from = placeOf(file);
    for (const target of imports) {
      const to = placeOf(target);
      if (to === from) continue;
      if ((LAYERS[to] ?? Infinity) >= (LAYERS[from] ?? -Infinity)) {
        violations.push(`${relative(LIB, file)} (${from}, layer ${LAYERS[from]}) imports ${relative(LIB, target)} (${to}, layer ${LAYERS[to]})`);
      }
    }
  }
  t.same(violations, [], 'imports up or sideways across layers');
});

t.test('no import cycle, type-only imports included', async (t) => {
  // Tarjan's strongly connected components: any component of more than one file is a cycle.
  let index = 0;
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    order.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!order.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, order.get(w)!));
    }
    if (low.get(v) === order.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(relative(LIB, w));
      } while (w !== v);
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const file of graph.keys()) if (!order.has(file)) visit(file);
  t.same(cycles, [], 'files that import each other, directly or around a loop');
});

t.test('no file of lib/ is over 600 lines', async (t) => {
  const long: string[] = [];
  for (const file of files) {
    const lines = (await readFile(file, 'utf8')).split('\n').length;
    if (lines > 600) long.push(`${relative(LIB, file)}: ${lines} lines`);
  }
  t.same(long, [], 'files to split into named parts');
});

// The native engine knows nothing of Node: N-API lives in the JS-facing objects and their helpers
// only, so the batching loop, the KV budget, the loader and the caches can be read (and tested,
// and used) without it.
const NAPI_FILES = ['addon.cpp', 'addon_data.h', 'embedder.cpp', 'embedder.h', 'errors.cpp', 'errors.h', 'promise_worker.h', 'vision_model.cpp', 'vision_model.h'];

t.test('only the N-API objects of native/ touch N-API', async (t) => {
  const native = join(ROOT, 'native');
  const offenders: string[] = [];
  for (const name of await readdir(native)) {
    if (NAPI_FILES.includes(name) || !/\.(cpp|h)$/.test(name)) continue;
    if (/#include <napi\.h>|Napi::|napi_/.test(await readFile(join(native, name), 'utf8'))) offenders.push(name);
  }
  t.same(offenders, [], 'native files using N-API outside the JS-facing objects');
});
