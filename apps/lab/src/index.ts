/**
 * @ferry/lab: ferry's proving ground, not part of the `ferry` CLI. The lab (N hosts and a client as
 * network namespaces on this machine, each host with sshd, LXC and a worker), and beside it the
 * demo (src/demo), the benches (src/bench), the chaos suite (src/chaos) and the client probe
 * (src/probe), each run by its own `npm run` script. `ferry lab ...` runs this package's bin
 * (src/main.ts).
 */
export * from './lab/index.js';
