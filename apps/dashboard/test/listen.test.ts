import { describe, expect, it } from 'vitest';
import { FerryError } from '@ferry/core';
import { DASHBOARD_PORT, dashboardUrl, isLoopback, parseDashboardListen } from '../src/listen.js';

describe('ferry dashboard --listen', () => {
  it('defaults to 127.0.0.1 on its own port; a bare port is 127.0.0.1; 0 asks for any free port', () => {
    expect(parseDashboardListen(undefined)).toEqual({ host: '127.0.0.1', port: DASHBOARD_PORT });
    expect(parseDashboardListen('9481')).toEqual({ host: '127.0.0.1', port: 9481 });
    expect(parseDashboardListen('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseDashboardListen('[::1]:9480')).toEqual({ host: '::1', port: 9480 });
    expect(parseDashboardListen('localhost:9480')).toEqual({ host: 'localhost', port: 9480 });
    expect(dashboardUrl({ host: '::1', port: 9480 })).toBe('http://[::1]:9480/');
  });

  it('refuses an address that is not loopback, saying why and what would serve it there', () => {
    for (const at of ['0.0.0.0:9480', '10.0.0.1:9480', '[::]:9480', 'dash.example:9480', '128.0.0.1:1']) {
      const e = (() => {
        try {
          parseDashboardListen(at);
        } catch (err) {
          return err as FerryError;
        }
      })();
      expect(e, at).toBeInstanceOf(FerryError);
      expect(e!.code).toBe('INVALID_INPUT');
      expect(e!.message).toMatch(/^listen: .* is not a loopback address: the dashboard has no authentication.*--allow-remote/);
    }
    expect(parseDashboardListen('0.0.0.0:9480', true)).toEqual({ host: '0.0.0.0', port: 9480 });
  });

  it('refuses what is not an address and port, naming the option', () => {
    for (const bad of [':9480', '9480x', '70000', 'a b:1', '']) expect(() => parseDashboardListen(bad), bad).toThrow(/^listen: /);
  });

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'localhost.evil.example', '127.0.0.1.nip.io', '::ffff:10.0.0.1', '']) expect(isLoopback(h), h).toBe(false);
  });
});
