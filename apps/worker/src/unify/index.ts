export { unify, type UnifyOptions } from './unify.js';
export { gcStore, type GcReport } from './gc.js';
export { formatReport, formatBytes, type UnifyReport, type UnifyMode, type FileProblem } from './report.js';
export {
  DEFAULT_EXCLUDES,
  SECRET_EXCLUDES,
  GENERAL_EXCLUDES,
  RULE_LIMITS,
  Exclusions,
  parseRules,
  loadExclusions,
  type ParseOptions,
  type Rule,
  type Decision,
} from './exclusions.js';
export { compileGlob, GlobSyntaxError, type Matcher } from '@ferry/core';
export { STORE_DIR_NAME } from './content-store.js';
export { probe, fsInfo, usedBytes, type Capabilities, type FsInfo } from './probe.js';
export { benchUnify, formatBench, BENCH_TOOLS, type BenchOptions, type BenchResult, type BenchRow, type BenchTool } from './bench.js';
