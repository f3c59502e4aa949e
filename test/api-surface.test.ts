// The public API is a decision, not an accident: what each entry point of package.json's `exports`
// map offers (names, kinds, signatures, members) must equal the snapshot in test/api/. A change to
// it fails here until the snapshot is rewritten on purpose:
//     SRF_UPDATE_API=1 npx tap test/api-surface.test.ts
// and the README's changes say what changed. Also: the map's entry points load through the
// package's own name (ESM import and CommonJS require), and a file outside the map does not.
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';
import { ROOT } from './helpers/cli.js';
import { describeEntryPoint, projectCompilerOptions } from './helpers/api-surface.js';

interface ExportTarget {
  types: string;
  import: string;
  require: string;
}

const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { name: string; exports: Record<string, ExportTarget> };
const compilerOptions = projectCompilerOptions(join(ROOT, 'tsconfig.json'));

/** `dist/lib/x.d.ts` -> `lib/x.ts`: the source the snapshot is taken from. */
function sourceOf(typesPath: string): string {
  return join(ROOT, typesPath.replace(/^\.\/dist\//, '').replace(/\.d\.ts$/, '.ts'));
}

function snapshotFile(subpath: string): string {
  return join(ROOT, 'test', 'api', `${subpath === '.' ? 'index' : subpath.replace(/^\.\//, '').replace(/\//g, '-')}.api.txt`);
}

t.test('every entry point has types, import and require conditions', async (t) => {
  t.ok(pkg.exports && typeof pkg.exports === 'object', 'package.json has an exports map');
  t.ok(pkg.exports['.'], 'the main entry point is in the map');
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (subpath === './package.json') continue;
    t.match(target, { types: String, import: String, require: String }, `${subpath}: types, import and require`);
  }
});

for (const [subpath, target] of Object.entries(pkg.exports)) {
  if (subpath === './package.json') continue;
  t.test(`${subpath}: the API equals its snapshot`, async (t) => {
    const described = describeEntryPoint(sourceOf(target.types), compilerOptions);
    const file = snapshotFile(subpath);
    if (process.env.SRF_UPDATE_API === '1') await writeFile(file, described);
    const snapshot = await readFile(file, 'utf8').catch(() => '');
    if (described !== snapshot) {
      const now = new Set(described.split('\n'));
      const then = new Set(snapshot.split('\n'));
      const added = [...now].filter((l) => !then.has(l)).slice(0, 20);
      const removed = [...then].filter((l) => !now.has(l)).slice(0, 20);
      t.fail(`${subpath}: the public API changed (rewrite ${file} with SRF_UPDATE_API=1 if on purpose)`, { added, removed });
    } else {
      t.pass(`${subpath}: ${described.split('\n').filter((l) => l && !l.startsWith(' ')).length} names, as in the snapshot`);
    }
  });
}

t.test('the entry points load by the package name, ESM and CommonJS, and nothing else does', async (t) => {
  const require = createRequire(join(ROOT, 'package.json'));
  for (const subpath of Object.keys(pkg.exports)) {
    if (subpath === './package.json') continue;
    const specifier = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
    const imported = (await import(specifier)) as Record<string, unknown>;
    const required = require(specifier) as Record<string, unknown>;
    t.ok(Object.keys(imported).length > 0, `import('${specifier}') has exports`);
    t.same(Object.keys(required).sort(), Object.keys(imported).sort(), `require('${specifier}') has the same names`);
  }
  // tap's TypeScript loader rewraps the resolver's error without its code: the message has it.
  const notExported = { message: /ERR_PACKAGE_PATH_NOT_EXPORTED|not defined by "exports"/ };
  await t.rejects(import(`${pkg.name}/dist/lib/util/files.js`), notExported, 'an internal file is not importable');
  t.throws(() => require(`${pkg.name}/dist/lib/errors.js`), notExported, 'nor requirable');
});
