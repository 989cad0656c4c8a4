import { pino, type Logger } from 'pino';

/**
 * Structured JSON logs; pretty when stderr is a terminal. Child loggers carry the migration id,
 * step and host so every line can be traced across hosts.
 */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  const level = process.env.FERRY_LOG_LEVEL ?? 'info';
  const pretty = process.stderr.isTTY && process.env.FERRY_LOG_FORMAT !== 'json';
  const transport = pretty
    ? pino.transport({ target: 'pino-pretty', options: { destination: 2, colorize: true, translateTime: 'SYS:HH:MM:ss.l' } })
    : undefined;
  const base = { name, ...bindings };
  return transport ? pino({ level, base }, transport) : pino({ level, base }, pino.destination(2));
}
