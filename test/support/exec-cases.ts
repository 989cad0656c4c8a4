import { expect } from 'vitest';

/** Arguments a shell would change: quotes, spaces, options, `$(...)`, globs, an empty one, non-ASCII. */
const ARGS = [`a b "c" 'd'`, '--host', 'h9', '-x', '$(id)', '*', '', 'é ünï'];

/**
 * What `ferry exec` must do wherever it runs: both toolbox suites (an in-process worker, and the
 * lab through the real CLI) run these cases, so the two stay in step.
 */
export function execCases(container: string) {
  return [
    {
      what: 'streams stdout and stderr apart and exits with the command’s code',
      args: ['exec', container, '--', 'sh', '-c', 'echo out; echo err >&2; exit 7'],
      expected: { code: 7, stdout: 'out\n', stderr: 'err\n' },
    },
    {
      what: 'runs the command in the container (its hostname) and exits 0',
      args: ['exec', container, '--', 'hostname'],
      expected: { code: 0, stdout: `${container}\n`, stderr: '' },
    },
    {
      what: 'passes every argument unchanged, options after -- included, no shell in between',
      args: ['exec', container, '--', 'printf', '[%s]\\n', ...ARGS],
      expected: { code: 0, stdout: ARGS.map((x) => `[${x}]\n`).join(''), stderr: '' },
    },
    {
      what: 'reports a command that cannot be run as the shell would (127)',
      args: ['exec', container, '--', 'no-such-command'],
      expected: { code: 127, stdout: '', stderr: expect.stringMatching(/Failed to exec "no-such-command"/) },
    },
  ];
}
