import { describe, expect, it } from 'vitest';
import { ListenAddress, MetricsFlag, metricsUrl } from '../src/metrics/listen.js';

describe('--metrics ADDR:PORT', () => {
  it('reads an address and port, a bare port as this host only, off as none', () => {
    expect(MetricsFlag.parse('0.0.0.0:9470')).toEqual({ host: '0.0.0.0', port: 9470 });
    expect(MetricsFlag.parse('9471')).toEqual({ host: '127.0.0.1', port: 9471 });
    expect(MetricsFlag.parse('[::1]:9470')).toEqual({ host: '::1', port: 9470 });
    expect(MetricsFlag.parse('metrics.example:9470')).toEqual({ host: 'metrics.example', port: 9470 });
    expect(MetricsFlag.parse('off')).toBeUndefined();
    expect(MetricsFlag.parse('')).toBeUndefined();
    expect(metricsUrl({ host: '::1', port: 9470 })).toBe('http://[::1]:9470/metrics');
  });

  it('refuses a bare :PORT (every interface must be written out), bad ports and addresses', () => {
    expect(MetricsFlag.safeParse(':9470').error?.issues[0]?.message).toMatch(/0\.0\.0\.0:9470 for every interface/);
    for (const bad of ['9470x', '0', '70000', 'a b:1', 'host:', '1.2.3.4:0']) expect(MetricsFlag.safeParse(bad).success, bad).toBe(false);
  });
});

describe('a server\'s listen address (the dashboard\'s --listen)', () => {
  it('reads the same forms, takes 0 for any free port, and has no off', () => {
    expect(ListenAddress.parse('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(ListenAddress.parse('9480')).toEqual({ host: '127.0.0.1', port: 9480 });
    expect(ListenAddress.parse('[::1]:9480')).toEqual({ host: '::1', port: 9480 });
    expect(ListenAddress.safeParse('off').error?.issues[0]?.message).toMatch(/^must be ADDR:PORT or PORT \(127\.0\.0\.1\), with a port 0-65535/);
    for (const bad of [':9480', '70000', 'a b:1', '']) expect(ListenAddress.safeParse(bad).success, bad).toBe(false);
  });
});
