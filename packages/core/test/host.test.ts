import { describe, expect, it } from 'vitest';
import { Peer } from '../src/index.js';

const ok = { name: 'h2', address: '198.18.0.12', sshPort: 22, sshUser: 'root', lxcPath: '/var/lib/lxc' };

describe('Peer: what the registry may say of a host is checked before ssh or rsync sees it', () => {
  it('accepts addresses, login names and normalized absolute paths', () => {
    for (const address of ['198.18.0.12', 'fd00::12', 'h2.lab.example', 'h2']) expect(Peer.safeParse({ ...ok, address }).success, address).toBe(true);
    for (const lxcPath of ['/var/lib/lxc', '/', '/srv/lxc-2/x.y']) expect(Peer.safeParse({ ...ok, lxcPath }).success, lxcPath).toBe(true);
    expect(Peer.safeParse({ ...ok, sshUser: 'ferry-sync' }).success).toBe(true);
  });

  it('refuses option injection through the user or the address (-oProxyCommand=...)', () => {
    for (const sshUser of ['-oProxyCommand=touch /tmp/pwned', 'root@h', 'a b', 'Root', '']) expect(Peer.safeParse({ ...ok, sshUser }).success, sshUser).toBe(false);
    for (const address of ['-oProxyCommand=id', 'h2 -p 1', 'h2;id', 'user@h2', '']) expect(Peer.safeParse({ ...ok, address }).success, address).toBe(false);
  });

  it('refuses LXC paths that could walk out (.., ., //, trailing /) or are relative', () => {
    for (const lxcPath of ['/var/lib/lxc/../../etc', '/var/lib/./lxc', '/var//lib', '/var/lib/lxc/', 'var/lib/lxc', '/var/lib/lxc/..']) {
      expect(Peer.safeParse({ ...ok, lxcPath }).success, lxcPath).toBe(false);
    }
  });
});
