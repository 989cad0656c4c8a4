import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/** One parsed log line of a scheduler or worker: the fields the tests count by. */
export interface LogLine {
  msg: string;
  scheduler?: string;
  migrationId?: string;
  step?: string;
  phase?: string;
  index?: number;
  run?: number;
  [field: string]: unknown;
}

/** A logger (info and above) whose lines are kept, parsed, in `lines`: tests count what the processes did. */
export function captureLog(): { lines: LogLine[]; log: Logger } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
      done();
    },
  });
  return { lines, log: pino({ level: 'info' }, stream) };
}
