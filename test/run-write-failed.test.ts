// A failed write (missing folder, permissions, full disk) is a coded error naming the file.
import { join } from 'node:path';
import t from 'tap';
import { SrfError } from '../lib/index.js';
import { writeJsonAtomic } from '../lib/util/files.js';
import { tempDir } from './helpers/fixtures.js';

t.test('writeJsonAtomic into a folder that does not exist', async (t) => {
  const file = join(await tempDir(), 'no', 'such', 'folder', 'run.json');
  const error = await writeJsonAtomic(file, { a: 1 }).then(() => undefined, (e: unknown) => e);
  t.type(error, SrfError);
  t.equal((error as SrfError).code, 'WRITE_FAILED');
  t.equal((error as SrfError).file, file);
});
