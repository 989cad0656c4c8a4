import { envFile } from './env-file.js';
import { type Install, type SchedulerInstall, type WorkerInstall, workerEnv } from './options.js';
import { REDIS_CONF, redisConf } from './redis-conf.js';
import { schedulerUnit } from './scheduler-unit.js';
import { workerUnit } from './worker-unit.js';
import type { PlannedFile } from './write-files.js';

const UNIT_DIR = '/etc/systemd/system';
const envPath = (component: string) => `/etc/ferry/${component}.env`;

/** Every file `ferry install <component>` writes, as it would be on the host (paths before --prefix). */
export function installPlan(i: Install): { files: PlannedFile[]; next: string[]; notes: string[] } {
  return i.component === 'worker' ? workerPlan(i) : schedulerPlan(i);
}

const METRICS_NOTE = 'Prometheus metrics: off unless set (a bare port is 127.0.0.1 only; README, "Metrics")';

function workerPlan(w: WorkerInstall) {
  const env = workerEnv(w);
  const notes: Record<string, string> = {
    REDIS_URL: "the scheduler's Redis (ferry install scheduler prints it)",
    FERRY_STATE_DIR: "ferry's state: this worker's under worker/<host>, its signing key, keys/",
    FERRY_CONTROL_PUB: "the control plane's public key: copy control.pub from the scheduler's host here; until then the worker runs nothing",
    FERRY_HOST_KEYS: 'where the worker writes <host>.pub: copy it into the scheduler\'s --host-keys dir',
    FERRY_WORKER_METRICS: METRICS_NOTE,
    FERRY_MOUNT_ROOTS: 'host dirs `ferry mount` may share (colon-separated); none by default',
  };
  const content = envFile(
    [`ferry worker for host ${w.host}: read by ferry-worker.service. Written by \`ferry install worker\`.`, 'A root shell gets the same settings with: set -a; . ' + envPath('worker') + '; set +a'],
    [...Object.entries(env).map(([k, v]) => [k, v, notes[k]] as const), ['FERRY_LOG_LEVEL', 'info']],
  );
  return {
    files: [
      { path: `${UNIT_DIR}/ferry-worker.service`, mode: 0o644, content: workerUnit(w, envPath('worker')) },
      { path: envPath('worker'), mode: 0o600, content },
    ],
    next: ['systemctl daemon-reload', 'systemctl enable --now ferry-worker', 'journalctl -u ferry-worker -f -o cat'],
    notes: [
      `copy the control plane's public key (control.pub on the scheduler's host) to ${w.controlKey}`,
      `after the first start, copy ${w.hostKeys}/${w.host}.pub into the scheduler's host key dir`,
    ],
  };
}

function schedulerPlan(s: SchedulerInstall) {
  const env = (redact: boolean) =>
    envFile(
      ['ferry scheduler: read by ferry-scheduler.service. Written by `ferry install scheduler`.', `A root shell (the CLI signs with the control key) gets the same settings with: set -a; . ${envPath('scheduler')}; set +a`],
      [
        ['REDIS_URL', redact && s.redis?.password ? s.redisUrl.replace(encodeURIComponent(s.redis.password), '<redacted>') : s.redisUrl, s.redis ? "ferry's Redis on this host (redis-server@ferry)" : 'Redis'],
        ['FERRY_STATE_DIR', s.stateDir, "ferry's state: the scheduler's records of handled requests, keys/"],
        ['FERRY_CONTROL_KEY', s.controlKey, "the control plane's private key (0600), made on first start; its .pub goes to every worker"],
        ['FERRY_HOST_KEYS', s.hostKeys, "the trusted hosts' public keys, <host>.pub: results are accepted only so signed"],
        ['FERRY_SCHEDULER_METRICS', s.metrics, METRICS_NOTE],
        ['FERRY_LOG_LEVEL', 'info'],
      ],
    );
  const files: PlannedFile[] = [
    { path: `${UNIT_DIR}/ferry-scheduler.service`, mode: 0o644, content: schedulerUnit(s, envPath('scheduler')) },
    { path: envPath('scheduler'), mode: 0o600, content: env(false), shown: env(true) },
  ];
  if (!/^\/var\/lib\//.test(s.stateDir)) files.push({ path: s.stateDir, mode: 0o700, dir: true });
  const units = ['ferry-scheduler'];
  const notes = [`give every worker the control plane's public key (${s.controlKey.replace(/\.key$/, '')}.pub, made on the first start)`, `put each worker's <host>.pub into ${s.hostKeys}`];
  if (s.redis) {
    // Debian's unit runs redis-server as user redis: it reads its configuration through the group.
    files.push({ path: REDIS_CONF, mode: 0o640, group: 'redis', content: redisConf(s.redis, false), shown: redisConf(s.redis, true) });
    units.unshift('redis-server@ferry');
    const remote = s.redis.binds.find((b) => !b.startsWith('127.') && b !== '::1');
    notes.push(
      remote
        ? `workers on other hosts: ferry install worker --redis-url 'redis://:<password>@${remote.includes(':') ? `[${remote}]` : remote}:${s.redis.port}' ...`
        : 'Redis listens on loopback and its unix socket only: workers on this host only (--redis-bind ADDR and --redis-password-file for others)',
    );
  }
  return { files, next: ['systemctl daemon-reload', `systemctl enable --now ${units.join(' ')}`, 'journalctl -u ferry-scheduler -f -o cat'], notes };
}
