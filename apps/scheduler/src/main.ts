#!/usr/bin/env node
import { runScheduler } from './run.js';

await runScheduler();
