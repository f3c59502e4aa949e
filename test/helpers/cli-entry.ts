/** The CLI as a test child process runs it (bin/srf-native.js needs the compiled dist/). */
import { main } from '../../lib/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
