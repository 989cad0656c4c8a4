import { describe, expect, it } from 'vitest';
import { cut, decodeOperationLogEntry, encodeOperationLogEntry, keys, OPERATION_LOG, operationLogEntry } from '../src/index.js';

describe("an operation's log entries", () => {
  it('lives beside the record, under its id', () => {
    expect(keys('p').operationLog('m-1')).toBe('p:mig:m-1:log');
  });

  it("a worker's step line: host, step and phase from its bindings; the rest as detail, errors as CODE: message", () => {
    const line = {
      level: 50,
      time: 1_700_000_000_000,
      pid: 1,
      hostname: 'x',
      name: 'worker',
      host: 'h1',
      component: 'worker',
      migrationId: 'm-1',
      step: 'checkpoint',
      phase: 'forward',
      index: 3,
      run: 1,
      attempt: 2,
      error: { name: 'FerryError', code: 'TRANSFER_NETWORK', message: 'ssh: connection lost', retryable: true },
      msg: 'step failed',
    };
    const e = operationLogEntry(line);
    expect(e).toEqual({
      id: 'm-1',
      entry: { time: 1_700_000_000_000, host: 'h1', step: 'checkpoint', phase: 'forward', level: 'error', msg: 'step failed', detail: 'attempt=2 error="TRANSFER_NETWORK: ssh: connection lost"' },
    });
    expect(decodeOperationLogEntry(encodeOperationLogEntry(e!.entry))).toEqual(e!.entry);
  });

  it("the scheduler's line: its source is the host column, the step's host stays in the detail", () => {
    const e = operationLogEntry({ level: 30, time: 1, migrationId: 'm-1', step: 'restore', host: 'h2', run: 1, msg: 'step enqueued' }, 'scheduler');
    expect(e?.entry).toEqual({ time: 1, host: 'scheduler', step: 'restore', level: 'info', msg: 'step enqueued', detail: 'host=h2' });
  });

  it('keeps only lines about an operation, info and above', () => {
    expect(operationLogEntry({ level: 30, msg: 'worker started' })).toBeNull();
    expect(operationLogEntry({ level: 20, migrationId: 'm-1', msg: 'debug' })).toBeNull();
  });

  it('cuts a long line to the byte cap, never inside a character', () => {
    const e = operationLogEntry({ level: 40, time: 1, migrationId: 'm-1', host: 'h1', msg: 'é'.repeat(2000), out: 'x'.repeat(5000) })!.entry;
    expect(Buffer.byteLength(e.msg) + Buffer.byteLength(e.detail ?? '')).toBeLessThanOrEqual(OPERATION_LOG.lineBytes);
    expect(e.msg.endsWith('é…')).toBe(true);
    expect(cut('short', 10)).toBe('short');
  });

  it('an entry this version cannot read is null', () => {
    expect(decodeOperationLogEntry(['time', 'x', 'host', 'h1', 'level', 'info'])).toBeNull();
    expect(decodeOperationLogEntry(['time', '1', 'host', 'h1', 'level', 'trace', 'msg', 'm'])).toBeNull();
  });
});
