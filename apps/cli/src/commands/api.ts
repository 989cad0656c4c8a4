import { Option, type Command } from 'commander';
import { API_ROLES } from '@ferry/core';
import { examples, json, num, print } from '../entry.js';
import { EXIT, ExitError } from '../exit-error.js';
import type { Ferry } from '../service/ferry.js';
import type { ApiServeFlags } from '../api/server/listen.js';

type WithFerry = <T>(fn: (f: Ferry) => Promise<T>) => Promise<T>;

/** `--api-listen` and the like, as `ferry scheduler` takes them, to the flags `ferry api` takes. */
export function schedulerApiFlags(o: { api?: boolean; apiListen?: string; apiSocket?: string; apiTlsCert?: string; apiTlsKey?: string }): ApiServeFlags | undefined {
  if (!o.api && o.apiListen === undefined && o.apiSocket === undefined && o.apiTlsCert === undefined && o.apiTlsKey === undefined) return undefined;
  return {
    ...(o.apiListen !== undefined ? { listen: o.apiListen } : {}),
    ...(o.apiSocket !== undefined ? { socket: o.apiSocket } : {}),
    ...(o.apiTlsCert !== undefined ? { tlsCert: o.apiTlsCert } : {}),
    ...(o.apiTlsKey !== undefined ? { tlsKey: o.apiTlsKey } : {}),
  };
}

/** Starts ferry's API from its flags (bad ones exit 2, naming each); its stop function. `controlKey`: the key's file, if not the default. */
export async function startApiFromFlags(flags: ApiServeFlags, controlKey?: string): Promise<() => Promise<void>> {
  const [{ parseApiFlags }, { startApi }, { ValidationError }, { loadControlKey }] = await Promise.all([
    import('../api/server/listen.js'),
    import('../api/server/start.js'),
    import('@ferry/core'),
    import('../control-key.js'),
  ]);
  let listen;
  try {
    listen = parseApiFlags(flags);
  } catch (e) {
    if (e instanceof ValidationError) throw new ExitError(EXIT.badInput, `api: ${e.problems.map((p) => `--${p.path}: ${p.message}`).join('; ')}`);
    throw e;
  }
  const server = await startApi({ ...listen, ...(controlKey ? { controlKey: await loadControlKey(controlKey) } : {}) });
  return () => server.close();
}

/** `ferry api` (the server), `ferry token` (its tokens) and `ferry audit` (its log). */
export function registerApiCommands(program: Command, withFerry: WithFerry): void {
  program
    .command('api')
    .description("serve ferry's API: a root-only Unix socket (no token) and, with --listen, HTTPS with bearer tokens; it signs what it submits with the control key")
    .option('--listen <addr:port>', 'also serve TCP here (a bare PORT is 127.0.0.1:PORT); plain HTTP only on loopback, else give --tls-cert and --tls-key')
    .option('--socket <path>', 'the Unix socket (default <state dir>/api/api.sock; 0600, for root)')
    .option('--no-socket', 'serve no Unix socket (then --listen is needed)')
    .option('--tls-cert <file>', 'PEM certificate (chain) for HTTPS')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .addHelpText(
      'after',
      examples(
        ['ferry api', 'ferry api --listen 127.0.0.1:7443', 'ferry api --listen 10.0.0.1:7443 --tls-cert /etc/ferry/api.crt --tls-key /etc/ferry/api.key'],
        'Runs until SIGTERM, beside the scheduler (or inside it: ferry scheduler --api). Needs Redis (REDIS_URL) and the',
        'control-plane key (FERRY_CONTROL_KEY, default <state dir>/keys/control.key), as the scheduler does.',
        'Clients: FERRY_API=https://HOST:PORT with FERRY_TOKEN (ferry token create), or FERRY_API=unix:/path as root.',
        'Every request is audited: ferry audit.',
      ),
    )
    .action(async (o: { listen?: string; socket?: string | boolean; tlsCert?: string; tlsKey?: string }) => {
      const stop = await startApiFromFlags({
        ...(o.listen !== undefined ? { listen: o.listen } : {}),
        ...(o.socket !== undefined && o.socket !== true ? { socket: o.socket } : {}),
        ...(o.tlsCert !== undefined ? { tlsCert: o.tlsCert } : {}),
        ...(o.tlsKey !== undefined ? { tlsKey: o.tlsKey } : {}),
      });
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', () => resolve());
        process.once('SIGINT', () => resolve());
      });
      await stop();
    });

  const token = program
    .command('token')
    .description("bearer tokens for ferry's API: create (shown once), list, revoke")
    .addHelpText('after', examples(["ferry token create --role operator --containers 'web-*' --name ci", 'ferry token list', 'ferry token revoke ci']));
  token
    .command('create')
    .description('make a token and print it (only its hash is kept)')
    .addOption(new Option('--role <role>', 'viewer (read), operator (move and place containers), admin (everything)').choices([...API_ROLES]).makeOptionMandatory())
    .option('--containers <patterns>', "only containers matching one of these name patterns, comma-separated ('web-*,db-?')")
    .option('--name <name>', 'who it is for: its name in the audit log (default: its id)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      examples(["ferry token create --role viewer --name grafana", "ferry token create --role operator --containers 'web-*' --name ci --json"], 'The token is printed once; keep it (FERRY_TOKEN for the CLI). Needs the admin role, or root.'),
    )
    .action(async (o: { role: (typeof API_ROLES)[number]; containers?: string; name?: string; json?: boolean }) => {
      const { renderCreated } = await import('./tokens.js');
      const containers = o.containers?.split(',').map((p) => p.trim());
      await withFerry(async (f) => {
        const t = await f.tokenCreate({ role: o.role, ...(o.name !== undefined ? { name: o.name } : {}), ...(containers ? { containers } : {}) });
        if (o.json) json(t);
        else print(renderCreated(t));
      });
    });
  token
    .command('list')
    .description('every token: id, name, role, container scope, when made (never the token)')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry token list', 'ferry token list --json']))
    .action(async (o: { json?: boolean }) => {
      const { renderTokens } = await import('./tokens.js');
      await withFerry(async (f) => {
        const list = await f.tokenList({});
        if (o.json) json(list);
        else print(renderTokens(list));
      });
    });
  token
    .command('revoke')
    .description('remove a token: requests with it are refused (401) from now on')
    .argument('<id-or-name>', 'its id or name (ferry token list)')
    .addHelpText('after', examples(['ferry token revoke ci', 'ferry token revoke k3v9x0a7qd']))
    .action(async (idOrName: string) => {
      await withFerry(async (f) => {
        const { revoked } = await f.tokenRevoke({ token: idOrName });
        print(`token ${revoked.id} '${revoked.name}' (${revoked.role}) revoked`);
      });
    });

  program
    .command('audit')
    .description("the API's audit log: every request (who, role, what, containers, outcome, when, request id), allowed or not")
    .option('-f, --follow', 'then print new entries as they come, until interrupted')
    .option('--json', 'print each entry as JSON')
    .option('--limit <n>', 'how many of the newest entries', num('--limit'), 50)
    .addHelpText(
      'after',
      examples(['ferry audit', 'ferry audit --follow', 'ferry audit --limit 500 --json'], 'Oldest first. Needs the admin role, or root. The log keeps about the newest 10,000 entries.'),
    )
    .action(async (o: { follow?: boolean; json?: boolean; limit: number }) => {
      const { audit } = await import('./audit.js');
      await withFerry((f) => audit(f, { limit: o.limit, follow: Boolean(o.follow), json: Boolean(o.json) }));
    });
}
