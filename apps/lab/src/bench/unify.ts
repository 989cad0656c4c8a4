#!/usr/bin/env node
/**
 * Unify benchmark: ferry (dedupe and hardlink), hardlink, rdfind and jdupes on fresh copies of the
 * same tree of similar root filesystems on an XFS loop filesystem; time and space found and freed.
 */
import { benchUnify, formatBench } from '@ferry/worker';

const json = process.argv.includes('--json');
const r = await benchUnify({ log: (s: string) => process.stderr.write(`${s}\n`) });
process.stdout.write(json ? `${JSON.stringify(r)}\n` : `${formatBench(r)}\n`);
