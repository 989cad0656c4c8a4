/**
 * ferry's web dashboard: a read-only Fastify plugin (hosts and their load, operations running now
 * with live step progress, the history with its figures, a queue inspector), live by server-sent
 * events; `ferry dashboard` serves it on loopback (serveDashboard).
 */
export { dashboardPlugin, type DashboardOptions } from './plugin.js';
export { serveDashboard, type DashboardServer, type ServeDashboardOptions } from './server.js';
export { DASHBOARD_PORT, DEFAULT_LISTEN, dashboardUrl, isLoopback, parseDashboardListen } from './listen.js';
export { SnapshotReader, SNAPSHOT_LIMITS, type DashboardSource, type OperationView, type Snapshot, type SnapshotLimits } from './snapshot.js';
export { renderSections, SECTIONS, type SectionId, type Sections } from './view.js';
