import { pino, type DestinationStream, type Level, type Logger } from 'pino';

/**
 * A logger that writes what `parent` writes, where it writes it, and also every line at info and
 * above to `sink` (OperationLogSink: the lines about an operation go to its log), whatever
 * `parent`'s level — the fast tier's loggers are silent, an operation's log never is. Its children
 * (a step's logger: operation, step, host) tee the same way, so no log call changes. The parent's
 * own destination is pino's stream of it (`pino.symbols.streamSym`, pino's documented way in).
 */
export function teeOperationLog(parent: Logger, sink: DestinationStream): Logger {
  const streams: pino.StreamEntry[] = [{ level: 'info', stream: sink }];
  const own = (parent as unknown as Record<symbol, DestinationStream | undefined>)[pino.symbols.streamSym];
  const parentLevel = parent.level as Level | 'silent';
  if (own && parentLevel !== 'silent') streams.push({ level: parentLevel, stream: own });
  const lowest = parentLevel !== 'silent' && parent.levelVal < pino.levels.values.info! ? parentLevel : 'info';
  // base: null, then the parent's bindings (its base's pid, hostname, name among them): the same lines.
  return pino({ level: lowest, base: null }, pino.multistream(streams)).child(parent.bindings());
}
