#!/usr/bin/env node
// supervisord's [eventlistener:watchdog]: bangs partitions whose watched services exit (docs/promises.md).
import { watchdogMain } from '../dist/src/promise-runner/watchdog-main.js';

process.exitCode = await watchdogMain();
