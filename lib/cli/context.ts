/**
 * What every command gets: where to write (stdout for results and JSON events, stderr for logs and
 * the progress bar), whether stderr is a terminal, and whether to install Ctrl-C handlers (the real
 * process does; tests calling main() in-process do not).
 */
import { isSrfError } from '../errors.js';

export interface CliStreams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

export interface CliOptions extends Partial<CliStreams> {
  /** Handle SIGINT (first: stop and write outputs; second: exit now). Default true. */
  signals?: boolean;
  /** Treat stderr as a terminal (progress bar). Default: stderr.isTTY. */
  tty?: boolean;
}

/** One shell word: as it is when it holds no character the shell treats specially, else single-quoted. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** How the user started the program, to tell them the same command for resuming. */
export function shellCommand(argv: readonly string[]): string {
  return ['srf-native', ...argv.map(shellQuote)].join(' ');
}

export class CliContext {
  readonly stdout: CliStreams['stdout'];
  readonly stderr: CliStreams['stderr'];
  readonly signals: boolean;
  readonly tty: boolean;
  exitCode = 0;
  /** The arguments main() was called with. */
  argv: string[] = [];
  /** A line on the terminal that the next log must clear first (the progress bar). */
  liveLine = false;

  constructor(options: CliOptions = {}) {
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
    this.signals = options.signals ?? true;
    this.tty = options.tty ?? this.stderr.isTTY === true;
  }

  /** A log line on stderr. */
  log(message: string): void {
    this.#clearLive();
    this.stderr.write(`srf-native: ${message}\n`);
  }

  warn(message: string): void {
    this.#clearLive();
    this.stderr.write(`srf-native: warning: ${message}\n`);
  }

  /** The `onLog` callback the run/ functions take: info as a log line, warn as a warning. */
  readonly onLog = (level: 'info' | 'warn', message: string): void => (level === 'warn' ? this.warn(message) : this.log(message));

  /** A result line on stdout. */
  print(text: string): void {
    this.#clearLive();
    this.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** One JSON event on stdout (--json). */
  event(value: Record<string, unknown>): void {
    this.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** Rewrites the live line on a terminal. */
  live(text: string): void {
    const width = Math.max(20, (this.stderr.columns || 100) - 1);
    this.stderr.write(`\r\x1b[2K${text.length > width ? text.slice(0, width) : text}`);
    this.liveLine = true;
  }

  #clearLive(): void {
    if (this.liveLine) {
      this.stderr.write('\r\x1b[2K');
      this.liveLine = false;
    }
  }

  /** The one-line error of the CLI: `srf-native: CODE: message`; exit code 2 for SrfError, 1 otherwise. */
  fail(error: unknown): number {
    this.#clearLive();
    if (isSrfError(error)) {
      this.stderr.write(`srf-native: ${error.code}: ${error.message}\n`);
      return 2;
    }
    const message = (error as Error)?.message ?? String(error);
    this.stderr.write(`srf-native: unexpected error: ${message}\n`);
    if (process.env.SRF_DEBUG && (error as Error)?.stack) this.stderr.write(`${(error as Error).stack}\n`);
    else this.stderr.write('srf-native: (set SRF_DEBUG=1 for the stack trace)\n');
    return 1;
  }
}
