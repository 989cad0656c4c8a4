import { describe, expect, it } from 'vitest';
import { FerryError, toErrorData } from '../src/index.js';

describe('toErrorData', () => {
  it('keeps a FerryError as it is', () => {
    expect(toErrorData(new FerryError('CONTAINER_BUSY', 'busy', { retryable: true }))).toMatchObject({ code: 'CONTAINER_BUSY', retryable: true });
  });

  it('names a full disk (ENOSPC, EDQUOT) instead of an internal error, not retryable', () => {
    for (const code of ['ENOSPC', 'EDQUOT']) {
      const e = Object.assign(new Error(`${code}: no space left on device, write`), { code });
      expect(toErrorData(e)).toMatchObject({ code: 'DISK_FULL', retryable: false });
      expect(toErrorData(e).message).toContain('no space left');
    }
  });

  it('anything else is INTERNAL', () => {
    expect(toErrorData(Object.assign(new Error('boom'), { code: 'EIO' }))).toMatchObject({ code: 'INTERNAL' });
    expect(toErrorData('text')).toMatchObject({ code: 'INTERNAL', message: 'text' });
  });
});
